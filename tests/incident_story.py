"""Incidents for the notification tests, told through the index's own API: alerts accepted,
runs claimed and finished with a record on disk, and operators' actions written as the
incident page writes them (an action row and its event, in one transaction)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.contract.alerts import Alert
from runbook_lib.contract.request import RunRequest
from runbook_lib.incidents import actions
from runbook_lib.incidents.index import Index
from runbook_lib.service.notify import NotifyConfig, Sender
from runbook_lib.storage.migrations.schema import INCIDENTS
from runbook_lib.storage.outbox import add_event
from tests.conftest import summary_of

T0 = datetime(2026, 11, 28, 4, tzinfo=UTC)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def alert(
    name: str, severity: str, fp: str, *, minute: int = 0, resolved_at: int | None = None,
    instance: str = "web-1:9464", summary: str = "errors at 7%",
) -> Alert:  # fmt: skip
    """An alert that started `minute` minutes after T0 (resolved at minute `resolved_at`)."""
    labels = {"alertname": name, "instance": instance}
    if severity:
        labels["severity"] = severity
    return Alert(
        status="firing" if resolved_at is None else "resolved",
        labels=labels,
        annotations={"summary": summary},
        startsAt=T0 + timedelta(minutes=minute),
        endsAt=T0 + timedelta(minutes=resolved_at) if resolved_at is not None else None,
        fingerprint=fp,
    )


def finding(cause: str, evidence: str, command: str = "") -> dict:
    """A completed investigation's summary whose one likely cause is `cause`."""
    return {
        "status": "completed",
        "top_cause": cause,
        "top_causes": [{"cause": cause, "explained_share": 0.8, "score": 0.9}],
        "diagnosis": [{"cause": cause, "verdict": "likely", "score": 0.9,
                       "explained_share": 0.8, "evidence": [evidence], "strongest": [evidence]}],
        "first_command": command,
    }  # fmt: skip


HELD = {
    "status": "completed",
    "post_checks": [{"check": "error rate under 1% for 15 minutes", "holds": True}],
}


class Story:
    def __init__(self, tmp_path: Path) -> None:
        self.out = tmp_path
        self.index = Index(tmp_path / "index.sqlite")

    def sender(self, config: NotifyConfig, **kw) -> Sender:
        """A sender that was on from T0 (so actions dated then are news, not backlog)."""
        sender = Sender(self.index, config, self.out, **kw)
        sender.started_at = T0.timestamp()
        return sender

    def fire(self, *alerts: Alert) -> list[str]:
        return self.index.accept(list(alerts), verify_delay=0)

    def run(self, summary: dict) -> RunRequest:
        """The next due run, claimed and finished with `summary` (and its record on disk)."""
        job = self.index.claim()
        assert job is not None, "no run is due"
        rec = self.out / job.record
        rec.mkdir(parents=True)
        summary_of(summary).write(rec / "summary.json")
        cell = {"cell_type": "code", "source": ["run.assess()"],
                "outputs": [{"data": {"image/png": base64.b64encode(PNG).decode()}}]}  # fmt: skip
        (rec / "record.ipynb").write_text(json.dumps({"cells": [cell]}))
        self.index.finish(job.run_id, summary_of(summary))
        return job

    def act(self, incident: int, event: str, actor: str, at: datetime, **detail) -> int:
        """An operator's action as the incident page records it: `acknowledged`,
        `mitigated` or `silenced` (with `ends_at`), its row, the incident's columns and the
        event, in one transaction."""
        kind = {"acknowledged": "acknowledge", "mitigated": "mitigated", "silenced": "silence"}
        now = at.timestamp()
        with self.index.tx() as conn:
            aid = actions.record(conn, incident, kind[event], actor, now, detail=detail)
            changes = {"acknowledged": {"acknowledged_at": now, "acknowledged_by": actor},
                       "mitigated": {"mitigated_at": now, "mitigated_by": actor}}.get(event)  # fmt: skip
            if changes:
                conn.execute(sa.update(INCIDENTS).where(INCIDENTS.c.id == incident)
                             .values(**changes))  # fmt: skip
            add_event(conn, self.index.insert, event, incident, None, now,
                      key=f"{event}:a{aid}", detail={"actor": actor, **detail})  # fmt: skip
        return aid

    def ask(self, incident: int, kind: str, actor: str) -> int:
        """An operator asks for a run: `reinvestigate` (a new investigation) or `mitigation`
        (the runbook's guarded mitigation); returns the run's id."""
        from runbook_lib.incidents.grouping import lead_alert

        run_kind, prefix = {"reinvestigate": ("investigation", "operator"),
                            "mitigation": ("mitigation", "mitigation")}[kind]  # fmt: skip
        now = datetime.now(UTC).timestamp()
        with self.index.tx() as conn:
            aid = actions.record(conn, incident, kind, actor, now)
            lead = lead_alert(conn, incident)
            run = self.index.queue.enqueue(conn, incident, lead, run_kind, now, [],
                                           trigger=f"{prefix}:{aid}", suffix=f"-a{aid}",
                                           requested_by=actor, now=now)  # fmt: skip
            actions.set_run(conn, aid, run)
        return run


def warning_investigated(story: Story) -> int:
    """A warning fires and its investigation finishes. Returns the incident."""
    story.fire(alert("GgenMcpElevatedErrorRate", "warning", "w"))
    return story.run(finding("invalid_input", "✔ validation errors are 81% of errors")).incident.id


def critical_joins(story: Story) -> None:
    """The critical twin of `warning_investigated`'s alert starts a minute after it: the
    incident escalates, and the critical's own investigation finishes."""
    assert story.fire(alert("GgenMcpHighErrorRate", "critical", "c", minute=1)) == ["escalated"]
    story.run(finding("database_connection", "✔ db timeouts are 70% of errors",
                      "psql -c 'select 1'"))  # fmt: skip


def resolve(story: Story, at_minute: int = 41) -> None:
    """Both alerts of `escalated`'s incident resolve; the verification finds the fix held."""
    story.fire(alert("GgenMcpElevatedErrorRate", "warning", "w", resolved_at=at_minute))
    story.fire(alert("GgenMcpHighErrorRate", "critical", "c", minute=1, resolved_at=at_minute))
    story.run(HELD)
