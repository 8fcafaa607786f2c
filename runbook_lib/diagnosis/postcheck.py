"""The runbook's post-resolution checks. Those a query can answer are answered at the
evaluation time; the rest are listed for a person."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from runbook_lib.contract.names import NAMES as N
from runbook_lib.contract.summary import PostCheck
from runbook_lib.contract.thresholds import THRESHOLDS as T

if TYPE_CHECKING:
    from runbook_lib.evidence.panels import Scope
    from runbook_lib.evidence.prom import Prom

# (check as the runbook words it, PromQL giving 1 when it holds, or None for a person)
Check = tuple[str, str | None]


def checks(runbook: str, s: Scope) -> list[Check]:
    """Gauges are read raw (`max_over_time(x[15m])` sees every sample); derived series use
    subqueries at the evaluation interval (`[15m:]`), so a spike shorter than a minute
    still fails the check (a `[15m:1m]` subquery would step over it)."""
    # here, not at the top: the service reads `HELD` and `verified` without pandas
    from runbook_lib.evidence.panels import cache_hit_q, error_rate_q, memory_percent_q, quantile_q

    sel = s.sel()
    err, p95, mem = T["error_rate"].warn_value, T["latency_p95"].warn_value, T["memory"].warn_value
    hits, soffice = T["cache_hit_rate"].warn_value, T["libreoffice_processes"].warn_value
    forks, fds, disk = (
        T["active_forks"].warn_value,
        T["descriptors"].crit_value,
        T["disk"].warn_value,
    )
    healthy = f"min_over_time({N.up}{sel}[5m]) == 1"
    errors_ok = f"max_over_time(({error_rate_q(s)})[15m:]) < {err:g}"
    latency_ok = f"max_over_time(({quantile_q(s, 0.95)})[15m:]) < {p95:g}"
    table: dict[str, list[Check]] = {
        "service_down": [
            ("Service healthy for 5+ minutes", healthy),
            (f"Error rate back under {err:g}% (15 min)", errors_ok),
            (f"p95 latency back under {p95:g} s (15 min)", latency_ok),
            ("Review logs for anomalies; document root cause and resolution", None),
        ],
        "high_error_rate": [
            (f"Error rate under {err:g}% for 15+ minutes", errors_ok),
            (
                "Error types back to normal (no type above 0.1 errors/s)",
                f"max(sum by (error_type) (rate({N.errors}{sel}[5m]))) < 0.1",
            ),
            ("Add specific error handling / circuit breakers if needed", None),
        ],
        "high_latency": [
            (f"p95 latency under {p95:g} s for 15+ minutes", latency_ok),
            (
                f"Every tool's p95 under {p95:g} s",
                f"max({quantile_q(s, 0.95, by='tool')}) < {p95:g}",
            ),
            ("Load test to confirm the fix; document the optimisation", None),
        ],
        "memory": [
            (
                f"Memory under {mem:g}% of the limit for 1+ hour",
                f"max_over_time(({memory_percent_q(s)})[1h:]) < {mem:g}",
            ),
            (
                "Memory stable (grows under 10 MB/h)",
                f"deriv(max({N.rss}{sel})[1h:]) * 3600 < 10e6",
            ),
            ("Set up heap profiling; document root cause and fix", None),
        ],
        "cache_hit_rate": [
            (
                f"Cache hit rate above {hits:g}% for 1+ hour (ideal > 80%)",
                f"min_over_time(({cache_hit_q(s)})[1h:]) > {hits:g}",
            ),
            ("Document cache strategy changes", None),
        ],
        "libreoffice_leak": [
            (
                f"{soffice:g} or fewer LibreOffice processes for 15 minutes",
                f"max(max_over_time({N.libreoffice}{sel}[15m])) <= {soffice:g}",
            ),
            ("Improve process cleanup, timeouts and reaping in code", None),
        ],
        "fork_leak": [
            (
                f"{forks:g} or fewer active forks for 15 minutes",
                f"max(max_over_time({N.active_forks}{sel}[15m])) <= {forks:g}",
            ),
            ("Check for missing wait() calls and cleanup on error paths", None),
        ],
        "fd_leak": [
            (
                f"Descriptors under {fds:g}% of the limit for 15 minutes",
                f"max_over_time((max({N.open_fds}{sel}) / max({N.max_fds}{sel}))[15m:])"
                f" < {fds / 100:g}",
            ),
            ("Close descriptors in finally blocks; add descriptor monitoring", None),
        ],
        "disk_usage": [
            (
                f"Disk / under {disk:g}% used",
                f"100 * (1 - max({N.fs_avail}{s.node_sel()}) / max({N.fs_size}{s.node_sel()}))"
                f" < {disk:g}",
            ),
            ("Configure log rotation, retention and temp-file cleanup", None),
        ],
    }
    return table.get(
        runbook, [("Follow up on the alert; route it to a runbook if it recurs", None)]
    )


def run_checks(runbook: str, scope: Scope, prom: Prom, at: datetime) -> list[dict]:
    """Each check with its status for people and `holds` (True, False, or None when a
    person must judge it or Prometheus could not answer)."""
    rows = []
    for text, query in checks(runbook, scope):
        if query is None:
            rows.append({"check": text, "status": "for a person", "holds": None})
            continue
        res = prom.instant(query, at)
        holds: bool | None = None
        if res.failure is not None and res.failure.value == "unreachable":
            status = "cannot check: Prometheus unreachable"
        elif res.ok:
            status, holds = "✔ holds", True
        elif res.failure.value == "no_data":
            status, holds = "✘ not yet", False
        else:
            status = f"? {res.reason}"
        rows.append({"check": text, "status": status, "holds": holds})
    return rows


# What a verification's answer (`verified`) says, wherever it is shown.
HELD = {True: "the fix held", False: "the fix did NOT hold", None: "no answer"}


def verified(rows: list[PostCheck]) -> bool | None:
    """True when every check a query answers holds; None when none could be answered."""
    answered = [r.holds for r in rows if r.holds is not None]
    return all(answered) if answered else None
