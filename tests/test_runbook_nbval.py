"""nbval on the runbooks themselves (tests/runbooks/plugin.py): every runbook has a recorded
incident to replay, and a runbook changed without regenerating its expected outputs fails
`pytest --nbval` naming the cell, with a diff of what changed. The planted changes run nbval
on a changed copy of service_down against its fixture, in a pytest of their own."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image, ImageDraw

from runbook_lib.contract.alerts import route
from runbook_lib.contract.settings import NOTEBOOKS
from tests.runbooks import fixtures

REPO = Path(__file__).resolve().parent.parent
ELEVEN = ["service_down", "high_error_rate", "high_latency", "memory", "cache_hit_rate",
          "libreoffice_leak", "fork_leak", "fd_leak", "disk_usage", "deployment", "triage"]  # fmt: skip


@pytest.mark.parametrize("runbook", ELEVEN)
def test_each_runbook_replays_a_recorded_incident_of_its_own(runbook: str) -> None:
    fixture = fixtures.fixture_for(NOTEBOOKS / f"{runbook}.ipynb")
    assert fixture is not None, f"tests/runbooks/{runbook}/ is missing: make golden"
    params = fixture.params()
    assert runbook == "triage" or route(params["alert_name"]) == runbook
    assert (params["replay_from"], params["live"], params["snapshot_dir"]) == ("data", False, "")
    assert (fixture.dir / "data" / "queries.jsonl").stat().st_size > 0
    source = nbformat.read(NOTEBOOKS / f"{runbook}.ipynb", as_version=4)
    code = [c.id for c in source.cells if c.cell_type == "code"]
    assert list(fixture.expected()) == code  # every cell has its outputs, in the runbook's order


def nbval(notebook: Path, tmp_path: Path) -> str:
    """`pytest --nbval` on `notebook` (a runbook by its name); its report, which must fail."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "-p",
         "tests.runbooks.plugin", "-p", "no:cacheprovider", "--nbval", str(notebook), "-q",
         "--color=no", "--basetemp", str(tmp_path / "pt")],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def changed_copy(tmp_path: Path, change) -> Path:
    nb = nbformat.read(NOTEBOOKS / "service_down.ipynb", as_version=4)
    change(nb)
    path = tmp_path / "service_down.ipynb"
    nbformat.write(nb, path)
    return path


def failed(report: str) -> set[str]:
    return {line.split("::")[1].split()[0] for line in report.splitlines()
            if line.startswith("FAILED ")}  # fmt: skip


def test_a_step_removed_and_a_step_added_fail_by_cell(tmp_path: Path) -> None:
    def change(nb: nbformat.NotebookNode) -> None:
        nb.cells = [c for c in nb.cells if c.id != "service_down-13"]  # the logs step
        at = next(i for i, c in enumerate(nb.cells) if c.id == "service_down-17")
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell('run.step("network")', id="new-step"))

    report = nbval(changed_copy(tmp_path, change), tmp_path)
    assert "cell service_down-13 is gone from service_down.ipynb; it showed:" in report
    assert "4 lines from <code>file:service.log</code> between 09:47 and 10:02 UTC." in report
    assert "cell new-step is new" in report
    assert {"service_down-13", "new-step"} <= failed(report)
    # the cells before the removed step still give what they gave
    assert not {"service_down-04", "service_down-06", "service_down-11"} & failed(report)


def test_a_figure_rounded_differently_or_a_chart_redrawn_fails_with_a_diff(tmp_path: Path) -> None:
    def change(nb: nbformat.NotebookNode) -> None:
        start = next(c for c in nb.cells if c.id == "service_down-02")
        start.source += ("\nimport builtins, runbook_lib.notebook.header as s\n"
                         "s.round = lambda x, digits=0: builtins.round(x, digits + 1)")  # fmt: skip
        cpu = next(c for c in nb.cells if c.id == "service_down-15")
        assert "warn=0.8," in cpu.source
        cpu.source = cpu.source.replace("warn=0.8,", "warn=0.01,")  # a threshold line moves

    report = nbval(changed_copy(tmp_path, change), tmp_path)
    # the assess table: latency 2.45 s now shown as 2.452, the summary's CPU 0.022 as 0.0225
    assert {"service_down-06", "service_down-31"} <= failed(report)
    assert "Cell outputs differ" in report and "mismatch 'text/plain'" in report
    assert "+               Request latency  2.45         s" in report  # expected
    assert "-               Request latency  2.452         s" in report  # this run
    assert "'cpu_cores': 0.022," in report and "'cpu_cores': 0.0225," in report
    assert "(+ expected, - this run)" in report
    assert "service_down-02" not in failed(report)  # the planted line itself shows nothing
    # the CPU chart, its warning line now at 0.01 cores instead of 0.8
    assert "service_down-15" in failed(report)
    assert "chart 1 of the cell: the chart looks different" in report


def _png(draw) -> str:
    img = Image.new("RGB", (300, 200), "white")
    draw(ImageDraw.Draw(img))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_charts_are_compared_by_how_they_look_not_by_bytes() -> None:
    line = _png(lambda d: d.line([(0, 150), (300, 50)], fill="black", width=3))
    expected = fixtures.thumbnail(line)
    # a pixel of anti-aliasing elsewhere: other bytes, the same chart
    nudged = _png(lambda d: (d.line([(0, 150), (300, 50)], fill="black", width=3),
                             d.point((10, 10), fill=(250, 250, 250))))  # fmt: skip
    assert nudged != line and fixtures.charts_differ(expected, nudged) == ""
    moved = _png(lambda d: d.line([(0, 50), (300, 150)], fill="black", width=3))
    assert "the chart looks different" in fixtures.charts_differ(expected, moved)
    band = _png(lambda d: (d.line([(0, 150), (300, 50)], fill="black", width=3),
                           d.rectangle([(200, 0), (300, 200)], fill=(220, 220, 255))))  # fmt: skip
    assert "the chart looks different" in fixtures.charts_differ(expected, band)
    wider = Image.new("RGB", (320, 200), "white")
    buf = io.BytesIO()
    wider.save(buf, format="PNG")
    assert fixtures.charts_differ(expected, base64.b64encode(buf.getvalue()).decode()) == (
        "the chart is 320x200 pixels, expected 300x200"
    )


def test_expected_outputs_hold_no_address_of_this_machine() -> None:
    for runbook in ELEVEN:
        text = (fixtures.ROOT / runbook / "expected.json").read_text()
        assert "127.0.0.1:" not in text.replace("127.0.0.1:PORT", "")
        assert "/tmp/" not in text and str(REPO) not in text
        json.loads(text)
