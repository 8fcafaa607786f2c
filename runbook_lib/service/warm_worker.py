"""A long-lived notebook worker (`python -m runbook_lib.service.warm_worker`), started by the pool.

It pays start-up once: papermill, nbclient and the exporters are imported and built, the
notebooks read, and a kernel is forked from its zygote and warmed before any alert arrives.
For each job it runs the notebook in that kernel, publishes the record and kills the kernel
(with whatever its cells started), so no run can see another's state. The next kernel is
forked and warmed in the background while a run executes: under a backlog the next job
starts at once instead of waiting for it.

Protocol: one JSON job per line on stdin (see `Pool.spec`); one JSON reply per job on
stdout, `{"record": PATH}`. Everything else this process prints goes to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.execution import engine, kernels, runner
from runbook_lib.execution.lifetime import die_with_parent

log = logging.getLogger("runbook.worker")


class Worker:
    def __init__(self, mark_prefix: str, notebook_dir: Path, start_timeout: float) -> None:
        self.engine = engine.Engine(notebook_dir)
        self.zygote = kernels.Zygote(mark_prefix, log=None, start_timeout=start_timeout)
        self.start_timeout = start_timeout
        self.kernel: kernels.Kernel | None = None
        # the next kernel, forked in the background (`prepare` waits for it); `acquire` forks
        # on this thread only after collecting it: the zygote is asked for one at a time
        self._forker = ThreadPoolExecutor(1, thread_name_prefix="fork")
        self._forking: Future[kernels.Kernel] | None = None

    def warm(self) -> None:
        """Exporters and a first kernel, before the first job."""
        self.engine.exporters.html(_tiny_notebook())
        self.engine.exporters.html(_tiny_notebook(), code=False)
        self.prepare()

    def prepare(self) -> None:
        """Have the next kernel ready: the one forked in the background, else one now."""
        self._collect()
        self._drop_dead()
        self.fork_ahead()
        self._collect()

    def fork_ahead(self) -> None:
        """Start forking the next kernel in the background (its start-up overlaps a run;
        kernels of one zygote draw nothing as they start, so no two draw at once)."""
        if self.kernel is None and self._forking is None:
            self._forking = self._forker.submit(self.zygote.fork)

    def _collect(self) -> None:
        """The kernel forked in the background, once it is ready (or why it is not)."""
        forking, self._forking = self._forking, None
        if forking is None:
            return
        try:
            kernel = forking.result()
        except kernels.KernelError as exc:
            log.error("no warm kernel: %s; the next run starts one", exc)
            return
        if self.kernel is None:
            self.kernel = kernel
        else:
            kernel.kill()

    def _drop_dead(self) -> None:
        """Forget the warm kernel if it died while idle."""
        if self.kernel is not None and not self.kernel.alive():
            self.kernel.kill()
            self.kernel = None

    def acquire(self) -> kernels.Kernel:
        """The warm kernel; a new one if it died while idle (or could not be had before)."""
        self._collect()
        self._drop_dead()
        if self.kernel is None:
            self.kernel = self.zygote.fork()
        kernel, self.kernel = self.kernel, None
        return kernel

    def run_or_record(self, spec: engine.RunSpec) -> Path:
        """`run`; a run that gets no kernel is a failed record (the pool's workers)."""
        try:
            return self.run(spec)
        except kernels.KernelError as exc:
            return runner.failure_record(
                spec.params,
                spec.output_dir,
                runbook=spec.runbook,
                name=spec.name or engine.record_name_for(spec)[0],
                status="failed",
                error=str(exc),
                extra=spec.extra,
            )

    def run(self, spec: engine.RunSpec) -> Path:
        """Run a job (see `workers.job_spec`) in the warm kernel and publish its record;
        raises KernelError when no kernel can be had."""
        handoff = max(0.0, time.time() - (spec.sent_at or time.time()))
        started, cpu_started = time.monotonic(), time.process_time()
        kernel = self.acquire()
        waited = time.monotonic() - started
        self.fork_ahead()
        try:
            rec, timings = self.engine.run(spec, kernel)
        finally:
            kernel_cpu = kernel.cpu_s()
            kernel.kill()
        timings.cpu = {
            "worker_s": round(time.process_time() - cpu_started, 4),
            "kernel_s": round(kernel_cpu, 4),  # its warm-up (before the job) included
        }
        timings.phases = {
            "queue": spec.queued_s,
            "handoff": round(handoff, 4),  # waiting for this worker to take the job
            "kernel": round(waited, 4),
            **timings.phases,
        }
        timings.phases["total"] = round(time.monotonic() - started, 4)
        if "execute" in timings.phases:  # not when the record was found already published
            timings.write(rec)
        return rec

    def close(self) -> None:
        self._collect()
        self._forker.shutdown()
        if self.kernel:
            self.kernel.kill()
        self.zygote.close()


def _tiny_notebook():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    return new_notebook(cells=[new_markdown_cell("# warm-up"), new_code_cell("1 + 1")])


def serve(worker: Worker, jobs: IO[str], replies: IO[str]) -> None:
    for line in jobs:
        rec = worker.run_or_record(engine.RunSpec.model_validate_json(line))
        replies.write(json.dumps({"record": str(rec)}) + "\n")
        replies.flush()
        worker.prepare()


NICENESS = 5  # runs yield the CPU to the receiver: a storm must not slow the webhook


def main() -> int:
    die_with_parent(int(os.environ.get("RUNBOOK_PARENT_PID", os.getppid())))
    os.nice(NICENESS)  # inherited by the zygote and its kernels
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # library output goes to the log, never into the protocol
    sys.stdout = sys.stderr
    from runbook_lib.service import logs

    logs.configure(os.environ.get("RUNBOOK_LOG_FORMAT", "text"))  # as the server's
    worker = Worker(
        os.environ["RUNBOOK_MARK_PREFIX"],
        Path(os.environ.get("RUNBOOK_NOTEBOOK_DIR", str(NOTEBOOKS))),
        float(os.environ.get("RUNBOOK_START_TIMEOUT", "60")),
    )
    try:
        worker.warm()
        serve(worker, sys.stdin, replies)
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
