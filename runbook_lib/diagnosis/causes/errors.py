"""High error rate: invalid input, the database, a third-party API, LibreOffice."""

from __future__ import annotations

from collections.abc import Callable

from runbook_lib.contract.tools import DB_TOOLS, LIBREOFFICE_TOOLS
from runbook_lib.diagnosis.attribution import Attribution, pct
from runbook_lib.diagnosis.constants import MIN_EVENTS, TOOLS_SHARE
from runbook_lib.diagnosis.engine import LITTLE, attributes, rule
from runbook_lib.diagnosis.facts import (
    errors_share,
    explains,
    log_share,
    unhealthy,
)
from runbook_lib.diagnosis.model import Evidence, Fact

INVALID = {"invalid_input", "parse_error"}
DATABASE = {"io_error", "timeout"}
THIRD_PARTY = {"unknown", "timeout"}
LIBREOFFICE = {"recalc_error", "fork_error"}
ANY_TOOL: Callable[[str], bool] = lambda tool: True  # noqa: E731
# cause -> the error types it produces, on which tools, in words
CLAIMS: dict[str, tuple[set[str], Callable[[str], bool], str]] = {
    "invalid_input": (INVALID, ANY_TOOL, "validation and parse errors"),
    "database_connection": (
        DATABASE,
        lambda tool: tool in DB_TOOLS,
        "I/O errors and timeouts of the database-backed tools",
    ),
    "third_party_api": (
        THIRD_PARTY,
        lambda tool: tool not in DB_TOOLS,
        "unclassified errors and timeouts of the tools that call out",
    ),
    "libreoffice_failure": (LIBREOFFICE, ANY_TOOL, "recalc and fork errors"),
}


@attributes("high_error_rate", needs=("errors_by_tool_type",))
def error_attribution(ev: Evidence) -> Attribution | None:
    """The errors of the window by tool and error type; each cause claims the types it
    produces on the tools it can reach (a database failure cannot fail a screenshot)."""
    by = ev.sig("errors_by_tool_type") or {}
    total = sum(by.values())
    if total < MIN_EVENTS:
        return None
    att = Attribution(
        "high_error_rate", "errors in the last " + ev.signals.window, total, tuple(CLAIMS), digits=0
    )
    for cause, (types, reaches, what) in CLAIMS.items():
        mine = 0.0
        for key, n in by.items():
            tool, _, etype = key.partition("|")
            if etype in types and reaches(tool):
                mine += n
        att.claim(cause, mine, what)
    return att


@rule(
    "high_error_rate",
    "invalid_input",
    commands=(
        "{logs} | grep -A5 'validation error'\n"
        "# identify the clients sending invalid requests; improve validation messages"
    ),
)
def invalid_input(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, INVALID, "validation and parse errors"),
        log_share(ev, {"validation_error", "parse_error"}, "validation or parse errors", weight=1),
        explains(ev, "invalid_input", at_least=LITTLE),
    ]


@rule(
    "high_error_rate",
    "database_connection",
    commands=(
        'psql -h localhost -U ggen_mcp -c "SELECT 1"\n'
        "curl -s http://localhost:{port}/metrics | grep pool"
    ),
)
def database_connection(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, DATABASE, "I/O errors and timeouts", weight=2),
        unhealthy(ev, "database"),
        log_share(ev, {"connection_refused", "db_timeout"}, "database connection failures"),
        _tools_share(ev, DB_TOOLS, "database-backed tools"),
        explains(ev, "database_connection", at_least=LITTLE),
    ]


@rule(
    "high_error_rate",
    "third_party_api",
    commands=(
        "curl -I https://external-api.example.com/health\n"
        "# add a circuit breaker and retries with exponential backoff"
    ),
)
def third_party_api(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, THIRD_PARTY, "unclassified errors and timeouts", weight=1),
        unhealthy(ev, "external_api"),
        log_share(ev, {"http_5xx"}, "HTTP 5xx answers from an external API", weight=3),
        explains(ev, "third_party_api", at_least=LITTLE),
    ]


@rule(
    "high_error_rate",
    "libreoffice_failure",
    commands=("ps aux | grep [s]office\nkill -9 {pids}\nulimit -n"),
)
def libreoffice_failure(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, LIBREOFFICE, "recalc and fork errors", weight=2),
        unhealthy(ev, "libreoffice"),
        log_share(ev, {"libreoffice_start_failed"}, "'Failed to start LibreOffice'"),
        _tools_share(ev, LIBREOFFICE_TOOLS, "LibreOffice tools (recalc, screenshot)"),
        explains(ev, "libreoffice_failure", at_least=LITTLE),
    ]


def _tools_share(ev: Evidence, tools: set[str], label: str) -> Fact:
    by = ev.sig("errors_by_tool") or {}
    total = sum(by.values())
    if total <= 0:
        missing = "errors_by_tool" in ev.signals.missing
        why = ev.signals.why_missing("errors_by_tool") if missing else "no errors in the window"
        return Fact(
            None,
            f"errors of {label}",
            weight=1,
            required=False,
            missing=f"errors of {label}: {why}",
        )
    s = sum(v for k, v in by.items() if k in tools) / total
    return Fact(s >= TOOLS_SHARE, f"{pct(s)} of errors come from {label}", weight=1)
