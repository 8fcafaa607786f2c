"""Shared fixtures: a real simulator process on a free loopback port; the `stack` marker
for tests that start real services, and a guard that keeps the fast tier honest."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
import pytest

from runbook_lib.contract.summary import Summary
from runbook_lib.lab import pids
from runbook_lib.lab.stack import free_port
from tests.polling import wait_for

if TYPE_CHECKING:
    from docker import DockerClient

    from runbook_lib.execution.kernels import Zygote

# Fixtures that start Prometheus, Alertmanager, dockerd containers or a browser: a test using
# one is a `stack` test wherever it lives (`make test-fast` runs `-m "not stack"`).
SERVICE_FIXTURES = {
    "scenario_set",
    "scenario_set_server",
    "engine",
    "e2e",
    "pages",
    "live_stack",
    "live",
}
# Programs a fast-tier test must not start, and the Docker engine it must not talk to.
SERVICES = {"prometheus", "prometheus-alertmanager", "alertmanager", "dockerd", "chromium"}
DOCKER_SOCKETS = {"/var/run/docker.sock", "/run/docker.sock"}
_fast_test: list[str] = []  # the node id of the running unmarked test, if any


# Tests never read this machine's /etc/runbook/runbook.toml nor write to /var/lib/runbook:
# a test that wants a config file or the default data place sets these itself.
_SESSION_HOME = Path(
    os.environ.setdefault("RUNBOOK_TEST_HOME", f"/tmp/runbook-tests-{os.getpid()}")
)
os.environ.setdefault("RUNBOOK_CONFIG", str(_SESSION_HOME / "no-runbook.toml"))
os.environ.setdefault("RUNBOOK_OUTPUT_DIR", str(_SESSION_HOME / "outputs"))


def empty_config(directory: Path) -> Path:
    """An empty runbook.toml in `directory`: every setting at its default. (A config file
    the command line is told about must exist: a missing one is an operator's mistake.)"""
    path = Path(directory) / "empty-runbook.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


if os.environ["RUNBOOK_CONFIG"] == str(_SESSION_HOME / "no-runbook.toml"):
    _SESSION_HOME.mkdir(parents=True, exist_ok=True)
    (_SESSION_HOME / "no-runbook.toml").touch()  # empty: every setting at its default


# Stack tests that share a session fixture run in one xdist group, so it is built once.
SHARED_GROUPS = {"scenario_set": "scenario_set", "scenario_set_server": "scenario_set"}
# pytest-timeout's default (pyproject.toml) is for a test without services; a stack test
# waits on real alerts, runs and module fixtures (counted in its first test's time) that
# take minutes on a loaded machine, so it gets longer unless it carries a mark of its own.
STACK_TIMEOUT_S = 1800
# Seconds each stack group took in a stack tier on this 2-core machine while other work ran
# (about twice an idle run's; its tests' setup, call and teardown in --durations=0; rounded;
# only their order matters): the longest groups start first, so the tier ends on short ones.
# Unlisted groups count as short.
STACK_GROUP_S = {
    "scenario_set": 860, "stack-test_jupyterlab": 690, "stack-test_distributed": 330,
    "soffice": 280, "stack-test_production_install": 270, "stack-test_record_browser": 215,
    "stack-test_escalation_stack": 210, "stack-test_pinning": 190,
    "stack-test_doctor_wiring": 130, "stack-test_doctor_rules_stack": 110,
    "stack-test_server_profile": 90, "stack-test_receiver_log": 90,
    "stack-test_correlation_stack": 80, "stack-test_postmortem_stack": 80,
    "stack-test_crash": 70, "stack-test_scripts": 70, "stack-test_connect": 70,
    "stack-test_actions_stack": 55, "soffice_stack-test_e2e-demo": 50, "stack-test_stack": 30,
    "stack-test_log_sources": 20, "stack-test_containers": 10,
}  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SERVICE_FIXTURES & fixtures:
            item.add_marker(pytest.mark.stack)
        if not item.get_closest_marker("stack"):
            continue
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(_stack_group(item, fixtures)))
        if not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(STACK_TIMEOUT_S))
    items[:] = _longest_groups_first(items)


