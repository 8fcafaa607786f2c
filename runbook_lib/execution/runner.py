"""One runbook run now (`runbook run`, `make golden`, tests): the alert's parameters,
a kernel started for it, the engine's execution and record, no pool.

Alert fields reach the notebook only as Papermill parameters (data, never code).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_notebook

from runbook_lib.contract.alerts import route
from runbook_lib.contract.clock import utc
from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.execution import engine, kernels
from runbook_lib.records import record

MARK_PREFIX = "runbook-run#"  # marks what a one-off run's kernel starts


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
    notebook_dir: Path | None = None,
    zygote: kernels.Zygote | None = None,
) -> Path:
    """Execute the routed notebook (from `notebook_dir`, by default notebooks/) in a kernel of
    its own, started for it (within `start_timeout`) or, given a `zygote`, forked from it as
    the service's workers do (within the zygote's own timeout); returns the record directory.

    With `name` the record's directory name is fixed (the queue fixes it when it accepts
    the alert, so a re-run after a crash finds the record instead of making a second one);
    an existing record of that name is kept and returned. `extra` goes into summary.json.
    """
    req = engine.RunSpec(
        params=params,
        runbook=runbook or route(params["alert_name"]),
        output_dir=Path(output_dir),
        name=name,
        extra=extra or {},
        cell_timeout=timeout,
        progress=progress,
    )
    if name is not None and (req.output_dir / name).exists():
        return req.output_dir / name
    started = time.monotonic()
    try:
        if zygote is not None:
            kernel = zygote.fork(str(cwd) if cwd else None)
        else:
            kernel = kernels.start_fresh(
                f"{MARK_PREFIX}{uuid.uuid4().hex[:12]}", cwd, start_timeout
            )
    except kernels.KernelError as exc:
        return failure_record(params, req.output_dir, runbook=req.runbook,
                              name=engine.record_name_for(req)[0], status="failed",
                              error=str(exc), extra=req.extra)  # fmt: skip
    try:
        rec, timings = engine.Engine(notebook_dir or NOTEBOOKS).run(req, kernel)
    finally:
        kernel.kill()
    timings.phases = {"kernel": round(kernel.ready_s, 4), **timings.phases}
    timings.phases["total"] = round(time.monotonic() - started, 4)
    timings.write(rec)
    return rec


def replay_params(rec: Path, **overrides: Any) -> dict[str, Any]:
    """The parameters of a record's run, set to answer from its saved data."""
    rec = Path(rec)
    if not (rec / record.DATA / "queries.jsonl").exists():
        raise FileNotFoundError(f"{rec} has no saved data (data/queries.jsonl) to replay")
    nb = nbformat.read(rec / "record.ipynb", as_version=4)
    params = dict(nb.metadata.get("papermill", {}).get("parameters", {}))
    if not params.get("alert_name"):
        raise ValueError(f"{rec}/record.ipynb holds no papermill parameters")
    summ = record.summary(rec)
    params.update(
        record.REPLAYING,
        at=summ.evaluated_at or params.get("at", ""),
        replay_from=str((rec / record.DATA).resolve()),
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
    req = engine.RunSpec(
        params=params, runbook=runbook, output_dir=output_dir, name=name, extra=extra or {}
    )
    tmp = engine.tmp_dir(output_dir, name)
    engine.finish(tmp, new_notebook(cells=[]), req, params, status, error, name=name)
    return engine.publish(tmp, output_dir / name, fixed=True)
