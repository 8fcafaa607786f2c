"""Process leaks (LibreOffice, forks) and descriptor leaks."""

from __future__ import annotations

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.diagnosis.attribution import Attribution, ends
from runbook_lib.diagnosis.engine import (
    LITTLE,
    Evidence,
    Fact,
    attributes,
    explains,
    metric,
    processes_named,
    rule,
)

LEAK_NAMES = {"libreoffice_leak": "soffice", "fork_leak": "ggen-mcp-fork"}
KINDS = {"orphaned": "orphaned_processes", "zombie": "zombie_processes", "hung": "hung_processes"}
STEADY_R2 = 0.9  # a linear fit this good over the hour is a steady climb
ENOUGH_FDS = 4096  # the runbook's suggested descriptor limit


def _picks(service: int | None) -> dict:
    """kind -> which of the service's processes are of that kind."""
    return {
        "orphaned": lambda p: p["ppid"] == 1 and p["status"] != "zombie",
        "zombie": lambda p: p["status"] == "zombie",
        "hung": lambda p: (
            p["status"] != "zombie"
            and p["ppid"] == service
            and p["age_s"] > 300
            and p["cpu_seconds"] < 0.01 * p["age_s"]
        ),
    }


def _process_attribution(runbook: str):
    def attribute(ev: Evidence) -> Attribution | None:
        """The processes counted, split by what keeps them: orphaned, zombie, hung; the
        rest is the working pool."""
        procs = _procs(ev, runbook)
        if not procs:
            return None
        name = LEAK_NAMES[runbook]
        att = Attribution(
            runbook, f"{name} processes on the host", len(procs), tuple(KINDS.values()), digits=0
        )
        for kind, pick in _picks((ev.host or {}).get("service_pid")).items():
            att.claim(KINDS[kind], sum(1 for p in procs if pick(p)), f"{kind} {name} processes")
        return att

    return attribute


for _rb in LEAK_NAMES:
    attributes(_rb)(_process_attribution(_rb))


def _procs(ev: Evidence, runbook: str) -> list[dict] | None:
    if ev.host is None or "processes" not in ev.host:
        return None
    return processes_named(ev.host, LEAK_NAMES[runbook])


def _leak_rule(runbook: str, kind: str):
    def facts(ev: Evidence) -> list[Fact]:
        gauge = "libreoffice" if runbook == "libreoffice_leak" else "forks"
        gauge_threshold = "libreoffice_processes" if gauge == "libreoffice" else "active_forks"
        name = LEAK_NAMES[runbook]
        procs = _procs(ev, runbook)
        service = (ev.host or {}).get("service_pid")
        if procs is None:
            found = Fact(
                None,
                f"{kind} {name} processes",
                3,
                True,
                f"{kind} {name} processes: {ev.host_missing if ev.host is None else ''}"
                "needs the host's process list (live run or host snapshot)",
            )
        else:
            pick = _picks(service)[kind]
            hits = [p for p in procs if pick(p)]
            pids = ", ".join(str(p["pid"]) for p in hits[:8])
            found = Fact(
                len(hits) >= 3,
                f"{len(hits)} of {len(procs)} {name} processes are "
                f"{kind}" + (f" (pids {pids}{', ...' if len(hits) > 8 else ''})" if hits else ""),
                3,
                True,
            )
        return [
            found,
            metric(
                ev,
                gauge,
                lambda v: T[gauge_threshold].breached(v),
                lambda v: (
                    f"{v:.0f} {name} processes counted by the service"
                    f" ({T[gauge_threshold].rule_text()})"
                ),
                1,
            ),
            explains(ev, KINDS[kind], at_least=LITTLE),
        ]

    return facts


LEAK_COMMANDS = {  # the runbook's resolution commands per cause
    "orphaned_processes": (
        "ps -o pid,ppid,etime,cmd -p {pids}\nkill -9 {pids}\n"
        "# reap children on every error path; add process timeouts"
    ),
    "zombie_processes": (
        "ps aux | grep defunct\n# zombies go when their parent reaps them or exits:\n{restart}"
    ),
    "hung_processes": (
        "ps -o pid,etime,time,cmd -p {pids}\nkill -9 {pids}\n"
        "# add a timeout to each LibreOffice operation"
    ),
}
LEAK_MITIGATIONS = {"hung_processes": "end_old_soffice", "zombie_processes": "restart_container"}

for _rb in LEAK_NAMES:
    for _kind in ("orphaned", "zombie", "hung"):
        _cause = f"{_kind}_processes"
        rule(_rb, _cause, commands=LEAK_COMMANDS[_cause], mitigation=LEAK_MITIGATIONS.get(_cause))(
            _leak_rule(_rb, _kind)
        )


@attributes("fd_leak")
def fd_attribution(ev: Evidence) -> Attribution | None:
    """The descriptors open now: the steady growth of the hour (a leak) and the level the
    service held before it, which only a limit below the runbook's 4096 makes a problem."""
    level, limit, r2 = ends(ev.sig("fds_series")), ev.sig("max_fds"), ev.sig("fds_r2")
    if level is None:
        return None
    start, now = level
    att = Attribution("fd_leak", "open descriptors", now, ("fd_leak", "fd_limit_too_low"), digits=0)
    growth = max(0.0, now - start) if r2 is not None and r2 >= STEADY_R2 else 0.0
    att.claim("fd_leak", growth, "steady growth over the hour")
    if limit is None:
        att.cannot_judge(
            "fd_limit_too_low", f"descriptor limit: {ev.signals.why_missing('max_fds')}"
        )
    elif limit < ENOUGH_FDS:
        att.claim("fd_limit_too_low", now - growth, f"the working level, on a limit of {limit:.0f}")
    return att


@rule(
    "fd_leak",
    "fd_leak",
    commands=(
        "lsof -p {service_pid} | wc -l\n"
        "# close descriptors in finally blocks; restart for now:\n"
        "{restart}"
    ),
    mitigation="restart_container",
)
def fd_leak(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "fds_growth_per_h",
            lambda v: v > 0,
            lambda v: f"open descriptors grew {v:+.0f}/h over the last hour",
            2,
            required=True,
        ),
        metric(
            ev,
            "fds_r2",
            lambda v: v >= STEADY_R2,
            lambda v: f"the growth is steady (linear fit R² {v:.2f})",
            2,
        ),
        metric(
            ev,
            "max_fds",
            lambda v: v >= ENOUGH_FDS,
            lambda v: f"the descriptor limit is {v:.0f}",
            1,
            sign=False,
        ),
        explains(ev, "fd_leak", at_least=LITTLE),
    ]


@rule(
    "fd_leak",
    "fd_limit_too_low",
    commands=("ulimit -n\n# raise it: ulimit -n 8192 (or LimitNOFILE=8192 in the unit)"),
)
def fd_limit_too_low(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "max_fds",
            lambda v: v < ENOUGH_FDS,
            lambda v: f"the descriptor limit is {v:.0f} (the runbook suggests 4096+)",
            3,
            required=True,
        ),
        metric(
            ev,
            "fds_r2",
            lambda v: v < 0.6,
            lambda v: f"open descriptors follow load rather than grow steadily (fit R² {v:.2f})",
            1,
        ),
        explains(ev, "fd_limit_too_low", at_least=LITTLE),
    ]
