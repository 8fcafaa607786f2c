"""Incident records: a directory per run under outputs/, holding the executed notebook
(`record.ipynb`), its HTML (`record.html`), a report view without code (`report.html`) and
`summary.json`. The summary is recoverable from the executed notebook alone.

A published record does not change: its files and directories are read-only, and its
notebook's parameters replay it from its own `data/` (a path relative to the notebook), so
"Restart & Run All" in JupyterLab reads what the run saw and writes nothing into it."""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.contract.config import Settings
from runbook_lib.contract.summary import Summary

if TYPE_CHECKING:  # nbformat and nbconvert cost ~0.5 s to import: only where a record is read
    import nbformat

    from runbook_lib.records.report import PageExporter

SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe(text: str, limit: int) -> str:
    """A path component from any label value: no separators, no dots at the start."""
    cleaned = SAFE.sub("_", text).strip("._-")[:limit]
    return cleaned or "unnamed"


def record_name(at: datetime, alert: str, fingerprint: str) -> str:
    return f"{at:%Y%m%dT%H%M%SZ}-{safe(alert, 60)}-{safe(fingerprint, 12)}"


def summary_from_notebook(nb: nbformat.NotebookNode) -> Summary | None:
    """The summary the notebook displayed, or None if it never got there."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("runbook_summary"):
                return Summary.model_validate(dict(out["data"]["application/json"]))
    return None


def error_of(nb: nbformat.NotebookNode) -> str | None:
    """The first error a cell raised, as 'Name: message'."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {out.get('evalue')}"
    return None


def summary(record: Path) -> Summary:
    """The summary of a record: from summary.json, else from record.ipynb."""
    record = Path(record)
    if (record / "summary.json").exists():
        return Summary.load(record / "summary.json")
    import nbformat

    nb = nbformat.read(record / "record.ipynb", as_version=4)
    found = summary_from_notebook(nb)
    if found is None:
        raise ValueError(f"{record}: the notebook has no summary output (failed run?)")
    return found


# -- a record that stays what it was ------------------------------------------------------
DATA = "data"  # the record's saved answers, beside record.ipynb
REPLAYING = {"replay_from": DATA, "snapshot_dir": "", "live": False, "allow_mitigation": False}
REPLAY_NOTE = (
    "# Re-running this record replays it: the answers the run saved in data/ (beside this\n"
    "# notebook), no live host, no mitigation; the record's files are read-only. The run's own\n"
    "# parameters are in the notebook's papermill metadata.\n"
)


def as_replay(nb: nbformat.NotebookNode) -> None:
    """Set the injected parameters of an executed notebook to replay its record's data/.

    Papermill injected the run's parameters, whose `snapshot_dir` is the temporary path the
    record was written under: re-executed as it was, the notebook queried the live
    Prometheus and wrote into that path inside the record. The run's parameters stay in the
    notebook's papermill metadata, their data path made relative to the record."""
    from papermill.translators import translate_parameters

    meta = nb.metadata.get("papermill", {})
    params = dict(meta.get("parameters") or {})
    cell = next((c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])), None)
    if cell is None or not params:
        return
    if params.get("snapshot_dir"):
        meta["parameters"] = {**params, "snapshot_dir": DATA}
    replay = {**params, **REPLAYING}
    kernel = nb.metadata.get("kernelspec", {})
    cell.source = REPLAY_NOTE + translate_parameters(
        kernel.get("name", "python3"), kernel.get("language", "python"), replay, "Parameters"
    )


def seal(rec: Path) -> None:
    """Make a published record read-only: files 0444, directories 0555."""
    for root, dirs, files in os.walk(rec, topdown=False):
        for name in files:
            _chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            _chmod(os.path.join(root, name), 0o555)
    os.chmod(rec, 0o555)


def _chmod(path: str, mode: int) -> None:
    if not os.path.islink(path):  # a link's target is no part of the record
        os.chmod(path, mode)


@contextmanager
def opened(rec: Path) -> Iterator[Path]:
    """A sealed record's directory made writable for one addition (timings.json, which times
    the publishing), sealed again after."""
    os.chmod(rec, stat.S_IMODE(os.stat(rec).st_mode) | stat.S_IWUSR)
    try:
        yield rec
    finally:
        seal(rec)


def remove(rec: Path) -> None:
    """Delete a record (retention): its read-only directories are opened first, or a
    service that is not root could not empty them."""
    for root, _, _ in os.walk(rec):
        os.chmod(root, 0o755)
    shutil.rmtree(rec)


TEMPLATES = Path(__file__).with_name("templates")  # `runbook`: lab's look, no script


class Exporters:
    """The two HTML views of a record, self-contained (no script, nothing fetched from
    elsewhere). Building an exporter loads its templates, so a long-lived worker builds them
    once and reuses them for every record, and validates a page's notebook once, after its
    preprocessors (nbconvert's default is after each: ~12 times a page, ~0.05 s a record).
    With `base_url` (the receiver's external URL, default the `external_url` setting) their
    links are absolute."""

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = Settings().external_url if base_url is None else base_url

    @cached_property
    def full(self) -> PageExporter:
        from runbook_lib.records.report import PageExporter

        return PageExporter(
            template_name="runbook",
            extra_template_basedirs=[str(TEMPLATES)],
            optimistic_validation=True,
        )

    @cached_property
    def report(self) -> PageExporter:
        from runbook_lib.records.report import ReportCells

        exporter = self._outputs_only()
        exporter.register_preprocessor(ReportCells(), enabled=True)
        return exporter

    @cached_property
    def outputs(self) -> PageExporter:
        return self._outputs_only()

    def _outputs_only(self) -> PageExporter:
        from runbook_lib.records.report import PageExporter

        return PageExporter(template_name="runbook", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, optimistic_validation=True)  # fmt: skip

    def html(
        self, nb: nbformat.NotebookNode, *, code: bool = True, name: str = "", report: bool = True
    ) -> str:
        """The notebook as one HTML page; without `code`, an incident record's report (see
        `report.py`), or with `report=False` every output as it is (a post-mortem). `name`
        is the record's directory name: the page's title, and where its links lead."""
        from runbook_lib.records.report import absolute_links

        exporter = self.full if code else self.report if report else self.outputs
        page = exporter.from_notebook_node(nb, {"metadata": {"name": name or "incident record"}})[0]
        return absolute_links(page, self.base_url, name) if self.base_url and name else page


def html(
    nb: nbformat.NotebookNode, *, code: bool = True, name: str = "", report: bool = True
) -> str:
    return Exporters().html(nb, code=code, name=name, report=report)


def write_html(
    record: Path,
    nb: nbformat.NotebookNode | None = None,
    exporters: Exporters | None = None,
    name: str = "",
) -> None:
    """record.html and report.html, from `nb` in memory (else from record.ipynb); `name` is
    the record's published name (default: its directory's)."""
    import nbformat

    nb = nb if nb is not None else nbformat.read(record / "record.ipynb", as_version=4)
    exporters = exporters or Exporters()
    name = name or record.name
    (record / "record.html").write_text(exporters.html(nb, name=name), encoding="utf-8")
    (record / "report.html").write_text(exporters.html(nb, code=False, name=name), encoding="utf-8")
