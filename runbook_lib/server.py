"""The runbook server's webhook receiver: authenticates Alertmanager, validates the payload,
and persists it (fsync) before answering 2xx, so an accepted alert cannot be lost.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from pathlib import Path

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import ValidationError

from runbook_lib.alerts import WebhookPayload

MAX_BODY_BYTES = 1 << 20


class Inbox:
    """Accepted webhook payloads, one JSON line each, durable once `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, payload: WebhookPayload) -> None:
        line = payload.model_dump_json() + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[WebhookPayload]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [WebhookPayload.model_validate_json(line) for line in lines if line.strip()]


def create_app(inbox: Inbox, token: str) -> FastAPI:
    if not token:
        raise ValueError("the webhook needs a token: set RUNBOOK_WEBHOOK_TOKEN or a token file")
    app = FastAPI(title="runbook server")
    registry = CollectorRegistry()
    received = Counter(
        "runbook_alerts_received",
        "Alerts received, by alert status.",
        ["status"],
        registry=registry,
    )

    @app.post("/alerts")
    async def alerts(request: Request, authorization: str = Header("")) -> dict:
        expected = f"Bearer {token}".encode()
        if not hmac.compare_digest(authorization.encode(), expected):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        try:
            payload = WebhookPayload.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, _explain(exc)) from exc
        inbox.append(payload)
        for alert in payload.alerts:
            received.labels(alert.status).inc()
        return {"accepted": len(payload.alerts)}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _explain(exc: ValidationError) -> list[dict]:
    """Each problem with the field path that caused it, e.g. `alerts.0.fingerprint`."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
        for err in json.loads(exc.json())
    ]
