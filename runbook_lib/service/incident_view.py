"""Incidents as people look at them: state, duration, top cause, the communication message.
Shared by `runbook incidents` and the incident pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_lib.contract.clock import utc
from runbook_lib.contract.incident import Incident, IncidentRun
from runbook_lib.incidents import actions
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import READABLE, current_investigation
from runbook_lib.notebook import recurrence
from runbook_lib.notebook.communication import message, status_of
from runbook_lib.records import record


class Described(Incident):
    """An incident with what a person wants first (`describe`)."""

    investigation: IncidentRun | None  # the one to read (`current_investigation`)
    top_cause: str | None
    run_status: str  # the investigation's status or state; 'none' without one
    fault_starts_at: str  # ISO 8601 (`fault_start`)
    duration: str  # in words, with "(firing)" while it is open


def load(index: Index, incident_id: int) -> Described:
    """One incident with its runs, described; LookupError naming the id when there is none."""
    return describe(index.incident(incident_id))


def describe(inc: Incident) -> Described:
    """Add what a person wants first: top cause, state, duration, the investigation run."""
    inv = current_investigation(inc.runs)
    starts, ends = fault_start(inc), _ends(inc)
    seconds = ((ends or datetime.now(UTC)) - utc(starts)).total_seconds()
    return Described(
        **dict(inc),
        investigation=inv,
        top_cause=inv.top_cause if inv else None,
        run_status=(inv.status or inv.state) if inv else "none",
        fault_starts_at=starts,
        duration=_human(seconds) + ("" if ends else " (firing)"),
    )


def fault_start(inc: Incident) -> str:
    """When the fault began: its first symptom alert's start (slow-burn alerts start late and
    are context), not its lead's, which an escalation moves to the later critical."""
    symptoms = [a for a in inc.alerts if not a.context] or inc.alerts
    return min([a.starts_at for a in symptoms] or [inc.starts_at], key=utc)


def memory(index: Index, inc: Described) -> dict[str, Any] | None:
    """What the index remembers of incidents like this one (its runbook and top cause, here
    and on the fleet): `notebook.recurrence.summarize`, with the past incidents of that cause
    under `same` (newest first) for links; None until a top cause is known."""
    past = index.past_incidents(inc)
    found = recurrence.summarize(past, inc.top_cause, inc.instance, utc(inc.starts_at))
    if found is not None:
        found["same"] = [p for p in past if p["top_cause"] == inc.top_cause]
    return found


def recall(index: Index, inc: Described) -> str:
    """The memory as the one line a message carries under its finding."""
    return f"Seen before: {recurrence.headline(memory(index, inc))}" if inc.top_cause else ""


def proposals(output_dir: Path, inc: Incident) -> list[dict[str, str]]:
    """The mitigations the incident's current investigation proposed but did not run (only
    because no operator allowed them): [{action, would}]."""
    from runbook_lib.diagnosis.mitigation import proposed  # the diagnosis imports pandas

    inv = current_investigation(inc.runs)
    if not inv or inv.state != "done":
        return []
    try:
        summary = record.summary(output_dir / inv.record)
    except (OSError, ValueError):  # no record (yet, or removed by retention)
        return []
    found = []
    for entry in summary.actions:
        if (would := proposed(entry)) is not None:
            found.append({"action": entry.action, "would": would})
    return found


def why(run: IncidentRun) -> str:
    """Why a run exists, as its trigger says (schema.RUNS)."""
    trigger, by = run.trigger, run.requested_by or "an operator"
    if trigger.startswith("escalated:"):
        return "escalation"
    if trigger.startswith("operator:"):
        return f"re-investigation asked by {by}"
    if trigger.startswith("mitigation:"):
        return (
            f"approved by {by}"
            if run.kind == "mitigation"
            else f"after the mitigation {by} approved"
        )
    return {"verification": "after resolution", "manual": "by hand"}.get(run.kind, "first")


def run_state(run: IncidentRun) -> str:
    if run.state == "done":
        return run.status or "done"
    if run.state == "queued" and run.held_since:
        return f"held: {run.hold_note or 'waiting for a more severe alert'}"
    if run.state == "waiting":
        return "waiting for the mitigation to end"
    return run.state


def pending(inc: Described) -> str:
    """A banner when an investigation newer than the record shown is queued or running
    (an escalation, a re-investigation, an approved mitigation); '' otherwise."""
    shown = inc.investigation
    if not shown or shown.state != "done":
        return ""
    newer = [r for r in inc.runs if r.kind in READABLE and r.id > shown.id
             and r.state in ("queued", "running")]  # fmt: skip
    if not newer:
        return ""
    n, state = newer[-1], "running" if newer[-1].state == "running" else "queued"
    earlier = f"the record below is the earlier one ({shown.severity or '-'})"
    if n.kind == "mitigation":
        return (f"the runbook's mitigation, {why(n)}, is {state}; the record below is the "
                "investigation that proposed it")  # fmt: skip
    asked = f", {why(n)}" if n.trigger.startswith("operator:") else ""
    return (f"a new investigation led by {n.alertname or inc.alertname} "
            f"({n.severity or '-'}) is {state}{asked}; {earlier}")  # fmt: skip


def action_lines(inc: Incident) -> list[dict[str, Any]]:
    """The incident's actions as the page lists them: when, who, what they did, detail."""
    runs = {r.id: r for r in inc.runs}
    out = []
    for a in inc.actions:
        run = runs.get(a.run_id) if a.run_id else None
        said = actions.detail_text(a.kind, a.detail)
        if run is not None:
            said = ", ".join(x for x in (said, f"run {run.record}: {run_state(run)}") if x)
        out.append({"kind": a.kind, "at": a.at, "actor": a.actor, "did": actions.DID[a.kind],
                    "said": said})  # fmt: skip
    return out


def state(inc: Incident) -> str:
    """Investigating until a mitigation is recorded (a run did one, or a person said so with
    `runbook incidents --mitigated`), then mitigating, until its alerts end."""
    return status_of(inc.status in ("resolved", "stale"), inc.mitigated_at is not None)


def incident_message(
    index: Index, incident_id: int, now: datetime | None = None, link: str = ""
) -> str:
    return message_of(load(index, incident_id), now, link)


def message_of(inc: Described, now: datetime | None = None, link: str = "") -> str:
    """The incident message for an incident already loaded (`load`), with `link` to its
    record or page."""
    ann = inc.annotations
    return message(
        alert=inc.alertname,
        severity=inc.severity,
        starts_at=utc(inc.fault_starts_at),
        now=now or datetime.now(UTC),
        status=state(inc),
        summary=ann.get("summary", ""),
        impact=ann.get("impact", ""),
        top_cause=inc.top_cause,
        ends_at=_ends(inc),
        link=link,
        note=_stale_note(inc),
    )


def _stale_note(inc: Incident) -> str:
    """A stale incident is closed on a guess: say so, rather than claim a resolution."""
    if inc.status != "stale" or not inc.resolved_at:
        return ""
    at = datetime.fromtimestamp(inc.resolved_at, UTC)
    return (f"Closed as stale at {at:%Y-%m-%d %H:%M} UTC: Alertmanager no longer listed its "
            "alerts and no resolution came")  # fmt: skip


def _ends(inc: Incident) -> datetime | None:
    if inc.status not in ("resolved", "stale") or not inc.ends_at:
        return None
    return utc(inc.ends_at)


def _human(seconds: float) -> str:
    minutes = int(max(0, seconds) // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
