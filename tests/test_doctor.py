"""`runbook doctor` against a real Prometheus with scenario data, and with none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runbook_lib.contract.alerts import RUNBOOKS
from runbook_lib.contract.names import NAMES
from runbook_lib.service import doctor


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
    assert (
        "FAIL prometheus" in out.stdout
        and "runbooks with no data of their own (every panel beyond the overview lost): service_down"
        in out.stdout
    )


def test_unwritable_output_directory_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    check = doctor._writable(blocker / "sub")
    assert not check.ok and str(blocker) in check.detail


def test_panel_metrics_are_the_contract_names_in_each_panels_queries() -> None:
    # By hand, from the PromQL of each panel.
    assert doctor.panel_metrics("errors_by_type") == {"ggen_mcp_errors_total"}
    assert doctor.panel_metrics("latency") == {"ggen_mcp_request_duration_seconds"}
    assert doctor.panel_metrics("cache_hit_rate") == {
        "ggen_mcp_cache_hits_total",
        "ggen_mcp_cache_misses_total",
    }
    assert doctor.panel_metrics("descriptors") == {"process_open_fds", "process_max_fds"}
    assert doctor.panel_metrics("disk") == {
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
    }


def test_the_report_is_ok_unless_a_check_other_than_docker_fails_or_a_runbook_is_blind() -> None:
    fine = doctor.Report(
        checks=[doctor.Check("prometheus", True, ""), doctor.Check("docker", False, "")]
    )
    assert fine.ok
    assert not doctor.Report(checks=[doctor.Check("output directory", False, "")]).ok
    assert not doctor.Report(blind_runbooks=["fd_leak"]).ok


def test_render_lists_checks_then_what_is_missing_and_blind() -> None:
    report = doctor.Report(
        checks=[
            doctor.Check("prometheus", True, "http://p answers"),
            doctor.Check("docker", False, "down"),
        ],
        missing_metrics=["ggen_mcp_active_forks", "process_open_fds"],
        blind_panels={"fork_leak": ["active_forks"]},
        blind_runbooks=["fork_leak"],
        profile="server",
        blind_causes={"memory": ["memory_leak", "cache_too_large"]},
    )
    assert doctor.render(report).splitlines() == [
        "ok   prometheus        http://p answers",
        "warn docker            down",
        'metrics profile   server (metrics_profile = "server" in runbook.toml, or RUNBOOK_METRICS_PROFILE)',
        "missing metrics (2): ggen_mcp_active_forks, process_open_fds",
        "  fork_leak: loses active_forks",
        "  memory: cannot judge memory_leak, cache_too_large",
        "runbooks with no data of their own (every panel beyond the overview lost): fork_leak",
    ]


def test_the_local_checks_name_what_they_found(tmp_path: Path) -> None:
    kernel = doctor._kernel()
    assert kernel.name == "jupyter kernel" and kernel.ok and "python3" in kernel.detail
    docker = doctor._docker("unix:///nonexistent/docker.sock")
    assert docker.name == "docker" and not docker.ok
    assert docker.detail.endswith("(container checks will say so)")
    ok = doctor._writable(tmp_path)
    assert ok.ok and ok.detail == f"{tmp_path} is writable"
    later = doctor._writable(tmp_path / "out" / "records")
    assert (
        later.ok
        and later.detail == f"{tmp_path / 'out' / 'records'} can be created (serve creates it)"
    )
    assert list(tmp_path.iterdir()) == []  # the doctor creates nothing


def test_unreachable_prometheus_is_reported_first_and_names_the_url(tmp_path: Path) -> None:
    report = doctor.run("http://127.0.0.1:1", tmp_path, docker_base_url="unix:///nonexistent.sock")
    assert [c.name for c in report.checks] == [
        "prometheus",
        "docker",
        "jupyter kernel",
        "output directory",
    ]
    assert report.checks[0] == doctor.Check(
        "prometheus", False, "http://127.0.0.1:1 does not answer",
        "give its address with --prometheus-url, RUNBOOK_PROMETHEUS_URL or prometheus_url in "
        "runbook.toml",
    )  # fmt: skip
    assert report.missing_metrics == [] and report.blind_panels == {}


def test_present_metrics_reads_names_and_histogram_bases(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from runbook_lib.evidence.prom import Prom
    from tests.test_prom import BrokenPrometheus

    fake = BrokenPrometheus()  # answers what a Prometheus holding these series would
    try:
        names = ["up", "ggen_mcp_request_duration_seconds_bucket", "process_open_fds"]
        fake.answer(200, {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": n}, "value": [0, "1"]} for n in names]}})  # fmt: skip
        found = doctor._present_metrics(Prom(fake.url), datetime.now(UTC))
        assert found == {*names, "ggen_mcp_request_duration_seconds"}
        fake.answer(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
        assert doctor._present_metrics(Prom(fake.url), datetime.now(UTC)) == set()
        report = doctor.run(fake.url, tmp_path, docker_base_url="unix:///nonexistent.sock")
        assert report.checks[0].ok and "ggen_mcp_active_forks" in report.missing_metrics
        assert "fork_leak" in report.blind_runbooks
    finally:
        fake.server.shutdown()


def test_the_kernel_check_lists_the_kernels_found() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    found = sorted(KernelSpecManager().find_kernel_specs())
    check = doctor._kernel()
    assert (check.ok, check.detail) == ("python3" in found or "runbook" in found, ", ".join(found))
    assert ", " in check.detail  # the set-up registers `runbook` beside `python3`


def test_an_unwritable_directory_says_why(tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    check = doctor._writable(readonly)
    if os.geteuid() == 0:  # root writes anyway: the check says so truthfully
        assert check.ok and check.detail == f"{readonly} is writable"
    else:
        assert not check.ok
    afile = tmp_path / "afile"
    afile.write_text("x")
    blocked = doctor._writable(afile / "records")
    assert blocked == doctor.Check(
        "output directory", False,
        f"{afile / 'records'} lies under {afile}, which is a file, not a directory",
        "give a directory this user may write with --output, RUNBOOK_OUTPUT_DIR or output_dir "
        "in runbook.toml",
    )  # fmt: skip
    assert doctor.render(doctor.Report(checks=[blocked])).splitlines()[1].startswith("     fix: ")


def test_the_kernel_check_wants_runbook_or_python3(monkeypatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    def specs(found: dict):
        monkeypatch.setattr(KernelSpecManager, "find_kernel_specs", lambda self: found)
        return doctor._kernel()

    assert specs({"runbook": "/k"}).ok and specs({"runbook": "/k"}).detail == "runbook"
    assert specs({"python3": "/k"}).ok and specs({"python3": "/k", "ir": "/k"}).ok
    ir = specs({"ir": "/k"})
    assert (ir.ok, ir.detail) == (False, "ir")
    assert (
        ir.fix
        == "install ipykernel's kernel into this environment: python -m ipykernel install --sys-prefix"
    )
    assert (specs({}).ok, specs({}).detail) == (False, "no kernel installed")


def test_doctor_asks_prometheus_exactly_and_reports_it_answering(tmp_path: Path) -> None:
    from tests.test_prom import BrokenPrometheus

    fake = BrokenPrometheus()
    try:
        fake.answer(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
        report = doctor.run(fake.url, tmp_path / "a" / "b", docker_base_url="unix:///no/such.sock")
        assert report.checks[0] == doctor.Check("prometheus", True, f"{fake.url} answers")
        assert [q["query"] for path, q in fake.asked if path == "/api/v1/query"] == [
            ['group by (__name__) ({__name__=~"ggen_mcp_.*|mcp_.*|process_.*|nodejs_.*|up", '
             'job="ggen-mcp"})'],
            ['group by (__name__) ({__name__=~"node_filesystem_.*"})'],
        ]  # fmt: skip
        assert [p for p, _ in fake.asked if p != "/api/v1/query"] == [
            "/api/v1/rules", "/api/v1/targets", "/api/v1/status/runtimeinfo"
        ]  # the wiring: rules loaded, first scrape  # fmt: skip
        assert report.profile is None  # no series of either profile
        docker = next(c for c in report.checks if c.name == "docker")
        assert not docker.ok and "/no/such.sock" in docker.detail  # the given engine was asked
        assert report.checks[-1].ok  # output directory with its parents made
    finally:
        fake.server.shutdown()


def test_render_joins_several_panels_and_runbooks() -> None:
    report = doctor.Report(
        blind_panels={"memory": ["heap", "cache_size"]}, blind_runbooks=["memory", "fd_leak"]
    )
    assert doctor.render(report).splitlines() == [
        "  memory: loses heap, cache_size",
        "runbooks with no data of their own (every panel beyond the overview lost): memory, fd_leak",
    ]


def test_the_profile_is_the_one_whose_own_series_are_there() -> None:
    server = {"mcp_requests_total_total", "mcp_errors_total_total", "mcp_request_duration_seconds",
              "mcp_workbooks_total", "up", "node_filesystem_avail_bytes"}  # fmt: skip
    contract = {"ggen_mcp_requests_total", "ggen_mcp_errors_total", "process_open_fds", "up"}
    assert doctor.detect_profile(server) == "server"
    assert doctor.detect_profile(contract) == "contract"
    assert doctor.detect_profile({"up", "node_filesystem_avail_bytes"}) is None
