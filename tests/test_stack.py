"""The real stack on free loopback ports: a simulator fault makes Prometheus fire the alert
and Alertmanager POST a version-4 webhook with the bearer token to a test receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from runbook_lib.contract.alerts import WebhookPayload
from runbook_lib.lab import pids, stack
from tests.polling import wait_for

pytestmark = pytest.mark.stack


class Captured:
    """What the test receiver got: (Authorization header, parsed JSON body) per POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        captured = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                captured.posts.append((self.headers.get("Authorization", ""), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[stack.StackInfo, Captured]]:
    captured = Captured()
    server = ThreadingHTTPServer(("127.0.0.1", stack.free_port()), captured.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = tmp_path_factory.mktemp("stack")
    info = stack.start(
        stack.StackOptions(
            state_dir=state,
            any_free_port=True,
            webhook_url=f"http://127.0.0.1:{server.server_address[1]}/alerts",
        )
    )
    recorded = pids.records(state / "pids")
    try:
        yield info, captured
    finally:
        stack.stop(state)
        server.shutdown()
    still = [r for r in recorded if r.process() is not None and r.process().status() != "zombie"]
    assert still == [], f"still running after stop: {still}"


def query(info: stack.StackInfo, promql: str) -> list[dict]:
    resp = httpx.get(f"{info.urls['prometheus']}/api/v1/query", params={"query": promql}, timeout=5)
    return resp.json()["data"]["result"]


def alert_state(info: stack.StackInfo, name: str) -> str:
    resp = httpx.get(f"{info.urls['prometheus']}/api/v1/alerts", timeout=5)
    states = [a["state"] for a in resp.json()["data"]["alerts"] if a["labels"]["alertname"] == name]
    return states[0] if states else "inactive"


def test_errors_fire_and_alertmanager_posts_v4_webhook_with_token(live) -> None:
    info, captured = live
    wait_for(lambda: query(info, 'up{job="ggen-mcp"} == 1'), 30, "ggen-mcp to be scraped")
    assert alert_state(info, "GgenMcpHighErrorRate") == "inactive"
    stack.set_mode(info, "errors")
    wait_for(
        lambda: alert_state(info, "GgenMcpHighErrorRate") == "firing",
        90,
        "GgenMcpHighErrorRate to fire in Prometheus",
        every=1,
    )

    def delivered():
        for auth, body in captured.posts:
            for alert in body["alerts"]:
                if alert["labels"]["alertname"] == "GgenMcpHighErrorRate":
                    return auth, body
        return None

    auth, body = wait_for(delivered, 60, "Alertmanager to POST GgenMcpHighErrorRate", every=1)
    token = Path(info.token_file).read_text().strip()
    assert auth == f"Bearer {token}"
    payload = WebhookPayload.model_validate(body)
    assert payload.version == "4" and payload.status == "firing"
    [alert] = payload.alerts
    assert alert.labels["severity"] == "critical"
    assert alert.labels["instance"] == f"127.0.0.1:{info.ports['ggen_mcp']}"
    assert alert.annotations["runbook"] == "notebooks/high_error_rate.ipynb"
    assert float(query(info, "ggen_mcp:error_rate_percent:5m")[0]["value"][1]) > 5

    # The warning twin is inhibited by the critical alert in Alertmanager.
    def twin_state():
        resp = httpx.get(
            f"{info.urls['alertmanager']}/api/v2/alerts",
            params={"filter": 'alertname="GgenMcpElevatedErrorRate"'},
            timeout=5,
        )
        return [a["status"]["state"] for a in resp.json()] == ["suppressed"]

    wait_for(twin_state, 30, "GgenMcpElevatedErrorRate to be inhibited", every=1)


def test_crash_leaves_up_zero_and_fires_service_down(live) -> None:
    info, _ = live
    stack.set_mode(info, "normal")
    stack.set_mode(info, "crash")
    wait_for(lambda: query(info, 'up{job="ggen-mcp"} == 0'), 30, "up == 0 after the crash")
    wait_for(
        lambda: alert_state(info, "GgenMcpServiceDown") == "firing",
        60,
        "GgenMcpServiceDown to fire",
        every=1,
    )
