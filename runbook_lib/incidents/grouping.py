"""Which incident an alert belongs to. Alerts of one instance and runbook family that start
within the correlation window of an open incident's alerts are the same fault: they join it
instead of opening their own, and the most severe of them leads its one investigation.
These run inside the repository's accept transaction (incidents/repository.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import Alert, lead_rank, severity_rank
from runbook_lib.contract.clock import utc
from runbook_lib.contract.incident import IncidentAlert
from runbook_lib.records import record
from runbook_lib.storage.database import Database, by_incident
from runbook_lib.storage.migrations import schema
from runbook_lib.storage.outbox import add_event

incidents_t, runs_t, alerts_t = schema.INCIDENTS, schema.RUNS, schema.ALERTS
# RunQueue.enqueue, handed in by the caller (the queue reads this module's `related`)
Enqueue = Callable[..., int | None]


def open_incident(
    conn: Connection, a: Alert, runbook: str, instance: str, window_s: float, now: float
) -> int | None:
    """The incident this alert joins: its runbook family's on its instance that is still
    firing, whenever it began (two alerts of one family firing together on one instance
    are one fault: a critical that fires minutes after its warning escalates the warning's
    incident). A slow-burn alert measures a long window, so it often fires after the
    symptom alerts resolved: it also joins the family's incident resolved within
    `window_s`, as context. Unknown alerts (the triage runbook) are not one family, so each
    stays its own incident; a window of 0 turns correlation off."""
    if runbook == "triage" or window_s <= 0:
        return None
    c = incidents_t.c
    q = sa.select(c.id).where((c.runbook == runbook) & (c.instance == instance))
    if a.context:
        recent = (c.status == "resolved") & (c.resolved_at >= now - window_s)
        q = q.where((c.status == "firing") | recent).order_by(c.status != "firing", c.id.desc())
        return conn.execute(q.limit(1)).scalar()
    return conn.execute(q.where(c.status == "firing").order_by(c.id).limit(1)).scalar()


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
            alertname=a.name, severity=a.severity, labels=json.dumps(a.labels),
            status="firing", received_at=now, context=a.context,
        )
    )  # fmt: skip


def take_lead(conn: Connection, incident: int, a: Alert, now: float) -> tuple[str, int | None]:
    """A joining alert that outranks the lead (`lead_rank`: a symptom before a slow-burn
    alert, then the more severe). While the incident's own investigation (its first, or an
    escalation's) has not started, the alert takes it over: its record name, due now (the
    worker asks again whether to wait for a stronger lead); the incident takes its name,
    labels and severity. Once it started, a more severe symptom alert escalates the incident
    (`escalated`), and a symptom alert over a slow-burn lead gets an investigation of its
    own (`symptom`); anything else is only listed. The run is changed first, and only while
    queued, so a worker claiming it meanwhile keeps the lead it claimed. Returns `led`,
    `escalated`, `symptom` or `listed`, and the run it led (to dispatch again: it is due
    now)."""
    lead = lead_alert(conn, incident)
    if lead_rank(a.context, a.severity) <= lead_rank(lead.context, lead.severity):
        return "listed", None
    c = runs_t.c
    ours = (c.trigger == "") | c.trigger.startswith("escalated:")  # not an operator's run
    waiting = conn.execute(
        sa.select(c.id).where((c.incident_id == incident) & (c.kind == "investigation")
                              & (c.state == "queued") & ours).order_by(c.id.desc()).limit(1)
    ).scalar()  # fmt: skip
    if waiting is not None:
        name = record.record_name(a.startsAt, a.name, a.fingerprint)
        if conn.execute(sa.select(c.id).where(c.record == name)).first():
            name = f"{name}-i{incident}"
        conn.execute(
            sa.update(runs_t).where((c.id == waiting) & (c.state == "queued"))
            .values(record=name, alertname=a.name, severity=a.severity, not_before=now,
                    hold_note=led_note(a.name, a.severity))
        )  # fmt: skip
        _lead(conn, incident, a)
        return "led", waiting
    if a.context:
        return "listed", None
    if severity_rank(a.severity) > severity_rank(lead.severity):
        return "escalated", None
    return ("symptom" if lead.context else "listed"), None


def led_note(alertname: str, severity: str | None) -> sa.ColumnElement:
    """A held run's note once alert `alertname` leads it: as it was when it names the alert
    (the run waited for it), else with the alert added (it waited for another, or for
    Prometheus, and this one came)."""
    c = runs_t.c
    came = f"; then {alertname} ({severity or 'unknown'}) arrived and leads"
    return sa.case(
        (c.hold_note.is_(None), None),
        (c.hold_note.contains(f"waited for {alertname} (", autoescape=True), c.hold_note),
        else_=c.hold_note + came,
    )


def _lead(conn: Connection, incident: int, a: Alert, **more: object) -> None:
    conn.execute(
        sa.update(incidents_t).where(incidents_t.c.id == incident)
        .values(fingerprint=a.fingerprint, starts_at=a.startsAt.isoformat(), alertname=a.name,
                severity=a.severity, labels=json.dumps(a.labels),
                annotations=json.dumps(a.annotations), generator_url=a.generatorURL, **more)
    )  # fmt: skip


def lead_by(conn: Connection, incident: int, a: Alert, now: float, *, escalated: bool) -> None:
    """`a` leads the incident from now on (escalated: it raised its severity); the caller
    enqueues its investigation."""
    _lead(conn, incident, a, **({"escalated_at": now} if escalated else {}))


def lead_alert(conn: Connection, incident: int) -> Alert:
    """The incident's leading alert, as the notebook and the record name see it."""
    r = conn.execute(sa.select(incidents_t).where(incidents_t.c.id == incident)).one()
    return Alert(status="firing", labels=json.loads(r.labels),
                 annotations=json.loads(r.annotations), startsAt=r.starts_at,
                 generatorURL=r.generator_url, fingerprint=r.fingerprint)  # fmt: skip


