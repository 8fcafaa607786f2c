"""The runbook's post-resolution checks. Those a query can answer are answered at the
evaluation time; the rest are listed for a person."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_lib.names import NAMES as N
from runbook_lib.panels import Scope, cache_hit_q, error_rate_q, memory_percent_q, quantile_q

if TYPE_CHECKING:
    from runbook_lib.notebook import Run

# (check as the runbook words it, PromQL giving 1 when it holds, or None for a person)
Check = tuple[str, str | None]


def checks(runbook: str, s: Scope) -> list[Check]:
    """Gauges are read raw (`max_over_time(x[15m])` sees every sample); derived series use
    subqueries at the evaluation interval (`[15m:]`), so a spike shorter than a minute
    still fails the check (a `[15m:1m]` subquery would step over it)."""
    sel = s.sel()
    healthy = f"min_over_time({N.up}{sel}[5m]) == 1"
    errors_ok = f"max_over_time(({error_rate_q(s)})[15m:]) < 1"
    latency_ok = f"max_over_time(({quantile_q(s, 0.95)})[15m:]) < 5"
    table: dict[str, list[Check]] = {
        "service_down": [
            ("Service healthy for 5+ minutes", healthy),
            ("Error rate back under 1% (15 min)", errors_ok),
            ("p95 latency back under 5 s (15 min)", latency_ok),
            ("Review logs for anomalies; document root cause and resolution", None),
        ],
        "high_error_rate": [
            ("Error rate under 1% for 15+ minutes", errors_ok),
            (
                "Error types back to normal (no type above 0.1 errors/s)",
                f"max(sum by (error_type) (rate({N.errors}{sel}[5m]))) < 0.1",
            ),
            ("Add specific error handling / circuit breakers if needed", None),
        ],
        "high_latency": [
            ("p95 latency under 5 s for 15+ minutes", latency_ok),
            ("Every tool's p95 under 5 s", f"max({quantile_q(s, 0.95, by='tool')}) < 5"),
            ("Load test to confirm the fix; document the optimisation", None),
        ],
        "memory": [
            (
                "Memory under 70% of the limit for 1+ hour",
                f"max_over_time(({memory_percent_q(s)})[1h:]) < 70",
            ),
            (
                "Memory stable (grows under 10 MB/h)",
                f"deriv(max({N.rss}{sel})[1h:]) * 3600 < 10e6",
            ),
            ("Set up heap profiling; document root cause and fix", None),
        ],
        "cache_hit_rate": [
            (
                "Cache hit rate above 60% for 1+ hour (ideal > 80%)",
                f"min_over_time(({cache_hit_q(s)})[1h:]) > 60",
            ),
            ("Document cache strategy changes", None),
        ],
        "libreoffice_leak": [
            (
                "10 or fewer LibreOffice processes for 15 minutes",
                f"max(max_over_time({N.libreoffice}{sel}[15m])) <= 10",
            ),
            ("Improve process cleanup, timeouts and reaping in code", None),
        ],
        "fork_leak": [
            (
                "10 or fewer active forks for 15 minutes",
                f"max(max_over_time({N.active_forks}{sel}[15m])) <= 10",
            ),
            ("Check for missing wait() calls and cleanup on error paths", None),
        ],
        "fd_leak": [
            (
                "Descriptors under 80% of the limit for 15 minutes",
                f"max_over_time((max({N.open_fds}{sel}) / max({N.max_fds}{sel}))[15m:]) < 0.8",
            ),
            ("Close descriptors in finally blocks; add descriptor monitoring", None),
        ],
        "disk_usage": [
            (
                "Disk / under 80% used",
                f"100 * (1 - max({N.fs_avail}{s.node_sel()}) / max({N.fs_size}{s.node_sel()}))"
                " < 80",
            ),
            ("Configure log rotation, retention and temp-file cleanup", None),
        ],
    }
    return table.get(
        runbook, [("Follow up on the alert; route it to a runbook if it recurs", None)]
    )


def run_checks(run: Run) -> list[dict]:
    """Each check with its status for people and `holds` (True, False, or None when a
    person must judge it or Prometheus could not answer)."""
    rows = []
    for text, query in checks(run.runbook, run.scope):
        if query is None:
            rows.append({"check": text, "status": "for a person", "holds": None})
            continue
        res = run.prom.instant(query, run.at)
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


def verified(rows: list[dict]) -> bool | None:
    """True when every check a query answers holds; None when none could be answered."""
    answered = [r["holds"] for r in rows if r.get("holds") is not None]
    return all(answered) if answered else None
