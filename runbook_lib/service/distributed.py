"""Beyond one machine: runs as Celery tasks on Redis, the index in PostgreSQL.

Receivers (`runbook serve --database URL --broker URL`) accept an alert into the index and
send one task per new run, which says only that a run is due; a verification is sent with
its countdown (Celery's ETA), not held by a timer in one process. Workers on any machine
(`runbook worker --database URL --broker URL --workers N`) keep a warm kernel per pool
process, claim the most urgent due run from the index under a lease (`Index.claim`: the
most severe first, so a critical alert in a storm of warnings does not wait behind the
broker's queue), execute it, publish the record in the shared records directory, file it,
and only then acknowledge the task (`acks_late`; `reject_on_worker_lost`). A task whose
worker died is delivered again; the record name, fixed when the alert was accepted, makes
a delivery that finds the run's record published file it and stop: effectively once.

Infrastructure failures (no kernel, the records directory or the database unavailable) are
retried with exponential backoff. A notebook that fails, or a Prometheus that does not
answer, is a record, not a retry. Every receiver sweeps: runs accepted but never sent (the
broker was down), sent long ago and still queued (the broker lost them), or running with
their lease expired (the worker vanished) are sent again.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery, signals

from runbook_lib.execution import runner
from runbook_lib.execution.pinning import Runbooks
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import Queued
from runbook_lib.records import record
from runbook_lib.service import logs
from runbook_lib.service.workers import RunConfig, held, job_params, job_spec

TASK = "runbook.run"
MAX_ATTEMPTS = 3  # deliveries of one run that may start it before it is given up
MAX_RETRIES = 5  # retries of infrastructure failures
BACKOFF_S = 2.0  # first retry after about this long, doubling each time
GRACE_S = 30.0  # the lease past the run's own limit before another worker may take it
log = logging.getLogger("runbook.distributed")


@dataclass(frozen=True)
class Settings:
    """What receivers and workers of one installation share."""

    database: str
    broker: str
    run: RunConfig
    verify_delay: float = 300.0
    dispatch_grace_s: float = 60.0  # a sent task not started by then is sent again
    sweep_every_s: float = 15.0
    lease_grace_s: float = GRACE_S

    @property
    def lease_s(self) -> float:
        """How long a started run belongs to its worker: its limit and a grace period."""
        return self.run.run_timeout + self.lease_grace_s

    @property
    def visibility_s(self) -> float:
        """How long Redis waits for an acknowledgement before delivering again: past the
        lease (or a redelivery would find the run still leased), and past the longest ETA
        (a verification's countdown), or Redis would deliver it early again."""
        return max(self.lease_s, self.verify_delay) + 10


def make_app(settings: Settings) -> Celery:
    app = Celery("runbook", broker=settings.broker, set_as_current=True)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,  # one run at a time per process: none hoarded
        worker_proc_alive_timeout=120,  # a pool process warms its kernel when it starts
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": settings.visibility_s,
            # look for unacknowledged tasks past their visibility timeout every few seconds
            # (kombu's default looks every 100 s)
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_s / 4))),
            "unacked_restore_throttle": 1,
        },
        task_time_limit=settings.lease_s,  # a backstop: the engine stops a run first
        worker_hijack_root_logger=False,
    )
    app.conf.runbook = settings
    app.task(name=TASK, bind=True, max_retries=MAX_RETRIES)(_run_task)
    return app


# -- the worker side --------------------------------------------------------------------
@dataclass
class _Context:
    """Per worker process: the index, the warm worker, the settings."""

    settings: Settings
    index: Index
    worker: Any  # warm_worker.Worker
    runs: int = field(default=0)


_ctx: _Context | None = None


def _context(app: Celery) -> _Context:
    global _ctx
    if _ctx is None:
        from runbook_lib.service.warm_worker import Worker

        settings: Settings = app.conf.runbook
        mark = f"{settings.run.output_dir.resolve()}#celery-{os.getpid()}-"
        worker = Worker(mark, _runbooks(settings).current.dir, settings.run.start_timeout)
        worker.warm()
        _ctx = _Context(settings, Index(url=settings.database), worker)
    return _ctx


