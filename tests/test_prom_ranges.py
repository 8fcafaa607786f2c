"""Range queries over one window asked in one request (`Prom.ranges`), each answer split back
as its query alone gives it; a record saves and replays them one by one; a notebook's
panels of one step share the request."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from runbook_lib.evidence import panels
from runbook_lib.evidence.prom import SIGNAL_LABEL, Failure, Prom
from runbook_lib.evidence.recording import Recording, Replay, key
from runbook_lib.notebook import fetching
from runbook_lib.notebook.parameters import Params
from runbook_lib.notebook.state import CHART_HISTORY, Session

END = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
START = END - timedelta(minutes=10)  # 600 s: a step of 2 s
T0, T1 = START.timestamp(), START.timestamp() + 2

ERRORS = "sum by (tool) (rate(errors[5m]))"
RATE = "sum(rate(requests[5m]))"
NOTHING = "max(absent_metric)"


def series(metric: dict, *values: str) -> dict:
    return {"metric": metric, "values": [[T0 + 2 * i, v] for i, v in enumerate(values)]}


# Each query's answer alone, as Prometheus gives it ...
ALONE = {
    ERRORS: [series({"tool": "fork"}, "1", "2"), series({"tool": "read"}, "0.5", "NaN")],
    RATE: [series({}, "10", "11")],
    NOTHING: [],
}


def marked(name: str, one: dict) -> dict:
    return {**one, "metric": {**one["metric"], SIGNAL_LABEL: name}}


class FakePrometheus(BaseHTTPRequestHandler):
    """/api/v1/query_range answering ALONE per query and, for a joined query, the series of
    each query it joins marked with its name (or `joined_status` with an error); notes each
    request."""

    asked: list[str]
    joined_status: int = 200
    unmarked: bool = False

    def do_GET(self) -> None:
        self._answer(urllib.parse.urlsplit(self.path).query)

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers["Content-Length"])).decode())

    def _answer(self, form: str) -> None:
        query = urllib.parse.parse_qs(form)["query"][0]
        self.asked.append(query)
        if SIGNAL_LABEL not in query:
            return self._send(200, ALONE[query])
        if self.joined_status != 200:
            return self._send(self.joined_status, None)
        parts = re.findall(rf'label_replace\((.+?), "{SIGNAL_LABEL}", "(.+?)", "", ""\)', query)
        found = [one if self.unmarked else marked(name, one)
                 for q, name in parts for one in ALONE[q]]  # fmt: skip
        return self._send(200, found)

    def _send(self, status: int, result: list | None) -> None:
        body = json.dumps(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
            if status == 200
            else {"status": "error", "errorType": "bad_data", "error": "refused"}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, type[FakePrometheus]]]:
    handler = type("Handler", (FakePrometheus,), {"asked": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


def frame(rows: list[dict], labels: tuple[str, ...]) -> pd.DataFrame:
    """The frame a person writes from ALONE: timestamp, the labels, value (NaN rows out)."""
    out = pd.DataFrame(rows, columns=["timestamp", *labels, "value"])
    out["timestamp"] = pd.to_datetime(out["timestamp"], unit="s", utc=True)
    return out.astype({"value": float})


WANT = {
    "errors": frame(
        [
            {"timestamp": T0, "tool": "fork", "value": 1.0},
            {"timestamp": T1, "tool": "fork", "value": 2.0},
            {"timestamp": T0, "tool": "read", "value": 0.5},
        ],
        ("tool",),
    ),
    "rate": frame([{"timestamp": T0, "value": 10.0}, {"timestamp": T1, "value": 11.0}], ()),
}
QUERIES = {"errors": ERRORS, "rate": RATE, "nothing": NOTHING}


def check_as_alone(got: dict) -> None:
    assert list(got) == ["errors", "rate", "nothing"]
    for name, want in WANT.items():
        assert got[name].ok and got[name].query == QUERIES[name] and got[name].step_s == 2.0
        pd.testing.assert_frame_equal(got[name].frame, want, obj=name)
    assert got["errors"].labels == ("tool",) and got["rate"].labels == ()
    assert got["nothing"].failure is Failure.NO_DATA and got["nothing"].frame.empty


def test_queries_of_one_window_are_one_request_split_back_by_name(fake) -> None:
    url, server = fake
    got = Prom(url).ranges(QUERIES, START, END)
    assert len(server.asked) == 1
    assert server.asked[0] == (
        f'label_replace({ERRORS}, "{SIGNAL_LABEL}", "errors", "", "") or '
        f'label_replace({RATE}, "{SIGNAL_LABEL}", "rate", "", "") or '
        f'label_replace({NOTHING}, "{SIGNAL_LABEL}", "nothing", "", "")'
    )
    check_as_alone(got)


@pytest.mark.parametrize("refused", ["status", "unmarked"])
def test_a_joined_query_refused_or_not_split_asks_each_alone(fake, refused: str) -> None:
    """Prometheus answered, but not with the marked series (a 400; series without the
    label): each query is asked by itself, with the same answers."""
    url, server = fake
    server.joined_status, server.unmarked = (400, False) if refused == "status" else (200, True)
    got = Prom(url).ranges(QUERIES, START, END)
    assert server.asked[1:] == [ERRORS, RATE, NOTHING]
    check_as_alone(got)


def test_an_unreachable_prometheus_is_asked_once_for_all() -> None:
    prom = Counted("http://127.0.0.1:1")
    got = prom.ranges(QUERIES, START, END)
    assert len(prom.sent) == 1
    assert [r.query for r in got.values()] == [ERRORS, RATE, NOTHING]
    for res in got.values():
        assert res.failure is Failure.UNREACHABLE and "connection refused" in res.reason


def test_one_query_is_asked_as_it_is(fake) -> None:
    url, server = fake
    got = Prom(url).ranges({"rate": RATE}, START, END, step=60.0)
    assert server.asked == [RATE] and got["rate"].step_s == 60.0


def test_a_record_saves_each_answer_as_its_own_and_replays_it(fake, tmp_path) -> None:
    """Saved under the keys `range` saves them under, so a replay (or a chart redrawn from
    the record) asks for each query alone and finds it."""
    url, server = fake
    Recording(Prom(url), tmp_path).ranges(QUERIES, START, END)
    lines = (tmp_path / "queries.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == [
        key("range", q, T0, END.timestamp(), None) for q in (ERRORS, RATE, NOTHING)
    ]
    check_as_alone(Replay(tmp_path).ranges(QUERIES, START, END))
    alone = Replay(tmp_path).range(ERRORS, START, END)
    pd.testing.assert_frame_equal(alone.frame, WANT["errors"])
    assert len(server.asked) == 1


def test_the_panels_of_a_step_are_fetched_in_one_request_and_kept(fake) -> None:
    """Two panels (three queries, one of them twice) in one request; a panel fetched
    before is not asked again; each panel's series and gaps as its queries give them."""
    url, server = fake
    both = panels.Panel("errors", "Errors", "errors/s", lambda s: {"": ERRORS}, split_by="tool")
    rate = panels.Panel("rate", "Rate", "req/s", lambda s: {"req/s": RATE, "again": RATE,
                                                              "none": NOTHING})  # fmt: skip
    s = Session("triage", Params(), END, END, None, panels.Scope("i"), Prom(url))
    s.panel_defs = {p.name: (p, CHART_HISTORY) for p in (both, rate)}
    s.panel_cache["cached"] = panels.PanelData(both, pd.DataFrame())
    fetching.prefetch(s, "errors", "rate", "cached")
    assert len(server.asked) == 1 and server.asked[0].count("label_replace") == 3
    assert list(s.panel_cache["errors"].frame["series"]) == ["fork", "fork", "read"]
    assert list(s.panel_cache["rate"].frame["series"]) == ["req/s"] * 2 + ["again"] * 2
    assert s.panel_cache["rate"].errors == ["none: no data for this query in the window"]
    fetching.data(s, "rate")
    assert len(server.asked) == 1


