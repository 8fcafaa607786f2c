"""Shared fixtures: a real simulator process on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from runbook_lib import pids
from runbook_lib.stack import free_port


@dataclass
class SimProcess:
    proc: subprocess.Popen
    url: str
    port: int
    state: Path

    @property
    def log(self) -> Path:
        return self.state / "ggen-mcp.log"

    @property
    def temp_dir(self) -> Path:
        return self.state / "tmp"

    def set_mode(self, mode: str) -> httpx.Response:
        return httpx.post(f"{self.url}/admin/mode", params={"mode": mode}, timeout=5)

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    port = free_port()
    state = tmp_path / "sim"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_lib.sim",
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--quiet",
            "--seed",
            "7",
            "--max-fds",
            "512",
            "--leak-mb-per-s",
            "40",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    s = SimProcess(proc, f"http://127.0.0.1:{port}", port, state)
    wait_for(
        lambda: httpx.get(f"{s.url}/health", timeout=1).status_code == 200,
        20,
        "the simulator to answer /health",
    )
    yield s
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    pids.stop_all(state / "pids")


def named(name: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == name:
            out.append(p)
    return out


@pytest.fixture(scope="session")
def scenario_set(tmp_path_factory: pytest.TempPathFactory):
    """Every cause's scenario for two seeds, plus healthy baselines, backfilled into one
    Prometheus (each scenario on its own `instance`); yields (prometheus, scenarios, dir)."""
    from runbook_lib.scenarios import ScenarioPrometheus, all_scenarios, backfill

    work = tmp_path_factory.mktemp("scenarios")
    scenarios = all_scenarios(seeds=(0, 1))
    backfill(scenarios, work / "data", work / "work")
    (work / "work" / "scenarios.om.txt").unlink()  # large; the blocks hold the data now
    prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
    try:
        yield prom, scenarios, work
    finally:
        prom.stop()
