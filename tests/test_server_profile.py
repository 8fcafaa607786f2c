"""The runbooks against what the GGEN MCP server itself exposes: the simulator on the server
metrics profile behind a real Prometheus (with the server recording rules), `runbook
doctor` naming the profile and what goes blind, and every runbook completing on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runbook_lib.execution import runner
from runbook_lib.lab import stack
from runbook_lib.records import record
from runbook_lib.service import doctor
from tests.conftest import start_zygote
from tests.polling import wait_for

pytestmark = pytest.mark.stack

# The server's src/metrics.rs, as its text encoder writes it (counters with a doubled _total).
SERVER_SERIES = {
    "mcp_requests_total_total",
    "mcp_errors_total_total",
    "mcp_request_duration_seconds",
    "mcp_active_requests",
    "mcp_cache_hits_total_total",
    "mcp_cache_misses_total_total",
    "mcp_cache_size_bytes",
    "mcp_workbooks_total",
    "mcp_forks_total",
    "mcp_libreoffice_processes_active",
    "mcp_recalc_duration_seconds",
}
# One alert per runbook, by hand.
ALERTS = {
    "service_down": "GgenMcpServiceDown",
    "high_error_rate": "GgenMcpHighErrorRate",
    "high_latency": "GgenMcpHighLatency",
    "memory": "GgenMcpMemoryCritical",
    "cache_hit_rate": "GgenMcpLowCacheHitRate",
    "libreoffice_leak": "GgenMcpHighLibreOfficeProcessCount",
    "fork_leak": "GgenMcpHighActiveForks",
    "fd_leak": "GgenMcpFileDescriptorExhaustion",
    "disk_usage": "GgenMcpHighDiskUsage",
    "deployment": "GgenMcpDeploymentCompleted",
    "triage": "GgenMcpSomethingElse",
}


@pytest.fixture(scope="module")
def server_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackInfo]:
    state = tmp_path_factory.mktemp("server-profile")
    info = stack.start(
        stack.StackOptions(state_dir=state, any_free_port=True, metrics_profile="server")
    )
    try:
        wait_for(
            lambda: (
                _query(info, "mcp_requests_total_total")
                and _query(info, "ggen_mcp:requests:rate5m")
            ),
            60,
            "Prometheus to scrape the server's series and record the rules' series",
            every=1,
        )
        yield info
    finally:
        stack.stop(state)


def _query(info: stack.StackInfo, promql: str) -> list:
    r = httpx.get(f"{info.urls['prometheus']}/api/v1/query", params={"query": promql}, timeout=5)
    return r.json()["data"]["result"]


def test_the_simulator_exposes_exactly_the_servers_series(server_stack) -> None:
    text = httpx.get(f"{server_stack.urls['ggen_mcp']}/metrics", timeout=5).text
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            for suffix in ("_bucket", "_count", "_sum"):
                if name.startswith("mcp_") and name.endswith(suffix) and "duration" in name:
                    name = name.removesuffix(suffix)
            names.add(name)
    assert names == SERVER_SERIES


def test_doctor_names_the_profile_and_what_it_cannot_judge(server_stack, tmp_path: Path) -> None:
    report = doctor.run(server_stack.urls["prometheus"], tmp_path)
    assert report.profile == "server"
    text = doctor.render(report)
    assert 'metrics profile   server (metrics_profile = "server" in runbook.toml' in text
    # written down from what the server lacks: resident memory, CPU, descriptors, evictions
    assert {"memory_leak", "cache_too_large", "large_payloads"} <= set(
        report.blind_causes["memory"]
    )
    assert {"cpu_saturation", "memory_pressure", "slow_database_queries"} <= set(
        report.blind_causes["high_latency"]
    )
    assert set(report.blind_causes["fd_leak"]) == {"fd_leak", "fd_limit_too_low"}
    assert {"cache_too_small", "ttl_too_short"} <= set(report.blind_causes["cache_hit_rate"])
    assert "libreoffice_leak" not in report.blind_causes  # the process gauge is there
    assert {"memory", "heap"} <= set(report.blind_panels["memory"])
    assert "fd_leak" in report.blind_runbooks  # its only panel reads process_* series


def test_every_runbook_completes_on_the_server_profile(
    server_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("RUNBOOK_METRICS_PROFILE", "server")  # the kernels' zygote reads it
    zygote = start_zygote("server-profile")
    request.addfinalizer(zygote.close)
    labels = {"job": "ggen-mcp", "instance": f"127.0.0.1:{server_stack.ports['ggen_mcp']}"}

    def run(runbook: str) -> dict:
        params = runner.alert_params(
            ALERTS[runbook],
            labels,
            prometheus_url=server_stack.urls["prometheus"],
            extra={"live": False, "log_file": server_stack.sim_log},
        )
        return record.summary(runner.run(params, tmp_path / runbook, zygote=zygote)).as_json()

    # one at a time (conftest.start_zygote says why)
    summaries = {runbook: run(runbook) for runbook in ALERTS}
    done = {}
    for runbook, summ in summaries.items():
        done[runbook] = summ["status"]
        if runbook == "high_latency":  # the cells' contract names, mapped: data, no gap
            assert not [g for g in summ["data_gaps"] if g.startswith("panel latency_by_tool")]
            assert any(
                g.startswith("panel cpu: ") and "not exposed" in g for g in summ["data_gaps"]
            )
        if runbook == "memory":
            assert any("not exposed by the server profile" in g for g in summ["data_gaps"])
            assert all(d["verdict"] != "ruled_out" for d in summ["diagnosis"]
                       if d["cause"] in ("memory_leak", "cache_too_large"))  # fmt: skip
    assert done == dict.fromkeys(ALERTS, "completed")
