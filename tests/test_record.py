"""Records: the summary kept in the executed notebook, the first error, summary.json first,
and both HTML pages written from the notebook in memory."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from runbook_lib.records import record

SUMMARY = {"alert": "A", "runbook": "triage", "status": "completed", "top_cause": "x"}


def executed(*outputs: dict, source: str = "run.summary()") -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    cell.outputs = list(outputs)
    return new_notebook(cells=[new_code_cell("print('first')"), cell])


def summary_output(data: dict) -> dict:
    return new_output(
        "display_data", data={"application/json": data}, metadata={"runbook_summary": True}
    )


def test_the_summary_is_the_output_marked_as_such() -> None:
    other = new_output("display_data", data={"application/json": {"not": "it"}})
    nb = executed(other, summary_output(SUMMARY))
    assert record.summary_from_notebook(nb).as_json() == SUMMARY
    assert record.summary_from_notebook(executed(other)) is None


def test_the_first_error_is_name_and_message() -> None:
    err = new_output("error", ename="ValueError", evalue="bad time", traceback=[])
    later = new_output("error", ename="KeyError", evalue="x", traceback=[])
    assert record.error_of(executed(err, later)) == "ValueError: bad time"
    assert record.error_of(executed()) is None


def test_summary_reads_summary_json_first_then_the_notebook(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    nbformat.write(executed(summary_output(SUMMARY)), rec / "record.ipynb")
    assert record.summary(rec).as_json() == SUMMARY
    (rec / "summary.json").write_text(json.dumps({**SUMMARY, "run_id": 7}))
    assert record.summary(rec).run_id == 7
    bare = tmp_path / "bare"
    bare.mkdir()
    nbformat.write(executed(), bare / "record.ipynb")
    with pytest.raises(ValueError, match=f"{bare}: the notebook has no summary output"):
        record.summary(bare)


def test_both_pages_come_from_the_notebook_in_memory(tmp_path: Path) -> None:
    nb = executed(summary_output(SUMMARY), source="secret_code_marker = 1")
    record.write_html(tmp_path, nb, record.Exporters())
    assert not (tmp_path / "record.ipynb").exists()  # nothing was read back from disk
    full = (tmp_path / "record.html").read_text()
    report = (tmp_path / "report.html").read_text()
    assert "secret_code_marker" in full and "secret_code_marker" not in report
    assert record.html(nb, code=False, name=tmp_path.name) == report


def test_markdown_cells_have_no_outputs_and_are_skipped(tmp_path: Path) -> None:
    from nbformat.v4 import new_markdown_cell

    err = new_output("error", ename="KeyError", evalue="'x'", traceback=[])
    nb = executed(summary_output(SUMMARY), err)
    nb.cells.insert(1, new_markdown_cell("# Runbook"))  # before the cell with the error
    assert record.summary_from_notebook(nb).as_json() == SUMMARY
    assert record.error_of(nb) == "KeyError: 'x'"
    rec = tmp_path / "rec"
    rec.mkdir()
    nbformat.write(nb, rec / "record.ipynb")
    record.write_html(rec)  # no notebook given: read from record.ipynb
    assert "Runbook" in (rec / "report.html").read_text(encoding="utf-8")
    assert record.html(nb).startswith("<!DOCTYPE html>") and "print" in record.html(nb)


def test_record_names_strip_only_dots_dashes_and_underscores_at_the_ends() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert record.record_name(at, "XRAY", "XX") == "20260101T000000Z-XRAY-XX"
    assert record.safe("_-.a.-_", 10) == "a" and record.safe("abc", 2) == "ab"


def test_outputs_without_metadata_are_passed_over(caplog) -> None:
    stream = new_output("stream", name="stdout", text="hello\n")  # streams carry no metadata
    nb = executed(stream, summary_output(SUMMARY))
    assert record.summary_from_notebook(nb).as_json() == SUMMARY
    with caplog.at_level("WARNING"):
        page = record.html(nb)
    assert "run" in page and "summary" in page  # the code is in the default page
    assert "Alternative text is missing" not in caplog.text


PNG = "iVBORw0KGgo="  # the bytes do not matter to the page


def test_the_default_page_has_the_code_a_chart_its_own_alt_text_and_focusable_cells() -> None:
    """nbconvert's BeautifulSoup pass (dropped: ~0.05 s a record) gave every image the same
    generic alt text and made inputs and outputs focusable; the page still does both, and a
    chart now keeps the alt text its cell gave it."""
    chart = new_output("display_data", data={"image/png": PNG},
                       metadata={"image/png": {"alt": "Chart: Error rate & latency"}})  # fmt: skip
    bare = new_output("display_data", data={"image/png": PNG})
    page = record.html(executed(chart, bare, source="code_only_marker = 1"))
    assert "code_only_marker" in page
    assert '<img alt="Chart: Error rate &amp; latency" src="data:image/png;base64,' in page
    assert '<img alt="No description has been provided for this image" src=' in page
    assert page.count("<img ") == 2
    # the two cells' inputs; the outputs: the chart and the bare image
    assert page.count('class="jp-Cell-inputWrapper" tabindex="0"') == 2
    assert len(re.findall(r'class="[^"]*jp-OutputArea-output[^"]*" tabindex="0"', page)) == 2


def test_a_code_cell_is_highlighted_and_sanitised_once_per_exporter(monkeypatch) -> None:
    """The runbook's code is the same in every record: a worker's exporter highlights and
    sanitises a cell's source once; a changed source is its own page, a cell's run times
    (different in every record) are not."""
    import bleach

    from runbook_lib.records import report

    cleaned: list[str] = []
    clean = bleach.clean
    monkeypatch.setattr(
        bleach, "clean", lambda text, **kw: cleaned.append(text) or clean(text, **kw)
    )
    report._clean_html.cache_clear()
    exporters = record.Exporters()
    first = executed(source="cached_marker = 1")
    page = exporters.html(first)
    assert "cached_marker" in page and any("cached_marker" in t for t in cleaned)
    cleaned.clear()
    again = copy.deepcopy(first)
    again.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-12-02T10:00:00Z"}
    assert exporters.html(again) == page
    assert not any("cached_marker" in t for t in cleaned)  # no second bleach pass
    changed = exporters.html(executed(source="cached_marker = 2"))
    assert "cached_marker" in changed and "2</span>" in changed and "1</span>" not in changed


def test_a_markdown_cell_is_rendered_once_per_exporter(monkeypatch) -> None:
    """The runbook's Markdown is the same in every record: a worker's exporter renders a
    cell's Markdown once and gives the same page again; a changed text is rendered anew,
    and a cell with an attachment is never taken from what was kept."""
    from nbconvert.exporters import html as nbconvert_html
    from nbformat.v4 import new_markdown_cell

    rendered: list[str] = []
    render = nbconvert_html.MarkdownWithMath.render
    monkeypatch.setattr(
        nbconvert_html.MarkdownWithMath,
        "render",
        lambda self, text: rendered.append(text) or render(self, text),
    )
    exporters = record.Exporters()

    def page(text: str, attachments: dict | None = None) -> str:
        nb = executed()
        cell = new_markdown_cell(text)
        if attachments:
            cell.attachments = attachments
        nb.cells.insert(0, cell)
        for i, one in enumerate(nb.cells):
            one.id = f"cell-{i}"  # the same page for the same cells
        return exporters.html(nb)

    first = page("**Kept** marker")
    assert "<strong>Kept</strong> marker" in first and rendered == ["**Kept** marker"]
    assert page("**Kept** marker") == first and rendered == ["**Kept** marker"]
    assert "<em>Other</em>" in page("*Other* marker") and len(rendered) == 2
    image = {"a.png": {"image/png": PNG}}
    with_attachment = "![a](attachment:a.png) marker"
    page(with_attachment, image)
    page(with_attachment, image)
    assert rendered.count(with_attachment) == 2


def test_a_page_copies_the_notebook_once_and_leaves_it_as_it_was(monkeypatch) -> None:
    """nbconvert copied the notebook twice per page (once more before its preprocessors);
    one copy is enough for the report's preprocessor to drop cells and outputs in, and the
    notebook handed in keeps them all."""
    import copy as copy_module

    from nbconvert.exporters import exporter as nbconvert_exporter

    copies: list[object] = []
    deepcopy = copy_module.deepcopy

    def counted(value, memo=None):
        if isinstance(value, nbformat.NotebookNode) and "cells" in value:
            copies.append(value)
        return deepcopy(value, memo)

    nb = executed(summary_output(SUMMARY), new_output("stream", text="shown marker\n"))
    before = copy_module.deepcopy(nb)
    monkeypatch.setattr(nbconvert_exporter.copy, "deepcopy", counted)
    page = record.Exporters().html(nb, code=False)
    assert "shown marker" in page and "top_cause" not in page  # the summary left out
    assert len(copies) == 1 and copies[0] is nb
    assert nb == before


# --------------------------------------------------------------------------- immutability


def _modes(rec: Path) -> dict[str, int]:
    import stat

    return {str(p.relative_to(rec)): stat.S_IMODE(p.stat().st_mode) for p in [rec, *rec.rglob("*")]}


def _published(tmp_path: Path) -> Path:
    from runbook_lib.execution import engine

    tmp = engine.tmp_dir(tmp_path, "rec")
    (tmp / "data").mkdir()
    (tmp / "data" / "q0001.csv").write_text("timestamp,value\n")
    (tmp / "summary.json").write_text("{}")
    return engine.publish(tmp, tmp_path / "rec", fixed=True)


def test_a_published_record_is_read_only_and_timings_keep_it_so(tmp_path: Path) -> None:
    from runbook_lib.execution.engine import Timings

    rec = _published(tmp_path)
    assert _modes(rec) == {".": 0o555, "data": 0o555, "data/q0001.csv": 0o444,
                           "summary.json": 0o444}  # fmt: skip
    Timings(phases={"total": 1.0}).write(rec)  # the one file added after the rename
    assert _modes(rec) == {".": 0o555, "data": 0o555, "data/q0001.csv": 0o444,
                           "summary.json": 0o444, "timings.json": 0o444}  # fmt: skip
    assert json.loads((rec / "timings.json").read_text())["phases"] == {"total": 1.0}


def test_retention_removes_a_read_only_record(tmp_path: Path) -> None:
    import os

    from runbook_lib.storage import retention

    rec = _published(tmp_path)
    old = 1_000_000.0
    os.utime(rec, (old, old))
    pruned = retention.prune(tmp_path, days=1, now=old + 3 * 86400)
    assert pruned.removed == ["rec"] and not rec.exists()


def _injected(params: dict) -> nbformat.NotebookNode:
    from papermill.parameterize import parameterize_notebook

    nb = new_notebook(cells=[new_code_cell("x = 1")])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    nb.metadata["papermill"] = {}
    return parameterize_notebook(nb, params, kernel_name="python3", language="python")


def test_a_record_notebook_replays_its_own_data_relative_to_itself() -> None:
    """Injected as the run had them, the parameters pointed at the temporary path the record
    was written under: re-run, the notebook asked the live Prometheus and wrote there."""
    ran = {"alert_name": "A", "prometheus_url": "http://p:9090", "live": True,
           "allow_mitigation": True, "snapshot_dir": "/out/.tmp-rec-1a2b/data", "replay_from": ""}  # fmt: skip
    nb = _injected(ran)
    record.as_replay(nb)
    cell = next(c for c in nb.cells if "injected-parameters" in c.metadata["tags"])
    values: dict = {}
    exec(cell.source, values)  # what the kernel gets from the cell
    assert {k: values[k] for k in ran} == {
        "alert_name": "A", "prometheus_url": "http://p:9090", "live": False,
        "allow_mitigation": False, "snapshot_dir": "", "replay_from": "data"}  # fmt: skip
    assert cell.source.startswith("# Re-running this record replays it")
    # what the run had stays in papermill's metadata, its data path the record's own
    assert nb.metadata.papermill.parameters == {**ran, "snapshot_dir": "data"}


# --------------------------------------------------------------------------- the report


def test_the_report_leaves_out_the_notebook_s_instructions_code_and_raw_summary() -> None:
    from nbformat.v4 import new_markdown_cell

    from runbook_lib.records.report import ReportCells

    shown = new_output("display_data", data={"text/markdown": "**Top cause: X**"})
    nb = new_notebook(cells=[
        new_markdown_cell("# Runbook: X\n\nRun all cells."),
        new_code_cell("alert_name = 'A'"),  # parameters: no output
        new_markdown_cell("## Assess"),
        new_code_cell("run.assess()", outputs=[shown]),
        new_markdown_cell("## Hidden by the runbook"),
        new_code_cell("run.x()", outputs=[shown]),
        new_markdown_cell("## Summary\nMachine-readable"),
        new_code_cell("summary = run.summary()", outputs=[summary_output(SUMMARY)]),
    ])  # fmt: skip
    nb.cells[4].metadata["tags"] = ["report-hide"]
    nb.cells[5].metadata["tags"] = ["report-hide"]
    kept, _ = ReportCells().preprocess(nb, {})
    assert [c.source for c in kept.cells] == ["## Assess", "run.assess()"]


def test_links_become_absolute_under_the_external_url() -> None:
    from runbook_lib.records.report import absolute_links

    page = (
        "<a href='/incidents/3'>i</a> <a href=\"summary.json\">s</a> "
        "<a href='../20260115T1000Z-A-b/report.html'>r</a> <a href='#top'>t</a> "
        "<a href='http://p:9090/graph?x=1&amp;y=2'>p</a> <a href='//cdn.example/x'>c</a>"
    )
    assert absolute_links(page, "https://runbook.example/", "rec 1") == (
        "<a href='https://runbook.example/incidents/3'>i</a> "
        '<a href="https://runbook.example/records/rec%201/summary.json">s</a> '
        "<a href='https://runbook.example/records/20260115T1000Z-A-b/report.html'>r</a> "
        "<a href='#top'>t</a> <a href='http://p:9090/graph?x=1&amp;y=2'>p</a> "
        "<a href='//cdn.example/x'>c</a>"
    )


def test_pages_carry_no_script_and_are_absolute_only_with_an_external_url() -> None:
    from nbformat.v4 import new_markdown_cell

    said = new_output("stream", name="stdout", text="found\n")
    nb = executed(said, summary_output(SUMMARY))
    nb.cells.insert(1, new_markdown_cell("<a href='/incidents/7'>Incident page</a>"))
    for page in (record.html(nb, name="r"), record.html(nb, code=False, name="r")):
        assert "<script" not in page  # no require.js, MathJax nor Mermaid from a CDN
        assert re.search(r"""href=(["'])/incidents/7\1""", page)  # quoted as the cell wrote it
    there = record.Exporters(base_url="https://rb.example").html(nb, code=False, name="r")
    assert re.search(r"""href=(["'])https://rb\.example/incidents/7\1""", there)


def test_the_external_url_setting_makes_the_links_absolute(monkeypatch) -> None:
    """The receiver's workers build their exporters from the settings (`runbook serve
    --external-url` puts it in their environment)."""
    monkeypatch.setenv("RUNBOOK_EXTERNAL_URL", "https://rb.example")
    assert record.Exporters().base_url == "https://rb.example"
    monkeypatch.delenv("RUNBOOK_EXTERNAL_URL")
    assert record.Exporters().base_url == ""
