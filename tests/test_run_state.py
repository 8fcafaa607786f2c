"""What the incident page says of a run's state: a held run says why it waits."""

from __future__ import annotations

import pytest

from runbook_lib.contract.incident import IncidentRun
from runbook_lib.service.incident_view import run_state


def _run(**fields) -> IncidentRun:
    base = {"id": 1, "incident_id": 1, "kind": "investigation", "state": "queued",
            "record": "rec-1", "not_before": 100.0, "enqueued_at": 100.0}  # fmt: skip
    return IncidentRun(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"state": "queued"}, "queued"),
        ({"state": "running", "started_at": 101.0}, "running"),
        ({"state": "done", "status": "finished"}, "finished"),
        ({"state": "done", "status": "failed"}, "failed"),
        ({"state": "done"}, "done"),
        ({"state": "waiting"}, "waiting for the mitigation to end"),
        (
            {"held_since": 100.5, "hold_note": "GgenMcpHighErrorRate is pending (critical)"},
            "held: GgenMcpHighErrorRate is pending (critical)",
        ),
        ({"held_since": 100.5}, "held: waiting for a more severe alert"),
        # a run taken off hold and running again says so, not its old hold
        ({"state": "running", "held_since": 100.5, "hold_note": "x pending"}, "running"),
    ],
)
def test_run_state_says_why_a_run_waits(fields: dict, shown: str) -> None:
    assert run_state(_run(**fields)) == shown
