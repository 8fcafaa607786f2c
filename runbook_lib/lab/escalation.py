"""An incident that changes under its investigation, played on a local stack: the error rate
worsens from a warning's level to a critical's, with or without a critical pending when the
warning fires. `runbook demo --escalate`, `benchmarks/escalation.py` and the stack tests
drive these; each step waits on what the stack really does (Prometheus's alert states, the
index), never on a fixed sleep, except the gap the scenario itself asks for.

The stack runs with the rules' windows divided by 10 (`[5m]` -> `[30s]`) so a fault's
alerts come and go within a minute, and the slow-burn SLO alerts (1 h -> 6 min) outlast it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runbook_lib.contract.clock import utc
from runbook_lib.contract.incident import Incident, IncidentAlert, IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.lab import stack
from runbook_lib.storage.outbox import Outbox

WINDOW_FACTOR = 10
WARNING, CRITICAL = "GgenMcpElevatedErrorRate", "GgenMcpHighErrorRate"
Say = Callable[[str], None]


class ScenarioError(RuntimeError):
    """A step did not happen in time; the message names it."""


@dataclass
class Scenario:
    """A stack and its index, and what the scenario saw happen (epoch seconds)."""

    info: stack.StackInfo
    index: Index
    say: Say = print
    seen: dict[str, float] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return Path(self.info.output_dir)

    def mode(self, mode: str) -> None:
        self.say(f"      simulator mode: {mode}")
        stack.set_mode(self.info, mode)

    def alerts(self) -> dict[str, str]:
        """Prometheus's alerts now: name -> pending or firing."""
        url = f"{self.info.urls['prometheus']}/api/v1/alerts"
        return {
            a["labels"]["alertname"]: a["state"]
            for a in httpx.get(url, timeout=5).json()["data"]["alerts"]
        }

    def incidents(self) -> list[Incident]:
        return [i for i in self.index.incidents(50) if i.runbook == "high_error_rate"]

    def wait(self, what: str, check: Callable[[], object], timeout: float = 120) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := check():
                return value
            time.sleep(0.3)
        raise ScenarioError(f"timed out after {timeout:.0f}s waiting for {what}")

    def new_incident(self, known: set[int]) -> Callable[[], Incident | None]:
        return lambda: next((i for i in self.incidents() if i.id not in known), None)

    def incident(self, incident_id: int) -> Incident:
        return self.index.incident(incident_id)


def done(inc: Incident, kind: str = "investigation") -> list[IncidentRun]:
    return [r for r in inc.runs if r.kind == kind and r.state == "done"]


def alert_of(inc: Incident, name: str) -> IncidentAlert | None:
    return next((a for a in inc.alerts if a.alertname == name), None)


def fired_at(inc: Incident, name: str) -> float:
    """When Prometheus fired `name` (an alert's startsAt is its firing time)."""
    return utc(alert_of(inc, name).starts_at).timestamp()


def critical_pending(sc: Scenario) -> Incident:
    """3% errors until the warning is pending, then a surge (40%): the critical goes pending
    within seconds, the warning fires while it is, and the warning's investigation waits for
    it. Returns the incident once its investigation is done."""
    known = {i.id for i in sc.incidents()}
    sc.wait("an earlier fault's alerts to end", lambda: not {WARNING, CRITICAL} & set(sc.alerts()))
    sc.mode("errors:elevated")
    sc.wait("the warning to be pending", lambda: sc.alerts().get(WARNING) == "pending", 90)
    sc.mode("errors:surge")
    states = sc.wait("the critical to be pending", lambda: (a := sc.alerts()).get(CRITICAL) and a)
    if states.get(WARNING) != "pending":
        raise ScenarioError(f"{WARNING} was {states.get(WARNING)} before {CRITICAL} was pending")
    sc.wait("the warning to fire", lambda: sc.alerts().get(WARNING) == "firing", 60)
    sc.seen["warning_fired"] = time.time()  # within a poll: Alertmanager may inhibit it
    sc.say(f"      {WARNING} fires while {CRITICAL} is {sc.alerts().get(CRITICAL, 'not yet')}")
    inc = sc.wait("the incident", sc.new_incident(known), 90)
    return sc.wait("its investigation", lambda: done(i := sc.incident(inc.id)) and i, 120)


def warning_then_critical(sc: Scenario, gap_s: float = 60.0) -> Incident:
    """3% errors: the warning fires and is investigated; `gap_s` after it fired, 10%: the
    critical fires and escalates the incident. Returns the incident once the escalation's
    investigation is done."""
    known = {i.id for i in sc.incidents()}
    sc.mode("errors:elevated")
    inc = sc.wait("the warning's incident", sc.new_incident(known), 90)
    inc = sc.wait("the warning's investigation", lambda: done(i := sc.incident(inc.id)) and i)
    warning = fired_at(inc, WARNING) if alert_of(inc, WARNING) else time.time()
    sc.say(f"      the warning's record is written; the critical comes {gap_s:.0f}s after it")
    # the critical fires ~20 s after the switch: the 30 s error ratio climbs from 3% past 5%
    # (~9 s), then its `for:` (10 s) and an evaluation
    time.sleep(max(0.0, warning + gap_s - 20 - time.time()))
    sc.mode("errors:invalid_input")

    def escalated() -> Incident | None:
        # The fault's newest incident: at ~2% errors against the warning's 1%, the warning can
        # dip under its threshold, resolve its incident and fire again in a new one (seen in
        # a `make test`: 0.97% for one evaluation); the critical then escalates that one.
        newest = sc.new_incident(known)()  # incidents come newest first
        return newest is not None and len(done(newest)) >= 2 and newest

    return sc.wait("the escalation's investigation", escalated)


def settle(sc: Scenario, incident_id: int) -> Incident:
    """Back to normal traffic; the incident once it resolved and verified, and every
    message about it was delivered (or given up)."""
    sc.mode("normal")
    inc = sc.wait(
        "the incident to resolve and verify",
        lambda: done(i := sc.incident(incident_id), "verification") and i,
        180,
    )
    sc.wait("its messages to be delivered", lambda: quiet(sc.index, incident_id), 60)
    return inc


def quiet(index: Index, incident_id: int) -> bool:
    """Nothing about the incident waits to be sent."""
    return Outbox(index).waiting(incident_id) == 0
