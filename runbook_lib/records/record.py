"""Incident records: a directory per run under outputs/, holding the executed notebook
(`record.ipynb`), its HTML (`record.html`), a report view without code (`report.html`) and
`summary.json`. The summary is recoverable from the executed notebook alone."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from functools import cached_property
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe(text: str, limit: int) -> str:
    """A path component from any label value: no separators, no dots at the start."""
    cleaned = SAFE.sub("_", text).strip("._-")[:limit]
    return cleaned or "unnamed"


def record_name(at: datetime, alert: str, fingerprint: str) -> str:
    return f"{at:%Y%m%dT%H%M%SZ}-{safe(alert, 60)}-{safe(fingerprint, 12)}"


def summary_from_notebook(nb: nbformat.NotebookNode) -> dict | None:
    """The summary the notebook displayed, or None if it never got there."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("runbook_summary"):
                return dict(out["data"]["application/json"])
    return None


def error_of(nb: nbformat.NotebookNode) -> str | None:
    """The first error a cell raised, as 'Name: message'."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {out.get('evalue')}"
    return None


def summary(record: Path) -> dict:
    """The summary of a record: from summary.json, else from record.ipynb."""
    record = Path(record)
    if (record / "summary.json").exists():
        return json.loads((record / "summary.json").read_text())
    nb = nbformat.read(record / "record.ipynb", as_version=4)
    found = summary_from_notebook(nb)
    if found is None:
        raise ValueError(f"{record}: the notebook has no summary output (failed run?)")
    return found


class _NoAltTextWarning(logging.Filter):
    """nbconvert gives every chart a generic alt text and warns each time, once per page."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Alternative text is missing" not in record.getMessage()


class Exporters:
    """The two HTML views of a record. Building an exporter loads its templates, so a
    long-lived worker builds them once and reuses them for every record."""

    @cached_property
    def full(self) -> HTMLExporter:
        return _quiet(HTMLExporter())

    @cached_property
    def report(self) -> HTMLExporter:
        return _quiet(
            HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        )

    def html(self, nb: nbformat.NotebookNode, *, code: bool = True) -> str:
        """The notebook as one HTML page; without `code`, a report of the outputs only."""
        return (self.full if code else self.report).from_notebook_node(nb)[0]


def _quiet(exporter: HTMLExporter) -> HTMLExporter:
    exporter.log.addFilter(_NoAltTextWarning())
    return exporter


def html(nb: nbformat.NotebookNode, *, code: bool = True) -> str:
    return Exporters().html(nb, code=code)


def write_html(
    record: Path, nb: nbformat.NotebookNode | None = None, exporters: Exporters | None = None
) -> None:
    """record.html and report.html, from `nb` in memory (else from record.ipynb)."""
    nb = nb if nb is not None else nbformat.read(record / "record.ipynb", as_version=4)
    exporters = exporters or Exporters()
    (record / "record.html").write_text(exporters.html(nb), encoding="utf-8")
    (record / "report.html").write_text(exporters.html(nb, code=False), encoding="utf-8")
