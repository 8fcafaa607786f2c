"""What the queue hands a worker (`contract.request.RunRequest`): JSON both ways, the
notebook's parameters made in one place, and a parameter of the wrong type refused by the
notebook's own declarations, naming it."""

from __future__ import annotations

import pytest

from runbook_lib.contract.request import (
    EarlierRun,
    IncidentContext,
    LeadAlert,
    QueueState,
    RelatedAlert,
    RunRequest,
)
from runbook_lib.notebook import run as notebook_run
from runbook_lib.notebook.parameters import ParameterError


def escalated(kind: str = "investigation") -> RunRequest:
    return RunRequest(
        run_id=12, kind=kind, record="20261130T081000Z-GgenMcpHighErrorRate-fe12",
        runbook="high_error_rate",
        alert=LeadAlert(name="GgenMcpHighErrorRate", fingerprint="fe12",
                        labels={"alertname": "GgenMcpHighErrorRate", "severity": "critical",
                                "instance": "web-1:9464"},
                        annotations={"summary": "errors at 7%"},
                        starts_at="2026-11-30T08:10:00+00:00"),
        incident=IncidentContext(
            id=5, trigger="escalated:fe12",
            earlier=(EarlierRun(record="20261130T080000Z-GgenMcpElevatedErrorRate-ab01",
                                kind="investigation", alertname="GgenMcpElevatedErrorRate",
                                severity="warning", state="done", status="completed",
                                top_cause="invalid_input", trigger=""),),
            approved=("restart_container",),
        ),
        related=(RelatedAlert(alertname="GgenMcpElevatedErrorRate", severity="warning",
                              starts_at="2026-11-30T08:00:00+00:00", status="firing",
                              fingerprint="ab01"),),
        queue=QueueState(attempts=2, enqueued_at=1.0, waited_s=3.5, held_since=2.0, held_s=40.04,
                         hold_note="waiting for GgenMcpHighErrorRate"),
    )  # fmt: skip


def test_a_request_crosses_a_process_as_json_and_comes_back_equal() -> None:
    req = escalated()
    again = RunRequest.model_validate_json(req.model_dump_json())
    assert again == req
    assert again.incident.escalated and again.alert.severity == "critical"
    with pytest.raises(ValueError, match="kind"):
        RunRequest.model_validate_json(req.model_dump_json().replace('"investigation"', '"rerun"'))


def test_the_parameters_are_the_alerts_fields_and_what_the_incident_holds() -> None:
    params = escalated().parameters(prometheus_url="http://prom:9090",
                                    extra={"lookback_minutes": 30})  # fmt: skip
    assert params["alert_name"] == "GgenMcpHighErrorRate" and params["severity"] == "critical"
    assert list(params["labels"]) == ["severity", "instance", "alertname"]  # alertname last
    assert params["starts_at"] == "2026-11-30T08:10:00+00:00" and params["ends_at"] == ""
    assert params["prometheus_url"] == "http://prom:9090" and "alertmanager_url" not in params
    assert params["lookback_minutes"] == 30
    assert params["related_alerts"] == [
        {"alertname": "GgenMcpElevatedErrorRate", "severity": "warning",
         "starts_at": "2026-11-30T08:00:00+00:00", "status": "firing", "fingerprint": "ab01"}
    ]  # fmt: skip
    assert params["incident"] == {
        "id": 5, "trigger": "escalated:fe12", "requested_by": "",
        "earlier": [{"record": "20261130T080000Z-GgenMcpElevatedErrorRate-ab01",
                     "kind": "investigation", "alertname": "GgenMcpElevatedErrorRate",
                     "severity": "warning", "status": "completed", "top_cause": "invalid_input"}],
        "past": [],
    }  # fmt: skip
    assert "allow_mitigation" not in params  # an investigation never mitigates by itself
    mitigation = escalated("mitigation").parameters()
    assert mitigation["allow_mitigation"] is True
    assert mitigation["incident"]["approved_mitigations"] == ["restart_container"]


def test_the_summary_says_where_the_run_sat_in_the_queue() -> None:
    assert escalated().summary_fields() == {
        "incident_id": 5, "run_id": 12, "kind": "investigation", "attempt": 2,
        "trigger": "escalated:fe12",
        "earlier_records": ["20261130T080000Z-GgenMcpElevatedErrorRate-ab01"],
        "held": {"seconds": 40.0, "for": "waiting for GgenMcpHighErrorRate"},
    }  # fmt: skip


def test_a_parameter_of_the_wrong_type_is_refused_naming_it() -> None:
    # the notebook's parameters cell declares the types; a value that is not one is named
    namespace = {"__annotations__": {"live": bool, "watch_dirs": list[str]},
                 "live": False, "watch_dirs": "/var/log"}  # fmt: skip
    with pytest.raises(
        ParameterError, match=r'parameter watch_dirs = "/var/log" is not list\[str\]'
    ):
        notebook_run.given_parameters(namespace)
    # undeclared in the cell, the contract's type still holds when the run starts from it
    with pytest.raises(ParameterError, match=r"parameter lookback_minutes: .*integer"):
        notebook_run.derive("high_error_rate", {"lookback_minutes": "thirty", "alert_name": "X"})
