"""Execute one runbook notebook in a kernel it is handed, and file the result as a record.

The notebook is parameterized and executed with papermill's own API (the injected-parameters
cell, papermill's metadata, its error cell at the top of a failed run), so a record is a
papermill record whoever ran it. What can be paid once is paid once per Engine: the
notebooks are read once, the two HTML exporters are built once, and both pages are written
from the executed notebook in memory. Each phase is timed (`timings.json` in the record).

A record is written under a temporary name and renamed when complete, so a reader never
sees half a record. A notebook that fails or times out still leaves a record, with the
error at the top and `status` failed or timed_out.
"""

from __future__ import annotations

import copy
import html
import json
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_markdown_cell, new_notebook
from papermill.engines import papermill_engines
from papermill.execute import (
    prepare_notebook_metadata,
    raise_for_execution_errors,
    remove_error_markers,
)
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from pydantic import BaseModel, ConfigDict, Field

from runbook_lib.contract.clock import utc
from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.contract.summary import Summary
from runbook_lib.execution.kernels import Kernel
from runbook_lib.notebook import parameters
from runbook_lib.notebook.parameters import KERNELSPEC
from runbook_lib.records import record
from runbook_lib.records.lead import lead_html, replay_html

KERNEL_NAME = KERNELSPEC["name"]