def _group(item: pytest.Item) -> str | None:
    """The item's xdist group as xdist names it: its xdist_group markers' names joined."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
             for m in item.iter_markers("xdist_group")}  # fmt: skip
    return "_".join(sorted(names)) or None


def _longest_groups_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """`items` with the stack tests' groups by their STACK_GROUP_S, longest first, in the
    places stack tests held (the other tests keep theirs). `make test` passes
    --no-loadscope-reorder, else xdist orders groups by their number of tests. xdist hands a
    worker its next group as soon as its current one is down to its last tests, and that
    group waits behind them: so each group of one or two tests is followed by the shortest
    group left, which rides along instead of a long one."""
    order: dict[str, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("stack"):
            order.setdefault(_group(item) or "", []).append(item)
    groups = sorted(order, key=lambda g: -STACK_GROUP_S.get(g, 0))
    ranked: list[pytest.Item] = []
    while groups:
        group = groups.pop(0)
        ranked += order[group]
        if len(order[group]) <= 2 and groups:
            ranked += order[groups.pop()]
    stack = iter(ranked)
    return [next(stack) if item.get_closest_marker("stack") else item for item in items]


def _stack_group(item: pytest.Item, fixtures: set[str]) -> str:
    """A stack test's xdist group under `--dist loadgroup`: its module's (module fixtures
    start a stack once per module), or the group of a session fixture it shares. Every
    stack test starts its own services on free ports with private data, so groups run side
    by side; tests that look at host-wide state carry an explicit group instead."""
    shared = sorted(SHARED_GROUPS[f] for f in fixtures & SHARED_GROUPS.keys())
    return shared[0] if shared else f"stack-{item.path.stem}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    fast = item.get_closest_marker("stack") is None
    if fast:
        _fast_test.append(item.nodeid)
    try:
        return (yield)
    finally:
        if fast:
            _fast_test.pop()


def _guard(event: str, args: tuple) -> None:
    """Fail a test without the `stack` marker that starts a service (in this process)."""
    if not _fast_test:
        return
    what = None
    if event == "subprocess.Popen":
        argv = [args[1]] if isinstance(args[1], str | bytes) else list(args[1] or [""])
        program = os.path.basename(os.fsdecode(args[0] or argv[0]))
        what = program if program in SERVICES else None
    elif event == "socket.connect" and isinstance(args[1], str) and args[1] in DOCKER_SOCKETS:
        what = "the Docker engine"
    if what:
        raise RuntimeError(f"{_fast_test[-1]} starts {what}: mark it `stack` (or use a fixture "
                           "in tests/conftest.py SERVICE_FIXTURES)")  # fmt: skip


sys.addaudithook(_guard)


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


@pytest.fixture
def sim(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SimProcess]:
    """The simulator; `@pytest.mark.sim_max_fds(N)` sets its descriptor limit (default 512)."""
    limit = request.node.get_closest_marker("sim_max_fds")
    max_fds = str(limit.args[0]) if limit else "512"
    port = free_port()
    state = tmp_path / "sim"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_lib.lab.sim",
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--quiet",
            "--seed",
            "7",
            "--max-fds",
            max_fds,
            "--leak-mb-per-s",
            "40",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    s = SimProcess(proc, f"http://127.0.0.1:{port}", port, state)
    try:  # stopped also when it never answers (a failed set-up has no teardown)
        wait_for(
            lambda: httpx.get(f"{s.url}/health", timeout=1).status_code == 200,
            60,  # its imports take seconds of CPU: long on a loaded machine
            "the simulator to answer /health",
        )
        yield s
    finally:
        _stop_sim(proc, state)


def _stop_sim(proc: subprocess.Popen, state: Path) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    pids.stop_all(state / "pids")


# Alerts the test machine raises itself in a stack: its node exporter reads the host's real
# "/", and a disk over 80% full fires GgenMcpHighDiskUsage beside the fault a test made.
HOST_ALERTS = frozenset({"GgenMcpHighDiskUsage"})


def fault_incidents(incidents: list) -> list:
    """The incidents of the fault the test made: all but those the host itself raised."""
    return [i for i in incidents if i.alertname not in HOST_ALERTS]


def named(name: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == name:
            out.append(p)
    return out


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    """A kernel zygote for this test process's scenario runs: each run's kernel is forked
    from it, as the service's workers fork theirs (a kernel started afresh costs a run ~0.9
    CPU-s more). `runbook run`'s kernel of its own runs in the CLI tests and nbval."""
    z = start_zygote("scenarios")
    yield z
    z.close()


