"""The incident as the index holds it: one typed shape from the repository that reads it
(`incidents.repository.Incidents`) to the pages, the messages, the notifier and
`runbook incidents`, which read it by attribute.

Each model is one row of a table of `storage/migrations/schema.py`, every column a field
of the column's type (labels, annotations and an action's detail parsed from their JSON
text), so a row of the wrong type is refused naming its field when the incident is read.
The fields are in the columns' order, and an incident's alerts, runs and actions follow
its columns: `model_dump(mode="json")` is what `runbook incidents --json` prints.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncidentAlert(_Row):
    """One alert of an incident (table `alerts`): its first, or one that joined it."""

    id: int
    incident_id: int
    fingerprint: str
    starts_at: str
    alertname: str
    severity: str
    labels: dict[str, str]
    status: str  # firing | resolved | stale
    received_at: float
    ends_at: str | None = None
    closed_at: float | None = None
    missing_since: float | None = None
    context: bool = False  # slow-burn: neither leads the incident nor holds it open


class IncidentRun(_Row):
    """One run of an incident (table `runs`): an investigation, a verification, ..."""

    id: int
    incident_id: int
    kind: str
    state: str  # queued | running | waiting | done
    record: str
    not_before: float
    enqueued_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    status: str | None = None
    top_cause: str | None = None
    error: str | None = None
    location: str | None = None
    dispatched_at: float | None = None
    trigger: str = ""  # why it exists: '', `escalated:<fp>`, `operator:<id>`, ...
    alertname: str | None = None  # the alert that led it, and its severity
    severity: str | None = None
    held_since: float | None = None
    hold_note: str | None = None
    verified: bool | None = None
    requested_by: str | None = None
    begun_at: float | None = None  # its worker passed the hold (started_at: claimed)


class IncidentAction(_Row):
    """What a person did on an incident (table `actions`), with who and when."""

    id: int
    incident_id: int
    kind: str
    actor: str
    at: float
    detail: dict[str, Any] = {}
    nonce: str | None = Field(None, exclude=True, repr=False)  # the form's: no replay
    run_id: int | None = None  # the run it started, if any


class Incident(_Row):
    """An incident (table `incidents`) with its actions, runs (oldest first) and alerts
    (the most severe first, then by start)."""

    id: int
    fingerprint: str
    starts_at: str
    alertname: str
    runbook: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    status: str  # firing | resolved | stale | manual
    ends_at: str | None = None
    received_at: float
    resolved_at: float | None = None
    instance: str = ""
    mitigated_at: float | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    mitigated_by: str | None = None
    escalated_at: float | None = None
    actions: tuple[IncidentAction, ...] = ()
    runs: tuple[IncidentRun, ...] = ()
    alerts: tuple[IncidentAlert, ...] = ()
