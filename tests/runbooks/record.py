"""`make golden`: each runbook's nbval fixture, recorded once from its scenario.

    .venv/bin/python -m tests.runbooks.record                 # record the data, then the outputs
    .venv/bin/python -m tests.runbooks.record --outputs-only  # outputs only: replay, no service

Recording backfills every runbook's scenario into a real Prometheus (a free loopback port,
a private data dir) and runs the runbook against it as `runbook run` does; the record's
`data/` (every Prometheus answer and log window it read) becomes the fixture's data. The
expected outputs come from executing the runbook itself (`runbook_lib/notebooks/`) with the
fixture's parameters, replaying that data: what `pytest --nbval` does. After a change to a
runbook's cells, `--outputs-only` is enough; after a change of its queries, record again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import papermill

from runbook_lib.contract.alerts import route
from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.execution import runner
from runbook_lib.lab.scenarios import Scenario, ScenarioPrometheus, backfill, build, healthy
from runbook_lib.records import record
from tests.runbooks.fixtures import ROOT, Fixture, settings_at_defaults, write_expected

# runbook -> (scenario, alert name): one incident per runbook, its cause the first of its table
INCIDENTS: dict[str, tuple[Scenario, str]] = {
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
# Replayed, the runbook asks nothing: addresses that never resolve, in links only.
NOWHERE = {
    "prometheus_url": "http://prometheus.invalid:9090",
    "alertmanager_url": "http://alertmanager.invalid:9093",
}
LOG = "service.log"  # the scenario's log, read while recording (its reads are kept in data/)
HOST = "host.json"  # the scenario's host snapshot, read again by every replay


def incident_params(runbook: str, fixture_dir: Path) -> dict:
    """The parameters of the recorded run; file parameters relative to the fixture."""
    sc, alert = INCIDENTS[runbook]
    assert route(alert) == runbook or runbook == "triage"
    extra = {"live": False, "log_file": LOG, "node_instance": sc.instance + "-node"}
    if sc.write_host(fixture_dir / HOST) is not None:
        extra["host_snapshot"] = HOST
    labels = {k: v for k, v in sc.labels().items() if k != "alertname"}
    labels.setdefault("severity", "warning")
    return runner.alert_params(alert, labels, at=sc.at, starts_at=sc.alert_at.isoformat(),
                               fp=f"fixture-{runbook}", extra=extra)  # fmt: skip


def record_data(runbooks: list[str], work: Path) -> None:
    """Run each runbook against its scenario in a real Prometheus; keep params and data/."""
    backfill([INCIDENTS[rb][0] for rb in runbooks], work / "tsdb", work / "work")
    prom = ScenarioPrometheus(work / "tsdb", work / "prometheus.log").start()
    try:
        for runbook in runbooks:
            fixture_dir = ROOT / runbook
            fixture_dir.mkdir(exist_ok=True)
            sc = INCIDENTS[runbook][0]
            sc.write_logs(fixture_dir / LOG, since=sc.at - timedelta(minutes=20))
            params = incident_params(runbook, fixture_dir)
            try:
                rec = runner.run({**params, "prometheus_url": prom.url}, work / "records",
                                 runbook=runbook, cwd=fixture_dir)  # fmt: skip
            finally:
                (fixture_dir / LOG).unlink()
            status = record.summary(rec).status
            if status != "completed":
                raise SystemExit(f"{runbook}: the recording run is {status}: see {rec}")
            keep_data(rec / record.DATA, fixture_dir / "data")
            replay = {**params, **NOWHERE, **record.REPLAYING}
            text = json.dumps(replay, indent=1, sort_keys=True) + "\n"
            (fixture_dir / "params.json").write_text(text, encoding="utf-8")
            print(f"{runbook}: recorded {rec.name}")
    finally:
        prom.stop()


def keep_data(recorded: Path, kept: Path) -> None:
    """The record's data/ as the fixture's, but a file whose lines are those it had, in
    another order (Prometheus lists an instant vector's series in no fixed order), stays as
    it was: a new recording changes only what was answered differently."""
    before = {p.name: p.read_text(encoding="utf-8") for p in kept.glob("*")}
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    for path in sorted(recorded.iterdir()):
        text = path.read_text(encoding="utf-8")  # files, not modes: a record is read-only
        old = before.get(path.name)
        same = old is not None and sorted(old.splitlines()) == sorted(text.splitlines())
        (kept / path.name).write_text(old if same else text, encoding="utf-8")


def record_outputs(runbook: str, work: Path) -> None:
    """Execute the runbook itself against its fixture; its outputs become expected.json."""
    fixture = Fixture(runbook, ROOT / runbook)
    out = work / f"{runbook}.ipynb"
    executed = papermill.execute_notebook(
        str(NOTEBOOKS / f"{runbook}.ipynb"),
        str(out),
        parameters=fixture.params(),
        cwd=str(fixture.dir),
        progress_bar=False,
    )
    write_expected(fixture, executed)
    print(f"{runbook}: {fixture.expected_file.relative_to(ROOT.parent.parent)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.runbooks.record", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("runbooks", nargs="*", help="which (default: all)")
    parser.add_argument("--outputs-only", action="store_true",
                        help="replay the recorded data: expected.json only, no service")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = sorted(set(args.runbooks) - set(INCIDENTS))
    if unknown:
        parser.error(f"no incident for {', '.join(unknown)}; runbooks: {', '.join(INCIDENTS)}")
    runbooks = args.runbooks or list(INCIDENTS)
    with settings_at_defaults(), tempfile.TemporaryDirectory(prefix="runbook-fixtures-") as tmp:
        if not args.outputs_only:
            record_data(runbooks, Path(tmp))
        for runbook in runbooks:
            record_outputs(runbook, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