@signals.worker_process_init.connect
def _warm_process(**_: Any) -> None:
    """Each pool process warms its kernel when it starts, not at its first alert."""
    from celery import current_app

    if getattr(current_app.conf, "runbook", None) is not None:
        _context(current_app)


def _run_task(task, run_id: int) -> str:
    """A run is due (`run_id`'s task, or a held run's task sent again): run the most urgent
    due run of the index (`Index.claim`: the most severe first, then the oldest, none
    starved), which need not be `run_id`. One task per run, each claiming at most one: every
    run is run, and the broker's order does not decide which incident goes first (a task
    that finds nothing due leaves lost runs to the sweeper). Returns what happened."""
    ctx = _context(task.app)
    cfg = ctx.settings.run
    job = ctx.index.claim(lease_s=ctx.settings.lease_s)
    if job is None:
        return "nothing due: its run was taken by an earlier task, or is done"
    started = time.monotonic()
    hold = held(ctx.index, job, cfg.hold)
    if hold is not None:  # a more severe alert is on its way: ask again when it should be here
        ctx.index.dispatched([job.run_id])  # first: see CeleryDispatcher.send
        task.app.send_task(TASK, args=[job.run_id], countdown=max(0.0, hold.until - time.time()))
        return f"held: {hold.note}"
    published = cfg.output_dir / job.record
    if published.exists():  # an earlier delivery published it, then died before filing
        _file(ctx, job, published, started)
        return "found published"
    if job.queue.attempts > MAX_ATTEMPTS:
        rec = runner.failure_record(
            job_params(job, cfg), cfg.output_dir, runbook=job.runbook, name=job.record,
            status="failed", error=f"the run was started {job.queue.attempts - 1} times and never "
            "finished; not trying again", extra={"run_id": job.run_id},
        )  # fmt: skip
        _file(ctx, job, rec, started)
        return "given up"
    from runbook_lib.execution.kernels import KernelError

    logs.run_started(job)
    try:
        rec = ctx.worker.run(job_spec(job, cfg, _runbooks(ctx.settings)))
    except (KernelError, OSError) as exc:  # infrastructure: put it back and retry later
        log.warning("run %d put back in the queue (try %d of %d): %s", job.run_id,
                    task.request.retries + 1, MAX_RETRIES + 1, exc)  # fmt: skip
        ctx.index.requeue(job.run_id)
        if task.request.retries >= MAX_RETRIES:
            raise
        raise task.retry(exc=exc, countdown=backoff(task.request.retries)) from exc
    finally:
        ctx.worker.prepare()
    _file(ctx, job, rec, started)
    return "done"


def _runbooks(settings: Settings) -> Runbooks:
    """The runbooks this worker pinned when it started (`runbook worker` pins them; SIGHUP
    restarts the worker, which pins them again)."""
    if settings.run.runbooks is None:
        raise RuntimeError("runbook worker: no pinned runbooks in its settings")
    return settings.run.runbooks


def _file(ctx: _Context, job, rec: Path, started: float) -> None:
    """File the run's record in the index, and say so in the log."""
    summary = record.summary(rec)
    ctx.index.finish(job.run_id, summary, location=str(rec))
    logs.run_finished(job, summary, time.monotonic() - started)


def backoff(retries: int) -> float:
    """Exponential backoff with jitter: about 2, 4, 8, 16, 32 s."""
    return BACKOFF_S * 2**retries * random.uniform(0.8, 1.2)


