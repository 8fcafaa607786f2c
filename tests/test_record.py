"""Records: the summary kept in the executed notebook, the first error, summary.json first,
and both HTML pages written from the notebook in memory."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from runbook_lib.records import record

SUMMARY = {"alert": "A", "status": "completed", "top_cause": "x"}


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
    assert record.summary_from_notebook(nb) == SUMMARY
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
    assert record.summary(rec) == SUMMARY
    (rec / "summary.json").write_text(json.dumps({**SUMMARY, "run_id": 7}))
    assert record.summary(rec)["run_id"] == 7
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
    assert record.html(nb, code=False) == report


def test_markdown_cells_have_no_outputs_and_are_skipped(tmp_path: Path) -> None:
    from nbformat.v4 import new_markdown_cell

    err = new_output("error", ename="KeyError", evalue="'x'", traceback=[])
    nb = executed(summary_output(SUMMARY), err)
    nb.cells.insert(0, new_markdown_cell("# Runbook"))
    assert record.summary_from_notebook(nb) == SUMMARY
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
    assert record.summary_from_notebook(nb) == SUMMARY
    with caplog.at_level("WARNING"):
        page = record.html(nb)
    assert "run" in page and "summary" in page  # the code is in the default page
    assert "Alternative text is missing" not in caplog.text


def test_the_default_page_has_the_code_and_the_alt_text_warning_is_dropped() -> None:
    import logging

    nb = executed(summary_output(SUMMARY), source="code_only_marker = 1")
    assert "code_only_marker" in record.html(nb)
    exporters = record.Exporters()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            seen.append(rec.getMessage())

    exporters.full.log.addHandler(Keep())
    exporters.full.log.warning("Alternative text is missing on 2 image(s).")
    exporters.full.log.warning("something else")
    assert seen == ["something else"]
