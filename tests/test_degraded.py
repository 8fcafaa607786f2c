"""A run whose Prometheus did not answer is `degraded`: its record, the team's message and a
post-mortem say so; each missing source of evidence names the parameter that supplies it."""

from __future__ import annotations

from runbook_lib.notebook.gaps import source_hint, unanswered
from runbook_lib.notebook.parameters import Params
from runbook_lib.records.lead import lead_html
from runbook_lib.service import messages
from tests.conftest import summary_of

UNANSWERED = (
    "Prometheus at http://127.0.0.1:1 did not answer: connection refused; every figure from "
    "it is missing (the address: --prometheus-url, RUNBOOK_PROMETHEUS_URL, notebook "
    "parameter prometheus_url)"
)
SUMMARY = {
    "alert": "GgenMcpHighErrorRate",
    "runbook": "high_error_rate",
    "status": "completed",
    "degraded_by": [],
    "severity": "critical",
    "diagnosis": [{"cause": "invalid_input", "verdict": "unknown", "score": 0.0,
                   "evidence": [], "missing": []}],
    "top_cause": None,
    "data_gaps": [],
}  # fmt: skip
DEGRADED = {**SUMMARY, "status": "degraded", "degraded_by": [UNANSWERED]}


def test_the_statement_names_the_address_the_reason_and_where_it_is_set() -> None:
    assert unanswered("http://127.0.0.1:1", "connection refused") == UNANSWERED


def test_each_missing_source_names_the_parameter_that_supplies_it() -> None:
    assert source_hint("logs", "no log source was given", Params()) == (
        "name the service's logs in runbook.toml (log_file, container or log_unit; `runbook "
        "init --log-file/--log-container/--log-unit`), or pass --param log_file=PATH or "
        "--param container=NAME"
    )
    assert source_hint("container", "no container was given", Params()) == (
        "name it in runbook.toml (container) or pass --param container=NAME"
    )
    replay = "replaying a past incident (live=False): the host now is not the host then"
    assert source_hint("host", replay, Params()) == (
        "pass --param host_snapshot=FILE, a snapshot taken then (notebook parameter host_snapshot)"
    )
    assert source_hint("container", "replaying a past incident (live=False): x", Params()) == ""
    assert source_hint("logs", "file:/x: No such file", Params(log_file="/x")) == (
        "check log_file in runbook.toml or --param log_file (notebook parameter log_file)"
    )
    assert source_hint("logs", "engine unreachable", Params(container="c")) == (
        "check container in runbook.toml or --param container (notebook parameter container)"
    )
    assert source_hint("host", "host snapshot /s.json does not exist", Params()) == (
        "check --param host_snapshot (notebook parameter host_snapshot)"
    )


def test_the_record_header_and_the_team_message_say_the_run_is_degraded() -> None:
    html = lead_html(summary_of(DEGRADED))
    assert "<b>Degraded run:</b> Prometheus at http://127.0.0.1:1 did not answer" in html
    assert html.index("Degraded run") < html.index("No cause is likely")
    assert "Degraded" not in lead_html(summary_of(SUMMARY))
    said = messages._finding(summary_of(DEGRADED), None).splitlines()
    assert said[0] == f"⚠️ Degraded: {UNANSWERED}"
    assert said[1].startswith("No cause is likely")
    assert messages._finding(summary_of({**SUMMARY, "status": "failed", "error": "E"}), None) == (
        "The investigation did not complete (E); see the record."
    )


def test_a_postmortem_takes_a_degraded_investigation_over_a_failed_one() -> None:
    from types import SimpleNamespace

    from runbook_lib.incidents.postmortem import IncidentRecords

    def src(status: str) -> SimpleNamespace:
        return SimpleNamespace(summary=summary_of({"status": status}))

    inc = IncidentRecords.__new__(IncidentRecords)
    done, degraded, failed = src("completed"), src("degraded"), src("failed")
    inc.investigations = [degraded, failed]
    assert inc.main is degraded
    inc.investigations = [done, degraded, failed]
    assert inc.main is done
    inc.investigations = [failed]
    assert inc.main is failed
