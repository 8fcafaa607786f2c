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

Workers take the next run with `claim`: under a backlog the most severe due run first, then
the oldest, and a run that has waited `age_bound` seconds counts as the most severe, so a
warning is never starved by criticals that keep coming. Both modes claim so: in distributed
mode a Celery task only says "a run is due" and its worker claims from the index under a
lease (an expired lease makes a running run claimable again), so the broker's order does
not decide which incident goes first. `undispatched` finds accepted runs whose task was
never sent or got lost, for the sweeper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import SEVERITY_RANK, Alert, route
from runbook_lib.contract.config import CORRELATION_WINDOW_S
from runbook_lib.contract.request import IncidentContext, LeadAlert, QueueState, RunRequest
from runbook_lib.contract.summary import Summary
from runbook_lib.records import actions, grouping, history, record
from runbook_lib.records.dispatch import Dispatch
from runbook_lib.records.jobs import (
    INVESTIGATING,
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
# A run due for this long is taken as if it were critical: bounded waiting for every run,
# while a burst of criticals (minutes of a storm) still jumps a warning backlog.
AGE_BOUND_S = 300.0


def urgency(now: float, age_bound: float) -> sa.ColumnElement:
    """The claim order's first key: the severity rank of the run's lead alert
    (contract.alerts.SEVERITY_RANK), the top rank once the run has been due `age_bound`."""
    c = runs_t.c
    top = max(SEVERITY_RANK.values())
    rank = sa.case(SEVERITY_RANK, value=sa.func.lower(sa.func.coalesce(c.severity, "")), else_=0)
    return sa.case((c.not_before <= now - age_bound, top), else_=rank)


class Index(grouping.AlertQueries, actions.ActionWrites, Dispatch):
    """The incident index at a SQLite file `path`, or at a database `url`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        url: str | None = None,
        correlation_window: float = CORRELATION_WINDOW_S,
        age_bound: float = AGE_BOUND_S,
    ) -> None:
        """`correlation_window`: seconds within which alerts of one instance and runbook
        family join one incident (0: never). Whether a warning's investigation waits for a
        more severe twin is the workers' decision (service/holds.py), not the index's.
        `age_bound`: seconds due after which a run is claimed as if it were critical."""
        self.correlation_window = correlation_window
        self.age_bound = age_bound
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
            took, led = (
                grouping.take_lead(conn, incident, a, now)
                if outcome == "correlated"
                else ("", None)
            )
            if led is not None:  # due now: a task sent for its hold would come too late
                created.append(Queued(led, "investigation", now, incident, a.name))
            if took in ("escalated", "symptom"):
                self._new_lead(conn, incident, a, now, created, escalated=took == "escalated")
                outcome = took if took == "escalated" else outcome
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

    def _new_lead(
        self, conn: Connection, incident: int, a: Alert, now: float, created: list[Queued],
        *, escalated: bool,
    ) -> None:  # fmt: skip
        """An alert that outranks the lead joined after the investigation started: it leads
        the incident from now on, with an investigation of its own. A more severe one
        escalates the incident (its finding goes out as the `escalated` message); a symptom
        over a slow-burn lead is the fault's first symptom (`symptom:`)."""
        grouping.lead_by(conn, incident, a, now, escalated=escalated)
        why = "escalated" if escalated else "symptom"
        self._enqueue(conn, incident, a, "investigation", now, created,
                      trigger=f"{why}:{a.fingerprint}", now=now)  # fmt: skip

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
    def claim(self, now: float | None = None, lease_s: float | None = None) -> RunRequest | None:
        """Take the most urgent due run (see `urgency`; then the oldest), marking it
        running; None when nothing is due. With `lease_s`, a run started more than `lease_s`
        ago and still running (its worker vanished) is due again."""
        now = time.time() if now is None else now
        c = runs_t.c
        due = (c.state == "queued") & (c.not_before <= now)
        if lease_s is not None:
            due = due | ((c.state == "running") & (c.started_at < now - lease_s))
        with self._tx() as conn:
            pick = (
                sa.select(c.id)
                .where(due)
                .order_by(urgency(now, self.age_bound).desc(), c.not_before, c.id)
                .limit(1)
            )
            if self.postgres:
                pick = pick.with_for_update(skip_locked=True)
            run_id = conn.execute(pick).scalar()
            if run_id is None:
                return None
            self._mark_running(conn, run_id, now)
            return self._request(conn, run_id)

    def _mark_running(self, conn: Connection, run_id: int, now: float) -> None:
        conn.execute(
            sa.update(runs_t)
            .where(runs_t.c.id == run_id)
            .values(state="running", started_at=now, attempts=runs_t.c.attempts + 1)
        )

    def _request(self, conn: Connection, run_id: int) -> RunRequest:
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

    def request(self, run_id: int) -> RunRequest:
        """A run as its notebook needs it, whatever its state."""
        with self._read() as conn:
            return self._request(conn, run_id)

    def finish(
        self, run_id: int, summary: Summary, location: str | None = None,
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
                if summary.done:
                    self._mitigated(conn, run.incident_id, now)
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
        so it escalated the incident), it leads this run instead, due now: the incident's
        first investigation has not begun, so nothing was escalated."""
        now = time.time() if now is None else now
        c = runs_t.c
        values = dict(state="queued", not_before=until, attempts=c.attempts - 1,
                      held_since=sa.func.coalesce(c.held_since, now), hold_note=note)  # fmt: skip
        with self._tx() as conn:
            later = conn.execute(
                sa.select(c.id, c.record, c.alertname, c.severity)
                .where((c.incident_id == job.incident.id) & (c.id > job.run_id)
                       & (c.state == "queued") & c.trigger.startswith("escalated:"))
                .order_by(c.id.desc()).limit(1)
            ).first()  # fmt: skip
            if later is not None and not job.incident.escalated:
                conn.execute(sa.delete(runs_t).where(c.id == later.id))
                conn.execute(sa.update(incidents_t).where(incidents_t.c.id == job.incident.id)
                             .values(escalated_at=None))  # fmt: skip
                values.update(record=later.record, alertname=later.alertname,
                              severity=later.severity, not_before=now)  # fmt: skip
            conn.execute(
                sa.update(runs_t).where((c.id == job.run_id) & (c.state == "running"))
                .values(**values)
            )  # fmt: skip

    def in_flight(self) -> list[RunRequest]:
        """Runs marked running: after a crash, the ones no worker will finish."""
        with self._tx() as conn:
            ids = conn.execute(sa.select(runs_t.c.id).where(runs_t.c.state == "running"))
            return [self._request(conn, i) for (i,) in ids.all()]

    def requeue(self, run_id: int) -> None:
        with self._tx() as conn:
            conn.execute(
                sa.update(runs_t)
                .where((runs_t.c.id == run_id) & (runs_t.c.state == "running"))
                .values(state="queued")
            )

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
