"""What people did on an incident, as the index keeps it: who, what, when.

Every operator action (acknowledge, mark mitigated, re-investigate, silence, approve the
runbook's mitigation) is one row of `actions`, written in the same transaction as what it
changes and the event that tells the team. A form's one-time `nonce` is unique, so a
replayed POST changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from runbook_lib.records.migrations.schema import ACTIONS as actions_t

KINDS = ("acknowledge", "mitigated", "reinvestigate", "silence", "mitigation")


class Replayed(Exception):
    """The form's nonce was used before: the action was done already."""


@dataclass(frozen=True)
class Action:
    id: int
    incident_id: int
    kind: str
    actor: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None


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
