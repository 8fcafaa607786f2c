"""`runbook run` prints the answer after the record's path and exits 0 only for a completed
run; `runbook summary` prints everything the summary holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook_lib import cli
from runbook_lib.cli.show import summary_text
from tests.conftest import empty_config, summary_of

SUMMARY = {
    "alert": "GgenMcpMemoryCritical",
    "runbook": "memory",
    "status": "completed",
    "degraded_by": [],
    "severity": "critical",
    "figures": {"memory_percent": 93.5, "cpu_cores": 0.25},
    "diagnosis": [
        {"cause": "memory_leak", "verdict": "likely", "score": 0.9, "explained_share": 0.7,
         "evidence": ["✔ memory climbs 2%/h", "✘ no restart"], "missing": []},
        {"cause": "cache_too_large", "verdict": "possible", "score": 0.5,
         "explained_share": 0.3, "evidence": ["✔ cache holds 30%"], "missing": []},
        {"cause": "large_payloads", "verdict": "unknown", "score": 0.0,
         "explained_share": None, "evidence": [], "missing": ["no logs"]},
    ],
    "top_cause": "memory_leak",
    "top_causes": [{"cause": "memory_leak", "explained_share": 0.7, "score": 0.9}],
    "data_gaps": ["logs: no log source was given", "panel heap: no data"],
    "actions": [{"action": "restart_container", "done": False, "outcome": "not run"}],
    "post_checks": [{"check": "memory under 70%", "status": "✘ not yet", "holds": False}],
    "first_command": "docker restart ggen",
    "resolution": [
        {"cause": "memory_leak", "verdict": "likely",
         "commands": "# restart first\ndocker restart ggen\n\nkill -USR2 42"},
        {"cause": "cache_too_large", "verdict": "possible", "commands": "export CACHE=100"},
    ],
    "links": {"prometheus": "http://p/graph"},
}  # fmt: skip


def test_summary_text_holds_everything_in_reading_order(tmp_path: Path) -> None:
    assert summary_text(summary_of(SUMMARY), tmp_path).splitlines() == [
        "GgenMcpMemoryCritical (critical) -> memory: completed",
        "  top cause: memory_leak (70%)",
        "  likely    0.90 memory_leak  explains 70%",
        "      ✔ memory climbs 2%/h",
        "      ✘ no restart",
        "  possible  0.50 cache_too_large  explains 30%",
        "      ✔ cache holds 30%",
        "  unknown   0.00 large_payloads",
        "  resolution for memory_leak (likely):",
        "      # restart first",
        "      docker restart ggen",
        "      kill -USR2 42",
        "  resolution for cache_too_large (possible):",
        "      export CACHE=100",
        "  figures: memory_percent 93.5, cpu_cores 0.25",
        "  action restart_container: not run",
        "  check: memory under 70%: ✘ not yet",
        "  gap: logs: no log source was given",
        "  gap: panel heap: no data",
        "  prometheus link: http://p/graph",
        f"  report: {tmp_path / 'report.html'}",
    ]


def test_the_brief_form_is_the_answer_and_where_to_read_more(tmp_path: Path) -> None:
    assert summary_text(summary_of(SUMMARY), tmp_path, brief=True).splitlines() == [
        "GgenMcpMemoryCritical (critical) -> memory: completed",
        "  top cause: memory_leak (70%)",
        "      ✔ memory climbs 2%/h",
        "      ✘ no restart",
        "  first step: docker restart ggen",
        f"  2 data gaps: `runbook summary {tmp_path}` lists them",
        f"  report: {tmp_path / 'report.html'}",
    ]


def test_a_failed_record_shows_its_error_and_an_old_one_its_first_command() -> None:
    failed = {"alert": "A", "runbook": "triage", "status": "failed", "severity": "",
              "diagnosis": [], "top_cause": None, "data_gaps": [], "error": "ValueError: x"}  # fmt: skip
    assert summary_text(summary_of(failed)).splitlines() == [
        "A (no severity) -> triage: failed",
        "  error: ValueError: x",
        "  top cause: none likely",
    ]
    old = {**{k: v for k, v in SUMMARY.items() if k != "resolution"}, "figures": {}, "actions": [], "post_checks": [],
           "data_gaps": [], "links": {}, "diagnosis": []}  # fmt: skip
    assert summary_text(summary_of(old)).splitlines()[-1] == "  first step: docker restart ggen"


def test_runbook_summary_prints_it_and_json_stays_the_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    assert cli.main(["summary", str(tmp_path)]) == 0
    assert capsys.readouterr().out == summary_text(summary_of(SUMMARY), tmp_path) + "\n"
    assert cli.main(["summary", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == SUMMARY


UNANSWERED = (
    "Prometheus at http://127.0.0.1:1 did not answer: connection refused; every figure from "
    "it is missing (the address: --prometheus-url, RUNBOOK_PROMETHEUS_URL, notebook "
    "parameter prometheus_url)"
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNBOOK_CONFIG", str(empty_config(tmp_path)))
    monkeypatch.delenv("RUNBOOK_ALERTMANAGER_URL", raising=False)
    return tmp_path


def test_a_run_without_prometheus_is_degraded_says_so_once_and_exits_1(config, capsys) -> None:
    out = config / "records"
    argv = ["run", "GgenMcpHighErrorRate", "--prometheus-url", "http://127.0.0.1:1"]
    assert cli.main([*argv, "--output", str(out)]) == 1
    [rec] = [p for p in out.iterdir() if p.is_dir()]
    printed = capsys.readouterr()
    assert printed.out.splitlines() == [
        str(rec),
        "GgenMcpHighErrorRate (no severity) -> high_error_rate: degraded",
        f"  {UNANSWERED}",
        "  top cause: none likely",
        f"  3 data gaps: `runbook summary {rec}` lists them",
        f"  report: {rec / 'report.html'}",
    ]
    assert f"filed as incident #1 (manual) in {out / 'index.sqlite'}" in printed.err
    from runbook_lib.incidents.index import Index

    [inc] = Index(out / "index.sqlite").incidents()
    assert (inc.status, inc.alertname) == ("manual", "GgenMcpHighErrorRate")
    assert [(r.kind, r.record, r.status) for r in inc.runs] == [("manual", rec.name, "degraded")]
    summ = json.loads((rec / "summary.json").read_text())
    assert summ["status"] == "degraded" and summ["degraded_by"] == [UNANSWERED]
    assert summ["data_gaps"] == [  # each names what supplies it; none repeats Prometheus
        "logs: no log source was given: name the service's logs in runbook.toml (log_file, "
        "container or log_unit; `runbook init --log-file/--log-container/--log-unit`), or pass "
        "--param log_file=PATH or --param container=NAME",
        "container: no container was given: name it in runbook.toml (container) or pass --param "
        "container=NAME",
        "host: the service's process is unknown: the alert has no instance label HOST:PORT to "
        "find it by its port; pass --label instance=HOST:PORT (notebook parameter labels)",
    ]
    assert cli.main(["summary", str(rec)]) == 0
    assert capsys.readouterr().out.count("did not answer") == 1
    header = json.loads((rec / "record.ipynb").read_text())["cells"][0]["source"]
    assert "<b>Degraded run:</b> Prometheus at http://127.0.0.1:1 did not answer" in "".join(header)


def test_a_run_whose_prometheus_answers_completes_and_exits_0(config, capsys) -> None:
    from tests.test_prom import BrokenPrometheus

    empty = BrokenPrometheus()  # answers every query: success, no series
    empty.answer(200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
    try:
        argv = ["run", "GgenMcpHighErrorRate", "--prometheus-url", empty.url, "--label",
                "instance=h:9464", "--param", "live=false", "--output", str(config / "r")]  # fmt: skip
        assert cli.main(argv) == 0
    finally:
        empty.server.shutdown()
    [rec] = [p for p in (config / "r").iterdir() if p.is_dir()]
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == [
        str(rec),
        "GgenMcpHighErrorRate (no severity) -> high_error_rate: completed",
        "  top cause: none likely",
    ]
    assert printed[-1] == f"  report: {rec / 'report.html'}" and (rec / "report.html").exists()
    summ = json.loads((rec / "summary.json").read_text())
    assert summ["status"] == "completed" and summ["degraded_by"] == []