class RunSpec(BaseModel):
    """One run as a worker receives it (a JSON line to a pool worker, a Celery worker's
    argument, `runbook run`'s own): the notebook's parameters, where its record goes and
    the limits it runs under. Built from a `RunRequest` by `service/workers.job_spec`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: dict[str, Any]
    runbook: str
    output_dir: Path
    name: str | None = None  # fixed by the queue at accept time; None: from time and alert
    extra: dict[str, Any] = Field(default_factory=dict)  # Summary fields about the run
    cell_timeout: float = 600.0
    run_timeout: float | None = None
    progress: bool = False
    # the runbooks to run from (the pinned copy, execution/pinning.py); None: the engine's own
    notebook_dir: Path | None = None
    queued_s: float = 0.0  # how long the run waited in the queue (its timings' first phase)
    sent_at: float | None = None  # epoch seconds it was handed over (times the hand-over)


@dataclass
class Timings:
    """Seconds per phase of one run, and per cell of its notebook."""

    phases: dict[str, float] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds: worker, kernel

    def mark(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.phases[phase] = round(now - since, 4)
        return now

    def as_dict(self) -> dict[str, Any]:
        return {"phases": self.phases, "cells": self.cells, "cpu": self.cpu}

    def write(self, rec: Path) -> None:
        """`timings.json` beside the record (after publishing: it times that too)."""
        with record.opened(rec):
            (rec / "timings.json").write_text(json.dumps(self.as_dict(), indent=1))


class Engine:
    """Runs notebooks from `notebook_dir`, keeping them and the exporters loaded."""

    def __init__(self, notebook_dir: Path = NOTEBOOKS) -> None:
        self.notebook_dir = Path(notebook_dir)
        self.exporters = record.Exporters()
        self._notebooks: dict[str, nbformat.NotebookNode] = {}

    def path(self, req: RunSpec) -> Path:
        return Path(req.notebook_dir or self.notebook_dir) / f"{req.runbook}.ipynb"

    def notebook(self, path: Path) -> nbformat.NotebookNode:
        """A fresh copy of the notebook at `path` (read from disk once: runs read pinned
        copies, which do not change)."""
        key = str(path)
        if key not in self._notebooks:
            self._notebooks[key] = load_notebook_node(key)
        return copy.deepcopy(self._notebooks[key])

    def run(self, req: RunSpec, kernel: Kernel) -> tuple[Path, Timings]:
        """Execute `req` in `kernel`; returns the record directory and the timings. With a
        fixed name whose record exists already, that record is returned untouched."""
        timings = Timings()
        name, fixed = record_name_for(req)
        if fixed and (req.output_dir / name).exists():
            return req.output_dir / name, timings
        tmp = tmp_dir(req.output_dir, name)
        params = dict(req.params)
        params["snapshot_dir"] = str(tmp / "data")  # every record keeps what it was answered
        t = time.monotonic()
        try:
            params = parameters.validate(self.path(req), params, undeclared=True)
        except parameters.ParameterError as exc:  # a record that says which, not a crash
            finish(tmp, new_notebook(cells=[]), req, params, "failed", str(exc), self.exporters)
            return publish(tmp, req.output_dir / name, fixed=fixed), timings
        nb = parameterize_notebook(
            self.notebook(self.path(req)), params, kernel_name=KERNEL_NAME, language="python"
        )
        t = timings.mark("parameterize", t)
        nb, status, error = self._execute(nb, req, kernel, tmp / "record.ipynb")
        t = timings.mark("execute", t)
        timings.cells = cell_times(nb)
        final = req.output_dir / name if fixed else _free_name(req.output_dir / name)
        finish(tmp, nb, req, params, status, error, self.exporters, name=final.name)
        t = timings.mark("export", t)
        final = publish(tmp, final, fixed=fixed)
        timings.mark("publish", t)
        return final, timings

    def _execute(
        self, nb: nbformat.NotebookNode, req: RunSpec, kernel: Kernel, out: Path
    ) -> tuple[nbformat.NotebookNode, str, str | None]:
        """(executed notebook, status, error): a failed cell's notebook has papermill's
        error cell on top; a run that timed out or lost its kernel has no cells. Nothing
        is written here (`finish` writes `out`)."""
        overran = threading.Event()
        timer = None
        if req.run_timeout:
            timer = threading.Timer(req.run_timeout, lambda: (overran.set(), kernel.kill()))
            timer.daemon = True
            timer.start()
        status, error, done = "completed", None, new_notebook(cells=[])
        try:
            executed = in_memory(
                nb,
                self.path(req),
                out,
                km=kernel.km,
                execution_timeout=req.cell_timeout,
                progress_bar=req.progress,
            )
            return executed, status, error
        except papermill.PapermillExecutionError as exc:
            done = nb  # with papermill's error cell on top
            status, error = "failed", f"{exc.ename}: {exc.evalue}"
            if exc.ename in ("CellTimeoutError", "TimeoutError"):
                status = "timed_out"
        except (CellTimeoutError, TimeoutError) as exc:
            status, error = "timed_out", f"{type(exc).__name__}: {exc}"
        except (DeadKernelError, RuntimeError) as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if timer:
                timer.cancel()
        if overran.is_set():
            status = "timed_out"
            error = f"the run exceeded its {req.run_timeout:.0f}s limit and was stopped"
        return done, status, error


def in_memory(
    nb: nbformat.NotebookNode, source: Path, out: Path, **engine_kwargs: Any
) -> nbformat.NotebookNode:
    """`papermill.execute_notebook`'s steps on the notebook in memory (its metadata, its
    engine, its error cell on top of a failed run, raised as PapermillExecutionError with
    `nb` holding it), without its round trips through JSON: handed a notebook, papermill
    serialises and parses it again, files a copy of it as `input_path` in the record's
    metadata (the runbook's source, ~9 KB, in every record), and serialises and validates
    the result to write it. `finish` writes the record once."""
    nb = remove_error_markers(prepare_notebook_metadata(nb, str(source), str(out)))
    nb = papermill_engines.execute_notebook_with_engine(
        None, nb, kernel_name=KERNEL_NAME, input_path=str(source), output_path=None,
        **engine_kwargs,
    )  # fmt: skip
    raise_for_execution_errors(nb, None)  # its write goes nowhere (output_path None)
    return nb


def record_name_for(req: RunSpec) -> tuple[str, bool]:
    """The record's directory name, and whether it was fixed in advance."""
    if req.name is not None:
        return req.name, True
    try:
        at = utc(req.params.get("at") or None)
    except ValueError:  # the notebook will say what is wrong with it; name it by now
        at = utc(None)
    fp = str(req.params.get("fingerprint", ""))
    return record.record_name(at, str(req.params["alert_name"]), fp), False


def cell_times(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """Papermill's per-cell durations, with the first line of each code cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.cell_type == "code" and duration is not None:
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            out.append({"cell": i, "source": first[:80], "seconds": round(duration, 4)})
    return out


def finish(
    tmp: Path,
    nb: nbformat.NotebookNode,
    req: RunSpec,
    params: dict[str, Any],
    status: str,
    error: str | None,
    exporters: record.Exporters | None = None,
    name: str = "",
) -> None:
    """summary.json, the answer (or the error banner of a run that did not complete) on top
    of the notebook, its parameters set to replay the record, both HTML pages."""
    summ = record.summary_from_notebook(nb) if status == "completed" else None
    if summ is None:
        error = error or record.error_of(nb) or "the notebook stopped before its summary"
        status = "failed" if status == "completed" else status
        nb.cells.insert(
            0,
            new_markdown_cell(
                f"<div style='background:#d62728;color:white;padding:8px'><b>Run {status}</b>: "
                f"{html.escape(error)}</div>"
            ),
        )
        summ = failure_summary(params, req.runbook, status, error)
    summ = summ.with_fields(**req.extra)
    if params.get("replay_from") and summ.replay_of is None:
        summ = summ.with_fields(replay_of=replayed(Path(params["replay_from"]), req.output_dir))
    if status == "completed":
        nb.cells.insert(0, new_markdown_cell(lead_html(summ)))
    elif summ.replay_of:
        nb.cells.insert(0, new_markdown_cell(replay_html(summ)))
    record.as_replay(nb)
    nbformat.write(nb, tmp / "record.ipynb")
    summ.write(tmp / "summary.json")
    record.write_html(tmp, nb, exporters, name=name or req.name or "")


def replayed(data: Path, output_dir: Path) -> str:
    """The record a replay answered from: its name when it sits beside the new record (the
    pages link to it), else its path."""
    rec = data.resolve().parent
    return rec.name if rec.parent == output_dir.resolve() else str(rec)


def failure_summary(params: dict[str, Any], runbook: str, status: str, error: str) -> Summary:
    """The summary of a run that did not complete: the alert it was given, and why."""
    return Summary(
        alert=params["alert_name"],
        runbook=runbook,
        status=status,
        severity=params.get("severity", ""),
        starts_at=params.get("starts_at"),
        evaluated_at=params.get("at"),
        fingerprint=params.get("fingerprint", ""),
        labels=params.get("labels", {}),
        figures={},
        diagnosis=[],
        top_cause=None,
        data_gaps=[],
        error=error,
    )


def tmp_dir(output_dir: Path, name: str) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def publish(tmp: Path, final: Path, *, fixed: bool) -> Path:
    """Rename the finished record into place, never over another record. A fixed name
    already taken means this run was done before: the first record stands."""
    if not fixed:
        final = _free_name(final)
    try:
        tmp.rename(final)  # atomic; fails if `final` exists and is not empty
    except OSError:
        if not fixed or not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return final
    record.seal(final)
    return final


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(2, 10_000):
        candidate = path.with_name(f"{path.name}-{i}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(path)
