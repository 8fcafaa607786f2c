"""prom without a running Prometheus: the HTTP API's JSON into frames, escaping, and how each
way a query can fail is told apart. Answers that a healthy Prometheus never gives (500s,
garbage, silence) come from `BrokenPrometheus`, a fake HTTP server named as such; the real
Prometheus is queried in test_prom_panels.py (stack tier)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
import requests

from runbook_lib.contract.clock import utc
from runbook_lib.evidence.prom import (
    Failure,
    Prom,
    QueryResult,
    _frame,
    _short,
    _why,
    escape,
    selector,
)

AT = datetime(2026, 1, 15, 10, 2, tzinfo=UTC)
T = AT.timestamp()


def matrix(*series: tuple[dict, list[tuple[float, str]]]) -> list[dict]:
    return [{"metric": m, "values": [[t, v] for t, v in pts]} for m, pts in series]


def test_an_instant_vector_becomes_rows_per_series_with_label_columns() -> None:
    data = [
        {"metric": {"__name__": "up", "job": "ggen-mcp", "instance": "a"}, "value": [T, "1"]},
        {"metric": {"__name__": "up", "job": "ggen-mcp", "instance": "b"}, "value": [T, "0"]},
    ]
    frame, labels = _frame(data)
    assert labels == ("__name__", "instance", "job")
    assert list(frame.columns) == ["timestamp", "__name__", "instance", "job", "value"]
    assert frame["instance"].tolist() == ["a", "b"] and frame["value"].tolist() == [1.0, 0.0]
    assert frame["timestamp"].tolist() == [pd.Timestamp(AT)] * 2


def test_a_range_matrix_keeps_every_point_and_drops_nan() -> None:
    data = matrix(({"tool": "read"}, [(T, "1.5"), (T + 15, "NaN"), (T + 30, "2.5")]))
    frame, labels = _frame(data)
    assert labels == ("tool",)
    assert frame["value"].tolist() == [1.5, 2.5]
    assert frame["timestamp"].tolist() == [
        pd.Timestamp(AT),
        pd.Timestamp(AT + timedelta(seconds=30)),
    ]
    assert frame.index.tolist() == [0, 1]  # renumbered after the NaN went


def test_an_empty_answer_is_an_empty_frame_with_the_columns() -> None:
    frame, labels = _frame([])
    assert frame.empty and list(frame.columns) == ["timestamp", "value"] and labels == ()
    frame, labels = _frame([{"metric": {"job": "x"}, "values": []}])
    assert frame.empty and list(frame.columns) == ["timestamp", "job", "value"]


def result(rows: list[dict]) -> QueryResult:
    frame = pd.DataFrame(rows)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    return QueryResult("q", frame)


def test_last_is_the_newest_value_whatever_the_row_order() -> None:
    res = result([{"timestamp": T + 30, "value": 3.0}, {"timestamp": T, "value": 9.0}])
    assert res.last() == 3.0 and res.ok
    assert QueryResult("q", pd.DataFrame(columns=["timestamp", "value"])).last() is None


def test_by_gives_the_newest_value_per_label() -> None:
    res = result(
        [
            {"timestamp": T + 10, "error_type": "timeout", "value": 4.0},
            {"timestamp": T, "error_type": "timeout", "value": 1.0},
            {"timestamp": T, "error_type": "io_error", "value": 2.0},
        ]
    )
    assert res.by("error_type") == {"timeout": 4.0, "io_error": 2.0}
    assert res.by("tool") == {}
    assert QueryResult("q", pd.DataFrame(columns=["timestamp", "value"])).by("x") == {}


def test_escape_and_selector_make_safe_promql_strings() -> None:
    assert escape('a"b') == 'a\\"b'
    assert escape("x\\y") == "x\\\\y"
    assert escape("line\nbreak") == "line\\nbreak"
    assert selector(job="ggen-mcp", instance=None, team='q"') == '{job="ggen-mcp",team="q\\""}'
    assert selector() == "{}"


@pytest.mark.parametrize(
    "text,why",
    [
        ("HTTPConnectionPool: Max retries exceeded ([Errno 111] Connection refused)", "connection refused"),
        ("Read timed out. (read timeout=2)", "no answer within the timeout"),
        ("Failed to resolve: [Errno -2] Name or service not known", "unknown host"),
        ("[Errno 113] No route to host", "no route to host"),
        ("first line\nsecond line", "first line"),
    ],
)  # fmt: skip
def test_why_names_the_connection_failure(text: str, why: str) -> None:
    assert _why(requests.ConnectionError(text)) == why


def test_short_keeps_the_first_line_up_to_300_characters() -> None:
    assert _short(ValueError("a" * 400 + "\nmore")) == "a" * 300
    assert _short(ValueError()) == "ValueError"


def test_utc_reads_z_offsets_naive_and_empty() -> None:
    assert utc("2026-01-15T10:02:00Z") == AT
    assert utc("2026-01-15T15:32:00+05:30") == AT
    assert utc(datetime(2026, 1, 15, 10, 2)) == AT
    before = datetime.now(UTC)
    assert before <= utc("") <= datetime.now(UTC) and utc(None).tzinfo is not None


# -- a Prometheus that misbehaves ----------------------------------------------------------
class BrokenPrometheus:
    """FAKE: an HTTP server answering /api/v1/query* with a canned status and body, and
    recording what it was asked. It stands in for failures a healthy Prometheus does not
    produce on demand (a 503, a body that is not JSON, silence)."""

    def __init__(self) -> None:
        self.status, self.body, self.hang = 200, b"", False
        self.asked: list[tuple[str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                owner.asked.append((url.path, parse_qs(url.query)))
                if owner.hang:
                    threading.Event().wait(5)
                    return
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(owner.body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body: object) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.fixture
def broken() -> Iterator[BrokenPrometheus]:
    fake = BrokenPrometheus()
    yield fake
    fake.server.shutdown()


def success(result: list[dict], kind: str = "vector") -> dict:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


def test_an_answer_becomes_a_result_and_the_request_carries_the_time(broken) -> None:
    broken.answer(200, success([{"metric": {"job": "x"}, "value": [T, "7"]}]))
    res = Prom(broken.url).instant("up", AT)
    assert res.ok and res.failure is None and res.last() == 7.0 and res.labels == ("job",)
    path, query = broken.asked[-1]
    assert path == "/api/v1/query" and query["query"] == ["up"]
    assert float(query["time"][0]) == T


def test_a_range_asks_for_about_500_points(broken) -> None:
    broken.answer(200, success([], "matrix"))
    res = Prom(broken.url).range("up", AT - timedelta(hours=1), AT)
    assert res.failure is Failure.NO_DATA and res.step_s == 8.0
    assert res.reason == "no data for this query in the window"
    path, query = broken.asked[-1]
    assert path == "/api/v1/query_range" and query["step"] == ["8s"]
    assert float(query["start"][0]) == T - 3600 and float(query["end"][0]) == T
    Prom(broken.url).range("up", AT - timedelta(hours=1), AT, step=60)
    assert broken.asked[-1][1]["step"] == ["60s"]


def test_a_refused_query_is_a_bad_query(broken) -> None:
    broken.answer(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    res = Prom(broken.url).instant("sum(rate(", AT)
    assert res.failure is Failure.BAD_QUERY and res.reason.startswith("Prometheus refused")
    assert res.frame.empty and res.query == "sum(rate("


def test_a_server_error_is_unreachable_not_a_bad_query(broken) -> None:
    broken.answer(500, {"status": "error", "error": "internal"})
    res = Prom(broken.url).instant("up", AT)
    assert res.failure is Failure.UNREACHABLE and "refused the query" in res.reason


def test_an_answer_that_is_not_json_is_a_bad_answer(broken) -> None:
    broken.answer(200, b"<html>a proxy's error page</html>")
    res = Prom(broken.url).instant("up", AT)
    assert res.failure is Failure.UNREACHABLE
    assert res.reason.startswith(f"bad answer from {broken.url}")


def test_silence_ends_at_the_timeout(broken) -> None:
    broken.hang = True
    res = Prom(broken.url, timeout=0.5).instant("up", AT)
    assert res.failure is Failure.UNREACHABLE
    assert res.reason == f"Prometheus at {broken.url} is unreachable (no answer within the timeout)"


def test_a_closed_port_is_unreachable_with_the_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    res = Prom(f"http://127.0.0.1:{port}/", timeout=2).range("up", AT - timedelta(minutes=5), AT)
    assert res.failure is Failure.UNREACHABLE and res.step_s == 1.0
    assert (
        res.reason == f"Prometheus at http://127.0.0.1:{port} is unreachable (connection refused)"
    )


def test_failures_and_successes_carry_the_query_step_and_columns(broken) -> None:
    broken.answer(200, success([{"metric": {"job": "x"}, "value": [T, "1"]}]))
    ok = Prom(broken.url + "/").instant("up", AT)
    assert (ok.query, ok.reason, ok.step_s) == ("up", "", None)
    broken.answer(422, {"status": "error", "errorType": "execution", "error": "too many samples"})
    bad = Prom(broken.url).range("up", AT - timedelta(minutes=5), AT)
    assert bad.failure is Failure.BAD_QUERY and bad.query == "up" and bad.step_s == 1.0
    assert list(bad.frame.columns) == ["timestamp", "value"] and bad.labels == ()
    broken.answer(200, b"not json")
    garbage = Prom(broken.url).instant("up", AT)
    assert garbage.query == "up" and list(garbage.frame.columns) == ["timestamp", "value"]
    broken.answer(200, success([], "matrix"))
    empty = Prom(broken.url).range("up", AT - timedelta(minutes=5), AT)
    assert empty.query == "up" and empty.labels == ()


def test_the_url_loses_its_trailing_slash_and_series_keep_all_their_labels() -> None:
    assert Prom("http://127.0.0.1:9090/").url == "http://127.0.0.1:9090"
    frame, labels = _frame(
        [
            {"metric": {"tool": "read"}, "value": [T, "1"]},
            {"metric": {"error_type": "timeout"}, "value": [T, "2"]},
            {"value": [T, "3"]},  # no labels at all (e.g. a sum)
        ]
    )
    assert labels == ("error_type", "tool")
    assert frame["value"].tolist() == [1.0, 2.0, 3.0]


def test_a_gateway_error_is_tried_once_more(broken) -> None:
    """502/503/504 are retried once (a proxy restarting), other errors are not."""
    answers = iter(
        [(502, {"error": "bad gateway"}), (200, success([{"metric": {}, "value": [T, "4"]}]))]
    )

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, body = next(answers)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        res = Prom(f"http://127.0.0.1:{server.server_address[1]}").instant("up", AT)
        assert res.ok and res.last() == 4.0
    finally:
        server.shutdown()
    for status in (503, 504):
        broken.asked.clear()
        broken.answer(status, {"error": "unavailable"})
        assert Prom(broken.url).instant("up", AT).failure is Failure.UNREACHABLE
        assert len(broken.asked) == 2  # the first try and one retry


def test_each_outcome_keeps_what_it_knows(broken) -> None:
    broken.answer(
        200, success([{"metric": {"job": "x"}, "values": [[T, "1"], [T + 8, "2"]]}], "matrix")
    )
    ok = Prom(broken.url).range("up", AT - timedelta(hours=1), AT)
    assert ok.ok and ok.step_s == 8.0 and ok.labels == ("job",)
    assert broken.asked[-1][1]["query"] == ["up"]
    broken.answer(200, success([{"metric": {"job": "x"}, "values": []}], "matrix"))
    empty = Prom(broken.url).range("up", AT - timedelta(hours=1), AT)
    assert empty.failure is Failure.NO_DATA and empty.labels == ("job",)
    gone = Prom("http://127.0.0.1:1", timeout=1).instant("up", AT)
    assert gone.query == "up" and gone.step_s is None


def test_the_environment_s_proxy_settings_still_apply(broken, monkeypatch) -> None:
    """The proxies are read once per client instead of at every query: a proxy the
    environment names is still used, and NO_PROXY still exempts Prometheus from it."""
    broken.answer(200, success([{"metric": {}, "value": [T, "1"]}]))
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # a proxy that refuses
    res = Prom(broken.url, timeout=2).instant("up", AT)
    assert res.failure is Failure.UNREACHABLE and not broken.asked
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert Prom(broken.url, timeout=2).instant("up", AT).last() == 1.0
    assert broken.asked[-1][0] == "/api/v1/query"
