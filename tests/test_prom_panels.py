"""prom, panels and charts against a real Prometheus loaded with scenario history."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest

from runbook_lib.evidence import panels
from runbook_lib.evidence.prom import Failure, Prom, choose_step, selector
from runbook_lib.lab.scenarios import build
from runbook_lib.notebook import charts


def find(scenarios, name: str):
    return next(s for s in scenarios if s.name == name)


def test_range_query_gives_tidy_frame_with_bounded_points(scenario_set) -> None:
    prom, scenarios, _ = scenario_set
    sc = find(scenarios, "high_error_rate/invalid_input/s0")
    res = Prom(prom.url).range(f"up{selector(instance=sc.instance)}", sc.start, sc.end)
    assert res.ok and list(res.frame.columns) == [
        "timestamp",
        "__name__",
        "instance",
        "job",
        "value",
    ]
    span = (sc.end - sc.start).total_seconds()
    assert len(res.frame) <= 501 and res.step_s == math.ceil(span / 500)
    assert str(res.frame["timestamp"].dt.tz) == "UTC"
    assert res.frame["timestamp"].min() >= sc.start.replace(microsecond=0)


def test_failures_are_typed_results_not_exceptions(scenario_set) -> None:
    prom, scenarios, _ = scenario_set
    sc = scenarios[0]
    p = Prom(prom.url)
    bad = p.instant("sum(rate(", sc.at)
    assert bad.failure is Failure.BAD_QUERY and "refused the query" in bad.reason
    empty = p.instant(f"up{selector(instance='no-such-instance')}", sc.at)
    assert empty.failure is Failure.NO_DATA and empty.frame.empty
    gone = Prom("http://127.0.0.1:1", timeout=2).instant("up", sc.at)
    assert gone.failure is Failure.UNREACHABLE and "connection refused" in gone.reason


@pytest.mark.parametrize("hostile", ['a"b', "x\\y", "line\nbreak", '"} or vector(1) #'])
def test_label_values_are_escaped_in_promql(scenario_set, hostile: str) -> None:
    prom, scenarios, _ = scenario_set
    res = Prom(prom.url).instant(f"up{selector(instance=hostile)}", scenarios[0].at)
    assert res.failure is Failure.NO_DATA  # a query, correctly quoted, that matches nothing


@pytest.mark.parametrize(
    "span_s,step_s",
    [(0, 1), (300, 1), (500, 1), (501, 2), (900, 2), (3600, 8), (6 * 3600, 44), (86400, 173)],
)
def test_choose_step_keeps_at_most_500_points(span_s: int, step_s: float) -> None:
    """Steps worked out by hand: ceil(span / 500), at least one second."""
    end = build("memory", "memory_leak", 0).at
    assert choose_step(end - timedelta(seconds=span_s), end) == step_s
    assert choose_step(end - timedelta(hours=1), end, max_points=60) == 60.0


def test_every_panel_has_data_unit_and_name(scenario_set) -> None:
    prom, scenarios, _ = scenario_set
    sc = find(scenarios, "high_error_rate/invalid_input/s0")
    scope = panels.Scope(sc.instance, node_instance=sc.instance + "-node")
    for name, panel in panels.PANELS.items():
        data = panels.fetch(Prom(prom.url), name, scope, sc.at - timedelta(hours=1), sc.at)
        assert data.ok, f"{name}: {data.gap()}"
        assert set(data.frame.columns) == {"timestamp", "series", "value"}
        assert panel.title and panel.unit is not None


def test_error_rate_panel_peaks_above_its_critical_line(scenario_set) -> None:
    prom, scenarios, _ = scenario_set
    sc = find(scenarios, "high_error_rate/invalid_input/s0")
    data = panels.fetch(
        Prom(prom.url), "error_rate", panels.Scope(sc.instance), sc.at - timedelta(hours=1), sc.at
    )
    _, peak = data.peak()
    assert peak > data.panel.crit == 5
    onset = pd.Timestamp(sc.timeline.onset, unit="s", tz="UTC")
    before = data.frame[data.frame["timestamp"] < onset]
    assert len(before) > 10 and before["value"].max() < 1


def test_memory_trend_projects_time_to_limit(scenario_set) -> None:
    prom, scenarios, _ = scenario_set
    sc = find(scenarios, "memory/memory_leak/s0")
    data = panels.fetch(
        Prom(prom.url),
        "memory",
        panels.Scope(sc.instance),
        sc.alert_at - timedelta(minutes=40),
        sc.alert_at - timedelta(minutes=5),
    )
    t = panels.trend(data.frame, limit=100.0)
    assert t.slope_per_h > 20 and t.r2 > 0.95
    assert t.eta is not None and t.eta > sc.alert_at - timedelta(minutes=5)
    assert "reaches 100 %" in t.describe("%")


def test_panels_without_prometheus_say_why(scenario_set) -> None:
    _, scenarios, _ = scenario_set
    sc = scenarios[0]
    for name in panels.PANELS:
        data = panels.fetch(
            Prom("http://127.0.0.1:1", timeout=2),
            name,
            panels.Scope(sc.instance),
            sc.at - timedelta(hours=1),
            sc.at,
        )
        assert not data.ok and "unreachable" in data.gap()


def test_overview_is_four_titled_panels_under_100kb(scenario_set) -> None:
    prom, scenarios, _ = scenario_set
    sc = find(scenarios, "high_latency/cache_thrashing/s1")
    fig = charts.overview(
        Prom(prom.url), panels.Scope(sc.instance), sc.at - timedelta(hours=1), sc.at, sc.alert_at
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Error rate", "Request latency", "Cache hit rate", "Memory (% of limit)"]
    labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"alert fired", "critical 10", "p95"} <= labels
    assert len(charts.png_bytes(fig)) < 100_000


# --------------------------------------------------------------------------- templates


def test_a_template_is_filled_with_the_escaped_selector() -> None:
    s = panels.Scope(instance='h"x\n:1', node_instance="n1", memory_limit_bytes=2 * 1024**3)
    assert panels.fill("rate(m{sel}[5m])", s) == r'rate(m{job="ggen-mcp",instance="h\"x\n:1"}[5m])'
    assert panels.fill('m{sel,status=~"error|timeout"}', s) == (
        r'm{job="ggen-mcp",instance="h\"x\n:1",status=~"error|timeout"}'
    )
    assert panels.fill("a{node_sel} / {memory_limit}", s) == (
        'a{job="node-exporter",mountpoint="/",fstype!="rootfs",instance="n1"} / 2147483648'
    )
    assert panels.fill('m{job="other"}', s) == 'm{job="other"}'  # other braces as written


def test_every_panel_template_fills_to_the_panel_query() -> None:
    s = panels.Scope(instance="a'b\\c:9", node_instance="n")
    for name, panel in panels.PANELS.items():
        filled = {k: panels.fill(q, s) for k, q in panel.promql().items()}
        assert filled == panel.queries(s), name
        assert all("{sel" in q or "{node_sel}" in q for q in panel.promql().values()), name


def test_cell_levels_replace_the_table() -> None:
    base = panels.PANELS["memory"]
    assert (base.warn, base.crit) == (70, 90)
    from dataclasses import replace

    edited = replace(base, levels=(60, None))
    assert (edited.warn, edited.crit) == (60, None)
