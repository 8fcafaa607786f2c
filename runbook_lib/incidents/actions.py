"""What people did on an incident, as the index keeps it: who, what, when.

Every operator action (acknowledge, mark mitigated, re-investigate, silence, approve the
runbook's mitigation) is one row of `actions`, written in the same transaction as what it
changes and the event that tells the team. A form's one-time `nonce` is unique, so a
replayed POST changes nothing. Actions are for open (firing) incidents only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from runbook_lib.contract.incident import IncidentAction
from runbook_lib.incidents.grouping import Enqueue, lead_alert
from runbook_lib.incidents.jobs import Queued
from runbook_lib.storage.database import Database, by_incident
from runbook_lib.storage.migrations.schema import ACTIONS as actions_t
from runbook_lib.storage.migrations.schema import INCIDENTS as incidents_t
from runbook_lib.storage.migrations.schema import RUNS as runs_t

KINDS = ("acknowledge", "mitigated", "reinvestigate", "silence", "mitigation")
DID = {"acknowledge": "acknowledged", "mitigated": "marked mitigated",
       "reinvestigate": "asked for a new investigation", "silence": "silenced the alerts",
       "mitigation": "approved the runbook's mitigation"}  # fmt: skip
# The event that tells the team, for actions that are news themselves; a re-investigation
# and a mitigation are told by their runs' findings when they finish.
EVENTS = {"acknowledge": "acknowledged", "mitigated": "mitigated", "silence": "silenced"}
WAITING = "waiting"  # a run's state while it waits for another run (not claimable)


class Replayed(Exception):
    """The form's nonce was used before: the action was done already."""


class Closed(Exception):
    """The incident is no longer open (resolved, stale, or a manual run): nothing to act on."""


class DoneAlready(Exception):
    """What the action would record is recorded already (acknowledged, mitigated)."""


@dataclass(frozen=True)
class Done:
    """An action written: its row, and the runs it queued (to wake or send to workers)."""

    action: IncidentAction
    queued: list[Queued]


def record(
    conn: Connection, incident_id: int, kind: str, actor: str, at: float,
    *, nonce: str | None = None, detail: dict[str, Any] | None = None, run_id: int | None = None,
) -> int:  # fmt: skip
    """The action's row, within the caller's transaction; `Replayed` when its nonce was
    used (the caller's transaction should then be rolled back)."""
    if kind not in KINDS:
        raise ValueError(f"unknown action {kind!r}; known: {', '.join(KINDS)}")
    try:
        with conn.begin_nested():
            return conn.execute(
                sa.insert(actions_t)
                .values(incident_id=incident_id, kind=kind, actor=actor, at=at,
                        detail=json.dumps(detail or {}), nonce=nonce, run_id=run_id)
                .returning(actions_t.c.id)
            ).scalar_one()  # fmt: skip
    except IntegrityError as exc:
        raise Replayed(f"this form was submitted already (nonce {nonce})") from exc


def approved(conn: Connection, trigger: str) -> tuple[str, ...]:
    """The mitigations an operator approved for the run `mitigation:<action id>` starts."""
    action_id = trigger.removeprefix("mitigation:")
    if not action_id.isdigit():
        return ()
    detail = conn.execute(
        sa.select(actions_t.c.detail).where(actions_t.c.id == int(action_id))
    ).scalar()
    return tuple(json.loads(detail or "{}").get("mitigations", ()))


def set_run(conn: Connection, action_id: int, run_id: int) -> None:
    conn.execute(sa.update(actions_t).where(actions_t.c.id == action_id).values(run_id=run_id))


def of(conn: Connection, incident_ids: list[int]) -> dict[int, list[IncidentAction]]:
    """Each incident's actions, oldest first."""
    return by_incident(
        conn, actions_t, incident_ids, (actions_t.c.at, actions_t.c.id),
        lambda r: IncidentAction.model_validate({**r._mapping, "detail": json.loads(r.detail)}),
    )  # fmt: skip


def nonce_used(conn: Connection, nonce: str) -> bool:
    return (
        conn.execute(sa.select(actions_t.c.id).where(actions_t.c.nonce == nonce)).first()
        is not None
    )


