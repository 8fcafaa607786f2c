"""What people did on an incident, as the index keeps it: who, what, when.

Every operator action (acknowledge, mark mitigated, re-investigate, silence, approve the
runbook's mitigation) is one row of `actions`, written in the same transaction as what it
changes and the event that tells the team. A form's one-time `nonce` is unique, so a
replayed POST changes nothing. Actions are for open (firing) incidents only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from runbook_lib.records.grouping import lead_alert
from runbook_lib.records.jobs import Queued
from runbook_lib.records.migrations.schema import ACTIONS as actions_t
from runbook_lib.records.migrations.schema import INCIDENTS as incidents_t
from runbook_lib.records.migrations.schema import RUNS as runs_t
from runbook_lib.records.outbox import add_event

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
class Action:
    id: int
    incident_id: int
    kind: str
    actor: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None


@dataclass(frozen=True)
class Done:
    """An action written: its row, and the runs it queued (to wake or send to workers)."""

    action: Action
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


def of(conn: Connection, incident_ids: list[int]) -> dict[int, list[Action]]:
    """Each incident's actions, oldest first."""
    out: dict[int, list[Action]] = {}
    if not incident_ids:
        return out
    q = sa.select(actions_t).where(actions_t.c.incident_id.in_(incident_ids))
    for r in conn.execute(q.order_by(actions_t.c.at, actions_t.c.id)):
        out.setdefault(r.incident_id, []).append(
            Action(r.id, r.incident_id, r.kind, r.actor, r.at, json.loads(r.detail), r.run_id)
        )
    return out


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


class ActionWrites:
    """Operator actions as the index writes them (mixed into records.index.Index, which
    provides `_tx`, `_read`, `_insert`, `_lock`, `_enqueue` and `where`)."""

    def act(
        self, incident_id: int, kind: str, actor: str, *, nonce: str | None = None,
        detail: dict[str, Any] | None = None, verify_delay: float = 300.0,
        now: float | None = None,
    ) -> Done:  # fmt: skip
        """Do action `kind` on the incident as `actor`: its row, what it changes and its
        event, in one transaction. LookupError (no such incident), `Closed`, `Replayed` or
        `DoneAlready` change nothing. `verify_delay`: how long after an approved mitigation
        ends its verification runs."""
        now = time.time() if now is None else now
        detail = dict(detail or {})
        queued: list[Queued] = []
        with self._tx() as conn:
            inc = self._open_incident(conn, incident_id)
            action_id = record(conn, incident_id, kind, actor, now, nonce=nonce, detail=detail)
            run_id = None
            if kind == "acknowledge":
                self._acknowledge(conn, inc, actor, now)
            elif kind == "mitigated":
                if not self._mitigated(conn, incident_id, now, by=actor):
                    raise DoneAlready(_mitigated_already(inc))
            elif kind == "reinvestigate":
                run_id = self._enqueue(conn, incident_id, lead_alert(conn, incident_id),
                                       "investigation", now, queued, trigger=f"operator:{action_id}",
                                       suffix=f"-r{action_id}", requested_by=actor, now=now)  # fmt: skip
            elif kind == "mitigation":
                run_id = self._approve_mitigation(conn, incident_id, action_id, actor, now,
                                                  verify_delay, queued)  # fmt: skip
            if run_id is not None:
                set_run(conn, action_id, run_id)
            if kind in EVENTS:
                add_event(conn, self._insert, EVENTS[kind], incident_id, None, now,
                          key=f"{EVENTS[kind]}:a{action_id}", detail={"actor": actor, **detail})  # fmt: skip
        return Done(Action(action_id, incident_id, kind, actor, now, detail, run_id), queued)

    def may_act(self, incident_id: int, nonce: str | None = None) -> None:
        """What `act` would refuse before anything is written: LookupError, `Closed`, or
        `Replayed` (checked again inside `act`; this is for work done first, e.g. a silence
        in Alertmanager)."""
        with self._read() as conn:
            self._open_incident(conn, incident_id, lock=False)
            if nonce and nonce_used(conn, nonce):
                raise Replayed(f"this form was submitted already (nonce {nonce})")

    def mark_mitigated(self, incident_id: int, now: float | None = None, actor: str = "") -> bool:
        """A person says a mitigation is in place (`runbook incidents --mitigated`, the
        page's button); False when one was recorded already."""
        try:
            self.act(incident_id, "mitigated", actor, now=now)
        except DoneAlready:
            return False
        return True

    def _open_incident(self, conn: Connection, incident_id: int, lock: bool = True):
        c = incidents_t.c
        inc = conn.execute(sa.select(incidents_t).where(c.id == incident_id)).first()
        if inc is None:
            raise LookupError(f"no incident {incident_id} in {self.where}")
        if lock:  # PostgreSQL: serialized with alerts arriving for its fault
            self._lock(conn, {(inc.runbook, inc.instance)})
            inc = conn.execute(sa.select(incidents_t).where(c.id == incident_id)).one()
        if inc.status != "firing":
            raise Closed(f"incident {incident_id} is closed ({inc.status}): actions are for "
                         "open incidents")  # fmt: skip
        return inc

    def _acknowledge(self, conn: Connection, inc, actor: str, now: float) -> None:
        c = incidents_t.c
        done = conn.execute(
            sa.update(incidents_t)
            .where((c.id == inc.id) & c.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by=actor)
        )
        if done.rowcount != 1:
            raise DoneAlready(f"incident {inc.id} was acknowledged already by "
                              f"{inc.acknowledged_by} at {_when(inc.acknowledged_at)}")  # fmt: skip

    def _mitigated(self, conn: Connection, incident_id: int, now: float, by: str = "") -> bool:
        """Record that a mitigation is in place (by a person, or '' when a run did one);
        False when one was recorded already."""
        c = incidents_t.c
        done = conn.execute(
            sa.update(incidents_t)
            .where((c.id == incident_id) & c.mitigated_at.is_(None))
            .values(mitigated_at=now, mitigated_by=by)
        )
        return done.rowcount == 1

    def _approve_mitigation(
        self, conn: Connection, incident_id: int, action_id: int, actor: str, now: float,
        verify_delay: float, queued: list[Queued],
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
        run_id = self._enqueue(conn, incident_id, lead, "mitigation", now, queued,
                               trigger=trigger, suffix=suffix, requested_by=actor, now=now)  # fmt: skip
        later: list[Queued] = []  # not dispatched now: it waits for the mitigation
        verify = self._enqueue(conn, incident_id, lead, "verification", now + verify_delay, later,
                               trigger=trigger, suffix=suffix, requested_by=actor, now=now)  # fmt: skip
        conn.execute(sa.update(runs_t).where(runs_t.c.id == verify).values(state=WAITING))
        return run_id


def _mitigated_already(inc) -> str:
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
