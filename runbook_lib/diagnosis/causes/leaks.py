"""Process leaks (LibreOffice, forks) and descriptor leaks."""

from __future__ import annotations

from datetime import UTC, datetime

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.diagnosis.attribution import Attribution, ends
from runbook_lib.diagnosis.constants import (
    ENOUGH_FDS,
    FDS_FOLLOW_LOAD_R2,
    HUNG_AGE_S,
    HUNG_CPU_SHARE,
    LEAKED,
    STEADY_R2,
)
from runbook_lib.diagnosis.engine import LITTLE, attributes, rule
from runbook_lib.diagnosis.estimate import climb
from runbook_lib.diagnosis.facts import (
    explains,
    metric,
    processes_named,
)
from runbook_lib.diagnosis.model import Evidence, Fact

LEAK_NAMES = {"libreoffice_leak": "soffice", "fork_leak": "ggen-mcp-fork"}
PIDS_SHOWN = 8  # pids listed in the evidence line, not a threshold
KINDS = {"orphaned": "orphaned_processes", "zombie": "zombie_processes", "hung": "hung_processes"}


def _picks(service: int | None) -> dict:
    """kind -> which of the service's processes are of that kind."""
    return {
        "orphaned": lambda p: p["ppid"] == 1 and p["status"] != "zombie",
        "zombie": lambda p: p["status"] == "zombie",
        "hung": lambda p: (
            p["status"] != "zombie"
            and p["ppid"] == service
            and p["age_s"] > HUNG_AGE_S
            and p["cpu_seconds"] < HUNG_CPU_SHARE * p["age_s"]
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
    attributes(_rb, needs=("host",))(_process_attribution(_rb))


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
                weight=3,
                required=True,
                missing=f"{kind} {name} processes: {ev.host_missing if ev.host is None else ''}"
                "needs the host's process list (live run or host snapshot)",
            )
        else:
            pick = _picks(service)[kind]
            hits = [p for p in procs if pick(p)]
            shown = hits[:PIDS_SHOWN]
            pids = ", ".join(str(p["pid"]) for p in shown)
            found = Fact(
                len(hits) >= LEAKED,
                f"{len(hits)} of {len(procs)} {name} processes are "
                f"{kind}"
                + (f" (pids {pids}{', ...' if hits[len(shown) :] else ''})" if hits else ""),
                weight=3,
                required=True,
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
                weight=1,
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


@attributes("fd_leak", needs=("fds_series",))
def fd_attribution(ev: Evidence) -> Attribution | None:
    """The descriptors open now: the steady growth since it began (a leak) and the level the
    service held before it, which only a limit below the runbook's 4096 makes a problem."""
    from runbook_lib.evidence.panels import trend  # pandas: see `diagnosis/__init__.py`

    frame, limit = ev.sig("fds_series"), ev.sig("max_fds")
    level = ends(frame)
    if level is None:
        return None
    now = level[1]
    att = Attribution("fd_leak", "open descriptors", now, ("fd_leak", "fd_limit_too_low"), digits=0)
    found = climb(frame)
    rising = found.frame
    t = trend(rising)
    growth = 0.0
    if t is not None:
        att.extra["fds_r2"] = t.r2
        since = rising["timestamp"].min()
        att.extra["fds_since"] = since.timestamp()
        if t.r2 >= STEADY_R2 and t.slope_per_h > 0:
            growth = min(max(0.0, found.rise), now)  # the climb's, not a jump with the load
        what = f"steady growth since {since:%H:%M} (fit R² {t.r2:.2f})"
        att.claim("fd_leak", growth, what)
    if limit is None:
        att.cannot_judge(
            "fd_limit_too_low", f"descriptor limit: {ev.signals.why_missing('max_fds')}"
        )
    elif limit < ENOUGH_FDS:
        att.claim("fd_limit_too_low", now - growth, f"the working level, on a limit of {limit:.0f}")
    return att


def _fds_fit(ev: Evidence, holds, text: str, weight: float) -> Fact:
    """A fact on how well a line fits the open descriptors: since they began to climb (the
    attribution's fit), else over the hour."""
    att = ev.attribution
    if att is not None and "fds_r2" in att.extra:
        r2 = att.extra["fds_r2"]
        since = datetime.fromtimestamp(att.extra["fds_since"], UTC)
        return Fact(
            holds(r2), f"{text} since {since:%H:%M} (linear fit R² {r2:.2f})", weight=weight
        )
    return metric(
        ev,
        "fds_r2",
        holds,
        lambda v: f"{text} over the hour (linear fit R² {v:.2f})",
        weight=weight,
    )


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
            weight=2,
            required=True,
        ),
        _fds_fit(ev, lambda v: v >= STEADY_R2, "the growth is steady", 2),
        metric(
            ev,
            "max_fds",
            lambda v: v >= ENOUGH_FDS,
            lambda v: f"the descriptor limit is {v:.0f}",
            weight=1,
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
            weight=3,
            required=True,
        ),
        _fds_fit(
            ev,
            lambda v: v < FDS_FOLLOW_LOAD_R2,
            "open descriptors follow load rather than grow steadily",
            1,
        ),
        explains(ev, "fd_limit_too_low", at_least=LITTLE),
    ]
