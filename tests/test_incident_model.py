"""The incident as the index gives it is typed (contract/incident.py): `runbook incidents
--json` prints it as it did when it was a dict of rows, and a row of the wrong type is
refused naming its field."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from runbook_lib.contract.alerts import Alert
from runbook_lib.contract.incident import IncidentAction, IncidentAlert, IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.storage.migrations import schema

T0 = 1795838410.0  # 2026-11-28 04:00:10 UTC: the alert started 10 s earlier


def accepted(tmp_path: Path) -> Index:
    """One critical alert, its incident and investigation, acknowledged a minute later."""
    index = Index(tmp_path / "index.sqlite")
    alert = Alert(
        status="firing",
        labels={"alertname": "GgenMcpHighErrorRate", "severity": "critical", "instance": "h:1"},
        annotations={"summary": "Error rate 7.4% (> 5%)"},
        startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
        fingerprint="f1",
    )
    assert index.accept([alert], verify_delay=300, now=T0) == ["queued"]
    index.act(1, "acknowledge", "ana", detail={"note": "on it"}, now=T0 + 60)
    return index


LABELS = {"alertname": "GgenMcpHighErrorRate", "severity": "critical", "instance": "h:1"}
# What `runbook incidents --json` printed for this incident when it was a dict of index
# rows (the columns in the tables' order, then actions, runs, alerts), written by hand;
# the one change: an action is an object, where the dicts printed its Python repr.
EXPECTED = [
    {
        "id": 1,
        "fingerprint": "f1",
        "starts_at": "2026-11-28T04:00:00+00:00",
        "alertname": "GgenMcpHighErrorRate",
        "runbook": "high_error_rate",
        "severity": "critical",
        "labels": LABELS,
        "annotations": {"summary": "Error rate 7.4% (> 5%)"},
        "generator_url": "",
        "status": "firing",
        "ends_at": None,
        "received_at": 1795838410.0,
        "resolved_at": None,
        "instance": "h:1",
        "mitigated_at": None,
        "acknowledged_at": 1795838470.0,
        "acknowledged_by": "ana",
        "mitigated_by": None,
        "escalated_at": None,
        "actions": [
            {
                "id": 1,
                "incident_id": 1,
                "kind": "acknowledge",
                "actor": "ana",
                "at": 1795838470.0,
                "detail": {"note": "on it"},
                "run_id": None,
            }
        ],
        "runs": [
            {
                "id": 1,
                "incident_id": 1,
                "kind": "investigation",
                "state": "queued",
                "record": "20261128T040000Z-GgenMcpHighErrorRate-f1",
                "not_before": 1795838410.0,
                "enqueued_at": 1795838410.0,
                "started_at": None,
                "finished_at": None,
                "attempts": 0,
                "status": None,
                "top_cause": None,
                "error": None,
                "location": None,
                "dispatched_at": None,
                "trigger": "",
                "alertname": "GgenMcpHighErrorRate",
                "severity": "critical",
                "held_since": None,
                "hold_note": None,
                "verified": None,
                "requested_by": None,
                "begun_at": None,
            }
        ],
        "alerts": [
            {
                "id": 1,
                "incident_id": 1,
                "fingerprint": "f1",
                "starts_at": "2026-11-28T04:00:00+00:00",
                "alertname": "GgenMcpHighErrorRate",
                "severity": "critical",
                "labels": LABELS,
                "status": "firing",
                "received_at": 1795838410.0,
                "ends_at": None,
                "closed_at": None,
                "missing_since": None,
                "context": False,
            }
        ],
    }
]


def test_runbook_incidents_json_prints_the_incident_as_the_rows_gave_it(tmp_path: Path) -> None:
    accepted(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "runbook_lib.cli", "incidents", "--json", "--output", str(tmp_path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(out) == EXPECTED
    assert out == json.dumps(EXPECTED, indent=1) + "\n"  # the keys in the same order too


def test_an_incident_read_from_the_index_is_typed(tmp_path: Path) -> None:
    inc = accepted(tmp_path).incident(1)
    [alert], [run], [action] = inc.alerts, inc.runs, inc.actions
    assert isinstance(alert, IncidentAlert) and alert.context is False
    assert alert.labels == LABELS and inc.annotations == {"summary": "Error rate 7.4% (> 5%)"}
    assert isinstance(run, IncidentRun) and run.attempts == 0 and run.not_before == T0
    assert isinstance(action, IncidentAction) and action.detail == {"note": "on it"}
    assert action.at == T0 + 60 and inc.acknowledged_by == "ana"
    with pytest.raises(ValidationError):  # frozen: what the index said stays said
        inc.status = "resolved"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("table", "column", "value", "refused"),
    [
        (schema.RUNS, "attempts", "many", r"IncidentRun\nattempts\n"),
        (schema.ALERTS, "labels", '{"instance": 5}', r"IncidentAlert\nlabels\.instance\n"),
        (schema.INCIDENTS, "received_at", "yesterday", r"Incident\nreceived_at\n"),
    ],
)
def test_a_row_of_the_wrong_type_is_refused_naming_its_field(
    tmp_path: Path, table: sa.Table, column: str, value: object, refused: str
) -> None:
    index = accepted(tmp_path)
    with sa.create_engine(f"sqlite:///{index.path}").begin() as conn:
        # SQLite keeps what it is given, whatever the column's type
        conn.exec_driver_sql(f"UPDATE {table.name} SET {column} = ?", (value,))
    with pytest.raises(ValidationError, match=refused):
        index.incident(1)
