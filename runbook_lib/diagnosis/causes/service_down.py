"""Service down: the process crashed, its port is taken, it was OOM-killed, a dependency is gone."""

from __future__ import annotations

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.diagnosis.engine import rule
from runbook_lib.diagnosis.facts import (
    container_fact,
    down,
    errors_share,
    host_fact,
    log_fact,
    log_seen,
    log_share,
    metric,
    unhealthy,
)
from runbook_lib.diagnosis.model import Evidence, Fact

MEMORY_RULE = T["memory"].rule_text()


@rule(
    "service_down",
    "process_crashed",
    commands=("{restart}\ncurl http://localhost:{port}/health"),
    mitigation="restart_container",
)
def process_crashed(ev: Evidence) -> list[Fact]:
    return [
        down(ev),
        log_seen(ev, "fatal", "a fatal error / unhandled exception", weight=2),
        container_fact(
            ev,
            lambda c: bool(c.exit_code) and not c.oom_killed,
            lambda c: (
                f"container {c.name} is {c.status}, exit code {c.exit_code}, "
                f"OOMKilled={c.oom_killed}"
            ),
            weight=2,
        ),
        metric(
            ev,
            "memory_percent_peak",
            lambda v: v < T["memory"].crit_value,
            lambda v: f"memory peaked at {v:.0f}% of the limit before the stop ({MEMORY_RULE})",
            weight=2,  # memory at the limit before the stop points at the OOM killer, whatever the log
            sign=False,
        ),
        log_fact(
            ev,
            lambda lf: lf.counts.get("eaddrinuse", 0) == 0,
            lambda lf: f"{lf.counts.get('eaddrinuse', 0)} EADDRINUSE lines",
            weight=1,
            sign=False,
        ),
    ]


@rule(
    "service_down",
    "port_in_use",
    commands=(
        "lsof -i :{port}   # or: ss -ltnp | grep {port}\n"
        "kill {holder_pid}   # the process holding the port: {holder_name}\n"
        "{restart}"
    ),
)
def port_in_use(ev: Evidence) -> list[Fact]:
    return [
        down(ev),
        log_seen(ev, "eaddrinuse", "EADDRINUSE (port already in use)", weight=3),
        host_fact(
            ev,
            _port_held_by_other,
            lambda h: (
                "listening on the service port: "
                + ", ".join(f"{x['name']} (pid {x['pid']})" for x in h.get("listeners", []))
                or "none"
            ),
            weight=3,
            what="who listens on the service port",
        ),
    ]


def _port_held_by_other(h: dict) -> bool | None:
    if "listeners" not in h:
        return None
    return any(x.get("pid") != h.get("service_pid") for x in h["listeners"])


@rule(
    "service_down",
    "oom_killed",
    commands=(
        "dmesg | grep -i 'out of memory'\ndmesg | grep -i 'killed process'\n"
        "# raise the limit in docker-compose.yml: mem_limit: 4g, mem_reservation: 2g\n"
        "docker-compose up -d"
    ),
)
def oom_killed(ev: Evidence) -> list[Fact]:
    return [
        down(ev),
        metric(
            ev,
            "memory_percent_peak",
            lambda v: v >= T["memory"].crit_value,
            lambda v: f"memory peaked at {v:.0f}% of the limit before the stop ({MEMORY_RULE})",
            weight=2,
        ),
        host_fact(
            ev,
            lambda h: bool(h["oom_events"]) if "oom_events" in h else None,
            lambda h: (
                f"kernel log: {len(h['oom_events'])} OOM kill lines"
                + (f", e.g. {h['oom_events'][0][:90]}" if h["oom_events"] else "")
            ),
            weight=3,
            what="OOM kills in the kernel log",
        ),
        container_fact(
            ev,
            lambda c: bool(c.oom_killed),
            lambda c: f"container {c.name} OOMKilled={c.oom_killed}",
            weight=3,
        ),
        log_seen(ev, "oom_killed", "'Killed' / out of memory", weight=1),
    ]


@rule(
    "service_down",
    "dependency_unavailable",
    commands=(
        "docker ps -a\nsystemctl status postgresql redis\nsystemctl restart postgresql\n{restart}"
    ),
)
def dependency_unavailable(ev: Evidence) -> list[Fact]:
    return [
        unhealthy(ev, "database", weight=2),
        log_share(
            ev, {"connection_refused", "db_timeout"}, "connection refused or timed out", weight=2
        ),
        errors_share(
            ev, {"io_error", "timeout"}, "I/O errors and timeouts", weight=1, required=False
        ),
        metric(
            ev,
            "successes",
            lambda v: v == 0,
            lambda v: f"{v:.0f} successful requests in the window",
            weight=1,
        ),
    ]
