"""A bounded pool of warm notebook workers draining the index's queue.

Each slot keeps one long-lived worker process (`runbook_lib.service.warm_worker`) with a kernel
already forked and warmed; a slot's thread claims the next due run, hands it to its worker
and files the record the worker publishes. Whatever happens to a run (it finishes, overruns
or its worker dies) it ends with exactly one record and nothing it started keeps running: the
worker enforces the run's wall-clock limit, and the slot kills a worker that does not answer
within that limit plus a grace period, files a `timed_out` or `failed` record, and starts a
fresh worker. On start the pool recovers from a crash of an earlier server: it kills what the
earlier runs left behind, keeps records that were completed, and runs the rest again.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_lib.contract.request import RunRequest
from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.execution import engine, runner
from runbook_lib.execution.lifetime import MARK, kill_group, sweep
from runbook_lib.execution.pinning import Runbooks
from runbook_lib.incidents.index import Index
from runbook_lib.records import record
from runbook_lib.service import holds, logs
from runbook_lib.service.holds import HoldPolicy

__all__ = ["MARK", "Pool", "RunConfig"]
MAX_ATTEMPTS = 3
GRACE_S = 30.0  # past the run limit, a worker that does not answer is killed
IDLE_POLL_S = 0.5  # how often an idle slot looks for due runs without being woken
log = logging.getLogger("runbook.workers")


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
    notebook_dir: Path = NOTEBOOKS  # runbooks_dir: what is pinned at start and on SIGHUP
    runbooks: Runbooks | None = None  # the pinned copy runs use (None: pinned by the Pool)
    hold: HoldPolicy = field(default_factory=HoldPolicy)  # waiting for a more severe alert


class Slot:
    """One worker process and the lines it answers, read by a thread of their own."""

    def __init__(self, number: int, env: dict[str, str]) -> None:
        self.number, self.env = number, env
        self.proc: subprocess.Popen | None = None
        self.replies: queue.Queue[str | None] = queue.Queue()

    def ensure(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.replies = queue.Queue()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runbook_lib.service.warm_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own group: worker and zygote die together
                env=self.env,
            )
            threading.Thread(
                target=_read_lines, args=(self.proc, self.replies), daemon=True
            ).start()
        return self.proc

    def ask(self, spec: engine.RunSpec, timeout: float) -> dict | None:
        """Send a job; its reply, or None if the worker died or did not answer in time."""
        proc = self.ensure()
        try:
            proc.stdin.write(spec.model_dump_json() + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            return None
        return json.loads(line) if line else None

    def kill(self) -> None:
        if self.proc is None:
            return
        kill_group(self.proc.pid)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _read_lines(proc: subprocess.Popen, out: queue.Queue) -> None:
    for line in proc.stdout:
        out.put(line)
    out.put(None)  # end of file: the worker is gone


class Pool:
    def __init__(self, index: Index, config: RunConfig) -> None:
        self.index, self.config = index, config
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.slots: list[Slot] = []
        self.leftovers_killed: list[int] = []
        self.runbooks = config.runbooks or Runbooks(config.notebook_dir, config.output_dir)
        # One mark per pool, so a sweep never touches another server's runs.
        self._mark_prefix = f"{self.index.path.resolve()}#"

    def start(self) -> None:
        self.recover()
        env = {
            **os.environ,
            "RUNBOOK_PARENT_PID": str(os.getpid()),
            "RUNBOOK_MARK_PREFIX": self._mark_prefix,
            "RUNBOOK_NOTEBOOK_DIR": str(self.runbooks.current.dir),
            "RUNBOOK_START_TIMEOUT": str(self.config.start_timeout),
        }
        env.pop(MARK, None)
        for i in range(self.config.workers):
            slot = Slot(i, env)
            slot.ensure()  # warm up now, not when the first alert arrives
            self.slots.append(slot)
            t = threading.Thread(target=self._loop, args=(slot,), name=f"runbook-worker-{i}")
            t.daemon = True
            t.start()
            self._threads.append(t)

    def notify(self) -> None:
        """New runs were queued: wake idle slots now rather than at their next poll."""
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; end running runs (they go back to the queue for the next start)."""
        self._stop.set()
        self.notify()
        for slot in self.slots:
            slot.kill()
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
                self._file(job, done, 0.0)
            elif job.queue.attempts >= MAX_ATTEMPTS:
                error = f"the run was interrupted {job.queue.attempts} times; not trying again"
                self._file(job, self._failure(job, "failed", error), 0.0)
            else:
                self.index.requeue(job.run_id)
                requeued += 1
        return requeued

    # -- the work --------------------------------------------------------------------------
    def _loop(self, slot: Slot) -> None:
        while not self._stop.is_set():
            try:
                job = self.index.claim()
            except Exception as exc:  # a locked or broken index must not end the worker
                said = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]
                log.error("cannot claim a run from %s: %s; trying again in 2 s",
                          self.index.where, said)  # fmt: skip
                self._stop.wait(2)
                continue
            if job is None:
                with self._wake:
                    self._wake.wait(IDLE_POLL_S)
                continue
            if held(self.index, job, self.config.hold):
                continue
            logs.run_started(job)
            started = time.monotonic()
            rec = self.execute(slot, job)
            if rec is not None:
                self._file(job, rec, time.monotonic() - started)

    def execute(self, slot: Slot, job: RunRequest) -> Path | None:
        """Run `job` on the slot's worker; its record, or None when the pool is stopping."""
        reply = slot.ask(self.spec(job), self.config.run_timeout + GRACE_S)
        if reply is not None:
            return Path(reply["record"])
        proc = slot.proc
        died = proc is not None and proc.poll() is not None
        slot.kill()  # not answering in time, or dead: either way a fresh worker next
        done = self.config.output_dir / job.record
        if done.exists():
            return done
        if self._stop.is_set():
            return None  # stopped by the pool: recovered and run again on the next start
        if died and proc.returncode and proc.returncode < 0:
            return self._failure(
                job, "failed", f"the worker process was killed by signal {-proc.returncode}"
            )
        if died:
            return self._failure(job, "failed", f"the worker process exited {proc.returncode}")
        limit = self.config.run_timeout + GRACE_S
        return self._failure(
            job, "timed_out", f"the worker did not answer within {limit:.0f}s and was stopped"
        )

    def spec(self, job: RunRequest) -> engine.RunSpec:
        return job_spec(job, self.config, self.runbooks)

    def params(self, job: RunRequest) -> dict[str, Any]:
        return job_params(job, self.config)

    def _failure(self, job: RunRequest, status: str, error: str) -> Path:
        return runner.failure_record(
            self.params(job),
            self.config.output_dir,
            runbook=job.runbook,
            name=job.record,
            status=status,
            error=error,
            extra=job.summary_fields(),
        )

    def _file(self, job: RunRequest, rec: Path, seconds: float) -> None:
        summary = record.summary(rec)
        self.index.finish(job.run_id, summary)
        logs.run_finished(job, summary, seconds)


