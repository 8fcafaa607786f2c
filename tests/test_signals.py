"""signals.collect asks Prometheus for a run's figures in few requests (the instant figures
in one, the trends in one), and each figure is what its query alone answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from runbook_lib.evidence import signals
from runbook_lib.evidence.panels import Scope
from runbook_lib.evidence.prom import Failure, Prom, QueryResult

AT = datetime(2026, 1, 15, 10, 2, tzinfo=UTC)


class Counting:
    """A Prometheus client that notes each request; with `alone`, it refuses joined queries,
    so `collect` asks each query by itself (as it did before joining them)."""

    def __init__(self, prom: Prom, alone: bool = False) -> None:
        self.prom, self.alone, self.url = prom, alone, prom.url
        self.asked: list[str] = []

    def _ask(self, kind: str, query: str, ask) -> QueryResult:
        self.asked.append(kind)
        if self.alone and signals.SIGNAL_LABEL in query:
            return QueryResult(query, pd.DataFrame(columns=["timestamp", "value"]),
                               Failure.BAD_QUERY, "refused by the test")  # fmt: skip
        return ask()

    def instant(self, query, at):
        return self._ask("instant", query, lambda: self.prom.instant(query, at))

    def range(self, query, start, end, step=None):
        return self._ask("range", query, lambda: self.prom.range(query, start, end, step))

    def ranges(self, queries, start, end, step=None):
        """One request for all (`Prom.ranges`); with `alone`, one per query."""
        if self.alone:
            return {name: self.range(q, start, end, step) for name, q in queries.items()}
        self.asked.append("range")
        return self.prom.ranges(queries, start, end, step)


def test_an_unreachable_prometheus_is_asked_once_per_kind_and_named_for_every_figure() -> None:
    prom = Counting(Prom("http://127.0.0.1:1", timeout=2))
    sig = signals.collect(prom, Scope("127.0.0.1:9464"), AT)
    # one joined request for the 31 instant figures, one for the 2 baselines, one for the 4
    # trends
    assert prom.asked == ["instant", "range", "range"]
    assert not sig.values
    assert len(sig.missing) == 31 + 2 + 4 + 6  # and the 6 figures derived from the trends
    for name, why in sig.missing.items():
        assert why.startswith("Prometheus at http://127.0.0.1:1 is unreachable"), name


def test_each_joined_figure_is_what_its_query_alone_answers(scenario_set) -> None:
    """On the scenarios' Prometheus (a fault of each kind, and a healthy service), every
    figure, by-label table, baseline and trend from the joined requests equals the one its
    query gives asked alone; one instant request instead of 31, one range request for the
    baselines and one for the trends instead of 6."""
    prom, scenarios, _ = scenario_set
    first = {}  # runbook -> its first scenario of seed 0 (the healthy baseline's is None)
    for s in scenarios:
        if s.seed == 0 and not s.mix:
            first.setdefault(s.runbook, s)
    picked = list(first.values())
    assert len(picked) >= 5 and "high_error_rate" in first
    for sc in picked:
        scope = Scope(sc.instance, node_instance=sc.instance + "-node")
        joined, alone = Counting(Prom(prom.url)), Counting(Prom(prom.url), alone=True)
        got = signals.collect(joined, scope, sc.at)
        want = signals.collect(alone, scope, sc.at)
        assert joined.asked.count("instant") == 1 and alone.asked.count("instant") == 1 + 31
        assert joined.asked.count("range") == 2 and alone.asked.count("range") == 2 + 1 + 4
        assert got.missing == want.missing, sc.name
        assert got.values.keys() == want.values.keys(), sc.name
        for name, value in want.values.items():
            if isinstance(value, pd.DataFrame):
                pd.testing.assert_frame_equal(got.values[name], value, obj=f"{sc.name} {name}")
            else:
                assert got.values[name] == value, (sc.name, name)
        if sc.runbook == "high_error_rate":  # tables by label came through
            assert len(got.values["errors_by_type"]) >= 2 and len(got.values["health"]) >= 3


def test_a_joined_answer_is_split_back_into_each_querys_rows() -> None:
    """Each query gets its own series' rows, in Prometheus' order, without the marking label,
    numbered from 0; a query with no series has none (no data)."""
    times = pd.to_datetime([1.7e9, 1.7e9 + 60], unit="s", utc=True)
    frame = pd.DataFrame({
        "timestamp": [times[0], times[1], times[0], times[1], times[0]],
        signals.SIGNAL_LABEL: ["errors", "errors", "latency", "latency", "errors"],
        "tool": ["read", "read", None, None, "write"],
        "value": [1.0, 2.0, 0.25, 0.5, 7.0],
    })  # fmt: skip
    joined = QueryResult("joined", frame, None, "", 60.0, (signals.SIGNAL_LABEL, "tool"))
    queries = {"latency": "q_latency", "errors": "q_errors", "cache": "q_cache"}
    got = signals.ask_together(lambda q: joined, queries)
    assert list(got) == ["latency", "errors", "cache"]
    errors = got["errors"]
    assert errors.query == "q_errors" and errors.ok and errors.labels == ("tool",)
    assert list(errors.frame.columns) == ["timestamp", "tool", "value"]
    assert list(errors.frame.index) == [0, 1, 2]
    assert list(errors.frame["tool"]) == ["read", "read", "write"]
    assert list(errors.frame["value"]) == [1.0, 2.0, 7.0]
    assert list(got["latency"].frame["value"]) == [0.25, 0.5]
    assert got["latency"].frame["timestamp"].tolist() == list(times)
    assert got["cache"].failure is Failure.NO_DATA and got["cache"].frame.empty
    assert list(got["cache"].frame.columns) == ["timestamp", "tool", "value"]
