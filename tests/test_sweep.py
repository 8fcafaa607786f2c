"""The robustness sweep's scenarios (issue 23, item 5): without a variation a scenario is the
library's as before; with one, what it varies stays inside the ranges the issue names, and a
series the true cause needs is never the one removed."""

from __future__ import annotations

import numpy as np

from runbook_lib.lab.scenarios import build
from runbook_lib.lab.scenarios.model import Variation, families
from runbook_lib.lab.scenarios.sweep import sweep_scenarios, variation
from tests import listed_causes
from tests.test_diagnosis import MIXES

SEEDS = tuple(range(100, 108))


def test_no_variation_changes_nothing() -> None:
    for rb, cause in (("high_latency", "slow_database_queries"), ("memory", "memory_leak")):
        plain, same = build(rb, cause, 3), build(rb, cause, 3, variation=Variation())
        assert plain.timeline.onset == same.timeline.onset
        assert np.array_equal(plain.timeline.rss, same.timeline.rss)
        assert all(np.array_equal(plain.timeline.latency_extra[t], same.timeline.latency_extra[t])
                   for t in plain.timeline.latency_extra)  # fmt: skip


def test_the_draws_stay_in_the_issues_ranges() -> None:
    scenarios = sweep_scenarios(SEEDS)
    # each listed cause of each runbook (docs/causes.md), each mix, the healthy baseline
    assert len(scenarios) == len(SEEDS) * (len(listed_causes.read()) + len(MIXES) + 1)
    for sc in scenarios:
        v, lead = sc.timeline.variation, (sc.alert_at.timestamp() - sc.timeline.onset) / 60
        assert 0.5 <= v.magnitude <= 1.5 and 120e6 <= v.soffice_bytes <= 350e6
        if sc.runbook == "service_down":
            assert 4 <= v.onset_min <= 6  # the stop, a minute or more before ServiceDown
        else:
            assert 20 <= v.onset_min <= 70
            if sc.mix is None:
                assert lead >= 20 - 1e-6, sc.name  # the fault began then, or before
    dropped = [sc.timeline.variation.dropped for sc in scenarios]
    with_health = sum("ggen_mcp_component_health" in d for d in dropped)
    assert 0.3 * len(dropped) < with_health < 0.7 * len(dropped)  # about half
    picked = sum(sc.timeline.variation.pick_tools for sc in scenarios)
    assert 0.3 * len(scenarios) < picked < 0.7 * len(scenarios)


def test_a_series_the_cause_needs_is_never_removed() -> None:
    needs = {"cpu_saturation": "process_cpu_seconds_total",
             "memory_leak": "process_resident_memory_bytes",
             "too_many_libreoffice_processes": "ggen_mcp_libreoffice_processes",
             "cache_too_small": "ggen_mcp_cache_evictions_total",
             "fd_leak": "process_open_fds"}  # fmt: skip
    for seed in range(100, 160):
        for cause, series in needs.items():
            rb = "high_latency" if cause == "cpu_saturation" else (
                "fd_leak" if cause == "fd_leak" else
                "cache_hit_rate" if cause == "cache_too_small" else "memory")  # fmt: skip
            assert series not in variation(f"{rb}/{cause}", seed, rb, (cause,)).dropped
    # ... while another cause's scenario does lose it, now and then
    lost = [variation(f"high_error_rate/invalid_input/{s}", s, "high_error_rate",
                      ("invalid_input",)).dropped for s in range(100, 160)]  # fmt: skip
    assert any("process_cpu_seconds_total" in d for d in lost)


def test_a_removed_series_is_not_written() -> None:
    sc = build("high_error_rate", "invalid_input", 0,
               variation=Variation(dropped=frozenset({"ggen_mcp_component_health"})))  # fmt: skip
    names = {f.name for f in families(sc.timeline, {"instance": sc.instance})}
    assert "ggen_mcp_component_health" not in names and "ggen_mcp_cache_size_workbooks" in names


def test_libreoffice_processes_hold_the_size_drawn_and_memory_steps_with_them() -> None:
    """300 MB each: memory rises 300 MB with each new process, the host lists processes of
    300 MB, and the count stays over the alert's 10."""
    sc = build("memory", "too_many_libreoffice_processes", 0,
               variation=Variation(soffice_bytes=300e6, onset_min=30))  # fmt: skip
    tl = sc.timeline
    steps = np.diff(tl.libreoffice)
    assert set(np.unique(steps)) <= {0.0, 1.0}  # whole processes
    moved = np.diff(tl.rss)[steps > 0] / steps[steps > 0]
    assert np.allclose(moved, 300e6)
    assert tl.libreoffice.max() >= 12
    assert {p["rss_bytes"] for p in sc.extras.host["processes"]} == {300e6}
    assert tl.rss.max() <= tl.memory_limit


def test_a_fault_touches_the_tools_picked() -> None:
    v = Variation(seed="x", pick_tools=True)
    picked = v.tools(("read_table", "list_workbooks"))
    assert picked and set(picked) <= {"read_table", "list_workbooks"}
    assert v.tools(("read_table", "list_workbooks")) == picked  # the same seed, the same pick
    sc = build("high_latency", "slow_database_queries", 0, variation=v)
    slowed = {t for t, extra in sc.timeline.latency_extra.items() if extra.max() > 0}
    assert slowed == set(picked)