def held(
    index: Index, job: RunRequest, policy: HoldPolicy, now: float | None = None
) -> holds.Hold | None:
    """Put `job` back in the queue when it should wait for a more severe alert (see
    service/holds.py); the hold, or None when the job runs now."""
    now = time.time() if now is None else now
    hold = holds.decide(job, policy, now)
    if hold is not None:
        index.defer(job, hold.until, hold.note, now)
    elif handed := index.begin(job, now):  # a stronger alert came meanwhile, or a twin
        hold = holds.Hold(handed.until, handed.note)
        if handed.folded:  # gone, not held: nothing of it will run
            logs.run_folded(job, handed.note)
            return hold
    if hold is not None:
        logs.run_held(job, hold.until, hold.note)
    return hold


def job_spec(job: RunRequest, config: RunConfig, runbooks: Runbooks) -> engine.RunSpec:
    """A run as a worker reads it (the pool's workers and the Celery workers alike), on the
    runbooks pinned when it starts."""
    pinned = runbooks.current
    return engine.RunSpec(
        params=job_params(job, config),
        output_dir=config.output_dir,
        runbook=job.runbook,
        notebook_dir=pinned.dir,
        name=job.record,
        cell_timeout=config.cell_timeout,
        run_timeout=config.run_timeout,
        extra={**job.summary_fields(), "runbooks_hash": pinned.hash},
        queued_s=round(job.queue.waited_s, 4),
        sent_at=time.time(),  # the worker times the hand-over from here
    )


def job_params(job: RunRequest, config: RunConfig) -> dict[str, Any]:
    """The notebook's parameters of `job` on this service (its Prometheus, its Alertmanager,
    its `--param`), or `--param allow_mitigation=true` on serve for every run."""
    return job.parameters(prometheus_url=config.prometheus_url,
                          alertmanager_url=config.alertmanager_url, extra=config.params)  # fmt: skip
