"""Which incident an alert belongs to. Alerts of one instance and runbook family that start
within the correlation window of an open incident's alerts are the same fault: they join it
instead of opening their own, and the most severe of them leads its one investigation.
These run inside the index's accept transaction (records/index.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import Alert, route, severity_rank
from runbook_lib.records import record
from runbook_lib.records.migrations import schema

incidents_t, runs_t, alerts_t = schema.INCIDENTS, schema.RUNS, schema.ALERTS


def open_incident(
    conn: Connection, a: Alert, runbook: str, instance: str, window_s: float
) -> int | None:
    """The open incident this alert joins: same instance and runbook family, with an
    alert that started within the correlation window of this one. Unknown alerts (the
    triage runbook) are not one family, so each stays its own incident."""
    if runbook == "triage" or window_s <= 0:
        return None
    lo, hi = _around(a.startsAt, timedelta(seconds=window_s))
    c, ac = incidents_t.c, alerts_t.c
    return conn.execute(
        sa.select(c.id)
        .join(alerts_t, ac.incident_id == c.id)
        .where((c.runbook == runbook) & (c.instance == instance) & (c.status == "firing"))
        .where((ac.starts_at >= lo) & (ac.starts_at <= hi))
        .order_by(c.id)
        .limit(1)
    ).scalar()


def _around(at: datetime, window: timedelta) -> tuple[str, str]:
    """The window around `at` as the index's text times; clipped at the ends of time (an
    alert may say year 1 or 9999, and must still be filed)."""
    lo = (
        at - window
        if at - datetime.min.replace(tzinfo=UTC) > window
        else datetime.min.replace(tzinfo=UTC)
    )
    hi = (
        at + window
        if datetime.max.replace(tzinfo=UTC) - at > window
        else datetime.max.replace(tzinfo=UTC)
    )
    return lo.isoformat(), hi.isoformat()


def new_incident(
    conn: Connection, insert, a: Alert, starts: str, runbook: str, instance: str, now: float
) -> int:
    return conn.execute(
        insert(incidents_t)
        .values(fingerprint=a.fingerprint, starts_at=starts, alertname=a.name,
                runbook=runbook, instance=instance, severity=a.labels.get("severity", ""),
                labels=json.dumps(a.labels), annotations=json.dumps(a.annotations),
                generator_url=a.generatorURL, status="firing", received_at=now)
        .returning(incidents_t.c.id)
    ).scalar_one()  # fmt: skip


def add_alert(conn: Connection, incident: int, a: Alert, starts: str, now: float) -> None:
    conn.execute(
        sa.insert(alerts_t).values(
            incident_id=incident, fingerprint=a.fingerprint, starts_at=starts,
            alertname=a.name, severity=a.labels.get("severity", ""),
            labels=json.dumps(a.labels), status="firing", received_at=now,
        )
    )  # fmt: skip


def take_lead(conn: Connection, incident: int, a: Alert, now: float) -> None:
    """A more severe alert that joins before the investigation started leads it: the
    incident takes its name, labels and record name. Afterwards it is only listed."""
    c = incidents_t.c
    current = conn.execute(sa.select(c.severity).where(c.id == incident)).scalar_one()
    if severity_rank(a.labels.get("severity", "")) <= severity_rank(current):
        return
    mine = (runs_t.c.incident_id == incident) & (runs_t.c.kind == "investigation")
    queued = conn.execute(sa.select(runs_t.c.state).where(mine)).scalar()
    if queued not in (None, "queued"):
        return
    conn.execute(
        sa.update(incidents_t).where(c.id == incident)
        .values(fingerprint=a.fingerprint, starts_at=a.startsAt.isoformat(), alertname=a.name,
                severity=a.labels.get("severity", ""), labels=json.dumps(a.labels),
                annotations=json.dumps(a.annotations), generator_url=a.generatorURL)
    )  # fmt: skip
    name = record.record_name(a.startsAt, a.name, a.fingerprint)
    taken = conn.execute(sa.select(runs_t.c.id).where(runs_t.c.record == name)).first()
    conn.execute(
        sa.update(runs_t)
        .where(mine & (runs_t.c.state == "queued"))
        .values(record=name if taken is None else f"{name}-i{incident}", not_before=now)
    )


def lead_alert(conn: Connection, incident: int) -> Alert:
    """The incident's leading alert, as the notebook and the record name see it."""
    r = conn.execute(sa.select(incidents_t).where(incidents_t.c.id == incident)).one()
    return Alert(status="firing", labels=json.loads(r.labels),
                 annotations=json.loads(r.annotations), startsAt=r.starts_at,
                 generatorURL=r.generator_url, fingerprint=r.fingerprint)  # fmt: skip


