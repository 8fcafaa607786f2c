"""The run queue, in the index: an incident's runs wait here until a worker claims one.

A run's record directory name is fixed when the run is enqueued, so a run done again after
a crash finds its record instead of writing a second one. Workers take the next run with
`claim`: under a backlog the most severe due run first, then the oldest, and a run that has
waited `age_bound` seconds counts as the most severe, so a warning is never starved by
criticals that keep coming. Both modes claim so: in distributed mode a Celery task only says
"a run is due" and its worker claims from the index under a lease (an expired lease makes a
running run claimable again), so the broker's order does not decide which incident goes
first. `undispatched` finds accepted runs whose task was never sent or got lost, for the
sweeper."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import SEVERITY_RANK, Alert
from runbook_lib.contract.request import IncidentContext, LeadAlert, QueueState, RunRequest
from runbook_lib.contract.summary import Summary
from runbook_lib.incidents import actions, grouping, history, twins
from runbook_lib.incidents.jobs import (
    INVESTIGATING,
    Queued,
    earlier_runs,
    event_kind,
    incident_columns,
)
from runbook_lib.records import record
from runbook_lib.storage.database import Database
from runbook_lib.storage.migrations import schema
from runbook_lib.storage.outbox import add_event

incidents_t, runs_t = schema.INCIDENTS, schema.RUNS
# A run due for this long is taken as if it were critical: bounded waiting for every run,
# while a burst of criticals (minutes of a storm) still jumps a warning backlog.
AGE_BOUND_S = 300.0


class Handover(NamedTuple):
    """What `RunQueue.begin` did instead of beginning a run: when its worker may ask again
    and why; `folded`: the run went, its incident's first run taking its alert (unless a
    stronger one leads that run already)."""

    until: float
    note: str
    folded: bool = False


def urgency(now: float, age_bound: float) -> sa.ColumnElement:
    """The claim order's first key: the severity rank of the run's lead alert
    (contract.alerts.SEVERITY_RANK), the top rank once the run has been due `age_bound`."""
    c = runs_t.c
    top = max(SEVERITY_RANK.values())
    rank = sa.case(SEVERITY_RANK, value=sa.func.lower(sa.func.coalesce(c.severity, "")), else_=0)
    return sa.case((c.not_before <= now - age_bound, top), else_=rank)


class RunQueue:
    """The runs of the index's incidents, as receivers enqueue them and workers take them.
    `age_bound`: seconds due after which a run is claimed as if it were critical."""

    def __init__(self, db: Database, *, age_bound: float = AGE_BOUND_S) -> None:
        self.db = db
        self.age_bound = age_bound

    # -- the receiver's side (inside its transaction) ---------------------------------------
    def enqueue(
        self,
        conn: Connection,
        incident: int,
        a: Alert,
        kind: str,
        not_before: float,
        created: list[Queued],
        *,
        trigger: str = "",
        suffix: str = "",
        requested_by: str | None = None,
        now: float | None = None,
    ) -> int | None:
        """Queue the incident's run of this kind and trigger, led by `a`; None when it
        has one already. `suffix` tells its record from another run of the same alert."""
        now = time.time() if now is None else now
        name = record.record_name(a.startsAt, a.name, a.fingerprint) + suffix
        if kind == "verification":
            name += "-verify"
        for candidate in (name, f"{name}-i{incident}"):
            values = dict(incident_id=incident, kind=kind, state="queued", record=candidate,
                          not_before=not_before, enqueued_at=now, trigger=trigger,
                          alertname=a.name, severity=a.severity, requested_by=requested_by)  # fmt: skip
            run_id = conn.execute(
                self.db.insert(runs_t)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(runs_t.c.id)
            ).scalar()
            if run_id is not None:
                created.append(
                    Queued(run_id, kind, not_before, incident, a.name, candidate, trigger)
                )
                return run_id
            c = runs_t.c
            mine = (c.incident_id == incident) & (c.kind == kind) & (c.trigger == trigger)
            if conn.execute(sa.select(c.id).where(mine)).first():
                return None  # this incident has this run already
            # else the record name belongs to another incident: try the suffixed name
        raise RuntimeError(f"record names {name} and {name}-i{incident} are both taken")

    # -- the workers' side -----------------------------------------------------------------
    def claim(self, now: float | None = None, lease_s: float | None = None) -> RunRequest | None:
        """Take the most urgent due run (see `urgency`; then the oldest), marking it
        running; None when nothing is due. With `lease_s`, a run started more than `lease_s`
        ago and still running (its worker vanished) is due again."""
        now = time.time() if now is None else now
        c = runs_t.c
        due = (c.state == "queued") & (c.not_before <= now)
        if lease_s is not None:
            due = due | ((c.state == "running") & (c.started_at < now - lease_s))
        with self.db.tx() as conn:
            pick = (
                sa.select(c.id)
                .where(due)
                .order_by(urgency(now, self.age_bound).desc(), c.not_before, c.id)
                .limit(1)
            )
            if self.db.postgres:
                pick = pick.with_for_update(skip_locked=True)
            run_id = conn.execute(pick).scalar()
            if run_id is None:
                return None
            conn.execute(
                sa.update(runs_t)
                .where(runs_t.c.id == run_id)
                .values(state="running", started_at=now, begun_at=None,
                        attempts=runs_t.c.attempts + 1)
            )  # fmt: skip
            return _request(conn, run_id)

    def request(self, run_id: int) -> RunRequest:
        """A run as its notebook needs it, whatever its state."""
        with self.db.read() as conn:
            return _request(conn, run_id)

    def finish(
        self, run_id: int, summary: Summary, location: str | None = None,
        now: float | None = None,
    ) -> None:  # fmt: skip
        """The run is done; in the same transaction, the event that tells the team (see
        `event_kind`) and, for a verification, whether the fix held."""
        from runbook_lib.diagnosis.postcheck import verified

        now = time.time() if now is None else now
        with self.db.tx() as conn:
            c = runs_t.c
            run = conn.execute(
                sa.select(c.kind, c.incident_id, c.trigger).where(c.id == run_id)
            ).first()
            if run is not None:
                kind = event_kind(run.kind, run.trigger)
                add_event(conn, self.db.insert, kind, run.incident_id, run_id, now)
                if summary.done:
                    actions.mitigated(conn, run.incident_id, now)
                if run.kind == "mitigation":
                    actions.release_verification(conn, run.incident_id, run.trigger, now)
            held = verified(summary.post_checks) if run and run.kind == "verification" else None
            conn.execute(
                sa.update(runs_t)
                .where(runs_t.c.id == run_id)
                .values(
                    state="done",
                    finished_at=now,
                    status=summary.status,
                    top_cause=summary.top_cause,
                    error=summary.error,
                    verified=held,
                    **({"location": location} if location else {}),
                )
            )

    def defer(self, job: RunRequest, until: float, note: str, now: float | None = None) -> None:
        """Put a claimed run back in the queue until `until` (a hold: a stronger alert of
        its fault is on its way); the first hold's time is kept, to bound the wait. When
        that alert arrived while the worker asked Prometheus (the run counted as started,
        so it escalated the incident, or got a symptom's run over a slow-burn lead), it
        leads this run instead, due now: the incident's first investigation has not begun,
        so nothing was escalated and no second run is due."""
        now = time.time() if now is None else now
        with self.db.tx() as conn:
            self._defer(conn, job, until, note, now)

    def _defer(
        self, conn: Connection, job: RunRequest, until: float, note: str, now: float
    ) -> None:
        c = runs_t.c
        values = dict(state="queued", not_before=until, attempts=c.attempts - 1,
                      held_since=sa.func.coalesce(c.held_since, now), hold_note=note)  # fmt: skip
        later = _later_lead(conn, job, lock=True)
        first = job.incident.trigger == ""
        if later is not None:
            conn.execute(sa.delete(runs_t).where(c.id == later.id))
            if first:  # nothing was escalated
                conn.execute(sa.update(incidents_t).where(incidents_t.c.id == job.incident.id)
                             .values(escalated_at=None))  # fmt: skip
            else:  # a symptom's run after the slow-burn lead's: the critical escalates it
                values.update(trigger=later.trigger)
            values.update(record=later.record, alertname=later.alertname,
                          severity=later.severity, not_before=now)  # fmt: skip
        if job.incident.trigger.startswith("symptom:"):
            held = twins.first_not_begun(conn, job, now, held=True)
            if held is not None:  # it was held too: it takes this run's alert and hold
                twins.fold(conn, job, held.id, not_before=values["not_before"], note=note)
                return
        conn.execute(
            sa.update(runs_t).where((c.id == job.run_id) & (c.state == "running"))
            .values(**values)
        )  # fmt: skip

    def begin(self, job: RunRequest, now: float | None = None) -> Handover | None:
        """Mark claimed `job` begun (its worker passed the hold and runs the notebook); or
        hand it over and return when to ask again and why. Not begun yet, `job` takes the
        lead of a stronger alert that arrived while its worker asked Prometheus (an
        escalation's or a symptom's run queued behind it, see `defer`): else a run whose hold
        had just ended would start beside the newcomer's. And of twins, an incident's first
        investigation and the run a symptom alert got beside it while a worker held that one
        claimed, only one begins, led by the symptom: a symptom's run folds into a queued
        first run (due now); either asks again after `YIELD_S` while the other's worker
        still decides (for `DECIDING_S` at most)."""
        now = time.time() if now is None else now
        c = runs_t.c
        with self.db.tx() as conn:
            # the twins' workers one after the other, and after a receiver changing their leads
            # (its lock, taken first by both: none waits on the other's rows)
            self.db.lock(conn, {(job.runbook, job.alert.labels.get("instance", ""))})
            if job.kind == "investigation" and _later_lead(conn, job, lock=True) is not None:
                said = job.queue.hold_note or twins.ARRIVED  # the record says what it waited for
                self._defer(conn, job, now, said, now)
                return Handover(now, said)
            twin = twins.twin(conn, job, now)
            if twin is None:
                conn.execute(sa.update(runs_t).where((c.id == job.run_id) & (c.state == "running"))
                             .values(begun_at=now))  # fmt: skip
                return None
            if twin.state == "queued":  # the incident's first run: this symptom's alert leads it
                twins.fold(conn, job, twin.id, not_before=now, note=None)
                return Handover(now, f"folded into run {twin.id}, its incident's first, not begun",
                                folded=True)  # fmt: skip
            conn.execute(
                sa.update(runs_t).where((c.id == job.run_id) & (c.state == "running"))
                .values(state="queued", not_before=now + twins.YIELD_S, attempts=c.attempts - 1)
            )  # fmt: skip
            return Handover(
                now + twins.YIELD_S, f"run {twin.id} of its incident is claimed, not begun"
            )

    def in_flight(self) -> list[RunRequest]:
        """Runs marked running: after a crash, the ones no worker will finish."""
        with self.db.tx() as conn:
            ids = conn.execute(sa.select(runs_t.c.id).where(runs_t.c.state == "running"))
            return [_request(conn, i) for (i,) in ids.all()]

    def requeue(self, run_id: int) -> None:
        with self.db.tx() as conn:
            conn.execute(
                sa.update(runs_t)
                .where((runs_t.c.id == run_id) & (runs_t.c.state == "running"))
                .values(state="queued", begun_at=None)
            )

    def queue_stats(self, now: float | None = None) -> tuple[int, float]:
        """(queued runs that are due, age in seconds of the oldest of them)."""
        now = time.time() if now is None else now
        due = (runs_t.c.state == "queued") & (runs_t.c.not_before <= now)
        with self.db.read() as conn:
            n, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(runs_t.c.not_before)).where(due)
            ).one()
        return n, (now - oldest) if oldest is not None else 0.0

    # -- distributed mode: which runs' Celery tasks were sent -------------------------------
    def dispatched(
        self, run_ids: Sequence[int], now: float | None = None, *, sent: bool = True
    ) -> None:
        """Note that tasks are sent for these runs (the sweeper leaves them alone a while);
        with `sent=False`, that they were not after all (the sweeper sends them)."""
        if not run_ids:
            return
        now = time.time() if now is None else now
        with self.db.tx() as conn:
            conn.execute(
                sa.update(runs_t)
                .where(runs_t.c.id.in_(run_ids))
                .values(dispatched_at=now if sent else None)
            )

    def undispatched(
        self, grace_s: float, lease_s: float, *, resend_sent: bool, now: float | None = None
    ) -> list[Queued]:
        """Runs that no worker will get without a new task: due for `grace_s` and never
        sent; with `resend_sent`, also those sent but not started by then (the caller knows
        the broker's queue is empty, so their tasks are lost); and runs whose worker's lease
        expired."""
        now = time.time() if now is None else now
        c = runs_t.c
        waited = (c.state == "queued") & (c.not_before <= now - grace_s)
        sent_long_ago = c.dispatched_at < now - grace_s if resend_sent else sa.false()
        lost = waited & (c.dispatched_at.is_(None) | sent_long_ago)
        stale = (c.state == "running") & (c.started_at < now - lease_s)
        with self.db.read() as conn:
            rows = conn.execute(sa.select(c.id, c.kind, c.not_before).where(lost | stale))
            return [Queued(r.id, r.kind, r.not_before) for r in rows.all()]


def _request(conn: Connection, run_id: int) -> RunRequest:
    """The run as a worker takes it: its lead alert, what the index knows of its incident,
    the incident's other alerts, how it went through the queue."""
    r = conn.execute(
        sa.select(runs_t, *incident_columns()).join(incidents_t).where(runs_t.c.id == run_id)
    ).one()
    earlier = earlier_runs(conn, r.incident_id, run_id)
    return RunRequest(
        run_id=r.id,
        kind=r.kind,
        record=r.record,
        runbook=r.runbook,
        alert=LeadAlert(name=r.i_alertname, fingerprint=r.fingerprint, starts_at=r.starts_at,
                        ends_at=r.ends_at, labels=json.loads(r.labels),
                        annotations=json.loads(r.annotations)),
        incident=IncidentContext(
            id=r.incident_id, trigger=r.trigger, requested_by=r.requested_by,
            earlier=tuple(earlier),
            past=tuple(history.past_incidents(conn, r.runbook, r.received_at, r.incident_id))
            if r.kind in INVESTIGATING else (),
            approved=actions.approved(conn, r.trigger) if r.kind == "mitigation" else (),
        ),
        related=grouping.related(conn, r.incident_id, r.fingerprint),
        queue=QueueState(
            attempts=r.attempts, enqueued_at=r.enqueued_at,
            waited_s=max(0.0, (r.started_at or r.not_before) - r.not_before),
            held_since=r.held_since, hold_note=r.hold_note,
            held_s=max(0.0, (r.started_at or 0) - r.held_since) if r.held_since else 0.0,
        ),
        verification_of=earlier[-1]["record"] if r.kind == "verification" and earlier else None,
    )  # fmt: skip


def _later_lead(conn: Connection, job: RunRequest, *, lock: bool = False) -> sa.Row | None:
    """The escalation's or symptom's run queued behind `job` in its incident, which `job`
    takes over while it has not begun (its incident's first run, or a symptom's over a
    slow-burn lead); None when there is none."""
    if job.incident.trigger != "" and not job.incident.trigger.startswith("symptom:"):
        return None
    c = runs_t.c
    q = (
        sa.select(c.id, c.record, c.alertname, c.severity, c.trigger)
        .where((c.incident_id == job.incident.id) & (c.id > job.run_id)
               & (c.state == "queued") & (c.trigger.startswith("escalated:")
                                          | c.trigger.startswith("symptom:")))
        .order_by(c.id.desc()).limit(1)
    )  # fmt: skip
    # to take it over: under a row lock (PostgreSQL), so a worker claiming it meanwhile
    # is waited for, and then it is no longer queued
    return conn.execute(q.with_for_update() if lock else q).first()
