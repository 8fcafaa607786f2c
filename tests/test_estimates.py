"""Effects estimated from the window, not assumed (issue 23, item 1): what a cache miss costs
each tool, and what one LibreOffice process holds. Every expected figure is worked out by
hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runbook_lib import diagnosis
from runbook_lib.diagnosis.engine import top_causes
from runbook_lib.diagnosis.model import Evidence
from runbook_lib.evidence.panels import Scope
from runbook_lib.evidence.signals import Signals, _derive

T0 = pd.Timestamp("2026-01-15 09:00", tz="UTC")
BEFORE = {
    "read_table": 0.3,
    "list_workbooks": 0.1,
    "recalc": 1.8,
    "screenshot": 2.5,
    "render_template": 0.7,
    "fork_workbook": 0.9,
}
RATES = {  # 20 requests/s in all
    "read_table": 7.0,
    "list_workbooks": 5.0,
    "recalc": 3.0,
    "screenshot": 2.0,
    "render_template": 2.0,
    "fork_workbook": 1.0,
}


def by_cause(verdicts: list[diagnosis.Verdict]) -> dict[str, diagnosis.Verdict]:
    return {v.cause: v for v in verdicts}


# ------------------------------------------------------------------ a cache miss's cost
def thrashing(now: dict[str, float], **extra: object) -> Signals:
    """The hit rate fell from 85 % to 24 %, 99 % of misses evict; the CPU is idle, memory
    low, database queries fast; recalc's own p95 is slow (it loads workbooks too)."""
    values = {
        "p95_by_tool": now,
        "p95_by_tool_before": BEFORE,
        "requests_by_tool": RATES,
        "cpu": 0.2,
        "memory_percent": 35.0,
        "cache_hit_rate": 24.0,
        "cache_hit_rate_before": 85.0,
        "evictions_per_miss": 0.99,
        "query_p95": 0.3,
        "recalc_p95": 13.0,
        "screenshot_p95": 13.5,
        "slow_query_rate": 0.0,
    }
    values.update(extra)
    return Signals(values=values)


def test_misses_are_credited_with_what_they_add_to_the_tools_that_load_a_workbook() -> None:
    """read_table, recalc and screenshot each gained 12 s at p95; list_workbooks,
    render_template and fork_workbook (no workbook loaded) none. Added p95 of the average
    request: (7 + 3 + 2) x 12 / 20 = 7.2 s, all of it the misses': read_table, which only the
    cache could slow, says a miss costs 12 s, which is all recalc and screenshot gained."""
    now = {t: p + (12.0 if t in ("read_table", "recalc", "screenshot") else 0.0)
           for t, p in BEFORE.items()}  # fmt: skip
    ev = Evidence(thrashing(now))
    verdicts = diagnosis.diagnose("high_latency", ev)
    v = by_cause(verdicts)
    assert ev.attribution.total == pytest.approx(7.2)
    assert v["cache_thrashing"].explained_share == 1.0
    assert v["libreoffice_bottleneck"].explained_share == 0.0
    assert v["cache_thrashing"].verdict == "likely"
    assert diagnosis.summary(verdicts)[1] == "cache_thrashing"
    assert any(
        "a miss adds 12.0 s at p95 to the tools that load a workbook (read_table, recalc, "
        "screenshot), the miss ratio rose from 15% to 76%: 7.20 of the 7.20 s" in e
        for e in v["cache_thrashing"].evidence
    )


def test_misses_that_cost_nothing_are_credited_with_nothing() -> None:
    """The cache churns, but only recalc and screenshot slowed (by 15 s): read_table loads
    workbooks through the same cache and did not slow, so a miss costs 0 s and the stage's
    15 s are LibreOffice's: (3 + 2) x 15 / 20 = 3.75 s."""
    now = {t: p + (15.0 if t in ("recalc", "screenshot") else 0.0) for t, p in BEFORE.items()}
    v = by_cause(diagnosis.diagnose("high_latency", Evidence(thrashing(now))))
    assert v["libreoffice_bottleneck"].explained_share == 1.0
    assert v["cache_thrashing"].explained_share == 0.0
    assert v["cache_thrashing"].verdict != "likely"