class Counted(Prom):
    """A Prom that notes each range request it sends."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[str] = []

    def _range(self, query: str, start: datetime, end: datetime, step: float) -> list[dict]:
        self.sent.append(query)
        return super()._range(query, start, end, step)


class OneByOne:
    """A client that asks each range query by itself (no `ranges`), as panels did before."""

    def __init__(self, prom: Prom) -> None:
        self.prom, self.url = prom, prom.url

    def range(self, query, start, end, step=None):
        return self.prom.range(query, start, end, step)


def test_every_panel_asked_together_is_what_its_queries_give_alone(scenario_set) -> None:
    """On the scenarios' Prometheus (a fault of each kind, and a healthy service): every
    panel from one request for all of them equals the panel from its queries asked one by
    one, and each query's answer (frame, labels, failure, step) equals its answer alone."""
    prom, scenarios, _ = scenario_set
    first = {}  # runbook -> its first scenario of seed 0 (the healthy baseline's is None)
    for s in scenarios:
        if s.seed == 0 and not s.mix:
            first.setdefault(s.runbook, s)
    assert len(first) >= 5 and "high_error_rate" in first
    every = list(panels.PANELS.values())
    for sc in first.values():
        scope = panels.Scope(sc.instance, node_instance=sc.instance + "-node")
        start, end = sc.at - CHART_HISTORY, sc.at
        together = Counted(prom.url)
        got = panels.fetch_panels(together, every, scope, start, end)
        assert len(together.sent) == 1, sc.name
        for data in got:
            want = panels.fetch_panel(OneByOne(Prom(prom.url)), data.panel, scope, start, end)
            assert data.errors == want.errors, (sc.name, data.panel.name)
            pd.testing.assert_frame_equal(
                data.frame, want.frame, obj=f"{sc.name} {data.panel.name}"
            )
        queries = {f"{p.name} {legend}": q for p in every for legend, q in p.queries(scope).items()}
        answers = Prom(prom.url).ranges(queries, start, end)
        for name, query in queries.items():
            alone = Prom(prom.url).range(query, start, end)
            res = answers[name]
            assert (res.query, res.labels, res.failure, res.reason, res.step_s) == (
                alone.query, alone.labels, alone.failure, alone.reason, alone.step_s
            ), (sc.name, name)  # fmt: skip
            pd.testing.assert_frame_equal(res.frame, alone.frame, obj=f"{sc.name} {name}")
        if sc.runbook == "high_error_rate":  # series by label came through, several of them
            by_type = next(d for d in got if d.panel.name == "errors_by_type")
            assert by_type.frame["series"].nunique() >= 2
