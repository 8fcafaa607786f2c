"""Run one runbook notebook with Papermill and file the result as an incident record.

Alert fields reach the notebook only as Papermill parameters (data, never code). The
record is written under a temporary name and renamed when complete, so a reader never sees
half a record. A notebook that fails or times out still leaves a record, with the error at
the top and `status` failed or timed_out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_markdown_cell, new_notebook
from traitlets.config import Config

from runbook_lib import record
from runbook_lib.alerts import route
from runbook_lib.config import ROOT
from runbook_lib.prom import utc

NOTEBOOKS = ROOT / "notebooks"


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id for a label set (Alertmanager sends its own; this is for manual runs)."""
    text = "\0".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_params(
    alert_name: str,
    labels: dict[str, str],
    *,
    at: str | datetime | None = None,
    annotations: dict[str, str] | None = None,
    starts_at: str = "",
    ends_at: str = "",
    fp: str = "",
    prometheus_url: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    labels = {**labels, "alertname": alert_name}
    at_dt = utc(at)
    params = {
        "alert_name": alert_name,
        "severity": labels.get("severity", ""),
        "labels": labels,
        "annotations": annotations or {},
        "starts_at": starts_at or at_dt.isoformat(),
        "ends_at": ends_at,
        "fingerprint": fp or fingerprint(labels),
        "at": at_dt.isoformat(),
    }
    if prometheus_url:
        params["prometheus_url"] = prometheus_url
    return {**params, **(extra or {})}


def run(
    params: dict[str, Any],
    output_dir: Path,
    *,
    runbook: str | None = None,
    timeout: float = 600,
    start_timeout: float = 60,
    progress: bool = False,
    cwd: Path | None = None,
    name: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Execute the routed notebook; returns the record directory.

    With `name` the record's directory name is fixed (the queue fixes it when it accepts
    the alert, so a re-run after a crash finds the record instead of making a second one);
    an existing record of that name is kept and returned. `extra` goes into summary.json.
    """
    runbook = runbook or route(params["alert_name"])
    fixed = name is not None
    if name is None:
        try:
            at = utc(params.get("at") or None)
        except ValueError:  # the notebook will say what is wrong with it; name it by now
            at = utc(None)
        fp = str(params.get("fingerprint", ""))
        name = record.record_name(at, str(params["alert_name"]), fp)
    elif (output_dir / name).exists():
        return output_dir / name
    tmp = _tmp_dir(output_dir, name)
    out_nb = tmp / "record.ipynb"
    if not params.get("replay_from") and "snapshot_dir" not in params:
        params = {**params, "snapshot_dir": str(tmp / "data")}
    status, error = "completed", None
    ipc = Path(tempfile.mkdtemp(prefix="rbk-"))
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{runbook}.ipynb"),
            str(out_nb),
            parameters=params,
            execution_timeout=timeout,
            start_timeout=start_timeout,
            progress_bar=progress,
            cwd=str(cwd) if cwd else None,
            kernel_name="python3",
            config=ipc_config(ipc),
        )
    except papermill.PapermillExecutionError as exc:
        status, error = "failed", f"{exc.ename}: {exc.evalue}"
        if exc.ename in ("CellTimeoutError", "TimeoutError"):
            status = "timed_out"
    except (CellTimeoutError, TimeoutError) as exc:
        status, error = "timed_out", f"{type(exc).__name__}: {exc}"
    except (DeadKernelError, RuntimeError) as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(ipc, ignore_errors=True)
    _finish(tmp, out_nb, runbook, params, status, error, extra)
    return _publish(tmp, output_dir / name, fixed=fixed)


def ipc_config(directory: Path) -> Config:
    """Kernel channels over Unix sockets in a private directory, not loopback TCP ports:
    concurrent kernels cannot race for a port (a storm showed "Kernel died before replying
    to kernel_info" once in 220 runs over TCP), and nothing listens on the network."""
    return Config({"KernelManager": {"transport": "ipc", "ip": str(directory / "k")}})


def replay_params(rec: Path, **overrides: Any) -> dict[str, Any]:
    """The parameters of a record's run, set to answer from its saved data."""
    rec = Path(rec)
    if not (rec / "data" / "queries.jsonl").exists():
        raise FileNotFoundError(f"{rec} has no saved data (data/queries.jsonl) to replay")
    nb = nbformat.read(rec / "record.ipynb", as_version=4)
    params = dict(nb.metadata.get("papermill", {}).get("parameters", {}))
    if not params.get("alert_name"):
        raise ValueError(f"{rec}/record.ipynb holds no papermill parameters")
    summ = record.summary(rec)
    params.update(
        at=summ.get("evaluated_at") or params.get("at", ""),
        replay_from=str((rec / "data").resolve()),
        snapshot_dir="",
        live=False,
        allow_mitigation=False,
    )
    return {**params, **overrides}


def failure_record(
    params: dict[str, Any],
    output_dir: Path,
    *,
    runbook: str,
    name: str,
    status: str,
    error: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A record for a run that never produced one (its process died or overran)."""
    if (output_dir / name).exists():
        return output_dir / name
    tmp = _tmp_dir(output_dir, name)
    _finish(tmp, tmp / "record.ipynb", runbook, params, status, error, extra)
    return _publish(tmp, output_dir / name, fixed=True)


def _tmp_dir(output_dir: Path, name: str) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def _publish(tmp: Path, final: Path, *, fixed: bool) -> Path:
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


def _finish(
    tmp: Path,
    out_nb: Path,
    runbook: str,
    params: dict,
    status: str,
    error: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    if out_nb.exists():
        nb = nbformat.read(out_nb, as_version=4)
    else:
        nb = new_notebook(cells=[])
    summ = record.summary_from_notebook(nb) if status == "completed" else None
    if summ is None:
        error = error or record.error_of(nb) or "the notebook stopped before its summary"
        status = "failed" if status == "completed" else status
        nb.cells.insert(
            0,
            new_markdown_cell(
                f"<div style='background:#d62728;color:white;padding:8px'><b>Run {status}</b>: "
                f"{_html(error)}</div>"
            ),
        )
        nbformat.write(nb, out_nb)
        summ = {
            "alert": params["alert_name"],
            "runbook": runbook,
            "status": status,
            "severity": params.get("severity", ""),
            "starts_at": params.get("starts_at"),
            "evaluated_at": params.get("at"),
            "fingerprint": params.get("fingerprint", ""),
            "labels": params.get("labels", {}),
            "figures": {},
            "diagnosis": [],
            "top_cause": None,
            "data_gaps": [],
            "error": error,
        }
    summ.update(extra or {})
    (tmp / "summary.json").write_text(json.dumps(summ, indent=1, default=str))
    record.write_html(tmp)


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(2, 10_000):
        candidate = path.with_name(f"{path.name}-{i}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(path)


def _html(text: str) -> str:
    import html

    return html.escape(text)
