"""The committed notebooks (their contract: test_lint.py): their queries in plain sight;
records of runs; `runbook run` on every scenario of the library."""

from __future__ import annotations

import html
import json
import re
import shlex
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest

from runbook_lib.contract.alerts import RUNBOOKS
from runbook_lib.contract.settings import NOTEBOOKS as NOTEBOOK_DIR
from runbook_lib.execution import runner
from runbook_lib.execution.kernels import Zygote
from runbook_lib.records import record


def _code(runbook: str) -> str:
    nb = nbformat.read(NOTEBOOK_DIR / f"{runbook}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_investigation_cells_show_their_promql() -> None:
    source = _code("high_error_rate")
    assert (
        'run.panel(\n    "errors_by_type",\n'
        '    promql="sum by (error_type) (rate(ggen_mcp_errors_total{sel}[5m])) > 0",\n'
        '    by="error_type",\n    window="45m",\n)\nrun.step("error_types")'
    ) in source
    memory = _code("memory")
    assert (
        '    promql={\n        "resident": "100 * max(process_resident_memory_bytes{sel})'
        ' / {memory_limit}",\n    },\n    warn=70,\n    crit=90,\n' in memory
    )


def test_every_runbook_has_its_notebook() -> None:
    # The runbooks, by hand (the routing itself is checked in test_contract.py).
    expected = {
        "service_down", "high_error_rate", "high_latency", "memory", "cache_hit_rate",
        "libreoffice_leak", "fork_leak", "fd_leak", "disk_usage", "triage",
        "deployment",  # issue 15: what changed with a restart
    }  # fmt: skip
    assert set(RUNBOOKS) == expected
    assert {p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")} == expected | {"postmortem"}


@pytest.mark.parametrize(
    "alert,fp,name",
    [
        ("../../etc/passwd", "x/y", "20260101T000000Z-etc_passwd-x_y"),
        ('a"b;rm -rf /', "\n", "20260101T000000Z-a_b_rm_-rf-unnamed"),
        ("é" * 300, "..", "20260101T000000Z-unnamed-unnamed"),
        ("A" * 300, "0123456789abcdef", f"20260101T000000Z-{'A' * 60}-0123456789ab"),
        (".hidden", "-x-", "20260101T000000Z-hidden-x"),
    ],
)
def test_record_names_are_safe_paths(alert: str, fp: str, name: str) -> None:
    from datetime import UTC, datetime

    assert record.record_name(datetime(2026, 1, 1, tzinfo=UTC), alert, fp) == name


# --------------------------------------------------------------------------- real runs


def scenario_run(
    prom_url: str,
    sc,
    tmp: Path,
    runbook: str | None = None,
    alert: str | None = None,
    notebook_dir: Path | None = None,
    *,
    zygote: Zygote,
) -> dict:
    log = sc.write_logs(tmp / f"{sc.instance}.log", since=sc.at - timedelta(minutes=20))
    snap = sc.write_host(tmp / f"{sc.instance}.json")
    labels = {k: v for k, v in sc.labels().items() if k != "alertname"}
    params = runner.alert_params(
        alert or sc.alert,
        labels,
        at=sc.at,
        starts_at=sc.alert_at.isoformat(),
        prometheus_url=prom_url,
        extra={
            "live": False,
            "log_file": str(log),
            "host_snapshot": str(snap or ""),
            "node_instance": sc.instance + "-node",
        },
    )
    rec = runner.run(params, tmp / "records", runbook=runbook, notebook_dir=notebook_dir,
                     zygote=zygote)  # fmt: skip
    return {**record.summary(rec).as_json(), "record": str(rec)}


# One notebook run per runbook, on a cause the nbval fixtures do not use (they replay seed 0
# of another cause); every cause on every seed is judged in-process by test_diagnosis.
NOTEBOOK_RUNS = {
    "service_down": "oom_killed",
    "high_error_rate": "database_connection",
    "high_latency": "cpu_saturation",
    "memory": "cache_too_large",
    "cache_hit_rate": "ttl_too_short",
    "libreoffice_leak": "hung_processes",
    "fork_leak": "zombie_processes",
    "fd_leak": "fd_limit_too_low",
    "disk_usage": "log_files_growing",
    "triage": None,  # the healthy baseline: nothing is likely
    "deployment": None,  # no causes to judge: what changed, on the healthy baseline
}


# An alert of each runbook, by hand.
ALERTS = {
    "service_down": "GgenMcpServiceDown", "high_error_rate": "GgenMcpHighErrorRate",
    "high_latency": "GgenMcpHighLatency", "memory": "GgenMcpMemoryCritical",
    "cache_hit_rate": "GgenMcpLowCacheHitRate",
    "libreoffice_leak": "GgenMcpHighLibreOfficeProcessCount",
    "fork_leak": "GgenMcpHighActiveForks", "fd_leak": "GgenMcpFileDescriptorExhaustion",
    "disk_usage": "GgenMcpHighDiskUsage", "deployment": "GgenMcpDeploymentCompleted",
    "triage": "GgenMcpSomethingElse",
}  # fmt: skip


def test_runbook_run_of_each_notebook_finds_its_cause(scenario_set, zygote, tmp_path) -> None:
    prom, scenarios, _ = scenario_set
    assert set(NOTEBOOK_RUNS) == set(RUNBOOKS)
    jobs = []
    for runbook, cause in NOTEBOOK_RUNS.items():
        sc = next(
            s
            for s in scenarios
            if s.seed == 1 and s.cause == cause and (cause is None or s.runbook == runbook)
        )
        jobs.append((sc, runbook, ALERTS[runbook]))
    # one at a time (conftest.start_zygote says why)
    results = [(j, scenario_run(prom.url, *j[:1], tmp_path, *j[1:], zygote=zygote)) for j in jobs]
    found = {rb: summ["top_cause"] for (_, rb, _), summ in results}
    assert found == NOTEBOOK_RUNS
    warned = {rb: stderr_of(Path(summ["record"])) for (_, rb, _), summ in results}
    assert not any(warned.values()), warned  # no warning text reaches a record
    assert all(summ["status"] == "completed" for _, summ in results)
    assert {summ["runbook"] for _, summ in results} == set(RUNBOOKS)


def test_record_shows_charts_diagnosis_commands_and_message(scenario_set, zygote, tmp_path) -> None:
    prom, scenarios, _ = scenario_set
    sc = next(s for s in scenarios if s.name == "high_error_rate/invalid_input/s1")
    summ = scenario_run(prom.url, sc, tmp_path, zygote=zygote)
    rec = Path(summ["record"])
    assert {p.name for p in rec.iterdir()} == {
        "record.ipynb",
        "record.html",
        "report.html",
        "summary.json",
        "timings.json",
        "data",
    }
    assert summ["top_cause"] == "invalid_input" and summ["figures"]["error_rate_percent"] > 5
    page = (rec / "report.html").read_text()
    assert page.count("data:image/png;base64") >= 4  # the overview and the runbook's charts
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "validation and parse errors are" in text  # diagnosis evidence
    # the command reads the log file the run was given, shell-quoted (the name holds a colon)
    log = shlex.quote(str(tmp_path / f"{sc.instance}.log"))
    assert f"zcat -f {log} | grep -A5 'validation error'" in text
    assert "INCIDENT: " in text and "Status: Investigating" in text and "Severity: Critical" in text
    written = json.loads((rec / "summary.json").read_text())
    shown = record.summary_from_notebook(nbformat.read(rec / "record.ipynb", as_version=4))
    assert written == {**shown.as_json(), "schema_version": 2}  # the version is the file's


def stderr_of(rec: Path) -> list[str]:
    """What a record's cells wrote to stderr (warnings): it would reach report.html."""
    nb = nbformat.read(rec / "record.ipynb", as_version=4)
    return [o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]


def test_unreachable_prometheus_still_writes_a_readable_record(tmp_path: Path) -> None:
    params = runner.alert_params(
        "GgenMcpHighLatency",
        {"instance": "h:9464"},
        prometheus_url="http://127.0.0.1:1",
        extra={"live": False},
    )
    rec = runner.run(params, tmp_path)
    summ = record.summary(rec).as_json()
    assert summ["status"] == "degraded"  # finished, but blind: it needs a person's attention
    assert summ["degraded_by"][0].startswith(
        "Prometheus at http://127.0.0.1:1 did not answer: connection refused; "
    )
    assert not [g for g in summ["data_gaps"] if "unreachable" in g]  # said once, above
    assert all(d["verdict"] == "unknown" for d in summ["diagnosis"])
    page = (rec / "report.html").read_text()
    assert "is unreachable (connection refused)" in page
    # no grid of empty frames: one line per chart that had nothing to draw
    assert (
        "No data for Error rate, Request latency, Cache hit rate, Memory (% of limit): "
        "Prometheus at http://127.0.0.1:1 is unreachable (connection refused)"
        in html.unescape(re.sub(r"<[^>]+>", "", page))
    )
    assert "<img" not in page
    # papermill's metadata names the runbook run; handed the notebook itself, papermill
    # filed a copy of the whole runbook there
    run_meta = nbformat.read(rec / "record.ipynb", as_version=4).metadata.papermill
    assert Path(run_meta.input_path).name == "high_latency.ipynb"


def test_a_failing_notebook_leaves_a_failed_record_with_the_error_on_top(tmp_path) -> None:
    params = runner.alert_params(
        "GgenMcpHighErrorRate", {"instance": "h:9464"}, prometheus_url="http://127.0.0.1:1"
    )
    params["at"] = "not-a-time"
    rec = runner.run(params, tmp_path)
    summ = record.summary(rec).as_json()
    assert summ["status"] == "failed" and "ValueError" in summ["error"]
    nb = nbformat.read(rec / "record.ipynb", as_version=4)
    assert "Run failed" in nb.cells[0].source and "not-a-time" in nb.cells[0].source
    # then papermill's error cell and every cell up to the failed one, its error shown
    assert "papermill-error-cell-tag" in nb.cells[1].metadata.tags
    [failed] = [c for c in nb.cells if c.get("outputs") and c.outputs[-1].output_type == "error"]
    assert "notebook.start" in failed.source and failed.outputs[-1].ename == "ValueError"
    assert (rec / "record.html").exists()
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_a_record_keeps_its_data_and_replays_without_prometheus(
    scenario_set, zygote, tmp_path
) -> None:
    """The record's data/ answers every query the run asked: re-executed against it, with
    the Prometheus address pointing nowhere, the diagnosis and figures come out the same."""
    prom, scenarios, _ = scenario_set
    sc = next(s for s in scenarios if s.cause == "cache_too_small" and s.seed == 0)
    first = scenario_run(prom.url, sc, tmp_path, zygote=zygote)
    data = Path(first["record"]) / "data"
    saved = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines()]
    assert len(saved) > 10 and all((data / e["file"]).exists() for e in saved)
    params = runner.replay_params(Path(first["record"]), prometheus_url="http://127.0.0.1:1")
    again_rec = runner.run(params, tmp_path / "replayed", zygote=zygote)
    again = record.summary(again_rec).as_json()
    assert again["status"] == "completed" and again["top_cause"] == "cache_too_small"
    assert again["figures"] == first["figures"]
    assert again["diagnosis"] == first["diagnosis"]
    assert not [g for g in again["data_gaps"] if "unreachable" in g.lower()]
    assert again["replay_of"] == str(Path(first["record"]))  # not beside it: its path
    # the replay's record keeps what it was answered, so it replays in turn
    kept = [
        json.loads(x)["key"]
        for x in (Path(again_rec) / "data/queries.jsonl").read_text().splitlines()
    ]
    assert sorted(kept) == sorted(e["key"] for e in saved)
    assert not stderr_of(Path(again_rec))  # no warning text (pandas' FutureWarnings were)


def test_replay_refuses_a_record_without_data(tmp_path) -> None:
    rec = runner.failure_record(
        runner.alert_params("GgenMcpHighErrorRate", {}),
        tmp_path,
        runbook="high_error_rate",
        name="no-data",
        status="failed",
        error="x",
    )
    with pytest.raises(FileNotFoundError, match="no saved data"):
        runner.replay_params(rec)


def _cell(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


def test_an_edited_query_changes_the_chart_the_data_and_the_evidence(
    scenario_set, zygote, tmp_path
):
    """What an engineer does in JupyterLab: change a cell's PromQL and run it again."""
    prom, scenarios, _ = scenario_set
    sc = next(s for s in scenarios if s.name == "high_error_rate/invalid_input/s1")
    edited_dir = tmp_path / "edited-notebooks"
    edited_dir.mkdir()
    nb = nbformat.read(NOTEBOOK_DIR / "high_error_rate.ipynb", as_version=4)
    cell = _cell(nb, 'run.step("error_types")')
    original = "sum by (error_type) (rate(ggen_mcp_errors_total{sel}[5m])) > 0"
    assert original in cell.source and 'by="error_type"' in cell.source
    cell.source = cell.source.replace(
        original, "sum by (tool) (rate(ggen_mcp_errors_total{sel}[5m])) > 0"
    )
    cell.source = cell.source.replace('by="error_type"', 'by="tool"')
    nbformat.write(nb, edited_dir / "high_error_rate.ipynb")

    (tmp_path / "plain").mkdir()
    (tmp_path / "edited").mkdir()
    plain = Path(scenario_run(prom.url, sc, tmp_path / "plain", zygote=zygote)["record"])
    edited = Path(
        scenario_run(prom.url, sc, tmp_path / "edited", notebook_dir=edited_dir, zygote=zygote)[
            "record"
        ]
    )

    def range_queries(rec: Path) -> list[str]:
        lines = (rec / "data" / "queries.jsonl").read_text().splitlines()
        keys = [json.loads(json.loads(line)["key"]) for line in lines]
        return [k[1] for k in keys if k[0] == "range"]

    sel = f'{{job="ggen-mcp",instance="{sc.instance}"}}'
    by_tool = f"sum by (tool) (rate(ggen_mcp_errors_total{sel}[5m])) > 0"
    by_type = f"sum by (error_type) (rate(ggen_mcp_errors_total{sel}[5m])) > 0"
    assert by_type in range_queries(plain) and by_type not in range_queries(edited)
    assert by_tool in range_queries(edited)  # the data kept is the edited query's

    def step_outputs(rec: Path) -> tuple[str, str]:
        out = _cell(nbformat.read(rec / "record.ipynb", as_version=4), "error_types").outputs
        png = next(o["data"]["image/png"] for o in out if "image/png" in o.get("data", {}))
        table = next(o["data"]["text/html"] for o in out if "text/html" in o.get("data", {}))
        return png, table

    plain_png, plain_table = step_outputs(plain)
    edited_png, edited_table = step_outputs(edited)
    assert edited_png != plain_png  # the chart is drawn from the edited query
    assert "<th>error_type</th>" in plain_table and "<th>tool</th>" in edited_table
    assert "invalid_input" in plain_table and "invalid_input" not in edited_table
