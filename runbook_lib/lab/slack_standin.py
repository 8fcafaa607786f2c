"""A stand-in for Slack's Web API, which cannot run here: a real HTTP server on loopback that
speaks the two calls notifications make, `chat.postMessage` and `chat.update`, as Slack
does: bearer token (or a `token` form field), JSON or form bodies, HTTP 200 with
`{"ok": false, "error": ...}` for errors, 429 with Retry-After when rate limited. It keeps
every call and every message as it now reads, and can be told to fail the next calls.

Point a `slack:` target's `api_url` at `standin.api_url`."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

METHODS = ("chat.postMessage", "chat.update")


@dataclass
class Call:
    method: str
    headers: dict[str, str]
    args: dict  # the body, JSON or form, as a dict
    status: int
    answer: dict


@dataclass
class Posted:
    channel: str  # the channel's id
    ts: str
    text: str  # as it reads now (after any chat.update)
    thread_ts: str | None = None
    edits: list[str] = field(default_factory=list)  # each chat.update's text, in order


@dataclass
class Failure:
    error: str
    status: int = 200
    retry_after: int | None = None


@dataclass
class SlackStandIn:
    token: str = "xoxb-stand-in"
    channels: dict[str, str] = field(default_factory=lambda: {"#incidents": "C0INCIDENTS"})
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, Posted] = field(default_factory=dict)  # by ts

    def __post_init__(self) -> None:
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._seq = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, answer, headers = standin._answer(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(json.dumps(answer).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def fail_next(self, error: str, *, times: int = 1, status: int = 200,
                  retry_after: int | None = None) -> None:  # fmt: skip
        """The next `times` calls fail so: `error` with HTTP 200 (Slack's way), or `status`
        429 with Retry-After."""
        with self._lock:
            self._failures += [Failure(error, status, retry_after)] * times

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict]:
        method = path.rsplit("/", 1)[-1]
        args = _args(headers, body)
        with self._lock:
            status, answer, extra = self._decide(method, headers, args)
            self.calls.append(Call(method, headers, args, status, answer))
        return status, answer, extra

    def _decide(self, method: str, headers: dict[str, str], args: dict) -> tuple[int, dict, dict]:
        if method not in METHODS:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        given = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        if not given:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if given != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if self._failures:
            f = self._failures.pop(0)
            extra = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
            return f.status, {"ok": False, "error": f.error}, extra
        if method == "chat.postMessage":
            return self._post(args)
        return self._update(args)

    def _post(self, args: dict) -> tuple[int, dict, dict]:
        channel = self.channels.get(args.get("channel", ""), args.get("channel", ""))
        if channel not in self.channels.values():
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if not args.get("text"):
            return 200, {"ok": False, "error": "no_text"}, {}
        thread = args.get("thread_ts")
        if thread and thread not in self.messages:
            return 200, {"ok": False, "error": "thread_not_found"}, {}
        self._seq += 1
        ts = f"1700000000.{self._seq:06d}"
        self.messages[ts] = Posted(channel, ts, args["text"], thread)
        return 200, {"ok": True, "channel": channel, "ts": ts}, {}

    def _update(self, args: dict) -> tuple[int, dict, dict]:
        if args.get("channel") not in self.channels.values():
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        msg = self.messages.get(args.get("ts", ""))
        if msg is None or msg.channel != args["channel"]:
            return 200, {"ok": False, "error": "message_not_found"}, {}
        msg.text = args.get("text", "")
        msg.edits.append(msg.text)
        return 200, {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": msg.text}, {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _args(headers: dict[str, str], body: bytes) -> dict:
    """A call's arguments: Slack takes JSON and form bodies alike."""
    kind = (headers.get("Content-Type") or headers.get("content-type") or "").lower()
    text = body.decode("utf-8", "replace")
    if kind.startswith("application/json"):
        try:
            loaded = json.loads(text or "{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return dict(parse_qsl(text))