def alerts_of(conn: Connection, incident_ids: list[int]) -> dict[int, list[dict]]:
    """Each incident's alerts, the most severe first, then by start."""
    out: dict[int, list[dict]] = {}
    if not incident_ids:
        return out
    q = sa.select(alerts_t).where(alerts_t.c.incident_id.in_(incident_ids))
    for r in conn.execute(q.order_by(alerts_t.c.starts_at, alerts_t.c.id)):
        row = dict(r._mapping)
        row["labels"] = json.loads(row["labels"])
        out.setdefault(r.incident_id, []).append(row)
    for rows in out.values():
        rows.sort(key=lambda a: -severity_rank(a["severity"]))
    return out


def related(conn: Connection, incident: int, lead_fingerprint: str) -> tuple[dict, ...]:
    """The incident's alerts other than its lead: name, severity, start, status."""
    rows = alerts_of(conn, [incident]).get(incident, [])
    keep = ("alertname", "severity", "starts_at", "status", "fingerprint")
    return tuple({k: a[k] for k in keep} for a in rows if a["fingerprint"] != lead_fingerprint)


class AlertQueries:
    """The index's questions and changes about alerts and the state of incidents (mixed
    into records.index.Index, which provides `_tx`, `_read`, `_insert`, `where` and
    `_close_if_done`)."""

    def mark_mitigated(self, incident_id: int, now: float | None = None) -> bool:
        """A person says a mitigation is in place; False when it was recorded already."""
        with self._tx() as conn:
            if not conn.execute(
                sa.select(incidents_t.c.id).where(incidents_t.c.id == incident_id)
            ).first():
                raise LookupError(f"no incident {incident_id} in {self.where}")
            return self._mitigated(conn, incident_id, time.time() if now is None else now)

    def _mitigated(self, conn: Connection, incident_id: int, now: float) -> bool:
        c = incidents_t.c
        done = conn.execute(
            sa.update(incidents_t)
            .where((c.id == incident_id) & c.mitigated_at.is_(None))
            .values(mitigated_at=now)
        )
        return done.rowcount == 1

    def by_fingerprint(self, fingerprint: str) -> int:
        """The newest incident holding an alert with this fingerprint (or its prefix of at
        least 6 characters, as records name it); LookupError when none or several match."""
        ac = alerts_t.c
        match = ac.fingerprint == fingerprint
        if len(fingerprint) >= 6:
            match = match | ac.fingerprint.startswith(fingerprint, autoescape=True)
        with self._read() as conn:
            rows = conn.execute(
                sa.select(ac.incident_id, ac.fingerprint).where(match).order_by(ac.id.desc())
            ).all()
        if not rows:
            raise LookupError(
                f"no incident has an alert with fingerprint {fingerprint!r} in {self.where}"
            )
        if len({r.fingerprint for r in rows}) > 1:
            raise LookupError(
                f"fingerprint {fingerprint!r} matches several alerts; give more of it"
            )
        return rows[0].incident_id

    # -- reconciliation with Alertmanager --------------------------------------------------
    def firing_alerts(self) -> list[dict]:
        """Alerts the index holds as firing: (fingerprint, received_at, incident_id)."""
        ac = alerts_t.c
        with self._read() as conn:
            q = sa.select(ac.fingerprint, ac.received_at, ac.incident_id).where(
                ac.status == "firing"
            )
            return [dict(r._mapping) for r in conn.execute(q)]

    def close_stale(
        self, active: set[str], min_age_s: float, now: float | None = None
    ) -> list[int]:
        """Alerts firing here that Alertmanager no longer has (`active`: its fingerprints)
        and that arrived more than `min_age_s` ago never sent their `resolved`: mark them
        stale; close the incidents left with no firing alert. Returns those incidents."""
        now = time.time() if now is None else now
        ac = alerts_t.c
        gone = (ac.status == "firing") & (ac.received_at < now - min_age_s)
        if active:
            gone = gone & ac.fingerprint.not_in(sorted(active))
        closed: list[int] = []
        with self._tx() as conn:
            touched = [i for (i,) in conn.execute(sa.select(ac.incident_id).where(gone).distinct())]
            conn.execute(sa.update(alerts_t).where(gone).values(status="stale", closed_at=now))
            for incident in touched:
                if self._close_if_done(conn, incident, now, 0.0, []):
                    closed.append(incident)
        return closed

    # -- runs by hand ----------------------------------------------------------------------
    def add_manual(
        self, alertname: str, labels: dict[str, str], record_name: str,
        summary: dict[str, Any], now: float | None = None,
    ) -> int:  # fmt: skip
        """A `runbook run` by hand: an incident of kind `manual` with its one, finished run,
        so that `runbook incidents` and the pages list it beside the alerts' incidents."""
        now = time.time() if now is None else now
        starts = datetime.fromtimestamp(now, UTC).isoformat()
        with self._tx() as conn:
            incident = conn.execute(
                self._insert(incidents_t)
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
                    status=summary.get("status"), top_cause=summary.get("top_cause"),
                    error=summary.get("error"),
                )
            )  # fmt: skip
        return incident
