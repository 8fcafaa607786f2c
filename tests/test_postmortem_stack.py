"""`runbook postmortem ID` over an incident the index made (a warning, the critical that
escalated it, an operator's action, the verification) whose records were run against a real
Prometheus holding the fault's history and the alerts' pending states: the pending times
come from `ALERTS`, and the generated notebook and page show each chart once, tables in
full without row numbers, and no path to a temporary file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from fastapi.testclient import TestClient

from runbook_lib.contract.alerts import Alert
from runbook_lib.contract.config import Settings
from runbook_lib.contract.incident import IncidentRun
from runbook_lib.incidents import actions
from runbook_lib.incidents.index import Index
from runbook_lib.lab.scenarios import ScenarioPrometheus
from runbook_lib.lab.scenarios.backfill import write_openmetrics
from runbook_lib.lab.scenarios.build import build
from runbook_lib.service.holds import HoldPolicy
from runbook_lib.service.server import create_app
from runbook_lib.service.workers import Pool, RunConfig
from tests.polling import wait_for

pytestmark = pytest.mark.stack  # a real Prometheus, notebooks run by a warm worker

SCENARIO = build("high_error_rate", "invalid_input", seed=0)  # the critical fires 10:00:00
FIRED = SCENARIO.alert_at
WARNING_FIRED = FIRED - timedelta(minutes=2)  # 09:58:00
# The rule evaluates every 15 s: the warning was pending 09:53:00 .. 09:57:45 (and once
# briefly at 09:40, an episode that never fired), the critical 09:55:00 .. 09:59:45.
PENDING = {
    "GgenMcpElevatedErrorRate": (
        "warning",
        [FIRED - timedelta(minutes=20, seconds=s) for s in (0, -15)]  # fmt: skip
        + [WARNING_FIRED - timedelta(seconds=15 * i) for i in range(1, 21)],
    ),
    "GgenMcpHighErrorRate": ("critical", [FIRED - timedelta(seconds=15 * i) for i in range(1, 21)]),
}


def backfill(data: Path, work: Path) -> None:
    """The scenario's series and the pending ALERTS series, as TSDB blocks."""
    om = write_openmetrics([SCENARIO], work / "history.om.txt")
    lines = ["# TYPE ALERTS gauge"]
    for name, (severity, times) in PENDING.items():
        labels = (f'alertname="{name}",alertstate="pending",instance="{SCENARIO.instance}",'
                  f'job="ggen-mcp",severity="{severity}"')  # fmt: skip
        lines += [f"ALERTS{{{labels}}} 1 {t.timestamp():.3f}" for t in sorted(times)]
    om.write_text(om.read_text().removesuffix("# EOF\n") + "\n".join(lines) + "\n# EOF\n")
    done = subprocess.run([shutil.which("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                           str(om), str(data)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def alert(name: str, severity: str, fired: datetime, ended: datetime | None = None) -> Alert:
    return Alert(
        status="resolved" if ended else "firing",
        labels={
            "alertname": name,
            "severity": severity,
            "instance": SCENARIO.instance,
            "job": "ggen-mcp",
        },  # fmt: skip
        annotations={"impact": "Users see failed spreadsheet operations."},
        startsAt=fired,
        endsAt=ended,
        fingerprint=f"{name[7:15].lower():0<16}",
    )


@dataclass
class Written:
    out: Path  # the records and the index
    pm: Path  # the post-mortem directory
    index: Index
    incident_id: int
    prometheus: str


def wait_done(index: Index, runs: int, timeout: float = 240) -> list[IncidentRun]:
    def done() -> list[dict]:
        found = [r for i in index.incidents() for r in i.runs if r.state == "done"]
        return found if len(found) >= runs else []

    return wait_for(done, timeout, f"{runs} runs done", every=0.3, detail=index.incidents)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("postmortem")
    backfill(work / "data", work)
    prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
    out = work / "out"
    index = Index(out / "index.sqlite", correlation_window=300)
    config = RunConfig(output_dir=out, workers=1, prometheus_url=prom.url,
                       params={"at": SCENARIO.at.isoformat()},
                       hold=HoldPolicy(prom.url, fallback_s=0))  # fmt: skip
    pool = Pool(index, config)
    pool.start()
    try:
        warning = alert("GgenMcpElevatedErrorRate", "warning", WARNING_FIRED)
        assert index.accept([warning], 0, WARNING_FIRED.timestamp() + 30) == ["queued"]
        pool.notify()
        wait_done(index, 1)
        critical = alert("GgenMcpHighErrorRate", "critical", FIRED)
        assert index.accept([critical], 0, FIRED.timestamp() + 30) == ["escalated"]
        pool.notify()
        wait_done(index, 2)
        [inc] = index.incidents()
        with index.tx() as conn:
            actions.record(conn, inc.id, "acknowledge", "alice", FIRED.timestamp() + 90,
                           nonce="n1")  # fmt: skip
        ended = FIRED + timedelta(minutes=1)
        closed = ended.timestamp() + 10
        index.accept(
            [alert("GgenMcpElevatedErrorRate", "warning", WARNING_FIRED, ended)], 0, closed
        )
        index.accept([alert("GgenMcpHighErrorRate", "critical", FIRED, ended)], 0, closed)
        pool.notify()
        wait_done(index, 3)
    finally:
        pool.stop()
    pm = work / "pm"
    done = subprocess.run(
        [sys.executable, "-m", "runbook_lib.cli", "postmortem", f"#{inc.id}", "--records-dir",
         str(out), "--output", str(pm), "--prometheus-url", prom.url],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        yield Written(out, pm, index, inc.id, prom.url)
    finally:
        prom.stop()


def timeline_of(w: Written) -> list[str]:
    md = (w.pm / "postmortem.md").read_text()
    return md.split("## Timeline (UTC)\n", 1)[1].split("\n## ", 1)[0].splitlines()


def test_pending_times_come_from_prometheus_alerts(written: Written) -> None:
    rows = timeline_of(written)
    assert rows[2:11] == [
        "| 2026-01-15 09:53:00 | GgenMcpElevatedErrorRate (warning) went pending |",
        "| 2026-01-15 09:55:00 | GgenMcpHighErrorRate (critical) went pending |",
        "| 2026-01-15 09:58:00 | GgenMcpElevatedErrorRate (warning) fired (received 30 s later) |",
        "| 2026-01-15 10:00:00 | GgenMcpHighErrorRate (critical) fired (received 30 s later) |",
        "| 2026-01-15 10:00:30 | escalated from warning to critical by GgenMcpHighErrorRate |",
        "| 2026-01-15 10:01:00 | GgenMcpElevatedErrorRate resolved |",
        "| 2026-01-15 10:01:00 | GgenMcpHighErrorRate resolved |",
        "| 2026-01-15 10:01:10 | incident resolved |",
        "| 2026-01-15 10:01:30 | alice acknowledged |",
    ]
    summary = (written.pm / "postmortem.md").read_text().split("## Summary\n", 1)[1]
    assert "- **Duration**: 3 min\n" in summary  # 09:58:00 to 10:01:00, as Prometheus said
    assert f"Pending times from Prometheus at {written.prometheus} (ALERTS)." in rows
    # the fault is still on at the time the runs evaluate: the checks cannot hold
    [verification] = [r for r in rows if "| verification completed: " in r]
    assert "the fix did NOT hold" in verification


def cells(w: Written, call: str) -> list[dict]:
    nb = nbformat.read(w.pm / "postmortem.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == call]
    return cell.outputs


def test_each_chart_is_drawn_once(written: Written) -> None:
    """Two records with saved data (the investigation the diagnosis comes from and the
    verification): two charts, each shown once (the figure was also the cell's result)."""
    pngs = [o for o in cells(written, "pm.show_charts()") if "image/png" in o.get("data", {})]
    assert len(pngs) == 2 == len(list((written.pm / "charts").glob("*.png")))
    page = (written.pm / "postmortem.html").read_text()
    assert page.count("<img ") == 2
    # the draft whole: its title and what to fill in (an incident record's report leaves
    # out a notebook's title; a post-mortem's is its heading), and no script from a CDN
    assert "Post-mortem draft" in page and "Lessons learned" in page and "<script" not in page


def test_no_path_to_a_temporary_file_is_left_as_a_result(written: Written) -> None:
    [said] = cells(written, "pm.write_markdown()")
    assert said["data"]["text/markdown"] == (
        "Written to [postmortem.md](postmortem.md) beside this notebook."
    )
    nb_text = (written.pm / "postmortem.ipynb").read_text()
    html = (written.pm / "postmortem.html").read_text()
    for text in (nb_text, html):
        assert "PosixPath" not in text and ".tmp-" not in text


def test_tables_show_every_row_in_full_without_row_numbers(written: Written) -> None:
    [table] = cells(written, "pm.show_timeline()")
    assert set(table["data"]) == {"text/markdown", "text/plain"}  # no DataFrame
    md = table["data"]["text/markdown"]
    assert md.startswith("| time (UTC) | event |\n|---|---|\n")
    html = (written.pm / "postmortem.html").read_text()
    assert 'class="dataframe"' not in html and "<th></th>" not in html
    longest = max((r.split(" | ", 1)[1].removesuffix(" |") for r in timeline_of(written)[2:]
                   if r.startswith("| ")), key=len)  # fmt: skip
    assert len(longest) > 60 and longest in html  # pandas cut cells at 50 characters


def test_the_incident_page_writes_the_draft_of_the_whole_incident(written: Written) -> None:
    app = create_app(Settings(webhook_token="token", output_dir=written.out, viewer_token="viewer", prometheus_url=written.prometheus), written.index)  # fmt: skip
    c = TestClient(app, headers={"Authorization": "Bearer viewer"})
    page = f"/incidents/{written.incident_id}"
    assert "Write the post-mortem draft" in c.get(page).text
    resp = c.post(f"{page}/postmortem", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == page
    first = sorted(r.record for r in written.index.incident(written.incident_id).runs)[0]
    assert first.endswith("-GgenMcpElevatedErrorRate-elevated0000")  # the warning's record
    link = f"/records/postmortem-{first}/postmortem.html"
    assert link in c.get(page).text
    snap = json.loads((written.out / f"postmortem-{first}" / "incident.json").read_text())
    assert [a["pending_at"] for a in sorted(snap["alerts"], key=lambda a: a["starts_at"])] == [
        "2026-01-15T09:53:00+00:00",
        "2026-01-15T09:55:00+00:00",
    ]
    assert c.post("/incidents/99/postmortem").status_code == 404
