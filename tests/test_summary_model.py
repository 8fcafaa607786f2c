"""summary.json as one typed shape (`contract.summary.Summary`): a file of the previous
version (no `schema_version`) reads as it was written, a failed run's summary keeps its
short set of keys, and a file that is not a summary is refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook_lib.cli.show import summary_text
from runbook_lib.contract.summary import SCHEMA_VERSION, Summary
from runbook_lib.execution import engine
from runbook_lib.records import record

# summary.json as main wrote it before the model: no schema_version, an action with its own
# `pids`, an attribution, the service's fields about the run (held, with its `for`).
OLD = {
    "alert": "GgenMcpLowCacheHitRate",
    "runbook": "cache_hit_rate",
    "status": "completed",
    "degraded_by": [],
    "severity": "warning",
    "starts_at": "2026-11-30T08:00:00+00:00",
    "ends_at": None,
    "evaluated_at": "2026-11-30T08:15:00+00:00",
    "fingerprint": "c0ffee",
    "labels": {"instance": "web-1:9464", "severity": "warning", "alertname": "GgenMcpLowCacheHitRate"},
    "figures": {"cache_hit_rate_percent": 41.5, "active_forks": 3},
    "diagnosis": [
        {"cause": "cache_too_small", "verdict": "likely", "score": 0.82,
         "evidence": ["✔ evictions 4.1/s"], "missing": [], "explained_share": 0.7,
         "strongest": ["✔ evictions 4.1/s"]},
        {"cause": "ttl_too_short", "verdict": "possible", "score": 0.4, "evidence": [],
         "missing": [], "explained_share": 0.1, "strongest": []},
    ],
    "top_cause": "cache_too_small",
    "top_causes": [{"cause": "cache_too_small", "explained_share": 0.7, "score": 0.82}],
    "attribution": {"of_what": "misses", "total": 10.0, "parts": {"cache_too_small": 7.0},
                    "unexplained": 2.0, "shares": {"cache_too_small": 0.7}, "notes": []},
    "unexplained_share": 0.2,
    "data_gaps": ["host: not given"],
    "actions": [{"action": "end_old_soffice", "done": True, "pids": [41, 42],
                 "outcome": "ended 2 soffice processes: [41, 42]"}],
    "post_checks": [{"check": "Hit rate above 80%", "status": "✘ not yet", "holds": False}],
    "first_command": "runbook-cache --grow",
    "history": None,
    "escalated_from": None,
    "resolution": [{"cause": "cache_too_small", "verdict": "likely",
                    "commands": "runbook-cache --grow"}],
    "links": {"prometheus": "http://p/graph", "alertmanager": "http://a/#/alerts"},
    "incident_id": 4,
    "run_id": 9,
    "kind": "investigation",
    "attempt": 1,
    "held": {"seconds": 12.5, "for": "GgenMcpHighErrorRate pending"},
    "runbooks_hash": "abc123",
}  # fmt: skip


def test_a_summary_of_the_previous_version_reads_by_attribute(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(OLD))
    summ = record.summary(tmp_path)
    assert summ.schema_version == 1
    assert (summ.alert, summ.status, summ.top_cause) == (
        "GgenMcpLowCacheHitRate", "completed", "cache_too_small"
    )  # fmt: skip
    assert summ.verdict_of("ttl_too_short").verdict == "possible"
    assert summ.actions[0].done and summ.actions[0].pids == [41, 42]
    assert summ.post_checks[0].holds is False
    assert (summ.held.seconds, summ.held.for_) == (12.5, "GgenMcpHighErrorRate pending")
    assert summ.attribution.unexplained == 2.0 and summ.runbooks_hash == "abc123"
    assert summary_text(summ).splitlines()[:2] == [
        "GgenMcpLowCacheHitRate (warning) -> cache_hit_rate: completed",
        "  top cause: cache_too_small (70%)",
    ]


def test_written_again_it_is_the_same_keys_and_values_plus_the_version(tmp_path: Path) -> None:
    Summary.model_validate(OLD).write(tmp_path / "summary.json")
    again = json.loads((tmp_path / "summary.json").read_text())
    assert again.pop("schema_version") == SCHEMA_VERSION == 2
    assert again == OLD  # an int figure stays an int, `for` keeps its name, nothing added
    assert list(again) == list(OLD)  # in the order it was written


def test_a_failed_runs_summary_keeps_its_short_set_of_keys(tmp_path: Path) -> None:
    params = {"alert_name": "GgenMcpServiceDown", "severity": "critical",
              "starts_at": "2026-11-30T08:00:00Z", "at": "2026-11-30T08:05:00Z",
              "fingerprint": "dead01", "labels": {"alertname": "GgenMcpServiceDown"}}  # fmt: skip
    engine.failure_summary(params, "service_down", "timed_out", "the run exceeded 900s").write(
        tmp_path / "summary.json"
    )
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == {
        "alert": "GgenMcpServiceDown", "runbook": "service_down", "status": "timed_out",
        "severity": "critical", "starts_at": "2026-11-30T08:00:00Z",
        "evaluated_at": "2026-11-30T08:05:00Z", "fingerprint": "dead01",
        "labels": {"alertname": "GgenMcpServiceDown"}, "figures": {}, "diagnosis": [],
        "top_cause": None, "data_gaps": [], "error": "the run exceeded 900s",
        "schema_version": 2,
    }  # fmt: skip


def test_a_file_that_is_not_a_summary_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({**OLD, "status": "finished"}))
    with pytest.raises(
        ValueError, match=r"summary.json: not a run summary \(status: Input should be 'completed'"
    ):
        Summary.load(path)
    path.write_text(json.dumps({k: v for k, v in OLD.items() if k != "runbook"}))
    with pytest.raises(ValueError, match=r"not a run summary \(runbook: Field required\)"):
        Summary.load(path)
