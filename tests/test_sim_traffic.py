"""The simulator's traffic shapes, tick by tick in-process (no HTTP), and its exposition."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runbook_lib.lab.sim.core import SimConfig, Simulator, UnknownMode

# Family names as the parser gives them: counters without their `_total` suffix.
CONTRACT = {
    "ggen_mcp_requests",
    "ggen_mcp_errors",
    "ggen_mcp_request_duration_seconds",
    "ggen_mcp_active_requests",
    "ggen_mcp_cache_hits",
    "ggen_mcp_cache_misses",
    "ggen_mcp_cache_evictions",
    "ggen_mcp_cache_size_workbooks",
    "ggen_mcp_cache_memory_bytes",
    "ggen_mcp_active_forks",
    "ggen_mcp_libreoffice_processes",
    "process_resident_memory_bytes",
    "nodejs_heap_size_used_bytes",
    "nodejs_heap_size_total_bytes",
    "process_cpu_seconds",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "ggen_mcp_recalc_duration_seconds",
    "ggen_mcp_query_duration_seconds",
    "ggen_mcp_template_render_duration_seconds",
    "ggen_mcp_screenshot_duration_seconds",
    "ggen_mcp_slow_queries",
    "ggen_mcp_component_health",
}


@pytest.fixture
def simulator(tmp_path: Path):
    sim = Simulator(
        SimConfig(
            state_dir=tmp_path,
            temp_dir=tmp_path / "tmp",
            seed=3,
            rate=200.0,
            log_file=tmp_path / "log.jsonl",
            echo=False,
        )
    )
    yield sim
    sim.stop()


def run(sim: Simulator, mode: str, ticks: int = 40) -> dict[str, dict]:
    """Switch mode, reset counters' baseline, run ticks; return sample values by series."""
    sim.set_mode(mode)
    before = samples(sim)
    for _ in range(ticks):
        sim.tick(0.5)
    after = samples(sim)
    return {k: after[k] - before.get(k, 0.0) for k in after}


def samples(sim: Simulator) -> dict:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(sim.metrics.registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(delta: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lab), v in delta.items()
        if n == name and all(dict(lab).get(k) == w for k, w in labels.items())
    )


def error_ratio(delta: dict) -> float:
    req = total(delta, "ggen_mcp_requests_total")
    return (
        total(delta, "ggen_mcp_requests_total", status="error")
        + total(delta, "ggen_mcp_requests_total", status="timeout")
    ) / req


def p95_bucket(delta: dict) -> float:
    """Upper bound of the bucket holding the 95th percentile of request duration."""
    buckets = {}
    for (n, lab), v in delta.items():
        if n == "ggen_mcp_request_duration_seconds_bucket":
            le = float(dict(lab)["le"])
            buckets[le] = buckets.get(le, 0.0) + v
    count = buckets[float("inf")]
    return min(le for le, c in buckets.items() if c >= 0.95 * count)


def test_exposes_exactly_the_metrics_contract(simulator: Simulator) -> None:
    text = generate_latest(simulator.metrics.registry).decode()
    names = {fam.name for fam in text_string_to_metric_families(text)}
    assert names == CONTRACT


def test_normal_traffic_is_healthy(simulator: Simulator) -> None:
    d = run(simulator, "normal")
    assert error_ratio(d) < 0.01
    assert p95_bucket(d) <= 5.0
    hits, misses = total(d, "ggen_mcp_cache_hits_total"), total(d, "ggen_mcp_cache_misses_total")
    assert hits / (hits + misses) > 0.6


@pytest.mark.parametrize(
    "mode",
    [
        "errors",
        "errors:invalid_input",
        "errors:database",
        "errors:third_party",
        "errors:libreoffice",
    ],
)
def test_error_modes_cross_the_critical_threshold(simulator: Simulator, mode: str) -> None:
    assert error_ratio(run(simulator, mode)) > 0.05


def test_error_modes_differ_in_error_type_and_tool(simulator: Simulator) -> None:
    d = run(simulator, "errors:invalid_input")
    assert total(d, "ggen_mcp_errors_total", error_type="invalid_input") > 0.6 * total(
        d, "ggen_mcp_errors_total"
    )
    d = run(simulator, "errors:libreoffice")
    lo = total(d, "ggen_mcp_errors_total", tool="recalc") + total(
        d, "ggen_mcp_errors_total", tool="screenshot"
    )
    assert lo == total(d, "ggen_mcp_errors_total") > 0
    d = run(simulator, "errors:database")
    assert total(d, "ggen_mcp_component_health", component="database") == -1  # 1 -> 0


@pytest.mark.parametrize("mode", ["latency:slow_db", "latency:cache_thrash", "latency:libreoffice"])
def test_latency_modes_push_p95_past_ten_seconds(simulator: Simulator, mode: str) -> None:
    assert p95_bucket(run(simulator, mode)) > 10


def test_slow_db_counts_slow_queries(simulator: Simulator) -> None:
    assert total(run(simulator, "latency:slow_db"), "ggen_mcp_slow_queries_total") > 50


def test_cache_too_small_evicts_and_misses(simulator: Simulator) -> None:
    d = run(simulator, "cache_too_small")
    hits, misses = total(d, "ggen_mcp_cache_hits_total"), total(d, "ggen_mcp_cache_misses_total")
    assert hits / (hits + misses) < 0.5
    assert total(d, "ggen_mcp_cache_evictions_total") > 0.5 * misses
    assert simulator.cache_size <= 20


def test_unknown_mode_names_the_valid_ones(simulator: Simulator) -> None:
    with pytest.raises(UnknownMode, match="valid modes: normal, high"):
        simulator.set_mode("nonsense")
    assert simulator.mode == "normal"