def release_verification(conn: Connection, incident_id: int, trigger: str, now: float) -> None:
    """A mitigation finished: the verification waiting for it is due its delay from now
    (the delay it was queued with), so the checks look at the state the mitigation left."""
    c = runs_t.c
    waiting = (
        (c.incident_id == incident_id) & (c.kind == "verification") & (c.trigger == trigger)
        & (c.state == WAITING)
    )  # fmt: skip
    conn.execute(
        sa.update(runs_t).where(waiting)
        .values(state="queued", not_before=now + (c.not_before - c.enqueued_at), enqueued_at=now)
    )  # fmt: skip


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def open_incident(conn: Connection, db: Database, incident_id: int, lock: bool = True):
    """The incident, if it is open; LookupError or `Closed` otherwise. `lock`: serialized
    (PostgreSQL) with alerts arriving for its fault."""
    c = incidents_t.c
    inc = conn.execute(sa.select(incidents_t).where(c.id == incident_id)).first()
    if inc is None:
        raise LookupError(f"no incident {incident_id} in {db.where}")
    if lock:  # PostgreSQL: serialized with alerts arriving for its fault
        db.lock(conn, {(inc.runbook, inc.instance)})
        inc = conn.execute(sa.select(incidents_t).where(c.id == incident_id)).one()
    if inc.status != "firing":
        raise Closed(f"incident {incident_id} is closed ({inc.status}): actions are for "
                     "open incidents")  # fmt: skip
    return inc


def acknowledge(conn: Connection, inc, actor: str, now: float) -> None:
    c = incidents_t.c
    done = conn.execute(
        sa.update(incidents_t)
        .where((c.id == inc.id) & c.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=actor)
    )
    if done.rowcount != 1:
        raise DoneAlready(f"incident {inc.id} was acknowledged already by "
                          f"{inc.acknowledged_by} at {_when(inc.acknowledged_at)}")  # fmt: skip


def mitigated(conn: Connection, incident_id: int, now: float, by: str = "") -> bool:
    """Record that a mitigation is in place (by a person, or '' when a run did one);
    False when one was recorded already."""
    c = incidents_t.c
    done = conn.execute(
        sa.update(incidents_t)
        .where((c.id == incident_id) & c.mitigated_at.is_(None))
        .values(mitigated_at=now, mitigated_by=by)
    )
    return done.rowcount == 1


def approve_mitigation(
    conn: Connection, enqueue: Enqueue, incident_id: int, action_id: int, actor: str,
    now: float, verify_delay: float, queued: list[Queued],
) -> int:  # fmt: skip
    """The runbook again with its mitigation allowed, as a new record of the incident,
    and its verification, which waits until the mitigation ends (`release_verification`).
    One at a time: while an approved mitigation is queued or running, another is
    refused (a second click, or a second operator, would run it twice)."""
    c = runs_t.c
    busy = conn.execute(
        sa.select(c.requested_by).where((c.incident_id == incident_id) & (c.kind == "mitigation")
                                        & c.state.in_(("queued", "running")))
    ).first()  # fmt: skip
    if busy is not None:
        raise DoneAlready(f"a mitigation {busy.requested_by or 'an operator'} approved for "
                          f"incident {incident_id} has not finished yet")  # fmt: skip
    lead = lead_alert(conn, incident_id)
    trigger, suffix = f"mitigation:{action_id}", f"-m{action_id}"
    run_id = enqueue(conn, incident_id, lead, "mitigation", now, queued,
                     trigger=trigger, suffix=suffix, requested_by=actor, now=now)  # fmt: skip
    later: list[Queued] = []  # not dispatched now: it waits for the mitigation
    verify = enqueue(conn, incident_id, lead, "verification", now + verify_delay, later,
                     trigger=trigger, suffix=suffix, requested_by=actor, now=now)  # fmt: skip
    conn.execute(sa.update(runs_t).where(runs_t.c.id == verify).values(state=WAITING))
    return run_id


def mitigated_already(inc) -> str:
    by = f"by {inc.mitigated_by}" if inc.mitigated_by else "by a mitigation run"
    return f"incident {inc.id} was marked mitigated already {by} at {_when(inc.mitigated_at)}"


def detail_text(kind: str, detail: dict[str, Any]) -> str:
    """What an action's detail says, as the page and the post-mortem show it."""
    if kind == "silence":
        return (f"until {str(detail.get('ends_at', '?'))[:19].replace('T', ' ')} UTC "
                f"({detail.get('duration', '')}), silence {detail.get('silence_id', '?')}")  # fmt: skip
    if kind == "mitigation":
        return f"ran {', '.join(detail.get('mitigations', []))}"
    return ""
