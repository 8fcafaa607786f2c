"""High error rate: invalid input, the database, a third-party API, LibreOffice."""

from __future__ import annotations

from runbook_lib.diagnosis.engine import (
    Evidence,
    Fact,
    errors_share,
    log_share,
    pct,
    rule,
    unhealthy,
)


@rule(
    "high_error_rate",
    "invalid_input",
    commands=(
        "docker logs {container} 2>&1 | grep -A5 'validation error'\n"
        "# identify the clients sending invalid requests; improve validation messages"
    ),
)
def invalid_input(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, {"invalid_input", "parse_error"}, "validation and parse errors"),
        log_share(ev, {"validation_error", "parse_error"}, "validation or parse errors", 1),
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
        errors_share(ev, {"io_error", "timeout"}, "I/O errors and timeouts", 2),
        unhealthy(ev, "database"),
        log_share(ev, {"connection_refused", "db_timeout"}, "database connection failures"),
        _tools_share(ev, {"read_table", "list_workbooks"}, "database-backed tools"),
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
        errors_share(ev, {"unknown", "timeout"}, "unclassified errors and timeouts", 1),
        unhealthy(ev, "external_api"),
        log_share(ev, {"http_5xx"}, "HTTP 5xx answers from an external API", 3),
    ]


@rule(
    "high_error_rate",
    "libreoffice_failure",
    commands=("ps aux | grep [s]office\nkill -9 {pids}\nulimit -n"),
)
def libreoffice_failure(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, {"recalc_error", "fork_error"}, "recalc and fork errors", 2),
        unhealthy(ev, "libreoffice"),
        log_share(ev, {"libreoffice_start_failed"}, "'Failed to start LibreOffice'"),
        _tools_share(ev, {"recalc", "screenshot"}, "LibreOffice tools (recalc, screenshot)"),
    ]


def _tools_share(ev: Evidence, tools: set[str], label: str) -> Fact:
    by = ev.sig("errors_by_tool") or {}
    total = sum(by.values())
    if total <= 0:
        return Fact(None, f"errors of {label}", 1, False, "no errors by tool in the window")
    s = sum(v for k, v in by.items() if k in tools) / total
    return Fact(s >= 0.8, f"{pct(s)} of errors come from {label}", 1)