def alerts_of(conn: Connection, incident_ids: list[int]) -> dict[int, list[IncidentAlert]]:
    """Each incident's alerts, the most severe first, then by start."""
    out = by_incident(
        conn, alerts_t, incident_ids, (alerts_t.c.starts_at, alerts_t.c.id),
        lambda r: IncidentAlert.model_validate({**r._mapping, "labels": json.loads(r.labels)}),
    )  # fmt: skip
    for rows in out.values():
        rows.sort(key=lambda a: -severity_rank(a.severity))
    return out


def related(conn: Connection, incident: int, lead_fingerprint: str) -> tuple[dict, ...]:
    """The incident's alerts other than its lead: name, severity, start, status."""
    rows = alerts_of(conn, [incident]).get(incident, [])
    keep = ("alertname", "severity", "starts_at", "status", "fingerprint")
    return tuple(
        {k: getattr(a, k) for k in keep} for a in rows if a.fingerprint != lead_fingerprint
    )


def set_alerts(conn: Connection, ids: list[int], **values: object) -> None:
    for start in range(0, len(ids), 500):  # within any database's limit of bound values
        conn.execute(
            sa.update(alerts_t).where(alerts_t.c.id.in_(ids[start : start + 500])).values(**values)
        )


def reopen(conn: Connection, incident: int, a: Alert) -> None:
    """A stale alert fires again (Alertmanager lost it, then Prometheus re-sent it): it was
    not over, and neither is its incident."""
    this = (alerts_t.c.fingerprint == a.fingerprint) & (
        alerts_t.c.starts_at == a.startsAt.isoformat()
    )
    conn.execute(
        sa.update(alerts_t).where(this).values(status="firing", closed_at=None, missing_since=None)
    )
    conn.execute(
        sa.update(incidents_t)
        .where((incidents_t.c.id == incident) & (incidents_t.c.status == "stale"))
        .values(status="firing", resolved_at=None)
    )


def resolve(
    conn: Connection, db: Database, enqueue: Enqueue, incident: int, a: Alert, delay: float,
    now: float, created: list,  # jobs.Queued: the runs this transaction made (to dispatch)
) -> str:  # fmt: skip
    """The alert resolves; the incident resolves with its last firing alert."""
    ac = alerts_t.c
    ends = a.endsAt.isoformat() if a.endsAt else None
    this = (ac.fingerprint == a.fingerprint) & (ac.starts_at == a.startsAt.isoformat())
    changed = conn.execute(  # a stale alert whose resolution came late resolves too
        sa.update(alerts_t).where(this & ac.status.in_(("firing", "stale")))
        .values(status="resolved", ends_at=ends, closed_at=now, missing_since=None)
    ).rowcount  # fmt: skip
    if changed == 0:
        return "resolved-duplicate"
    closed = close_if_done(conn, db, enqueue, incident, now, delay, created, ends)
    return "resolved" if closed else "alert-resolved"


def close_if_done(
    conn: Connection, db: Database, enqueue: Enqueue, incident: int, now: float, delay: float,
    created: list, ends: str | None = None, how: str = "resolved",
) -> bool:  # fmt: skip
    """Close the incident when none of its symptom alerts fires any more (slow-burn
    alerts are context: they never hold it open, unless they are all it has), as its
    last one ended: `resolved` (with its verification) by a resolution, `stale` when
    reconciliation found it gone. A late resolution turns a stale incident into a
    resolved one."""
    ac = alerts_t.c
    rows = conn.execute(
        sa.select(ac.status, ac.context, ac.ends_at).where(ac.incident_id == incident)
    ).all()
    symptoms = [r for r in rows if not r.context] or rows
    if any(r.status == "firing" for r in symptoms):
        return False
    ends = max((r.ends_at for r in symptoms if r.ends_at), key=utc, default=ends)
    closable = ("firing", "stale") if how == "resolved" else ("firing",)
    done = conn.execute(
        sa.update(incidents_t)
        .where((incidents_t.c.id == incident) & incidents_t.c.status.in_(closable))
        .values(status=how, ends_at=ends, resolved_at=now)
    )
    if done.rowcount == 0:  # another receiver closed it in the meantime
        return False
    if how == "resolved":
        add_event(conn, db.insert, "resolved", incident, None, now)
        enqueue(conn, incident, lead_alert(conn, incident), "verification", now + delay, created,
                now=now)  # fmt: skip
    return True
