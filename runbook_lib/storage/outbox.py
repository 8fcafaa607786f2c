"""Messages owed to the team's channels, kept in the index until each target took them.

A transactional outbox: the index writes an event (investigation written, alert resolved,
verification done) in the same transaction as what it reports, so no finished run goes
unannounced and no event exists for a run that did not finish. A sender expands each event
into one delivery per target its routing picks; each delivery carries its own retry
schedule, so a target that is down delays only its own messages, and is claimed with a
lease, so two senders (two receivers) never send it twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.storage.database import Database
from runbook_lib.storage.migrations.schema import DELIVERIES as deliveries_t
from runbook_lib.storage.migrations.schema import EVENTS as events_t
from runbook_lib.storage.migrations.schema import THREADS as threads_t

# What the team is told: a run's finding (investigation, escalated, reinvestigation,
# mitigation, verification), the incident's end (resolved), and what operators did.
RUN_KINDS = ("investigation", "escalated", "reinvestigation", "mitigation", "verification")
ACTION_KINDS = ("acknowledged", "mitigated", "silenced")
KINDS = (*RUN_KINDS, "resolved", *ACTION_KINDS)
LEASE_S = 120.0  # a claimed delivery is this sender's for so long (renewed before each send)


@dataclass(frozen=True)
class Event:
    id: int
    key: str  # "<kind>:<run id>" for a run, "resolved:<incident id>", "<kind>:a<action id>"
    kind: str
    incident_id: int
    run_id: int | None
    created_at: float
    # What the message says beyond the incident. An operator's action: "actor" (who; when is
    # created_at); a silence also "ends_at" (ISO 8601 or epoch seconds).
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Thread:
    """Where a target's first message about an incident landed (a Slack channel id and the
    message's ts): its follow-ups reply there."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Delivery:
    id: int
    event: Event
    target: str
    attempts: int  # including this one


def add_event(
    conn: Connection, insert, kind: str, incident_id: int, run_id: int | None, now: float,
    *, key: str | None = None, detail: dict | None = None,
) -> None:  # fmt: skip
    """Within the caller's transaction: the event, once per key (a redelivered run or a
    re-sent resolve adds nothing)."""
    key = key or f"{kind}:{run_id if run_id is not None else incident_id}"
    conn.execute(
        insert(events_t)
        .values(key=key, kind=kind, incident_id=incident_id, run_id=run_id, created_at=now,
                detail=json.dumps(detail) if detail else None)
        .on_conflict_do_nothing(index_elements=["key"])
    )  # fmt: skip