def start_zygote(tag: str) -> Zygote:
    """A zygote whose kernels carry a mark of this test process (`tag` tells whose). It
    takes the environment as it is now: a test that sets a variable its kernels read starts
    its own. Its kernels share one text spool, as a worker's do, so what one drew the next
    may reuse; and they run one at a time, as a worker's do: kernels forked from one zygote
    share its open font files, file offsets included, and two drawing at once failed with
    "failed to load glyph"."""
    from runbook_lib.execution.kernels import Zygote
    from runbook_lib.execution.runner import MARK_PREFIX

    return Zygote(f"{MARK_PREFIX}tests-{tag}-{os.getpid()}#").start()


@pytest.fixture(scope="session")
def scenario_set(tmp_path_factory: pytest.TempPathFactory):
    """Every cause's scenario for two seeds, plus healthy baselines, and every co-occurring
    scenario for three seeds, backfilled into one
    Prometheus (each scenario on its own `instance`); yields (prometheus, scenarios, dir)."""
    from runbook_lib.lab.scenarios import (
        ScenarioPrometheus,
        all_scenarios,
        backfill,
        mixed_scenarios,
    )

    work = tmp_path_factory.mktemp("scenarios")
    scenarios = all_scenarios(seeds=(0, 1)) + mixed_scenarios(seeds=(0, 1, 2))
    backfill(scenarios, work / "data", work / "work")
    prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
    try:
        yield prom, scenarios, work
    finally:
        prom.stop()


@pytest.fixture(scope="session")
def scenario_set_server(tmp_path_factory: pytest.TempPathFactory):
    """Every cause's scenario (seed 0) and the healthy baseline as the GGEN MCP server
    exposes them (the server metrics profile), in a Prometheus of their own."""
    from runbook_lib.contract.names import use
    from runbook_lib.lab.scenarios import ScenarioPrometheus, all_scenarios, backfill

    work = tmp_path_factory.mktemp("scenarios-server")
    with use("server"):
        scenarios = all_scenarios(seeds=(0,))
        backfill(scenarios, work / "data", work / "work")
    prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
    try:
        yield prom, scenarios, work
    finally:
        prom.stop()


def docker_engine() -> DockerClient:
    """A Docker client for a test's own set-up (starting its containers), with time for a
    loaded machine: `containers.client`'s 5 s, right for a run's evidence, was not enough to
    start a container beside the rest of the stack tier (test_live_run, 3 Dec)."""
    from runbook_lib.evidence import containers

    dc, err = containers.client(timeout=60)
    if dc is None:
        pytest.fail(f"{err}; run scripts/ensure-docker.sh")
    return dc


def summary_of(fields: dict | Summary) -> Summary:
    """A run's summary as a test writes it: the fields it cares about, with an alert, a
    runbook and a status (which every summary names)."""
    if isinstance(fields, Summary):
        return fields
    return Summary.model_validate(
        {
            "alert": "GgenMcpHighErrorRate",
            "runbook": "high_error_rate",
            "status": "completed",
            **fields,
        }  # fmt: skip
    )
