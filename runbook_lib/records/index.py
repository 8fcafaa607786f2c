"""The incident index, which is also the durable run queue: SQLite on one machine (the
default), PostgreSQL when several receivers and workers share it. One SQLAlchemy Core
implementation serves both; the schema comes from the Alembic migrations in
`runbook_lib/records/migrations/`.

An alert is accepted in one transaction that records the incident and enqueues its runs,
so "persisted" and "queued" are the same commit: the receiver answers 2xx only after it.
An alert is keyed by Alertmanager's `fingerprint` + `startsAt`, a unique constraint, so
two receivers accepting the same alert at the same moment record it once; alerts of one
fault join one incident (records/grouping.py), which has at most one run of each kind:
re-sent groups are harmless. A run's record directory name is fixed when the run is enqueued, so
a run done again after a crash finds its record instead of writing a second one.

Embedded mode drains the queue with `claim` (the oldest due run). Distributed mode hands
runs to Celery and a worker takes a given run with `start`, under a lease, so a task
delivered twice runs once; `undispatched` finds accepted runs whose task was never sent or
got lost, for the sweeper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import Alert, route
from runbook_lib.contract.config import CORRELATION_WINDOW_S
from runbook_lib.records import actions, grouping, history, record
from runbook_lib.records.jobs import (
    INVESTIGATING,
    Job,
    Queued,
    earlier_runs,
    event_kind,
    incident_columns,
)
from runbook_lib.records.migrations import schema
from runbook_lib.records.outbox import add_event

# manual: `runbook run` by hand; mitigation: an operator approved the runbook's mitigation
KINDS = ("investigation", "verification", "manual", "mitigation")
incidents_t, runs_t, alerts_t = schema.INCIDENTS, schema.RUNS, schema.ALERTS


class Index(grouping.AlertQueries, actions.ActionWrites):
    """The incident index at a SQLite file `path`, or at a database `url`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        url: str | None = None,
        correlation_window: float = CORRELATION_WINDOW_S,
    ) -> None:
        """`correlation_window`: seconds within which alerts of one instance and runbook
        family join one incident (0: never). Whether a warning's investigation waits for a
        more severe twin is the workers' decision (service/holds.py), not the index's."""
        self.correlation_window = correlation_window
        if url is None:
            url = f"sqlite:///{path}"
        self.path = Path(url.split("///", 1)[1]) if url.startswith("sqlite:///") else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = schema.engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        schema.upgrade(self.engine)

    @property
    def where(self) -> str:
        """What to name in a message: the file, or the database without its password."""
        return str(self.path) if self.path else self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One write transaction, durable when the block ends without error (SQLite:
        BEGIN IMMEDIATE and synchronous=FULL; PostgreSQL: its commit)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(readonly=True) as conn:
            yield conn

    def _insert(self, table: sa.Table):
        from sqlalchemy.dialects import postgresql, sqlite

        return (postgresql if self.postgres else sqlite).insert(table)

    # -- the receiver's side ---------------------------------------------------------------
    def accept(
        self, alerts: list[Alert], verify_delay: float, now: float | None = None
    ) -> list[str]:
        """Record the alerts and enqueue their runs in one transaction; one outcome each:
        `queued`, `duplicate`, `resolved` or `resolved-duplicate`."""
        return self.accept_runs(alerts, verify_delay, now)[0]

    def accept_runs(
        self, alerts: list[Alert], verify_delay: float, now: float | None = None
    ) -> tuple[list[str], list[Queued]]:
        """`accept`, also returning the runs this transaction created (to dispatch)."""
        now = time.time() if now is None else now
        created: list[Queued] = []
        with self._tx() as conn:
            self._lock(conn, {(route(a.name), a.labels.get("instance", "")) for a in alerts})
            outcomes = [self._accept_one(conn, a, verify_delay, now, created) for a in alerts]
        return outcomes, created

    def _lock(self, conn: Connection, keys: set[tuple[str, str]]) -> None:
        """PostgreSQL: one receiver at a time decides for an instance and runbook family
        (locks taken in one order, so two receivers never wait on each other). SQLite's
        BEGIN IMMEDIATE already serializes every writer."""
        for runbook, instance in sorted(keys) if self.postgres else ():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                         {"k": f"{runbook}|{instance}"})  # fmt: skip

    def _accept_one(
        self, conn: Connection, a: Alert, delay: float, now: float, created: list[Queued]
    ) -> str:
        starts = a.startsAt.isoformat()
        instance, runbook = a.labels.get("instance", ""), route(a.name)
        known = conn.execute(
            sa.select(alerts_t.c.incident_id, alerts_t.c.status).where(
                (alerts_t.c.fingerprint == a.fingerprint) & (alerts_t.c.starts_at == starts)
            )
        ).first()
        outcome = "duplicate"
        if known is None:
            window = self.correlation_window
            incident = grouping.open_incident(conn, a, runbook, instance, window, now)
            outcome = "correlated" if incident else "queued"
            if incident is None:
                incident = grouping.new_incident(
                    conn, self._insert, a, starts, runbook, instance, now
                )
            grouping.add_alert(conn, incident, a, starts, now)
            if (
                outcome == "correlated"
                and grouping.take_lead(conn, incident, a, now) == "escalated"
            ):
                self._escalate(conn, incident, a, now, created)
                outcome = "escalated"
        else:
            incident = known.incident_id
            if known.status == "stale" and a.status == "firing":
                grouping.reopen(conn, incident, a)  # Alertmanager has it again: not gone
                outcome = "reopened"
        # A resolved alert never seen firing still gets its investigation: none is lost.
        lead = grouping.lead_alert(conn, incident)
        if self._enqueue(conn, incident, lead, "investigation", now, created, now=now):
            outcome = "queued"
        if a.status == "firing":
            return outcome
        return self._resolve(conn, incident, a, delay, now, created)

    def _escalate(
        self, conn: Connection, incident: int, a: Alert, now: float, created: list[Queued]
    ) -> None:
        """A more severe alert joined after the investigation started: it leads the
        incident from now on, with an investigation of its own, whose finding goes out as
        the `escalated` message."""
        grouping.escalate(conn, incident, a, now)
        self._enqueue(conn, incident, a, "investigation", now, created,
                      trigger=f"escalated:{a.fingerprint}", now=now)  # fmt: skip

    def _enqueue(
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
                self._insert(runs_t)
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
    def claim(self, now: float | None = None) -> Job | None:
        """Take the oldest due queued run, marking it running; None when nothing is due."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            pick = (
                sa.select(runs_t.c.id)
                .where((runs_t.c.state == "queued") & (runs_t.c.not_before <= now))
                .order_by(runs_t.c.not_before, runs_t.c.id)
                .limit(1)
            )
            if self.postgres:
                pick = pick.with_for_update(skip_locked=True)
            run_id = conn.execute(pick).scalar()
            if run_id is None:
                return None
            self._mark_running(conn, run_id, now)
            return self._job(conn, run_id)

    def start(self, run_id: int, lease_s: float, now: float | None = None) -> Job | None:
        """Take run `run_id` for a worker: it must be queued, or running with its lease
        (started more than `lease_s` ago) expired. None: done, or another worker has it."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            takeable = (runs_t.c.id == run_id) & (
                (runs_t.c.state == "queued")
                | ((runs_t.c.state == "running") & (runs_t.c.started_at < now - lease_s))
            )
            taken = conn.execute(
                sa.update(runs_t)
                .where(takeable)
                .values(state="running", started_at=now, attempts=runs_t.c.attempts + 1)
            )
            return self._job(conn, run_id) if taken.rowcount else None

    def _mark_running(self, conn: Connection, run_id: int, now: float) -> None:
        conn.execute(
            sa.update(runs_t)
            .where(runs_t.c.id == run_id)
            .values(state="running", started_at=now, attempts=runs_t.c.attempts + 1)
        )

    def _job(self, conn: Connection, run_id: int) -> Job:
        r = conn.execute(
            sa.select(runs_t, *incident_columns()).join(incidents_t).where(runs_t.c.id == run_id)
        ).one()
        earlier = earlier_runs(conn, r.incident_id, run_id)
        return Job(
            run_id=r.id,
            kind=r.kind,
            record=r.record,
            attempts=r.attempts,
            incident_id=r.incident_id,
            alertname=r.i_alertname,
            runbook=r.runbook,
            fingerprint=r.fingerprint,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            labels=json.loads(r.labels),
            annotations=json.loads(r.annotations),
            verification_of=earlier[-1]["record"] if r.kind == "verification" and earlier else None,
            waited_s=max(0.0, (r.started_at or r.not_before) - r.not_before),
            related=grouping.related(conn, r.incident_id, r.fingerprint),
            trigger=r.trigger,
            earlier=tuple(earlier),
            requested_by=r.requested_by,
            enqueued_at=r.enqueued_at,
            held_since=r.held_since,
            held_s=max(0.0, (r.started_at or 0) - r.held_since) if r.held_since else 0.0,
            hold_note=r.hold_note,
            past=tuple(history.past_incidents(conn, r.runbook, r.received_at, r.incident_id))
            if r.kind in INVESTIGATING
            else (),
        )

    def job(self, run_id: int) -> Job:
        """A run as its notebook needs it, whatever its state."""
        with self._read() as conn:
            return self._job(conn, run_id)

    def finish(
        self, run_id: int, summary: dict[str, Any], location: str | None = None,
        now: float | None = None,
    ) -> None:  # fmt: skip
        """The run is done; in the same transaction, the event that tells the team (see
        `event_kind`) and, for a verification, whether the fix held."""
        from runbook_lib.diagnosis.postcheck import verified

        now = time.time() if now is None else now
        with self._tx() as conn:
            c = runs_t.c
            run = conn.execute(
                sa.select(c.kind, c.incident_id, c.trigger).where(c.id == run_id)
            ).first()
            if run is not None:
                kind = event_kind(run.kind, run.trigger)
                add_event(conn, self._insert, kind, run.incident_id, run_id, now)
                if any(a.get("done") for a in summary.get("actions") or []):
                    self._mitigated(conn, run.incident_id, now)
                if run.kind == "mitigation":
                    actions.release_verification(conn, run.incident_id, run.trigger, now)
            held = (
                verified(summary.get("post_checks") or [])
                if run and run.kind == "verification"
                else None
            )
            conn.execute(
                sa.update(runs_t)
                .where(runs_t.c.id == run_id)
                .values(
                    state="done",
                    finished_at=now,
                    status=summary.get("status"),
                    top_cause=summary.get("top_cause"),
                    error=summary.get("error"),
                    verified=held,
                    **({"location": location} if location else {}),
                )
            )

    def defer(self, run_id: int, until: float, note: str, now: float | None = None) -> None:
        """Put a claimed run back in the queue until `until` (a hold: a more severe alert
        of its fault is on its way); the first hold's time is kept, to bound the wait."""
        now = time.time() if now is None else now
        c = runs_t.c
        with self._tx() as conn:
            conn.execute(
                sa.update(runs_t)
                .where((c.id == run_id) & (c.state == "running"))
                .values(state="queued", not_before=until, attempts=c.attempts - 1,
                        held_since=sa.func.coalesce(c.held_since, now), hold_note=note)
            )  # fmt: skip

    def in_flight(self) -> list[Job]:
        """Runs marked running: after a crash, the ones no worker will finish."""
        with self._tx() as conn:
            ids = conn.execute(sa.select(runs_t.c.id).where(runs_t.c.state == "running"))
            return [self._job(conn, i) for (i,) in ids.all()]

    def requeue(self, run_id: int) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(runs_t)
                .where((runs_t.c.id == run_id) & (runs_t.c.state == "running"))
                .values(state="queued")
            )

    def dispatched(self, run_ids: Sequence[int], now: float | None = None) -> None:
        """Note that tasks were sent for these runs (the sweeper leaves them alone a while)."""
        if not run_ids:
            return
        now = time.time() if now is None else now
        with self._tx() as conn:
            conn.execute(
                sa.update(runs_t).where(runs_t.c.id.in_(run_ids)).values(dispatched_at=now)
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
        with self._read() as conn:
            rows = conn.execute(sa.select(c.id, c.kind, c.not_before).where(lost | stale))
            return [Queued(r.id, r.kind, r.not_before) for r in rows.all()]

    # -- reading -----------------------------------------------------------------------------
    def queue_stats(self, now: float | None = None) -> tuple[int, float]:
        """(queued runs that are due, age in seconds of the oldest of them)."""
        now = time.time() if now is None else now
        due = (runs_t.c.state == "queued") & (runs_t.c.not_before <= now)
        with self._read() as conn:
            n, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(runs_t.c.not_before)).where(due)
            ).one()
        return n, (now - oldest) if oldest is not None else 0.0

    def incidents(
        self,
        limit: int = 100,
        *,
        alert: str = "",
        status: str = "",
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Incidents newest first, each with its runs; optionally filtered by alert name
        (substring), status and received time."""
        q = sa.select(incidents_t)
        if alert:
            q = q.where(incidents_t.c.alertname.contains(alert, autoescape=True))
        if status:
            q = q.where(incidents_t.c.status == status)
        if since is not None:
            q = q.where(incidents_t.c.received_at >= since)
        q = q.order_by(incidents_t.c.received_at.desc(), incidents_t.c.id.desc()).limit(limit)
        with self._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
            ids = [r["id"] for r in rows]
            runs, alerts = self._runs(conn, ids), grouping.alerts_of(conn, ids)
            done = actions.of(conn, ids)
        for inc in rows:
            inc["actions"] = done.get(inc["id"], [])
            inc["labels"] = json.loads(inc["labels"])
            inc["annotations"] = json.loads(inc["annotations"])
            inc["runs"] = runs.get(inc["id"], [])
            inc["alerts"] = alerts.get(inc["id"], [])
        return rows

    def incident(self, incident_id: int) -> dict[str, Any]:
        """One incident with its runs; LookupError naming the id when there is none."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(incidents_t).where(incidents_t.c.id == incident_id)
            ).first()
            if row is None:
                raise LookupError(f"no incident {incident_id} in {self.where}")
            inc = dict(row._mapping)
            inc["runs"] = self._runs(conn, [incident_id]).get(incident_id, [])
            inc["alerts"] = grouping.alerts_of(conn, [incident_id]).get(incident_id, [])
            inc["actions"] = actions.of(conn, [incident_id]).get(incident_id, [])
        inc["labels"] = json.loads(inc["labels"])
        inc["annotations"] = json.loads(inc["annotations"])
        return inc

    def past_incidents(self, incident: dict[str, Any]) -> list[dict[str, Any]]:
        """The incidents of `incident`'s runbook in the 90 days before it (records/history.py)."""
        with self._read() as conn:
            return history.past_incidents(
                conn, incident["runbook"], incident["received_at"], incident["id"]
            )

    def latest(self, alertname: str, instance: str | None = None) -> int | None:
        """The newest incident holding an `alertname` alert (on `instance`, when given),
        whether that alert opened it or joined it; None when there is none."""
        c, ac = incidents_t.c, alerts_t.c
        q = sa.select(c.id).join(alerts_t, ac.incident_id == c.id).where(ac.alertname == alertname)
        if instance is not None:
            q = q.where(c.instance == instance)
        with self._read() as conn:
            return conn.execute(q.order_by(c.received_at.desc(), c.id.desc()).limit(1)).scalar()

    def run_of(self, record_name: str) -> tuple[dict, dict] | None:
        """(run, incident) of a record, or None when the index does not know it."""
        with self._read() as conn:
            run = conn.execute(sa.select(runs_t).where(runs_t.c.record == record_name)).first()
            if run is None:
                return None
            inc = conn.execute(
                sa.select(incidents_t).where(incidents_t.c.id == run.incident_id)
            ).first()
        return dict(run._mapping), dict(inc._mapping) if inc else {}

    def _runs(self, conn: Connection, incident_ids: list[int]) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        if not incident_ids:
            return out
        q = sa.select(runs_t).where(runs_t.c.incident_id.in_(incident_ids)).order_by(runs_t.c.id)
        for r in conn.execute(q):
            out.setdefault(r.incident_id, []).append(dict(r._mapping))
        return out

    def close(self) -> None:
        self.engine.dispose()