def test_a_stage_and_the_misses_together_are_told_apart_by_the_tools_they_share() -> None:
    """Misses add 10 s to every tool that loads a workbook; LibreOffice adds 6 s more to
    recalc and screenshot. read_table gives the miss's cost (10 s); recalc and screenshot
    gained 16 s: 10 of them the misses', 6 LibreOffice's. Added: (7 x 10 + 5 x 16) / 20 =
    7.5 s; the misses' (7 + 5) x 10 / 20 = 6.0 s (80 %), LibreOffice's 5 x 6 / 20 = 1.5 s."""
    now = dict(BEFORE)
    now["read_table"] += 10.0
    now["recalc"] += 16.0
    now["screenshot"] += 16.0
    v = by_cause(diagnosis.diagnose("high_latency", Evidence(thrashing(now))))
    assert v["cache_thrashing"].explained_share == 0.8
    assert v["libreoffice_bottleneck"].explained_share == 0.2


def test_misses_as_frequent_before_the_incident_explain_none_of_it() -> None:
    """The hit rate was already 24 % before: the 12 s read_table and the LibreOffice tools
    gained are not the misses' (nothing else shows a sign here: unexplained)."""
    now = {t: p + (12.0 if t in ("read_table", "recalc", "screenshot") else 0.0)
           for t, p in BEFORE.items()}  # fmt: skip
    ev = Evidence(thrashing(now, cache_hit_rate_before=24.0, recalc_p95=1.5, screenshot_p95=2.2))
    v = by_cause(diagnosis.diagnose("high_latency", ev))
    assert v["cache_thrashing"].explained_share == 0.0
    assert ev.attribution.unexplained == pytest.approx(7.2)


def test_misses_do_not_claim_a_slowdown_every_tool_shares() -> None:
    """Every tool three times slower, the CPU busy and the cache thrashing: a miss cannot slow
    list_workbooks, so the common slowdown is the CPU's, not the cache's."""
    now = {t: 3 * p for t, p in BEFORE.items()}
    v = by_cause(diagnosis.diagnose("high_latency", Evidence(thrashing(now, cpu=1.4))))
    assert v["cpu_saturation"].explained_share == 1.0
    assert v["cache_thrashing"].explained_share == 0.0


