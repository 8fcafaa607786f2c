"""Twin runs: an incident's first investigation and the run a symptom alert got beside it
while a worker held that one claimed, asking Prometheus whether to wait (a slow-burn alert's
run, with the symptom on its way). Two workers may claim them at once; only one may begin,
led by the symptom (`RunQueue.begin`). The twin is read under a row lock (PostgreSQL; SQLite's
BEGIN IMMEDIATE serializes writers), so a worker claiming it meanwhile waits, and is seen."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.alerts import lead_rank
from runbook_lib.contract.request import RunRequest
from runbook_lib.incidents import grouping
from runbook_lib.storage.migrations import schema

runs_t, alerts_t = schema.RUNS, schema.ALERTS
# A claimed run whose worker is still asking Prometheus whether to hold it keeps its twin
# (the incident's first run, or the symptom's run beside it) from beginning this long at
# most (`begin`): a worker that took longer is taken for gone. The twin asks again after
# `YIELD_S`.
DECIDING_S = 30.0
YIELD_S = 1.0
ARRIVED = "a stronger alert of its fault arrived before it began"


def first_not_begun(
    conn: Connection, job: RunRequest, now: float, *, held: bool = False
) -> sa.Row | None:
    """The first investigation of `job`'s incident, not begun: queued or claimed by a worker
    still deciding (not after `DECIDING_S`); with `held`, queued with a hold only."""
    c = runs_t.c
    waits = (c.state == "queued") & c.held_since.is_not(None) if held else (
        (c.state == "queued") | _deciding(now)
    )  # fmt: skip
    return conn.execute(
        sa.select(c.id, c.state)
        .where((c.incident_id == job.incident.id) & (c.id < job.run_id) & (c.trigger == "")
               & (c.kind == "investigation") & c.begun_at.is_(None) & waits)
        .limit(1).with_for_update()
    ).first()  # fmt: skip


def twin(conn: Connection, job: RunRequest, now: float) -> sa.Row | None:
    """The run `job` may not begin beside (see `RunQueue.begin`), or None: for a symptom's
    run the first run, queued or deciding; for a first run a symptom's run still deciding
    (a queued one it has taken over already)."""
    if job.kind != "investigation":
        return None
    if job.incident.trigger.startswith("symptom:"):
        return first_not_begun(conn, job, now)
    if job.incident.trigger != "":
        return None
    c = runs_t.c
    return conn.execute(
        sa.select(c.id, c.state)
        .where((c.incident_id == job.incident.id) & (c.id > job.run_id)
               & c.trigger.startswith("symptom:") & c.begun_at.is_(None) & _deciding(now))
        .limit(1).with_for_update()
    ).first()  # fmt: skip


def fold(
    conn: Connection, job: RunRequest, first: int, *, not_before: float, note: str | None
) -> None:
    """A symptom's run `job` goes; the incident's first run `first` (not begun, queued: read
    under a row lock) takes its alert and record, due at `not_before`, with `note` (the
    symptom run's hold) or, when None, its own note saying that this alert came. When a
    stronger alert leads `first` already (a critical that arrived while it was queued), it
    keeps that lead: this run only goes."""
    c = runs_t.c
    mine = conn.execute(
        sa.select(c.record, c.alertname, c.severity).where(c.id == job.run_id)
    ).one()
    conn.execute(sa.delete(runs_t).where(c.id == job.run_id))
    if _outranks(conn, job.incident.id, first, mine.severity):
        return
    came = grouping.led_note(mine.alertname, mine.severity)
    conn.execute(
        sa.update(runs_t).where(c.id == first)
        .values(record=mine.record, alertname=mine.alertname, severity=mine.severity,
                not_before=not_before, hold_note=note if note is not None else came)
    )  # fmt: skip


def _outranks(conn: Connection, incident: int, run: int, severity: str | None) -> bool:
    """Whether `run`'s lead alert outranks a symptom alert of `severity` (`lead_rank`)."""
    c, a = runs_t.c, alerts_t.c
    lead = conn.execute(sa.select(c.alertname, c.severity).where(c.id == run)).one()
    slow_burn = conn.execute(
        sa.select(a.context).where((a.incident_id == incident) & (a.alertname == lead.alertname))
        .limit(1)
    ).scalar()  # fmt: skip
    return lead_rank(bool(slow_burn), lead.severity or "") >= lead_rank(False, severity or "")


def _deciding(now: float) -> sa.ColumnElement:
    """Claimed by a worker that may still be asking Prometheus whether to hold it."""
    c = runs_t.c
    return (c.state == "running") & (c.started_at > now - DECIDING_S)