class Outbox:
    """The delivery side, on the index's database."""

    def __init__(self, index: Database) -> None:
        self.index = index

    def expand(
        self,
        route: Callable[[Event], list[tuple[str, float]]],
        now: float,
        not_before: float = 0.0,
    ) -> int:
        """One delivery per (event, target) for events not expanded yet; `route` gives the
        targets of an event and when each may be sent (quiet hours). Events created before
        `not_before` (a backlog from before notifications were on) get none. Returns
        deliveries made."""
        made = 0
        with self.index.read() as conn:
            fresh = [_event(r) for r in conn.execute(
                sa.select(events_t).where(events_t.c.expanded_at.is_(None)).order_by(events_t.c.id)
            ).mappings()]  # fmt: skip
        for ev in fresh:
            plan = route(ev) if ev.created_at >= not_before else []
            with self.index.tx() as conn:
                took = conn.execute(
                    sa.update(events_t)
                    .where((events_t.c.id == ev.id) & events_t.c.expanded_at.is_(None))
                    .values(expanded_at=now)
                ).rowcount
                if not took:  # another sender expanded it
                    continue
                for target, due_at in plan:
                    conn.execute(
                        self.index.insert(deliveries_t)
                        .values(
                            event_id=ev.id,
                            target=target,
                            state="pending",
                            attempts=0,
                            next_at=max(now, due_at),
                        )  # fmt: skip
                        .on_conflict_do_nothing(index_elements=["event_id", "target"])
                    )
                    made += 1
        return made

    def claim(
        self,
        now: float,
        lease_s: float = LEASE_S,
        limit: int = 50,
        skip_targets: frozenset[str] = frozenset(),
    ) -> list[Delivery]:
        """Due deliveries, each leased to this sender (a lease that ran out, from a sender
        that died mid-send, is due again); none for `skip_targets` (busy here)."""
        due = ((deliveries_t.c.state == "pending") & (deliveries_t.c.next_at <= now)) | (
            (deliveries_t.c.state == "sending") & (deliveries_t.c.lease_until < now)
        )
        if skip_targets:
            due = due & deliveries_t.c.target.not_in(sorted(skip_targets))
        with self.index.read() as conn:
            ids = [i for (i,) in conn.execute(
                sa.select(deliveries_t.c.id).where(due).order_by(deliveries_t.c.id).limit(limit)
            )]  # fmt: skip
        out = []
        for did in ids:
            with self.index.tx() as conn:
                took = conn.execute(
                    sa.update(deliveries_t)
                    .where((deliveries_t.c.id == did) & due)
                    .values(
                        state="sending",
                        lease_until=now + lease_s,
                        attempts=deliveries_t.c.attempts + 1,
                    )  # fmt: skip
                ).rowcount
                if took:
                    out.append(self._delivery(conn, did))
        return out

    def _delivery(self, conn: Connection, did: int) -> Delivery:
        row = conn.execute(
            sa.select(deliveries_t, *[c.label(f"e_{c.name}") for c in events_t.c])
            .join(events_t, events_t.c.id == deliveries_t.c.event_id)
            .where(deliveries_t.c.id == did)
        ).mappings().one()  # fmt: skip
        ev = _event({c.name: row[f"e_{c.name}"] for c in events_t.c})
        return Delivery(row["id"], ev, row["target"], row["attempts"])

    def renew(self, d: Delivery, now: float, lease_s: float = LEASE_S) -> bool:
        """Extend the lease just before sending; False when the delivery is no longer ours
        (another sender took it after our lease ran out): then it must not be sent."""
        return self._set(d, lease_until=now + lease_s)

    def sent(self, d: Delivery, now: float | None = None) -> bool:
        return self._set(d, state="sent", sent_at=time.time() if now is None else now,
                         last_error=None)  # fmt: skip

    def failed(
        self, d: Delivery, error: str, now: float, base_s: float, max_s: float, max_attempts: int,
        *, at_least: float = 0.0,
    ) -> float | None:  # fmt: skip
        """Schedule the next attempt with exponential backoff, not sooner than `at_least`
        seconds (a service that asked us to wait); None when it is given up."""
        if d.attempts >= max_attempts:
            self._set(d, state="failed", last_error=error[:500])
            return None
        delay = max(at_least, min(max_s, base_s * 2 ** (d.attempts - 1)))
        self._set(d, state="pending", next_at=now + delay, last_error=error[:500])
        return now + delay

    def give_up(self, d: Delivery, error: str) -> None:
        self._set(d, state="failed", last_error=error[:500])

    def postpone(self, d: Delivery, until: float) -> None:
        """Back to pending without counting the attempt (it was never tried)."""
        self._set(d, state="pending", next_at=until, attempts=max(0, d.attempts - 1))

    def _set(self, d: Delivery, **values) -> bool:
        """Change a delivery this sender holds: fenced by its state and attempt number, so a
        sender whose lease ran out cannot undo what the one that took over wrote."""
        mine = (
            (deliveries_t.c.id == d.id)
            & (deliveries_t.c.state == "sending")
            & (deliveries_t.c.attempts == d.attempts)
        )
        with self.index.tx() as conn:
            return conn.execute(sa.update(deliveries_t).where(mine).values(**values)).rowcount == 1

    # -- who an incident's messages went to ------------------------------------------------
    def targets_of(self, incident_id: int, before_event: int) -> set[str]:
        """The targets an earlier message of the incident was addressed to (sent or not):
        its follow-ups go to them too, whatever their severity filter says now."""
        with self.index.read() as conn:
            rows = conn.execute(
                sa.select(deliveries_t.c.target).distinct()
                .join(events_t, events_t.c.id == deliveries_t.c.event_id)
                .where((events_t.c.incident_id == incident_id) & (events_t.c.id < before_event))
            )  # fmt: skip
            return {t for (t,) in rows}

    def thread(self, incident_id: int, target: str) -> Thread | None:
        with self.index.read() as conn:
            row = conn.execute(
                sa.select(threads_t.c.channel, threads_t.c.ts).where(
                    (threads_t.c.incident_id == incident_id) & (threads_t.c.target == target)
                )
            ).first()
        return Thread(row.channel, row.ts) if row else None

    def add_thread(self, incident_id: int, target: str, where: Thread, now: float) -> None:
        """The target's first message of the incident landed `where` (kept once)."""
        with self.index.tx() as conn:
            conn.execute(
                self.index.insert(threads_t)
                .values(incident_id=incident_id, target=target, channel=where.channel,
                        ts=where.ts, created_at=now)
                .on_conflict_do_nothing(index_elements=["incident_id", "target"])
            )  # fmt: skip

    def first_sent(self, incident_id: int, target: str) -> Event | None:
        """The event of the first message the target got of the incident (its thread's
        start), None when it got none."""
        with self.index.read() as conn:
            row = conn.execute(
                sa.select(events_t)
                .join(deliveries_t, deliveries_t.c.event_id == events_t.c.id)
                .where((events_t.c.incident_id == incident_id) & (deliveries_t.c.target == target)
                       & (deliveries_t.c.state == "sent"))
                .order_by(events_t.c.id).limit(1)
            ).mappings().first()  # fmt: skip
        return _event(row) if row else None

    def deliveries(self) -> list[dict]:
        """Every delivery with its event, oldest first (for `runbook notify status` and tests)."""
        with self.index.read() as conn:
            rows = conn.execute(
                sa.select(deliveries_t, events_t.c.key, events_t.c.kind, events_t.c.incident_id)
                .join(events_t, events_t.c.id == deliveries_t.c.event_id)
                .order_by(deliveries_t.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def waiting(self, incident_id: int) -> int:
        """Messages about an incident not yet sent nor given up: events not expanded into
        deliveries, and deliveries pending or being sent."""
        ev, d = events_t.c, deliveries_t.c
        with self.index.read() as conn:
            fresh = conn.execute(
                sa.select(sa.func.count()).where(
                    (ev.incident_id == incident_id) & ev.expanded_at.is_(None)
                )
            ).scalar()
            due = conn.execute(
                sa.select(sa.func.count())
                .select_from(deliveries_t.join(events_t))
                .where((ev.incident_id == incident_id) & d.state.in_(("pending", "sending")))
            ).scalar()
        return fresh + due

    def events(self) -> list[Event]:
        with self.index.read() as conn:
            rows = conn.execute(sa.select(events_t).order_by(events_t.c.id)).mappings()
            return [_event(r) for r in rows]


def _event(r) -> Event:
    detail = json.loads(r["detail"]) if r.get("detail") else {}
    return Event(r["id"], r["key"], r["kind"], r["incident_id"], r["run_id"], r["created_at"],
                 detail)  # fmt: skip
