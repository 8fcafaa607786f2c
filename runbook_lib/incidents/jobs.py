"""What the index says of runs beside the run itself (`contract.request.RunRequest`): a run
the accept transaction queued, the investigations before a run, which finding says what
happened, and what a finished run tells the team."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runbook_lib.contract.incident import IncidentRun
from runbook_lib.storage.database import by_incident
from runbook_lib.storage.migrations import schema

incidents_t, runs_t = schema.INCIDENTS, schema.RUNS
T = TypeVar("T")


@dataclass(frozen=True)
class Queued:
    """A run the accept transaction created: what a dispatcher needs to send its task."""

    run_id: int
    kind: str
    not_before: float
    incident_id: int = 0  # what the receiver's log line says of it
    alertname: str = ""
    record: str = ""
    trigger: str = ""


def event_kind(kind: str, trigger: str) -> str:
    """What a finished run tells the team: its kind, or why it ran when that is the news
    (an escalation, an operator's re-investigation)."""
    if trigger.startswith("escalated:"):
        return "escalated"
    if trigger.startswith("operator:"):
        return "reinvestigation"
    return kind


def incident_columns() -> list[sa.Column]:
    c = incidents_t.c
    return [c.alertname.label("i_alertname"), c.runbook, c.fingerprint, c.starts_at, c.ends_at,
            c.labels, c.annotations, c.received_at]  # fmt: skip


INVESTIGATING = ("investigation", "mitigation")  # runs that investigate (a mitigation does too)
READABLE = (*INVESTIGATING, "manual")  # runs whose record answers what happened


def earlier_runs(conn: Connection, incident: int, run_id: int) -> list[dict]:
    """The incident's investigations queued before run `run_id`, oldest first."""
    c = runs_t.c
    keep = (c.record, c.kind, c.alertname, c.severity, c.state, c.status, c.top_cause, c.trigger)
    rows = conn.execute(
        sa.select(*keep)
        .where((c.incident_id == incident) & (c.id < run_id) & c.kind.in_(INVESTIGATING))
        .order_by(c.id)
    )
    return [dict(r._mapping) for r in rows]


def best_finding(items: list[T], status: Callable[[T], str | None]) -> T | None:
    """Which of an incident's finished investigations (oldest first) says what happened:
    the newest that completed, else the newest that ran without all its data (degraded),
    else the newest (a failed one says why). The incident page, the messages and the
    post-mortem all read this one."""
    for wanted in ("completed", "degraded"):
        found = [i for i in items if status(i) == wanted]
        if found:
            return found[-1]
    return items[-1] if items else None


def runs_of(conn: Connection, incident_ids: list[int]) -> dict[int, list[IncidentRun]]:
    """Each incident's runs, oldest first."""
    return by_incident(conn, runs_t, incident_ids, (runs_t.c.id,),
                       lambda r: IncidentRun.model_validate(r._mapping))  # fmt: skip


def current_investigation(runs: Sequence[IncidentRun]) -> IncidentRun | None:
    """The investigation people should read: the best finished one (`best_finding`), else
    the first (still queued or running). After an escalation that is the one the more
    severe alert led, so the page, the lead of its record and the message agree on the
    severity; a later re-investigation that failed does not hide the earlier finding."""
    investigations = [r for r in runs if r.kind in READABLE]
    done = [r for r in investigations if r.state == "done"]
    if done:
        return best_finding(done, lambda r: r.status)
    return investigations[0] if investigations else None


@dataclass(frozen=True)
class Finished:
    """A run filed as done: what the receiver's /metrics counts of it."""

    run_id: int
    kind: str
    runbook: str
    status: str
    seconds: float  # from its (last) start to its filing
    finished_at: float


def finished_since(conn: Connection, after: float) -> list[Finished]:
    """Runs filed as done after `after` (their `finished_at`), oldest first, whichever
    process ran them."""
    c = runs_t.c
    rows = conn.execute(
        sa.select(c.id, c.kind, incidents_t.c.runbook, c.status, c.started_at, c.finished_at)
        .join(incidents_t)
        .where((c.state == "done") & (c.finished_at > after))
        .order_by(c.finished_at, c.id)
    )
    return [
        Finished(r.id, r.kind, r.runbook, r.status or "unknown",
                 max(0.0, r.finished_at - (r.started_at or r.finished_at)), r.finished_at)
        for r in rows
    ]  # fmt: skip