def run_worker(settings: Settings, concurrency: int, name: str = "") -> None:
    """`runbook worker`: a Celery worker whose pool processes each keep a warm kernel. Its
    log lines keep the format `runbook worker` set up (service/logs.py)."""
    signals.setup_logging.connect(_keep_logging, weak=False)
    signals.worker_ready.connect(_hup_restarts, weak=False)
    app = make_app(settings)
    level = os.environ.get("RUNBOOK_WORKER_LOGLEVEL", "WARNING")
    argv = ["worker", f"--loglevel={level}", f"--concurrency={concurrency}", "--pool=prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if name:
        argv.append(f"--hostname={name}@%h")
    app.worker_main(argv)


def _hup_restarts(**_: Any) -> None:
    """SIGHUP: the worker finishes its runs and starts again, pinning the runbooks anew
    (Celery does so only when detached from a terminal; a worker in one would die)."""
    from celery.apps.worker import install_worker_restart_handler

    install_worker_restart_handler(None)


def _keep_logging(loglevel: int | None = None, **_: Any) -> None:
    """Celery's `setup_logging`: with a receiver connected, Celery adds no handler of its
    own; its loggers only take the worker's --loglevel."""
    logging.getLogger("celery").setLevel(loglevel or logging.WARNING)


# -- the receiver side ------------------------------------------------------------------
class CeleryDispatcher:
    """Sends accepted runs as tasks; `sweep` sends again what was never sent or was lost."""

    def __init__(self, app: Celery, index: Index) -> None:
        self.app, self.index = app, index
        self.settings: Settings = app.conf.runbook
        self.sweep_every_s = self.settings.sweep_every_s

    def send(self, runs: list[Queued]) -> None:
        """Send a task per run (a run due later with its countdown). A broker that is down
        loses nothing: the runs stay undispatched in the index and the sweep sends them.
        Each batch uses a connection of its own, which declares the queue again: a broker
        restarted empty would otherwise drop messages routed to a queue it no longer knows."""
        if not runs:
            return
        # Noted before the tasks go out, and committed: a worker takes a task at once and
        # claims with FOR UPDATE SKIP LOCKED, which passed over a run this receiver was
        # still noting as sent (after the send); the run then waited for the sweep, a minute.
        self.index.dispatched([run.run_id for run in runs])
        sent = []
        now = time.time()
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1)
                for run in runs:
                    self.app.send_task(
                        TASK,
                        args=[run.run_id],
                        countdown=max(0.0, run.not_before - now),
                        connection=conn,
                        retry=False,
                    )
                    sent.append(run.run_id)
        except Exception as exc:  # kombu's OperationalError and friends
            log.error("cannot send %d runs to the broker: %s; the sweep sends them later",
                      len(runs) - len(sent), exc)  # fmt: skip
            self.index.dispatched([r.run_id for r in runs if r.run_id not in sent], sent=False)

    def sweep(self) -> int:
        """Send again the runs whose tasks are lost. A run sent but not started is lost
        only when the broker's queue is empty: a queue still draining a storm is not
        loss, and sending its runs again would only lengthen it."""
        backlog = self.backlog()
        lost = self.index.undispatched(
            self.settings.dispatch_grace_s, self.settings.lease_s, resend_sent=backlog == 0
        )
        self.send(lost)
        return len(lost)

    def backlog(self) -> int | None:
        """Tasks waiting in the broker's queue; None when the broker does not answer. A new
        connection each time: a restarted broker is seen as it is now."""
        from kombu.exceptions import ChannelError

        try:
            with self.app.connection() as conn:
                conn.ensure_connection(max_retries=1)
                with conn.channel() as channel:
                    try:
                        return int(channel.queue_declare(queue="celery", passive=True)[1])
                    except ChannelError:  # no such queue (a broker restarted empty)
                        return 0
        except Exception:  # a broker that is down: only never-sent runs are sent
            return None


def settings_from(given: Any, run: RunConfig) -> Settings:
    """The distributed mode's part of `given`, the installation's settings (contract/config.py)."""
    return Settings(
        database=given.database_url,
        broker=given.broker_url,
        run=run,
        verify_delay=given.verify_delay,
        dispatch_grace_s=given.dispatch_grace,
        sweep_every_s=given.sweep_every,
        lease_grace_s=given.lease_grace,
    )


__all__ = ["CeleryDispatcher", "Settings", "make_app", "run_worker", "Path"]
