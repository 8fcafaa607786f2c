"""`runbook doctor` against a real Prometheus with scenario data, and with none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runbook_lib import doctor
from runbook_lib.alerts import RUNBOOKS
from runbook_lib.names import NAMES


def test_all_contract_metrics_found_on_scenario_data(scenario_set, tmp_path: Path) -> None:
    prom, scenarios, _ = scenario_set
    report = doctor.run(prom.url, tmp_path / "out", at=scenarios[0].at)
    assert report.missing_metrics == []
    assert report.blind_runbooks == [] and report.blind_panels == {}
    checks = {c.name: c for c in report.checks}
    assert checks["prometheus"].ok and checks["output directory"].ok
    assert checks["jupyter kernel"].ok


def test_a_missing_metric_names_the_panels_and_runbooks_it_blinds() -> None:
    report = doctor.Report()
    doctor._blindness(report, {NAMES.active_forks})
    assert report.blind_panels == {"fork_leak": ["active_forks"]}
    assert report.blind_runbooks == ["fork_leak"]
    report = doctor.Report()
    doctor._blindness(report, {NAMES.rss})
    assert all("memory" in lost for lost in report.blind_panels.values())
    assert report.blind_runbooks == []  # memory is an overview panel: others remain


def test_a_runbook_that_keeps_one_of_its_own_panels_is_not_blind() -> None:
    report = doctor.Report()
    doctor._blindness(report, {NAMES.errors})  # errors by type and tool go; health stays
    assert report.blind_panels == {"high_error_rate": ["errors_by_type", "errors_by_tool"]}
    assert report.blind_runbooks == []
    report = doctor.Report()
    doctor._blindness(report, {NAMES.errors, NAMES.health})
    assert report.blind_runbooks == ["high_error_rate"]  # service_down keeps up and traffic


def test_unreachable_prometheus_blinds_every_runbook_and_exits_nonzero(tmp_path: Path) -> None:
    report = doctor.run("http://127.0.0.1:1", tmp_path)
    assert not report.ok and report.blind_runbooks == list(RUNBOOKS)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_lib.cli",
            "doctor",
            "--prometheus-url",
            "http://127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "FAIL prometheus" in out.stdout and "BLIND runbooks: service_down" in out.stdout


def test_unwritable_output_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    check = doctor._writable(blocker / "sub")
    assert not check.ok and str(blocker) in check.detail
