"""The incidents of a runbook before this one, as the index remembers them: where, when,
the top cause its investigation found, what fixed it and whether the verification held.
`notebook.recurrence` turns them into what a record, a page and a message say."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.incident import IncidentAction, IncidentRun
from runbook_lib.incidents import actions
from runbook_lib.incidents.jobs import current_investigation, runs_of
from runbook_lib.notebook.recurrence import HISTORY_DAYS
from runbook_lib.storage.migrations import schema

incidents_t = schema.INCIDENTS
LIMIT = 200  # the newest incidents passed to a run: enough for any count a person reads


def past_incidents(
    conn: Connection, runbook: str, before: float, exclude: int, days: float = HISTORY_DAYS
) -> list[dict[str, Any]]:
    """The incidents of `runbook` that ended in the `days` before `before`, newest first,
    other than `exclude`: resolved or closed as stale, never one still open (a fault still
    going on is not its own recurrence) nor a run by hand."""
    c = incidents_t.c
    rows = conn.execute(
        sa.select(incidents_t)
        .where((c.runbook == runbook) & c.status.in_(("resolved", "stale")) & (c.id != exclude))
        .where((c.resolved_at >= before - days * 86400) & (c.resolved_at <= before))
        .order_by(c.received_at.desc(), c.id.desc())
        .limit(LIMIT)
    ).all()
    ids = [r.id for r in rows]
    runs, done = runs_of(conn, ids), actions.of(conn, ids)
    return [_past(r, runs.get(r.id, []), done.get(r.id, [])) for r in rows]


def _past(inc, runs: list[IncidentRun], acts: list[IncidentAction]) -> dict[str, Any]:
    inv = current_investigation(runs)
    checks = [r for r in runs if r.kind == "verification" and r.state == "done"]
    return {
        "id": inc.id,
        "instance": inc.instance,
        "starts_at": inc.starts_at,
        "top_cause": inv.top_cause if inv else None,
        "fix": fix_of(inc, acts),
        "held": checks[-1].verified if checks else None,
        "status": inc.status,
    }


def fix_of(inc, acts: list[IncidentAction]) -> str:
    """What fixed an incident, in words: the operators' mitigations first, then a mitigation
    the runbook did by itself; otherwise how it ended."""
    said = [a for a in acts if a.kind in ("mitigation", "mitigated")]
    if said:
        a = said[-1]
        if a.kind == "mitigation":
            names = ", ".join(a.detail.get("mitigations") or ()) or "the runbook's mitigation"
            return f"{names} approved by {a.actor}"
        return f"marked mitigated by {a.actor}"
    if inc.mitigated_at is not None:
        return f"marked mitigated by {inc.mitigated_by}" if inc.mitigated_by else (
            "a mitigation done by the runbook"
        )  # fmt: skip
    return {
        "resolved": "resolved with no recorded fix",
        "stale": "closed as stale (no resolution came)",
    }.get(inc.status, "still open")