# ------------------------------------------------------------------ one process's memory
def soffice_hour(per_process: float, new: int, *, leak_bytes: float = 0.0,
                 host: dict | None = None) -> Evidence:  # fmt: skip
    """An hour at 15 s (241 points): two soffice processes, then one more every 5 minutes
    (`new` in all), resident memory rising `per_process` with each in the same scrape, the
    cache flat at 0.2 GB; and `leak_bytes` more over the hour, steadily, if asked."""
    n = 241
    times = [T0 + pd.Timedelta(seconds=15 * i) for i in range(n)]
    count = 2.0 + np.minimum(np.arange(n) // 20, new)
    rss = 1.5e9 + per_process * (count - 2) + leak_bytes * np.arange(n) / (n - 1)
    sig = Signals(
        values={
            "memory_series": pd.DataFrame({"timestamp": times, "value": rss}),
            "cache_memory_series": pd.DataFrame({"timestamp": times, "value": 0.2e9}),
            "libreoffice_series": pd.DataFrame({"timestamp": times, "value": count}),
            "cache_memory_share": 0.2e9 / rss[-1],
            "cache_size": 500.0,
            "libreoffice": float(count[-1]),
        }
    )
    _derive(sig, Scope("x"), 15)
    return Evidence(sig, host=host, host_missing="replaying a past incident (live=False)")


def test_memory_that_steps_with_the_process_count_is_the_processes() -> None:
    """11 new processes, memory up 245 MB with each: 11 x 245 = 2.695 GB gained, all of it
    the processes' (245 MB each, read from the steps, not assumed), none of it a leak."""
    ev = soffice_hour(245e6, 11)
    verdicts = diagnosis.diagnose("memory", ev)
    v = by_cause(verdicts)
    assert ev.attribution.total == pytest.approx(2.695e9)
    assert v["too_many_libreoffice_processes"].explained_share == 1.0
    assert v["memory_leak"].explained_share == 0.0
    assert [t["cause"] for t in top_causes(verdicts)] == ["too_many_libreoffice_processes"]
    assert any(
        "11 more LibreOffice processes (245 MB each, from the window: resident memory moved "
        "245 MB with each soffice process over 11 processes started or ended (fit R² 1.00))" in e
        for e in v["too_many_libreoffice_processes"].evidence
    )


def test_a_leak_beside_the_processes_keeps_its_own_part() -> None:
    """Processes of 280 MB, 8 new (2.24 GB), and 0.8 GB leaked steadily over the hour:
    gained 3.04 GB; the processes 2.24 of it (74 %), the leak 0.8 (26 %)."""
    ev = soffice_hour(280e6, 8, leak_bytes=0.8e9)
    v = by_cause(diagnosis.diagnose("memory", ev))
    assert ev.attribution.total == pytest.approx(3.04e9, rel=0.01)  # less the first minute
    assert v["too_many_libreoffice_processes"].explained_share == pytest.approx(0.737, abs=0.01)
    assert v["memory_leak"].explained_share == pytest.approx(0.263, abs=0.01)


def test_without_steps_to_read_the_host_measures_a_process() -> None:
    """The count moved by two only (too few steps to read a size from): the host's soffice
    processes, 300 and 320 MB, give the size: 2 x 310 MB = 0.62 GB."""
    procs = [{"pid": 10 + i, "ppid": 4242, "name": "soffice", "status": "sleeping",
              "age_s": 900, "cpu_seconds": 2.0, "rss_bytes": rss}
             for i, rss in enumerate([300e6, 320e6])]  # fmt: skip
    ev = soffice_hour(310e6, 2, host={"service_pid": 4242, "processes": procs})
    v = by_cause(diagnosis.diagnose("memory", ev))
    assert ev.attribution.claimed("too_many_libreoffice_processes") == pytest.approx(0.62e9)
    assert any(
        "310 MB each, from the host" in e for e in v["too_many_libreoffice_processes"].evidence
    )


def test_with_neither_the_size_is_the_stated_default() -> None:
    """Two new processes, no host: 250 MB each, assumed and said so: 0.5 GB."""
    ev = soffice_hour(250e6, 2)
    v = by_cause(diagnosis.diagnose("memory", ev))
    assert ev.attribution.claimed("too_many_libreoffice_processes") == pytest.approx(0.5e9)
    assert any(
        "250 MB each, assumed: neither the series nor the host measure a soffice" in e
        for e in v["too_many_libreoffice_processes"].evidence
    )


def test_a_climb_is_found_where_it_happened() -> None:
    """Flat for 15 minutes, up 600 MB over the next 25, flat again for 20 (15 s points): the
    climb is the 25 minutes from 09:15 (to within a scrape, where flat and line meet), a
    straight line (R² 1) rising 600 MB."""
    from runbook_lib.diagnosis.estimate import climb
    from runbook_lib.evidence.panels import trend

    n = 241
    times = [T0 + pd.Timedelta(seconds=15 * i) for i in range(n)]
    level = 1e9 + 600e6 * np.clip((np.arange(n) - 60) / 100, 0, 1)
    found = climb(pd.DataFrame({"timestamp": times, "value": level}))
    start, end = found.frame["timestamp"].min(), found.frame["timestamp"].max()
    scrape = pd.Timedelta(seconds=15)
    assert abs(start - (T0 + pd.Timedelta(minutes=15))) <= scrape
    assert abs(end - (T0 + pd.Timedelta(minutes=40))) <= scrape
    assert found.rise == pytest.approx(600e6)
    assert trend(found.frame).r2 == pytest.approx(1.0)
