"""Incidents as people look at them: state, duration, top cause, the communication message.
Shared by `runbook incidents` and the incident pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from runbook_lib.contract.clock import utc
from runbook_lib.notebook.communication import message, status_of
from runbook_lib.records.index import Index
from runbook_lib.records.jobs import current_investigation


def load(index: Index, incident_id: int) -> dict[str, Any]:
    """One incident with its runs, described; LookupError naming the id when there is none."""
    return describe(index.incident(incident_id))


def describe(inc: dict[str, Any]) -> dict[str, Any]:
    """Add what a person wants first: top cause, state, duration, the investigation run."""
    for k in ("labels", "annotations"):
        if isinstance(inc.get(k), str):
            inc[k] = json.loads(inc[k])
    runs = inc.get("runs", [])
    inv = current_investigation(runs)
    inc["investigation"] = inv
    inc["followups"] = [r for r in runs if r is not inv]
    inc.setdefault("alerts", [])
    inc["top_cause"] = inv["top_cause"] if inv else None
    inc["run_status"] = (inv["status"] or inv["state"]) if inv else "none"
    starts = utc(inc["starts_at"])
    ends = _ends(inc)
    inc["duration_s"] = ((ends or datetime.now(UTC)) - starts).total_seconds()
    inc["duration"] = _human(inc["duration_s"]) + ("" if ends else " (firing)")
    return inc


def state(inc: dict[str, Any]) -> str:
    """Investigating until a mitigation is recorded (a run did one, or a person said so with
    `runbook incidents --mitigated`), then mitigating, until its alerts end."""
    return status_of(inc["status"] in ("resolved", "stale"), inc.get("mitigated_at") is not None)


def incident_message(
    index: Index, incident_id: int, now: datetime | None = None, link: str = ""
) -> str:
    return message_of(load(index, incident_id), now, link)


def message_of(inc: dict[str, Any], now: datetime | None = None, link: str = "") -> str:
    """The incident message for an incident already loaded (`load`), with `link` to its
    record or page."""
    ann = inc["annotations"]
    return message(
        alert=inc["alertname"],
        severity=inc["severity"],
        starts_at=utc(inc["starts_at"]),
        now=now or datetime.now(UTC),
        status=state(inc),
        summary=ann.get("summary", ""),
        impact=ann.get("impact", ""),
        top_cause=inc["top_cause"],
        ends_at=_ends(inc),
        link=link,
        note=_stale_note(inc),
    )


def _stale_note(inc: dict[str, Any]) -> str:
    """A stale incident is closed on a guess: say so, rather than claim a resolution."""
    if inc["status"] != "stale" or not inc.get("resolved_at"):
        return ""
    at = datetime.fromtimestamp(inc["resolved_at"], UTC)
    return (f"Closed as stale at {at:%Y-%m-%d %H:%M} UTC: Alertmanager no longer listed its "
            "alerts and no resolution came")  # fmt: skip


def _ends(inc: dict[str, Any]) -> datetime | None:
    if inc["status"] not in ("resolved", "stale") or not inc.get("ends_at"):
        return None
    return utc(inc["ends_at"])


def _human(seconds: float) -> str:
    minutes = int(max(0, seconds) // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
