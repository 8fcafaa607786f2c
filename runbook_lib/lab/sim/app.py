"""HTTP face of the simulator: /metrics, /health and the admin endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Body, FastAPI, HTTPException, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runbook_lib.lab.sim.core import Simulator, UnknownMode
from runbook_lib.lab.sim.modes import MODES


def create_app(sim: Simulator) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Runs on every way out uvicorn knows (SIGTERM included): no helper process outlives us.
        sim.start()
        yield
        sim.stop()

    app = FastAPI(title="GGEN MCP simulator", lifespan=lifespan)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(sim.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health")
    def health() -> dict:
        unhealthy = sorted(sim.profile.unhealthy)
        return {
            "status": "degraded" if unhealthy else "ok",
            "mode": sim.mode,
            "unhealthy": unhealthy,
        }

    @app.get("/admin/mode")
    def get_mode() -> dict:
        return {**sim.status(), "modes": list(MODES)}

    @app.post("/admin/mode")
    def set_mode(mode: str | None = Query(None), body: dict | None = Body(None)) -> dict:
        chosen = mode or (body or {}).get("mode")
        if not chosen:
            raise HTTPException(400, 'give the mode as ?mode=NAME or {"mode": NAME}')
        try:
            return sim.set_mode(chosen)
        except UnknownMode as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.post("/admin/cache/clear")
    def clear_cache() -> dict:
        return {"cleared": sim.clear_cache()}

    return app
