"""A bounded pool of notebook workers draining the index's queue.

Each worker thread claims a run, executes it in its own process (`runbook_lib.execute`)
under a wall-clock limit, and files the outcome. Whatever happens to that process (it
finishes, overruns, or dies), the run ends with exactly one record and nothing it started
keeps running. On start the pool recovers from a crash of an earlier server: it kills what
the earlier runs left behind, keeps records that were completed, and runs the rest again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from runbook_lib import record, runner
from runbook_lib.index import Index, Job

MARK = "RUNBOOK_RUN_MARK"
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class RunConfig:
    """How the pool runs notebooks."""

    output_dir: Path
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    cell_timeout: float = 300.0
    start_timeout: float = 60.0
    run_timeout: float = 900.0
    prometheus_url: str = ""
    alertmanager_url: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # extra notebook parameters


Observer = Callable[[Job, dict, float], None]


class Pool:
    def __init__(self, index: Index, config: RunConfig, on_done: Observer | None = None) -> None:
        self.index, self.config, self.on_done = index, config, on_done
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._procs: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.leftovers_killed: list[int] = []
        # One mark per pool, so a sweep never touches another server's runs.
        self._mark_prefix = f"{self.index.path.resolve()}#"

    def start(self) -> None:
        self.recover()
        for i in range(self.config.workers):
            t = threading.Thread(target=self._loop, name=f"runbook-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; end running runs (they go back to the queue for the next start)."""
        self._stop.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _kill_group(proc)
        for t in self._threads:
            t.join(timeout)
        sweep(self._mark_prefix)

    # -- recovery --------------------------------------------------------------------------
    def recover(self) -> int:
        """After a crash: kill leftovers, keep finished records, requeue the rest."""
        self.leftovers_killed = sweep(self._mark_prefix)
        for tmp in self.config.output_dir.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        requeued = 0
        for job in self.index.in_flight():
            done = self.config.output_dir / job.record
            if done.exists():
                self.index.finish(job.run_id, record.summary(done))
            elif job.attempts >= MAX_ATTEMPTS:
                error = f"the run was interrupted {job.attempts} times; not trying again"
                self._file(job, self._failure(job, "failed", error), 0.0)
            else:
                self.index.requeue(job.run_id)
                requeued += 1
        return requeued

    # -- the work --------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.index.claim()
            except Exception as exc:  # a locked or broken index must not end the worker
                print(
                    f"runbook worker: cannot claim from {self.index.path}: {exc}", file=sys.stderr
                )
                self._stop.wait(2)
                continue
            if job is None:
                self._stop.wait(0.5)
                continue
            started = time.monotonic()
            rec = self.execute(job)
            if rec is not None:
                self._file(job, rec, time.monotonic() - started)

    def execute(self, job: Job) -> Path | None:
        """Run `job` in its own process; its record, or None when the pool is stopping."""
        mark = f"{self._mark_prefix}{job.run_id}"
        spec = {
            "parent_pid": os.getpid(),
            "params": self.params(job),
            "output_dir": str(self.config.output_dir),
            "runbook": job.runbook,
            "record": job.record,
            "cell_timeout": self.config.cell_timeout,
            "start_timeout": self.config.start_timeout,
            "extra": self.links(job),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "runbook_lib.execute"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, MARK: mark},
        )
        with self._lock:
            self._procs[job.run_id] = proc
        try:
            _, err = proc.communicate(json.dumps(spec), timeout=self.config.run_timeout)
            status, error = "failed", _tail(err)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            status = "timed_out"
            error = f"the run exceeded its {self.config.run_timeout:.0f}s limit and was stopped"
        finally:
            with self._lock:
                self._procs.pop(job.run_id, None)
            sweep(mark)  # the kernel and anything a cell started
        done = self.config.output_dir / job.record
        if done.exists():
            return done
        if self._stop.is_set():
            return None  # stopped by the pool: recovered and run again on the next start
        if status == "failed" and proc.returncode and proc.returncode < 0:
            error = f"the run's process was killed by signal {-proc.returncode}"
        return self._failure(job, status, error or f"the run's process exited {proc.returncode}")

    def params(self, job: Job) -> dict[str, Any]:
        """Papermill parameters: alert fields as data, never as code."""
        labels = {k: v for k, v in job.labels.items() if k != "alertname"}
        return runner.alert_params(
            job.alertname,
            labels,
            annotations=job.annotations,
            starts_at=job.starts_at,
            ends_at=job.ends_at or "",
            fp=job.fingerprint,
            prometheus_url=self.config.prometheus_url,
            extra={
                **({"alertmanager_url": a} if (a := self.config.alertmanager_url) else {}),
                **self.config.params,
            },
        )

    def links(self, job: Job) -> dict[str, Any]:
        links: dict[str, Any] = {
            "incident_id": job.incident_id,
            "run_id": job.run_id,
            "kind": job.kind,
            "attempt": job.attempts,
        }
        if job.verification_of:
            links["verification_of"] = job.verification_of
        return links

    def _failure(self, job: Job, status: str, error: str) -> Path:
        return runner.failure_record(
            self.params(job),
            self.config.output_dir,
            runbook=job.runbook,
            name=job.record,
            status=status,
            error=error,
            extra=self.links(job),
        )

    def _file(self, job: Job, rec: Path, seconds: float) -> None:
        summary = record.summary(rec)
        self.index.finish(job.run_id, summary)
        if self.on_done:
            self.on_done(job, summary, seconds)


def sweep(mark_prefix: str) -> list[int]:
    """Kill every process whose environment carries a run mark starting with the prefix."""
    killed: list[psutil.Process] = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            mark = proc.environ().get(MARK, "")
        except (psutil.Error, OSError):
            continue
        if mark.startswith(mark_prefix):
            try:
                proc.kill()
                killed.append(proc)
            except psutil.Error:
                pass
    psutil.wait_procs(killed, timeout=5)
    return [p.pid for p in killed]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(text: str, lines: int = 8) -> str:
    kept = [line for line in (text or "").splitlines() if "without encryption" not in line]
    return "\n".join(kept[-lines:])
