"""What the queue hands a worker: one run, typed. The index builds a `RunRequest` when a run
is claimed (`incidents.queue`); the worker turns it into the notebook's parameters in one
place (`RunRequest.parameters`) and the fields its summary files about the run
(`RunRequest.summary_fields`). It is JSON both ways (`model_dump_json`,
`model_validate_json`), so it crosses a process or a broker as it is.

The alert's times stay the text the index holds (RFC 3339 as Alertmanager sent it, read by
`contract.alerts.Alert`): the notebook's `starts_at`/`ends_at` parameters are that text."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runbook_lib.contract import summary
from runbook_lib.contract.clock import utc

Kind = Literal["investigation", "verification", "mitigation", "manual"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LeadAlert(_Frozen):
    """The alert that leads the run: `contract.alerts.Alert`'s fields as the index keeps them."""

    name: str
    fingerprint: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str
    ends_at: str | None = None

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


class RelatedAlert(_Frozen):
    """Another alert of the incident, as the record's header lists it."""

    alertname: str
    severity: str | None = None
    starts_at: str | None = None
    status: str | None = None
    fingerprint: str | None = None


class EarlierRun(_Frozen):
    """An investigation of the incident queued before this run."""

    record: str
    kind: str
    alertname: str | None = None
    severity: str | None = None
    state: str | None = None
    status: str | None = None
    top_cause: str | None = None
    trigger: str | None = None


class IncidentContext(_Frozen):
    """What the index knows of the run's incident: why this run, the investigations before
    it, the runbook's past incidents (records/history.py), the mitigations approved."""

    id: int
    trigger: str = ""  # why the run exists ('' for the first; see schema.RUNS)
    requested_by: str | None = None  # the operator who asked for it
    earlier: tuple[EarlierRun, ...] = ()
    past: tuple[dict[str, Any], ...] = ()  # rows of records/history.py, for notebook.recurrence
    approved: tuple[str, ...] = ()  # a mitigation run: the mitigations the operator approved

    @property
    def escalated(self) -> bool:
        return self.trigger.startswith("escalated:")


class RunIncident(BaseModel):
    """The notebook's `incident` parameter, typed as a run reads it (`run.p.incident`): why
    this run exists, the investigations before it, the runbook's past incidents and, in a
    mitigation run only, the mitigations approved. papermill injects it as JSON
    (`RunRequest.incident_parameter`); a key of a later version is ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int | None = None
    trigger: str = ""
    requested_by: str = ""
    earlier: tuple[summary.EarlierRun, ...] = ()
    past: tuple[dict[str, Any], ...] = ()  # rows of incidents/history.py
    approved_mitigations: tuple[str, ...] | None = None  # None: not a mitigation run

    @property
    def escalated_from(self) -> summary.EarlierRun | None:
        """The investigation an escalation followed, or None: the last investigation before
        it (an approved mitigation run in between is not one)."""
        if not self.trigger.startswith("escalated:"):
            return None
        before = [e for e in self.earlier if e.kind == "investigation"]
        return before[-1] if before else None

    @property
    def requested(self) -> bool:
        """An operator asked for this run on the incident page."""
        return self.trigger.startswith("operator:")


class QueueState(_Frozen):
    """How the run went through the queue (the receiver's log and summary.json say it)."""

    attempts: int = 1
    enqueued_at: float = 0.0
    waited_s: float = 0.0  # from due to claimed
    held_since: float | None = None  # when a hold first kept it back
    held_s: float = 0.0  # from the first hold to the start
    hold_note: str | None = None  # what it waited for


class RunRequest(_Frozen):
    """One run of a runbook notebook for an incident, as a worker takes it."""

    run_id: int
    kind: Kind
    record: str  # the record's directory name, fixed when the run was queued
    runbook: str
    alert: LeadAlert
    incident: IncidentContext
    related: tuple[RelatedAlert, ...] = ()
    queue: QueueState = Field(default_factory=QueueState)
    verification_of: str | None = None  # a verification: the investigation's record

    def parameters(
        self, *, prometheus_url: str = "", alertmanager_url: str = "", extra: dict | None = None
    ) -> dict[str, Any]:
        """The notebook's parameters: alert fields as data, never as code. `extra` (the
        service's `--param`) wins over the alert's; a `mitigation` run is the runbook again
        with its mitigation allowed (an operator approved it on the incident page)."""
        others = {k: v for k, v in self.alert.labels.items() if k != "alertname"}
        labels = {**others, "alertname": self.alert.name}
        at = utc(None).isoformat()
        return {
            "alert_name": self.alert.name,
            "severity": labels.get("severity", ""),
            "labels": labels,
            "annotations": dict(self.alert.annotations),
            "starts_at": self.alert.starts_at or at,
            "ends_at": self.alert.ends_at or "",
            "fingerprint": self.alert.fingerprint,
            "at": at,
            **({"prometheus_url": prometheus_url} if prometheus_url else {}),
            **({"alertmanager_url": alertmanager_url} if alertmanager_url else {}),
            **({"related_alerts": [r.model_dump() for r in self.related]} if self.related else {}),
            "incident": self.incident_parameter(),
            **(extra or {}),
            **({"allow_mitigation": True} if self.kind == "mitigation" else {}),
        }

    def incident_parameter(self) -> dict[str, Any]:
        """The notebook's `incident` parameter (`RunIncident` as JSON, as papermill injects
        it); `approved_mitigations` only in a mitigation run."""
        inc = self.incident
        keep = set(summary.EarlierRun.model_fields)
        param = RunIncident(
            id=inc.id,
            trigger=inc.trigger,
            requested_by=inc.requested_by or "",
            earlier=tuple(e.model_dump(include=keep, exclude_none=True) for e in inc.earlier),
            past=inc.past,
            approved_mitigations=inc.approved if self.kind == "mitigation" else None,
        ).model_dump(mode="json")
        if param["approved_mitigations"] is None:
            del param["approved_mitigations"]
        return param

    def summary_fields(self) -> dict[str, Any]:
        """What summary.json says of the run beside the notebook's summary
        (`contract.summary.Summary`'s fields about the run)."""
        fields: dict[str, Any] = {
            "incident_id": self.incident.id,
            "run_id": self.run_id,
            "kind": self.kind,
            "attempt": self.queue.attempts,
        }
        if self.incident.trigger:
            fields["trigger"] = self.incident.trigger
        if self.incident.earlier:
            fields["earlier_records"] = [e.record for e in self.incident.earlier]
        if self.queue.held_since is not None:
            held = {"seconds": round(self.queue.held_s, 1), "for": self.queue.hold_note or ""}
            fields["held"] = held
        if self.verification_of:
            fields["verification_of"] = self.verification_of
        return fields
