"""Effects estimated from the window, not assumed (issue 23, item 1): what a cache miss costs
each tool, and what one LibreOffice process holds. Every expected figure is worked out by
hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runbook_lib import diagnosis
from runbook_lib.diagnosis.engine import Evidence, top_causes
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


def test_misses_do_not_claim_a_slowdown_every_tool_shares() -> None:
    """Every tool three times slower, the CPU busy and the cache thrashing: a miss cannot slow
    list_workbooks, so the common slowdown is the CPU's, not the cache's."""
    now = {t: 3 * p for t, p in BEFORE.items()}
    v = by_cause(diagnosis.diagnose("high_latency", Evidence(thrashing(now, cpu=1.4))))
    assert v["cpu_saturation"].explained_share == 1.0
    assert v["cache_thrashing"].explained_share == 0.0
