"""A stand-in for a chat service (Slack, Mattermost, a webhook endpoint), which cannot run
here: a real HTTP server on loopback that keeps every request it gets, and can answer the
first N with a 500 as a service that is down would."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the sink answered

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class ChatSink:
    fail_first: int = 0
    delay_s: float = 0.0  # answer this late, as a slow service would
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                time.sleep(sink.delay_s)
                failing = len(sink.requests) < sink.fail_first
                status = 500 if failing else 200
                sink.requests.append(Received(self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": false}' if failing else b'{"ok": true}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def delivered(self) -> list[Received]:
        """The requests it accepted (answered 200)."""
        return [r for r in self.requests if r.status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
