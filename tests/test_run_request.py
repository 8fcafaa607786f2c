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


def test_the_worker_gets_one_typed_spec_over_its_pipe(tmp_path) -> None:
    from pathlib import Path

    from runbook_lib.execution.engine import RunSpec
    from runbook_lib.execution.pinning import Runbooks
    from runbook_lib.service.workers import RunConfig, job_spec

    config = RunConfig(output_dir=tmp_path / "records", prometheus_url="http://prom:9090",
                       cell_timeout=120, run_timeout=900)  # fmt: skip
    from runbook_lib.contract.settings import NOTEBOOKS

    runbooks = Runbooks(NOTEBOOKS, tmp_path / "records")
    spec = job_spec(escalated(), config, runbooks)
    line = spec.model_dump_json()
    assert "\n" not in line  # one line a job on the worker's stdin
    again = RunSpec.model_validate_json(line)
    assert again == spec
    assert again.name == "20261130T081000Z-GgenMcpHighErrorRate-fe12"
    assert again.output_dir == tmp_path / "records" and isinstance(again.output_dir, Path)
    assert again.notebook_dir == runbooks.current.dir and again.runbook == "high_error_rate"
    assert (again.cell_timeout, again.run_timeout, again.queued_s) == (120, 900, 3.5)
    assert again.params["prometheus_url"] == "http://prom:9090"
    assert again.extra["run_id"] == 12 and again.extra["runbooks_hash"] == runbooks.current.hash
    with pytest.raises(ValueError, match="record"):  # a field the worker does not know
        RunSpec.model_validate_json(line.replace('"name"', '"record"'))


def test_the_run_reads_its_incident_typed_from_the_injected_json() -> None:
    from runbook_lib.notebook.display import why_md
    from runbook_lib.notebook.parameters import Params

    req = escalated()
    p = Params.model_validate(req.parameters())  # what the kernel's run.p holds
    assert p.incident.id == 5 and p.incident.approved_mitigations is None  # an investigation
    before = p.incident.escalated_from
    assert (before.record, before.severity, before.top_cause) == (
        "20261130T080000Z-GgenMcpElevatedErrorRate-ab01", "warning", "invalid_input",
    )  # fmt: skip
    assert p.related_alerts[0].fingerprint == "ab01"
    assert why_md(p.incident, "GgenMcpHighErrorRate", "critical").startswith(
        "**⬆️ Escalated** from warning to critical: GgenMcpHighErrorRate joined after the "
        "investigation of GgenMcpElevatedErrorRate had started"
    )
    mitigation = Params.model_validate(escalated("mitigation").parameters())
    assert mitigation.incident.approved_mitigations == ("restart_container",)
    # an approved mitigation run between them is not what the escalation followed
    later = {**req.incident_parameter(), "earlier": [
        *req.incident_parameter()["earlier"],
        {"record": "r-mitigate", "kind": "mitigation", "alertname": "GgenMcpElevatedErrorRate"},
    ]}  # fmt: skip
    assert Params.model_validate({"incident": later}).incident.escalated_from.record == (
        "20261130T080000Z-GgenMcpElevatedErrorRate-ab01"
    )
    asked = Params.model_validate({"incident": {"trigger": "operator:7", "requested_by": "bob"}})
    assert asked.incident.escalated_from is None
    assert why_md(asked.incident, "X", "warning") == (
        "**Re-investigation** requested by bob on the incident page."
    )
