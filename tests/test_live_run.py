"""Runbooks with live=True against the real local stack: host and container findings
(real pids, real exit state) appear in the record. (Every runbook run with its defaults
against a local stack, as Run All does: tests/test_jupyterlab.py, in JupyterLab itself.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from runbook_lib.execution import runner
from runbook_lib.lab import stack
from runbook_lib.records import record
from tests.conftest import docker_engine
from tests.polling import wait_for

# Starts or ends soffice processes, and test_live_run judges every soffice on the host:
# these never run beside each other (one xdist group; see tests/conftest.py).
pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("soffice")]


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackInfo]:
    state = tmp_path_factory.mktemp("live")
    info = stack.start(stack.StackOptions(state_dir=state, any_free_port=True))
    try:
        yield info
    finally:
        stack.stop(state)


def query(info: stack.StackInfo, promql: str) -> list:
    r = httpx.get(f"{info.urls['prometheus']}/api/v1/query", params={"query": promql}, timeout=5)
    return r.json()["data"]["result"]


def live_params(info: stack.StackInfo, alert: str, **extra: object) -> dict:
    labels = {"job": "ggen-mcp", "instance": f"127.0.0.1:{info.ports['ggen_mcp']}"}
    return runner.alert_params(
        alert,
        labels,
        prometheus_url=info.urls["prometheus"],
        extra={"live": True, "log_file": info.sim_log, **extra},
    )


def test_soffice_leak_record_names_real_pids(live_stack, tmp_path: Path) -> None:
    info = live_stack
    wait_for(lambda: query(info, 'up{job="ggen-mcp"} == 1'), 30, "the simulator scraped")
    stack.set_mode(info, "soffice_leak")
    wait_for(
        lambda: query(info, "ggen_mcp_libreoffice_processes > 10"),
        60,
        "Prometheus to see more than 10 soffice processes",
        every=1,
    )
    rec = runner.run(live_params(info, "GgenMcpHighLibreOfficeProcessCount"), tmp_path)
    summ = record.summary(rec).as_json()
    assert summ["status"] == "completed" and summ["runbook"] == "libreoffice_leak"
    real = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "soffice"}
    found = {v["cause"]: v for v in summ["diagnosis"]}
    assert found["zombie_processes"]["verdict"] == "likely"
    assert found["orphaned_processes"]["verdict"] == "likely"
    evidence = " ".join(found["zombie_processes"]["evidence"])
    named = {
        int(tok.strip("(),."))
        for tok in evidence.replace("pids", "").split()
        if tok.strip("(),.").isdigit() and int(tok.strip("(),.")) > 100
    }
    assert named and named <= real
    assert summ["top_cause"] in {"zombie_processes", "orphaned_processes"}
    stack.set_mode(info, "normal")


def test_crashed_container_exit_state_is_in_the_record(live_stack, tmp_path: Path) -> None:
    from runbook_lib.lab import images

    info = live_stack
    client = docker_engine()
    name = f"ggen-mcp-live-{uuid.uuid4().hex[:6]}"
    c = client.containers.run(
        images.busybox_image(), ["sh", "-c", "echo FATAL boom; exit 3"], name=name, detach=True
    )
    try:
        c.wait(timeout=30)
        stack.set_mode(info, "crash")
        wait_for(lambda: query(info, 'up{job="ggen-mcp"} == 0'), 30, "up == 0 after the crash")
        time.sleep(1)
        rec = runner.run(live_params(info, "GgenMcpServiceDown", container=name), tmp_path)
        summ = record.summary(rec).as_json()
        crashed = {v["cause"]: v for v in summ["diagnosis"]}["process_crashed"]
        assert summ["top_cause"] == "process_crashed" and crashed["verdict"] == "likely"
        assert f"container {name} is exited, exit code 3" in " ".join(crashed["evidence"])
        assert any("fatal" in line.lower() for line in crashed["evidence"])
    finally:
        c.remove(force=True)
