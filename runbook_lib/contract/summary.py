"""What a run files as `summary.json`, declared once: the notebook fills a `Summary`, the
engine writes it (a failed run's too), and the record's lead, `runbook summary`, the index,
the pages, the messages and the post-mortem read it by attribute.

`schema_version` is the file's: version 1 is summary.json as written before this model (no
`schema_version` key), read as it is. A file keeps the keys its writer set and no others
(`Summary.as_json`), so a failed run's summary stays short and an old file reads back the same.

`extra` policy: a summary and its nested parts allow keys this model does not declare, and
keep them when written again: a summary written by a newer version, or a part a reader does
not use (an action's own fields, the history's last incident), must not make a record
unreadable. What a reader uses is declared and typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 2
Status = Literal["completed", "degraded", "failed", "timed_out"]
Verdict = Literal["likely", "possible", "ruled_out", "unknown"]
# A figure as the writer gave it: an int stays an int (pydantic's float would write 3 as 3.0).
Number = int | float


class Part(BaseModel):
    """A nested part of the summary: undeclared keys kept (see the module's `extra` policy)."""

    model_config = ConfigDict(extra="allow")

    def as_dict(self) -> dict[str, Any]:
        """The part as its writer gave it, for helpers that take the same shape from
        elsewhere too (`notebook.recurrence` from the index, `mitigation.proposed`)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class CauseVerdict(Part):
    """One cause as the diagnosis judged it (`diagnosis.engine.Verdict.as_dict`)."""

    cause: str
    verdict: Verdict
    score: Number = 0.0
    evidence: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    explained_share: Number | None = None
    strongest: list[str] = Field(default_factory=list)


class TopCause(Part):
    """The top cause, or a contributing one, with the share of the symptom it explains."""

    cause: str
    explained_share: Number | None = None
    score: Number | None = None


class Attribution(Part):
    """How the symptom splits among the causes (`diagnosis.attribution.Attribution`)."""

    of_what: str = ""
    total: Number = 0.0
    parts: dict[str, Number] = Field(default_factory=dict)
    unexplained: Number = 0.0
    shares: dict[str, Number | None] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class Action(Part):
    """A guarded mitigation the run tried: what, whether it acted, and what came of it."""

    action: str = ""
    done: bool = False
    pids: list[int] | None = None  # the processes it ended
    outcome: str = ""


class PostCheck(Part):
    """A post-resolution check: its text, what it found, and whether it held (None: no
    answer, or one for a person)."""

    check: str
    status: str = ""
    holds: bool | None = None


class ResolutionStep(Part):
    """The runbook's commands for a likely or possible cause, filled in with real values."""

    cause: str
    verdict: str
    commands: str


class History(Part):
    """What the runbook's past incidents say of this top cause (`notebook.recurrence`)."""

    days: int = 0
    cause: str = ""
    instance: str = ""
    on_instance: int = 0
    on_fleet: int = 0
    last: dict[str, Any] | None = None  # a past incident's row, as the index gave it
    recurrence: bool = False
    last_age_days: Number | None = None


class EarlierRun(Part):
    """The investigation an escalation followed."""

    record: str = ""
    kind: str = "investigation"
    alertname: str = ""
    severity: str = ""
    status: str | None = None
    top_cause: str | None = None


class Held(Part):
    """How long a run waited for a more severe alert of its fault, and for what."""

    seconds: Number = 0.0
    for_: str = Field("", alias="for")

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Summary(BaseModel):
    """A run's summary: the alert, what was found, what to do, and where the run sits."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = 1  # a summary.json without the key is of version 1
    # fields in the order the writers have always written them
    alert: str
    runbook: str
    status: Status
    degraded_by: list[str] = Field(default_factory=list)  # what the run could not see at all
    severity: str = ""
    starts_at: str | None = None
    ends_at: str | None = None
    evaluated_at: str | None = None
    fingerprint: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    figures: dict[str, Number] = Field(default_factory=dict)
    diagnosis: list[CauseVerdict] = Field(default_factory=list)
    top_cause: str | None = None
    top_causes: list[TopCause] = Field(default_factory=list)
    attribution: Attribution | None = None
    unexplained_share: Number | None = None
    data_gaps: list[str] = Field(default_factory=list)
    error: str | None = None  # why a run failed or timed out
    actions: list[Action] = Field(default_factory=list)
    post_checks: list[PostCheck] = Field(default_factory=list)
    first_command: str | None = None
    history: History | None = None
    escalated_from: EarlierRun | None = None
    resolution: list[ResolutionStep] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)
    # where the run sits (written by the service beside the notebook's part)
    incident_id: int | None = None
    run_id: int | None = None
    kind: str | None = None
    attempt: int | None = None
    trigger: str | None = None
    earlier_records: list[str] = Field(default_factory=list)
    held: Held | None = None
    verification_of: str | None = None
    runbooks_hash: str | None = None
    replay_of: str | None = None

    @classmethod
    def load(cls, path: Path) -> Summary:
        """A summary.json, of this version or the previous one; ValueError naming the file
        and the field when it is not a summary."""
        try:
            return cls.model_validate_json(Path(path).read_text())
        except ValidationError as exc:
            said = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise ValueError(f"{path}: not a run summary ({said})") from None

    def with_fields(self, **fields: Any) -> Summary:
        """This summary with more fields (the service's about the run), validated."""
        return type(self).model_validate({**self.as_json(), **fields})

    def as_json(self) -> dict[str, Any]:
        """The keys its writer set, as JSON values (what summary.json holds)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)

    def write(self, path: Path) -> None:
        """summary.json of this version."""
        out = {**self.as_json(), "schema_version": SCHEMA_VERSION}
        Path(path).write_text(json.dumps(out, indent=1))

    @property
    def done(self) -> bool:
        """Whether a mitigation acted."""
        return any(a.done for a in self.actions)

    def verdict_of(self, cause: str | None) -> CauseVerdict | None:
        """The diagnosis of `cause`, when it was judged."""
        return next((d for d in self.diagnosis if d.cause == cause), None)
