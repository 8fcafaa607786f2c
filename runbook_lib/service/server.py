"""`runbook serve`: the webhook receiver Alertmanager posts to, with its own metrics.

An alert is answered 2xx only once it is in the index (committed, fsync'd), and no notebook
runs inside a request: the worker pool picks the runs up from the index. Alertmanager
retries on 5xx and timeouts and gives up on 4xx, so a payload we cannot read gets a 4xx
that says which field is wrong, and anything we accepted is never lost.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from runbook_lib.contract.alerts import WebhookPayload
from runbook_lib.contract.config import Settings, operators_path
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import Queued
from runbook_lib.service import actions, incident_view, logs, pages
from runbook_lib.service.access import SESSION_COOKIE, Access
from runbook_lib.service.metrics import Metrics
from runbook_lib.service.notify import NotifyConfig, Sender, Watched
from runbook_lib.service.operators import Operators
from runbook_lib.service.reconcile import reconcile_forever
from runbook_lib.service.workers import Pool, RunConfig

MAX_BODY_BYTES = 1 << 20
log = logging.getLogger("runbook.server")


class Dispatcher(Protocol):
    """Hands accepted runs to a task queue (see `runbook_lib.service.distributed`)."""

    sweep_every_s: float

    def send(self, runs: list[Queued]) -> None: ...

    def sweep(self) -> int: ...


# What `runbook doctor` POSTs with the token to learn whether it is taken: an empty object,
# which Alertmanager never sends. Answered 422 like any body that is no webhook, but not
# counted as a refused webhook: RunbookWebhooksRefused would fire after every doctor.
TOKEN_PROBE = b"{}"


def create_app(
    settings: Settings,
    index: Index,
    *,
    run_config: RunConfig | None = None,
    dispatcher: Dispatcher | None = None,
    notify: NotifyConfig | Watched | None = None,
) -> FastAPI:
    """The receiver and the incident pages, as `settings` say (contract/settings.py): the
    webhook takes `webhook_token`, records are read from `output_dir`, the pages take the
    `viewer_token` (the webhook token only with `pages_accept_webhook_token`) and keep a
    session signed with `session_secret`; with `alertmanager_url` and `reconcile_every`,
    open incidents are checked against Alertmanager's alerts (stale after `stale_after`);
    records older than `retention_days` go; the operators of `operators_file` act from their
    pages. The runtime objects: with `run_config` it also runs the worker pool while it
    serves (one machine); with `dispatcher` it hands accepted runs to a task queue instead
    (several machines) and sweeps up runs whose task was lost; with `notify`, a background
    sender posts each investigation, resolve and verification to its targets."""
    token, output_dir = settings.webhook_token, Path(settings.output_dir)
    if not token:
        raise ValueError("the webhook needs a token: set RUNBOOK_WEBHOOK_TOKEN or a token file")
    alertmanager_url, verify_delay = settings.alertmanager_url, settings.verify_delay
    watch = notify if isinstance(notify, Watched) else None
    config = watch.config if watch else notify
    targets = [t.name for t in config.targets] if config else []
    metrics = Metrics.create(index, targets)
    pool = Pool(index, run_config) if run_config else None
    sender = (  # watching notify.yml, it runs even while the file names no target yet
        Sender(index, config, output_dir, on_delivery=metrics.delivered,
               recall=incident_view.recall, watch=watch)
        if targets or watch
        else None
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pruner = (
            asyncio.create_task(_prune_hourly(index, output_dir, settings.retention_days))
            if settings.retention_days
            else None
        )
        sweeper = asyncio.create_task(_sweep(dispatcher)) if dispatcher else None
        reconciler = (
            asyncio.create_task(
                reconcile_forever(
                    index, alertmanager_url, settings.reconcile_every, settings.stale_after
                )
            )
            if alertmanager_url and settings.reconcile_every > 0
            else None
        )
        if sender:
            sender.start()
        if pool:
            pool.start()
            if pool.leftovers_killed:
                log.warning("killed %d processes left by runs of an earlier server",
                            len(pool.leftovers_killed))  # fmt: skip
        yield
        for task in (pruner, sweeper, reconciler):
            if task:
                task.cancel()
        if pool:
            pool.stop()
        if sender:
            sender.stop()

    app = FastAPI(title="runbook server", lifespan=lifespan)
    app.state.index, app.state.pool, app.state.sender = index, pool, sender
    app.state.metrics = metrics
    secret = settings.session_secret or secrets.token_urlsafe(32)  # sessions end with the process
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=12 * 3600,
        same_site="lax",
    )
    accept_hook = settings.pages_accept_webhook_token
    viewers = [t for t in (settings.viewer_token, token if accept_hook else "") if t]
    access = Access(viewers, Operators(operators_path(settings.operators_file, output_dir)))
    app.include_router(pages.router(index, access, settings))

    def wake(created: list[Queued]) -> None:
        """Runs an operator queued: the workers start them now."""
        for run in created:
            logs.run_queued(run)
        if pool:
            pool.notify()
        if dispatcher:
            dispatcher.send(created)

    acting = actions.Actions(index, output_dir, alertmanager_url, verify_delay)
    app.include_router(actions.router(acting, access, wake))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/incidents")

    def refused(status: int, reason: str, detail: object, request: Request, said: str = "",
                **headers: str) -> HTTPException:  # fmt: skip
        """Count and log a refused webhook; the answer to raise (`reason`: metrics.REFUSALS)."""
        metrics.refused.labels(reason).inc()
        said = said or (detail if isinstance(detail, str) else _fields(detail))
        client = request.client.host if request.client else ""
        log.warning("webhook refused (%d, %s) from %s: %s", status, reason, client or "?", said,
                    extra={"event": "webhook", "outcome": "refused", "reason": reason,
                           "http_status": status, "client": client})  # fmt: skip
        return HTTPException(status, detail, headers or None)

    @app.post("/alerts")
    async def alerts(request: Request, authorization: str = Header("")) -> dict:
        expected = f"Bearer {token}".encode()
        if not hmac.compare_digest(authorization.encode(), expected):
            said = "wrong bearer token" if authorization else "no bearer token"
            raise refused(401, "token", "missing or wrong bearer token", request, said,
                          **{"WWW-Authenticate": "Bearer"})  # fmt: skip
        try:
            body = await _read_limited(request)
        except BodyTooLarge as exc:
            raise refused(413, "too_large", str(exc), request) from None
        if body.strip() == TOKEN_PROBE:  # `runbook doctor` trying the token: no refusal
            log.info("token check (`runbook doctor`): the token is this receiver's")
            raise HTTPException(422, "the token is right; an empty object is no webhook")
        try:
            payload = WebhookPayload.model_validate_json(body)
        except ValidationError as exc:
            raise refused(422, "invalid", _explain(exc), request) from exc
        try:
            outcomes, created = await run_in_threadpool(
                index.accept_runs, payload.alerts, verify_delay
            )
        except SQLAlchemyError as exc:  # 5xx: Alertmanager keeps the alert and retries
            detail = f"could not persist the alerts in {index.where}: {_first_line(exc)}"
            raise refused(503, "unavailable", detail, request) from exc
        _log_accepted(payload, outcomes)
        for run in created:  # before a worker may say it started
            logs.run_queued(run)
        if pool and created:
            pool.notify()
        if dispatcher and created:  # after the commit; a failed send is swept up later
            await run_in_threadpool(dispatcher.send, created)
        for alert, outcome in zip(payload.alerts, outcomes, strict=True):
            metrics.received.labels(alert.status).inc()
            if outcome.endswith("duplicate"):
                metrics.duplicates.inc()
        return {"accepted": len(payload.alerts), "outcomes": outcomes}

    @app.get("/health")
    def health() -> dict:
        depth, oldest = index.queue_stats()
        return {"status": "ok", "queue_depth": depth, "oldest_queued_seconds": round(oldest, 1)}

    @app.get("/metrics")
    def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _sweep(dispatcher: Dispatcher) -> None:
    """Re-send the tasks of accepted runs that no worker will get otherwise (the broker was
    down at accept time, or lost them)."""
    while True:
        await asyncio.sleep(dispatcher.sweep_every_s)
        try:
            resent = await run_in_threadpool(dispatcher.sweep)
            if resent:
                log.warning("re-sent %d runs to the queue (never sent, lost, or their worker's "
                            "lease expired)", resent, extra={"event": "sweep", "runs": resent})  # fmt: skip
        except Exception as exc:  # the broker or database is down: try again next time
            log.error("sweep failed: %s; trying again in %.0f s", exc, dispatcher.sweep_every_s)


async def _prune_hourly(index: Index, output_dir: Path, days: float) -> None:
    """Retention while serving: records older than `days` go, post-mortem sources stay."""
    from runbook_lib.storage import retention

    while True:
        try:
            done = await run_in_threadpool(retention.prune, output_dir, days, index=index)
            if done.removed:
                log.info("retention removed %d records older than %g days (%.1f MiB)",
                         len(done.removed), days, done.freed_bytes / 2**20,
                         extra={"event": "retention", "removed": len(done.removed)})  # fmt: skip
        except (OSError, SQLAlchemyError) as exc:  # try again next hour
            log.error("retention failed: %s; trying again in an hour", exc)
        await asyncio.sleep(3600)


class BodyTooLarge(ValueError):
    """The webhook's body is over MAX_BODY_BYTES (answered 413)."""


def _log_accepted(payload: WebhookPayload, outcomes: list[str]) -> None:
    n = len(outcomes)
    said = ", ".join(f"{a.name} {o}" for a, o in zip(payload.alerts, outcomes, strict=True))
    each = [{"alertname": a.name, "status": a.status, "outcome": o}
            for a, o in zip(payload.alerts, outcomes, strict=True)]  # fmt: skip
    log.info("webhook accepted: %d alert%s (%s)", n, "" if n == 1 else "s", said,
             extra={"event": "webhook", "outcome": "accepted", "alerts": each})  # fmt: skip


async def _read_limited(request: Request) -> bytes:
    """The body; BodyTooLarge past MAX_BODY_BYTES, without reading it all into memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"body of {declared} bytes exceeds {MAX_BODY_BYTES}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _first_line(exc: Exception) -> str:
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]


def _fields(problems: list[dict]) -> str:
    """`_explain`'s problems in one line, for the log."""
    return "; ".join(f"{p['field']}: {p['problem']}" for p in problems)


def _explain(exc: ValidationError) -> list[dict]:
    """Each problem with the field path that caused it, e.g. `alerts.0.fingerprint`. The
    offending input is left out: it may be bytes that are not UTF-8, or megabytes long."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
