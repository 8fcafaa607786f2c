"""The contracts, written out by hand and checked against the code: the
metric names the runbooks query, the names the simulator really exposes, and the alert ->
notebook routing (in the code and in the alert rules' `runbook` annotation). A renamed
metric or a re-routed alert fails here, whichever side changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runbook_lib.contract.alerts import route
from runbook_lib.contract.names import NAMES
from runbook_lib.contract.settings import ROOT
from runbook_lib.lab.sim.core import SimConfig, Simulator

# The metrics contract, as exposed (counters with their _total suffix).
CONTRACT_METRICS = {
    "ggen_mcp_requests_total",
    "ggen_mcp_errors_total",
    "ggen_mcp_request_duration_seconds",
    "ggen_mcp_active_requests",
    "ggen_mcp_cache_hits_total",
    "ggen_mcp_cache_misses_total",
    "ggen_mcp_cache_evictions_total",
    "ggen_mcp_cache_size_workbooks",
    "ggen_mcp_cache_memory_bytes",
    "ggen_mcp_active_forks",
    "ggen_mcp_libreoffice_processes",
    "process_resident_memory_bytes",
    "nodejs_heap_size_used_bytes",
    "nodejs_heap_size_total_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "ggen_mcp_recalc_duration_seconds",
    "ggen_mcp_query_duration_seconds",
    "ggen_mcp_template_render_duration_seconds",
    "ggen_mcp_screenshot_duration_seconds",
    "ggen_mcp_slow_queries_total",
    "ggen_mcp_component_health",
}
NOT_FROM_THE_SERVICE = {"up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes"}

# Alert -> runbook routing (`runbook list` prints the code's).
ROUTING = {
    "GgenMcpServiceDown": "service_down",
    "GgenMcpNoSuccessfulRequests": "service_down",
    "GgenMcpHighErrorRate": "high_error_rate",
    "GgenMcpElevatedErrorRate": "high_error_rate",
    "GgenMcpErrorRateSLOViolation": "high_error_rate",
    "GgenMcpAvailabilitySLOViolation": "high_error_rate",
    "GgenMcpHighLatency": "high_latency",
    "GgenMcpElevatedLatency": "high_latency",
    "GgenMcpLatencySLOViolation": "high_latency",
    "GgenMcpMemoryCritical": "memory",
    "GgenMcpElevatedMemoryUsage": "memory",
    "GgenMcpIncreasingHeapUsage": "memory",
    "GgenMcpLowCacheHitRate": "cache_hit_rate",
    "GgenMcpCacheEvictionRateIncreased": "cache_hit_rate",
    "GgenMcpHighLibreOfficeProcessCount": "libreoffice_leak",
    "GgenMcpHighActiveForks": "fork_leak",
    "GgenMcpFileDescriptorExhaustion": "fd_leak",
    "GgenMcpHighDiskUsage": "disk_usage",
    # issue 15: upstream's alerts that fell to triage, each to the runbook of its symptom
    "GgenMcpHighCPUUsage": "high_latency",
    "GgenMcpSlowQueryDetected": "high_latency",
    "GgenMcpHighRecalcDuration": "high_latency",
    "GgenMcpHighScreenshotDuration": "high_latency",
    "GgenMcpDeploymentCompleted": "deployment",
}
# The 22 alerts of upstream's prometheus/alerts/ggen-mcp.yml (seanchatmangpt/ggen-mcp).
UPSTREAM_ALERTS = {
    "GgenMcpServiceDown", "GgenMcpHighErrorRate", "GgenMcpHighLatency", "GgenMcpMemoryCritical",
    "GgenMcpNoSuccessfulRequests", "GgenMcpElevatedErrorRate", "GgenMcpElevatedLatency",
    "GgenMcpLowCacheHitRate", "GgenMcpHighLibreOfficeProcessCount", "GgenMcpHighDiskUsage",
    "GgenMcpElevatedMemoryUsage", "GgenMcpHighCPUUsage", "GgenMcpHighActiveForks",
    "GgenMcpCacheEvictionRateIncreased", "GgenMcpSlowQueryDetected",
    "GgenMcpDeploymentCompleted", "GgenMcpHighRecalcDuration", "GgenMcpHighScreenshotDuration",
    "GgenMcpIncreasingHeapUsage", "GgenMcpAvailabilitySLOViolation",
    "GgenMcpLatencySLOViolation", "GgenMcpErrorRateSLOViolation",
}  # fmt: skip


def exposed_names(sim: Simulator) -> set[str]:
    """Sample names as Prometheus stores them (histograms by their base name)."""
    text = generate_latest(sim.metrics.registry).decode()
    names = set()
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            base = sample.name
            for suffix in ("_bucket", "_count", "_sum"):
                if fam.type == "histogram" and base.endswith(suffix):
                    base = base.removesuffix(suffix)
            names.add(base)
    return names


@pytest.fixture
def simulator(tmp_path: Path):
    sim = Simulator(
        SimConfig(state_dir=tmp_path, temp_dir=tmp_path / "tmp", seed=1, log_file=None, echo=False)
    )
    yield sim
    sim.stop()


def test_the_runbooks_query_exactly_the_contract() -> None:
    assert set(NAMES.metrics().values()) == CONTRACT_METRICS | NOT_FROM_THE_SERVICE


def test_the_simulator_exposes_every_name_the_runbooks_query(simulator: Simulator) -> None:
    queried = set(NAMES.metrics().values()) - NOT_FROM_THE_SERVICE
    assert exposed_names(simulator) == queried


@pytest.mark.parametrize("alert,notebook", sorted(ROUTING.items()))
def test_each_alert_goes_to_its_runbook(alert: str, notebook: str) -> None:
    assert route(alert) == notebook


@pytest.mark.parametrize("alert", ["GgenMcpHighCPU", "SomethingElse", "", "ggenmcpservicedown"])
def test_unknown_alerts_go_to_triage(alert: str) -> None:
    assert route(alert) == "triage"


def test_none_of_upstreams_alerts_falls_to_triage() -> None:
    assert len(UPSTREAM_ALERTS) == 22
    assert {a: route(a) for a in UPSTREAM_ALERTS if route(a) == "triage"} == {}


def test_every_alert_rule_names_the_notebook_it_routes_to() -> None:
    groups = yaml.safe_load((ROOT / "deploy" / "rules" / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    expected = ROUTING
    assert set(rules) == set(expected)
    for name, rule in rules.items():
        assert rule["annotations"]["runbook"] == f"notebooks/{expected[name]}.ipynb", name


def test_a_cells_contract_names_are_mapped_to_the_profile_in_use() -> None:
    from runbook_lib.contract.names import use
    from runbook_lib.evidence.panels import Scope, fill

    cell = (
        "histogram_quantile(0.95, sum by (le) (rate(ggen_mcp_request_duration_seconds_bucket{sel}"
        "[5m]))) / sum(rate(ggen_mcp_errors_total{sel}[5m])) + ggen_mcp:error_rate_percent:5m"
        " + max(process_open_fds{sel})"
    )
    with use("server"):
        assert fill(cell, Scope("h:1")) == (
            'histogram_quantile(0.95, sum by (le) (rate(mcp_request_duration_seconds_bucket{job="'
            'ggen-mcp",instance="h:1"}[5m]))) / sum(rate(mcp_errors_total_total{job="ggen-mcp",'
            'instance="h:1"}[5m])) + ggen_mcp:error_rate_percent:5m'
            ' + max(process_open_fds{job="ggen-mcp",instance="h:1"})'
        )  # a recorded series and a series the server lacks stay as written
    assert "ggen_mcp_errors_total{" in fill(cell, Scope("h:1"))  # the contract: unchanged
