"""holds.stronger asks a real HTTP server (standing in for Prometheus's /api/v1/rules) and
keeps one connection per thread: a storm of warnings asks once per run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runbook_lib.service.holds import HoldPolicy, stronger

RULES = {
    "status": "success",
    "data": {
        "groups": [
            {
                "name": "ggen-mcp",
                "rules": [
                    {
                        "name": "GgenMcpHighErrorRate",
                        "duration": 300,
                        "alerts": [
                            {
                                "labels": {"instance": "app:9090", "severity": "critical"},
                                "state": "pending",
                                "activeAt": "2026-12-03T04:00:00Z",
                            },
                            {
                                "labels": {"instance": "other:9090", "severity": "critical"},
                                "state": "pending",
                                "activeAt": "2026-12-03T04:00:00Z",
                            },
                        ],
                    }
                ],
            }
        ]
    },
}


class Rules(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection may carry many questions

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        body = json.dumps(RULES).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Rules)
    server.connections = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def ask(server: ThreadingHTTPServer) -> list[tuple[str, str, float]]:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    found = stronger(HoldPolicy(url), "high_error_rate", "app:9090", (1, 2), set())
    return [(p.alertname, p.severity, p.fires_at) for p in found]


def test_each_thread_asks_over_one_connection_and_reads_the_pending_critical(prometheus) -> None:
    fires_at = 1_796_270_400.0 + 300  # 2026-12-03T04:00:00Z + its for: 300 s
    expected = [("GgenMcpHighErrorRate", "critical", fires_at)]  # not the other instance's
    assert [ask(prometheus) for _ in range(3)] == [expected] * 3
    assert prometheus.connections == 1
    answers: list = []
    other = threading.Thread(target=lambda: answers.append(ask(prometheus)))
    other.start()
    other.join()
    assert answers == [expected] and prometheus.connections == 2
