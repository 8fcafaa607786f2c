"""The incidents in the index, as receivers, operators and pages change and read them.

An alert is accepted in one transaction that records the incident and enqueues its runs,
so "persisted" and "queued" are the same commit: the receiver answers 2xx only after it.
An alert is keyed by Alertmanager's `fingerprint` + `startsAt`, a unique constraint, so
two receivers accepting the same alert at the same moment record it once; alerts of one
fault join one incident (incidents/grouping.py), which has at most one run of each kind:
re-sent groups are harmless. Operator actions are written in the transaction of what they
change (incidents/actions.py); reconciliation with Alertmanager closes what it lost."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import Alert, route
from runbook_lib.contract.incident import Incident, IncidentAction, IncidentRun
from runbook_lib.contract.settings import CORRELATION_WINDOW_S
from runbook_lib.contract.summary import Summary
from runbook_lib.incidents import actions, grouping, history
from runbook_lib.incidents.jobs import Queued, runs_of
from runbook_lib.incidents.queue import RunQueue
from runbook_lib.storage.database import Database
from runbook_lib.storage.migrations import schema
from runbook_lib.storage.outbox import add_event

incidents_t, runs_t, alerts_t = schema.INCIDENTS, schema.RUNS, schema.ALERTS


class Incidents:
    """The incidents repository on `db`, enqueueing runs on `queue`. `correlation_window`:
    seconds within which alerts of one instance and runbook family join one incident (0:
    never). Whether a warning's investigation waits for a more severe twin is the workers'
    decision (service/holds.py), not the index's."""

    def __init__(
        self, db: Database, queue: RunQueue, *, correlation_window: float = CORRELATION_WINDOW_S
    ) -> None:
        self.db, self.queue = db, queue
        self.correlation_window = correlation_window

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
        with self.db.tx() as conn:
            self.db.lock(conn, {(route(a.name), a.labels.get("instance", "")) for a in alerts})
            outcomes = [self._accept_one(conn, a, verify_delay, now, created) for a in alerts]
        return outcomes, created

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
                    conn, self.db.insert, a, starts, runbook, instance, now
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
        if self.queue.enqueue(conn, incident, lead, "investigation", now, created, now=now):
            outcome = "queued"
        if a.status == "firing":
            return outcome
        return grouping.resolve(conn, self.db, self.queue.enqueue, incident, a, delay, now, created)

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
        self.queue.enqueue(conn, incident, a, "investigation", now, created,
                      trigger=f"{why}:{a.fingerprint}", now=now)  # fmt: skip

    def by_fingerprint(self, fingerprint: str) -> int:
        """The newest incident holding an alert with this fingerprint (or its prefix of at
        least 6 characters, as records name it); LookupError when none or several match."""
        ac = alerts_t.c
        match = ac.fingerprint == fingerprint
        if len(fingerprint) >= 6:
            match = match | ac.fingerprint.startswith(fingerprint, autoescape=True)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(ac.incident_id, ac.fingerprint).where(match).order_by(ac.id.desc())
            ).all()
        if not rows:
            raise LookupError(
                f"no incident has an alert with fingerprint {fingerprint!r} in {self.db.where}"
            )
        if len({r.fingerprint for r in rows}) > 1:
            raise LookupError(
                f"fingerprint {fingerprint!r} matches several alerts; give more of it"
            )
        return rows[0].incident_id

    # -- reconciliation with Alertmanager --------------------------------------------------
    def close_stale(self, active: set[str], grace_s: float, now: float | None = None) -> list[int]:
        """Reconcile with the alerts Alertmanager holds (`active`: their fingerprints). A
        firing alert it does not hold is marked missing; one missing for `grace_s` is closed
        as stale, and an incident left with no firing alert with it. The grace outlasts
        Alertmanager's group_interval (a resolved alert leaves its list before the
        `resolved` is sent) and a restart (its alerts are back once Prometheus re-sends);
        an alert listed again is no longer missing. Returns the incidents closed."""
        now = time.time() if now is None else now
        ac = alerts_t.c
        with self.db.tx() as conn:
            firing = conn.execute(
                sa.select(ac.id, ac.fingerprint, ac.missing_since, ac.incident_id)
                .where(ac.status == "firing")
            ).all()  # fmt: skip
            gone = [r for r in firing if r.fingerprint not in active]
            back = [r.id for r in firing if r.fingerprint in active and r.missing_since]
            new = [r.id for r in gone if r.missing_since is None]
            stale = [r for r in gone if r.missing_since and r.missing_since <= now - grace_s]
            grouping.set_alerts(conn, back, missing_since=None)
            grouping.set_alerts(conn, new, missing_since=now)
            grouping.set_alerts(conn, [r.id for r in stale], status="stale", closed_at=now)
            touched = sorted({r.incident_id for r in stale})
            c = incidents_t.c
            keys = conn.execute(sa.select(c.runbook, c.instance).where(c.id.in_(touched))).all()
            self.db.lock(conn, {tuple(k) for k in keys})
            return [
                i
                for i in touched
                if grouping.close_if_done(
                    conn, self.db, self.queue.enqueue, i, now, 0.0, [], how="stale"
                )
            ]

    # -- runs by hand ----------------------------------------------------------------------
    def add_manual(
        self, alertname: str, labels: dict[str, str], record_name: str,
        summary: Summary, now: float | None = None,
    ) -> int:  # fmt: skip
        """A `runbook run` by hand: an incident of kind `manual` with its one, finished run,
        so that `runbook incidents` and the pages list it beside the alerts' incidents."""
        now = time.time() if now is None else now
        starts = datetime.fromtimestamp(now, UTC).isoformat()
        with self.db.tx() as conn:
            incident = conn.execute(
                self.db.insert(incidents_t)
                .values(fingerprint=f"manual-{record_name}", starts_at=starts, alertname=alertname,
                        runbook=route(alertname), instance=labels.get("instance", ""),
                        severity=labels.get("severity", ""), labels=json.dumps(labels),
                        annotations="{}", generator_url="", status="manual", received_at=now)
                .returning(incidents_t.c.id)
            ).scalar_one()  # fmt: skip
            conn.execute(
                sa.insert(runs_t).values(
                    incident_id=incident, kind="manual", state="done", record=record_name,
                    not_before=now, enqueued_at=now, started_at=now, finished_at=now, attempts=1,
                    status=summary.status, top_cause=summary.top_cause, error=summary.error,
                )
            )  # fmt: skip
        return incident

    def act(
        self, incident_id: int, kind: str, actor: str, *, nonce: str | None = None,
        detail: dict[str, Any] | None = None, verify_delay: float = 300.0,
        now: float | None = None,
    ) -> actions.Done:  # fmt: skip
        """Do action `kind` on the incident as `actor`: its row, what it changes and its
        event, in one transaction. LookupError (no such incident), `Closed`, `Replayed` or
        `DoneAlready` change nothing. `verify_delay`: how long after an approved mitigation
        ends its verification runs."""
        now = time.time() if now is None else now
        detail = dict(detail or {})
        queued: list[Queued] = []
        with self.db.tx() as conn:
            inc = actions.open_incident(conn, self.db, incident_id)
            action_id = actions.record(
                conn, incident_id, kind, actor, now, nonce=nonce, detail=detail
            )
            run_id = None
            if kind == "acknowledge":
                actions.acknowledge(conn, inc, actor, now)
            elif kind == "mitigated":
                if not actions.mitigated(conn, incident_id, now, by=actor):
                    raise actions.DoneAlready(actions.mitigated_already(inc))
            elif kind == "reinvestigate":
                lead = grouping.lead_alert(conn, incident_id)
                run_id = self.queue.enqueue(conn, incident_id, lead, "investigation", now, queued,
                                            trigger=f"operator:{action_id}", suffix=f"-r{action_id}",
                                            requested_by=actor, now=now)  # fmt: skip
            elif kind == "mitigation":
                run_id = actions.approve_mitigation(conn, self.queue.enqueue, incident_id,
                                                    action_id, actor, now, verify_delay, queued)  # fmt: skip
            if run_id is not None:
                actions.set_run(conn, action_id, run_id)
            if kind in actions.EVENTS:
                event = actions.EVENTS[kind]
                add_event(conn, self.db.insert, event, incident_id, None, now,
                          key=f"{event}:a{action_id}", detail={"actor": actor, **detail})  # fmt: skip
        done = IncidentAction(id=action_id, incident_id=incident_id, kind=kind, actor=actor,
                              at=now, detail=detail, nonce=nonce, run_id=run_id)  # fmt: skip
        return actions.Done(done, queued)

    def may_act(self, incident_id: int, nonce: str | None = None) -> None:
        """What `act` would refuse before anything is written: LookupError, `Closed`, or
        `Replayed` (checked again inside `act`; this is for work done first, e.g. a silence
        in Alertmanager)."""
        with self.db.read() as conn:
            actions.open_incident(conn, self.db, incident_id, lock=False)
            if nonce and actions.nonce_used(conn, nonce):
                raise actions.Replayed(f"this form was submitted already (nonce {nonce})")

    def mark_mitigated(self, incident_id: int, now: float | None = None, actor: str = "") -> bool:
        """A person says a mitigation is in place (`runbook incidents --mitigated`, the
        page's button); False when one was recorded already."""
        try:
            self.act(incident_id, "mitigated", actor, now=now)
        except actions.DoneAlready:
            return False
        return True

    def incidents(
        self,
        limit: int = 100,
        *,
        alert: str = "",
        status: str = "",
        since: float | None = None,
    ) -> list[Incident]:
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
        with self.db.read() as conn:
            return _with_rows(conn, conn.execute(q).all())

    def incident(self, incident_id: int) -> Incident:
        """One incident with its runs; LookupError naming the id when there is none."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(incidents_t).where(incidents_t.c.id == incident_id)
            ).first()
            if row is None:
                raise LookupError(f"no incident {incident_id} in {self.db.where}")
            return _with_rows(conn, [row])[0]

    def past_incidents(self, incident: Incident) -> list[dict[str, Any]]:
        """The incidents of `incident`'s runbook in the 90 days before it (records/history.py)."""
        with self.db.read() as conn:
            return history.past_incidents(conn, incident.runbook, incident.received_at, incident.id)

    def latest(self, alertname: str, instance: str | None = None) -> int | None:
        """The newest incident holding an `alertname` alert (on `instance`, when given),
        whether that alert opened it or joined it; None when there is none."""
        c, ac = incidents_t.c, alerts_t.c
        q = sa.select(c.id).join(alerts_t, ac.incident_id == c.id).where(ac.alertname == alertname)
        if instance is not None:
            q = q.where(c.instance == instance)
        with self.db.read() as conn:
            return conn.execute(q.order_by(c.received_at.desc(), c.id.desc()).limit(1)).scalar()

    def run_of(self, record_name: str) -> tuple[IncidentRun, Incident] | None:
        """(run, incident) of a record, or None when the index does not know it."""
        with self.db.read() as conn:
            run = conn.execute(sa.select(runs_t).where(runs_t.c.record == record_name)).first()
            if run is None:
                return None
            inc = conn.execute(
                sa.select(incidents_t).where(incidents_t.c.id == run.incident_id)
            ).one()  # runs.incident_id is a foreign key
            return IncidentRun.model_validate(run._mapping), _with_rows(conn, [inc])[0]


def _with_rows(conn: Connection, rows: Sequence[sa.Row]) -> list[Incident]:
    """The incidents of `rows` (table `incidents`) with their actions, runs and alerts."""
    ids = [r.id for r in rows]
    runs, alerts, done = runs_of(conn, ids), grouping.alerts_of(conn, ids), actions.of(conn, ids)
    return [
        Incident.model_validate(
            {**r._mapping, "labels": json.loads(r.labels),
             "annotations": json.loads(r.annotations), "actions": done.get(r.id, ()),
             "runs": runs.get(r.id, ()), "alerts": alerts.get(r.id, ())}
        )
        for r in rows
    ]  # fmt: skip
