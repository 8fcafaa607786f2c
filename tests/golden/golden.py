"""The golden runs: each runbook executed against one fixed backfilled scenario.

`make golden` (python -m tests.golden.golden) regenerates tests/golden/<runbook>.ipynb;
`pytest --nbval tests/golden` re-executes them against the same data and compares outputs.
The notebooks read Prometheus from RUNBOOK_PROMETHEUS_URL, so the golden files hold no port.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import nbformat
from papermill.translators import translate_parameters

from runbook_lib.contract.alerts import route
from runbook_lib.lab.scenarios import Scenario, ScenarioPrometheus, backfill, build, healthy
from runbook_lib.records import runner

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
# runbook -> (scenario, alert name)
GOLDEN: dict[str, tuple[Scenario, str]] = {
    "service_down": (build("service_down", "process_crashed", 0), "GgenMcpServiceDown"),
    "high_error_rate": (build("high_error_rate", "invalid_input", 0), "GgenMcpHighErrorRate"),
    "high_latency": (build("high_latency", "slow_database_queries", 0), "GgenMcpHighLatency"),
    "memory": (build("memory", "memory_leak", 0), "GgenMcpMemoryCritical"),
    "cache_hit_rate": (build("cache_hit_rate", "cache_too_small", 0), "GgenMcpLowCacheHitRate"),
    "libreoffice_leak": (
        build("libreoffice_leak", "zombie_processes", 0),
        "GgenMcpHighLibreOfficeProcessCount",
    ),
    "fork_leak": (build("fork_leak", "orphaned_processes", 0), "GgenMcpHighActiveForks"),
    "fd_leak": (build("fd_leak", "fd_leak", 0), "GgenMcpFileDescriptorExhaustion"),
    "disk_usage": (build("disk_usage", "temp_files_not_cleaned", 0), "GgenMcpHighDiskUsage"),
    "deployment": (build("service_down", "process_crashed", 1), "GgenMcpDeploymentCompleted"),
    "triage": (healthy(0), "GgenMcpSomethingElse"),
}


def params(runbook: str) -> dict:
    """Papermill parameters of a golden run: data files by relative path, no Prometheus URL."""
    sc, alert = GOLDEN[runbook]
    extra = {
        "live": False,
        "log_file": f"data/{sc.instance}.log",
        "node_instance": sc.instance + "-node",
        "snapshot_dir": "",  # nbval re-executes these: they must not write anywhere
    }
    if sc.extras.host is not None:
        extra["host_snapshot"] = f"data/{sc.instance}.json"
    labels = {k: v for k, v in sc.labels().items() if k != "alertname"}
    labels.setdefault("severity", "warning")
    p = runner.alert_params(
        alert,
        labels,
        at=sc.at,
        starts_at=sc.alert_at.isoformat(),
        fp=f"golden-{runbook}",
        extra=extra,
    )
    assert route(alert) == runbook
    return p


def write_data() -> None:
    """Logs of the lookback window and host snapshots, small enough to commit."""
    DATA.mkdir(exist_ok=True)
    for sc, _ in GOLDEN.values():
        sc.write_logs(DATA / f"{sc.instance}.log", since=sc.at - timedelta(minutes=20))
        sc.write_host(DATA / f"{sc.instance}.json")


def start_prometheus(work: Path) -> ScenarioPrometheus:
    scenarios = [sc for sc, _ in GOLDEN.values()]
    backfill(scenarios, work / "data", work / "work")
    (work / "work" / "scenarios.om.txt").unlink()
    return ScenarioPrometheus(work / "data", work / "prometheus.log").start()


def regenerate(work: Path) -> None:
    write_data()
    prom = start_prometheus(work)
    os.environ["RUNBOOK_PROMETHEUS_URL"] = prom.url
    try:
        for runbook in GOLDEN:
            rec = runner.run(params(runbook), work / "records", runbook=runbook, cwd=HERE)
            nb = nbformat.read(rec / "record.ipynb", as_version=4)
            # the run's own parameters, not the record's (which replay its data/): nbval
            # re-executes the golden against Prometheus, writing nothing
            run_params = params(runbook)
            injected = next(
                c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])
            )
            injected.source = translate_parameters("python3", "python", run_params, "Parameters")
            nb.metadata.papermill.parameters = run_params
            nbformat.write(nb, HERE / f"{runbook}.ipynb")
            print(f"{runbook}: {rec}")
    finally:
        prom.stop()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        regenerate(Path(tmp))
    sys.exit(0)
