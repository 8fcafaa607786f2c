"""Container checks against the real Docker engine, with a busybox image imported locally."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import docker
import pytest

from runbook_lib.diagnosis import investigate
from runbook_lib.evidence import containers
from runbook_lib.evidence.panels import Scope
from runbook_lib.lab import images
from tests.conftest import docker_engine

pytestmark = pytest.mark.stack  # real services: see tests/conftest.py

MIB = 1024 * 1024
PREFIX = f"rbtest-{uuid.uuid4().hex[:8]}-"
NOWHERE = "unix:///nonexistent.sock"


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    dc = docker_engine()
    yield dc
    dc.close()


@pytest.fixture(scope="module")
def image(engine: docker.DockerClient) -> Iterator[str]:
    """A freshly imported image under a unique tag, so the build path runs every time."""
    tag = images.busybox_image(f"{PREFIX}busybox:test")
    yield tag
    engine.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def run(engine: docker.DockerClient, image: str) -> Iterator[Callable[..., str]]:
    """Start a detached container named PREFIX+suffix; remove all of them at the end."""
    started: list[str] = []

    def start(suffix: str, command: str | list[str], wait: bool = False, **kwargs) -> str:
        name = PREFIX + suffix
        c = engine.containers.run(image, command, name=name, detach=True, **kwargs)
        started.append(name)
        if wait:
            c.wait(timeout=30)
        return name

    yield start
    for name in started:
        try:
            engine.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="module")
def crashed(run) -> str:
    # The sleeps matter: dockerd stamps stdout and stderr lines from separate readers, so lines
    # written microseconds apart on different streams can be stamped out of order; and a process
    # that exits at once can get FinishedAt before StartedAt (moby/moby#45445).
    script = 'echo starting; sleep 0.3; echo "FATAL boom" >&2; sleep 0.3; echo exiting; exit 3'
    return run("crash", ["sh", "-c", script], wait=True)


@pytest.fixture(scope="module")
def oomed(run) -> str:
    # busybox dd mallocs one 64 MiB block and fills it from /dev/zero: past the 16 MiB limit.
    # The sleep first matters: an OOM in the first milliseconds can come before containerd watches
    # the cgroup, so Docker never hears of it and reports exit 137 with OOMKilled false.
    script = "sleep 0.5; dd if=/dev/zero of=/dev/null bs=64M count=1"
    return run("oom", ["sh", "-c", script], wait=True, mem_limit="16m", memswap_limit="16m")


@pytest.fixture(scope="module")
def sleeper(run) -> str:
    # --init so SIGTERM from `docker restart` ends sleep at once instead of after the timeout.
    return run("sleep", ["sleep", "300"], init=True, mem_limit="64m")


def test_image_is_reused_once_built(engine: docker.DockerClient, image: str) -> None:
    first = engine.images.get(image).id
    assert images.busybox_image(image) == image
    assert engine.images.get(image).id == first
    out = engine.containers.run(image, ["sh", "-c", "echo $((6*7))"], remove=True)
    assert out == b"42\n"


def test_missing_busybox_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(images, "BUSYBOX_PATHS", ())
    with pytest.raises(images.ImageBuildError, match="busybox-static"):
        images.busybox_image(f"{PREFIX}never:built")
    with pytest.raises(images.ImageBuildError, match="^docker unavailable: "):
        images.busybox_image(base_url=NOWHERE)


def test_dynamic_busybox_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert images.is_static(images.find_busybox())
    (tmp_path / "busybox").symlink_to(shutil.which("ls"))  # a dynamically linked ELF
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(images, "BUSYBOX_PATHS", ())
    with pytest.raises(images.ImageBuildError, match="dynamically linked.*busybox-static"):
        images.find_busybox()


def test_crashed_container_state(crashed: str) -> None:
    s = containers.state(crashed)
    assert (s.exists, s.status, s.running) == (True, "exited", False)
    assert s.exit_code == 3
    assert s.crashed and not s.oom_killed and not s.sigkilled
    assert s.error is None and s.pid is None
    assert s.started_at.tzinfo is not None
    assert s.started_at < s.finished_at <= datetime.now(UTC)
    assert s.memory_usage_bytes is None and s.memory_limit_bytes is None
    assert s.as_dict()["crashed"] is True
    assert s.to_frame().loc["exit_code", "value"] == 3


def test_crashed_container_logs_and_time_window(crashed: str) -> None:
    s = containers.state(crashed)
    out = containers.logs(crashed)
    assert out.error is None and out.exists
    # Merged by time, not stdout-then-stderr: the stderr line sits between two stdout lines.
    assert [(line.stream, line.text) for line in out.lines] == [
        ("stdout", "starting"),
        ("stderr", "FATAL boom"),
        ("stdout", "exiting"),
    ]
    assert out.lines[0].timestamp < out.lines[1].timestamp < out.lines[2].timestamp
    slack = timedelta(seconds=1)
    for line in out.lines:
        assert s.started_at - slack <= line.timestamp <= s.finished_at + slack
    assert [line.text for line in containers.logs(crashed, tail=1).lines] == ["exiting"]
    wide = containers.logs(crashed, since=s.started_at - slack, until=s.finished_at + slack)
    assert len(wide.lines) == 3
    # Sub-second bounds: a window from just after the first line drops only that line.
    later = containers.logs(crashed, since=out.lines[0].timestamp + timedelta(milliseconds=1))
    assert [line.text for line in later.lines] == ["FATAL boom", "exiting"]
    after = containers.logs(crashed, since=s.finished_at + slack)
    before = containers.logs(crashed, until=s.started_at - slack)
    assert after.error is None and after.lines == []
    assert before.error is None and before.lines == []


def test_oom_killed_container(oomed: str) -> None:
    s = containers.state(oomed)
    assert s.status == "exited"
    assert s.oom_killed is True
    assert s.exit_code == 137
    assert s.crashed and s.sigkilled
    assert s.memory_limit_bytes == 16 * MIB
    assert s.memory_usage_bytes is None  # not running: no stats sample


def test_an_investigation_counts_the_oom_kills_of_its_window_only(oomed: str) -> None:
    """The kernel log keeps every OOM kill since boot: one before the incident's window (here
    dd's, 5 s before) is not evidence that this service was OOM-killed."""
    killed = containers.state(oomed).finished_at
    assert killed is not None

    def kills(start: datetime) -> list[str]:
        inputs = investigate.Inputs("", Scope("ggen-mcp"), datetime.now(UTC), live=True)
        host, missing = investigate._host(inputs, start)
        assert host is not None and "oom_events" in host, missing
        return [line for line in host["oom_events"] if "(dd)" in line]

    assert len(kills(killed - timedelta(minutes=1))) == 1
    assert kills(killed + timedelta(seconds=5)) == []


def test_running_container_and_restart(sleeper: str) -> None:
    s = containers.state(sleeper)
    assert (s.status, s.running, s.exit_code, s.crashed) == ("running", True, None, False)
    assert s.pid and s.pid > 0
    assert s.restart_count == 0 and s.finished_at is None
    assert s.memory_limit_bytes == 64 * MIB
    assert 0 < s.memory_usage_bytes <= s.memory_limit_bytes

    r = containers.restart(sleeper, timeout=5)
    assert r.done and r.error is None, r
    after = containers.state(sleeper)
    assert after.running and after.started_at > s.started_at
    # The old run's end is recorded; `docker restart` does not bump RestartCount (policy only).
    assert s.started_at < after.finished_at <= after.started_at
    assert after.restart_count == 0
    assert after.pid != s.pid


def test_missing_container_is_named(sleeper: str) -> None:
    name = PREFIX + "missing"
    s = containers.state(name)
    assert s.exists is False and not s.running and name in s.error
    out = containers.logs(name)
    assert out.exists is False and out.lines == [] and name in out.error
    r = containers.restart(name)
    assert not r.done and name in r.error


def test_unreachable_engine_reports_instead_of_raising(
    sleeper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dc, err = containers.client(NOWHERE)
    assert dc is None and err.startswith("docker unavailable: ") and NOWHERE in err
    results = [
        containers.state(sleeper, base_url=NOWHERE),
        containers.list_containers(PREFIX, base_url=NOWHERE),
        containers.logs(sleeper, base_url=NOWHERE),
        containers.restart(sleeper, base_url=NOWHERE),
    ]
    for result in results:
        assert result.error.startswith("docker unavailable: "), result
    assert results[0].exists is None and not results[0].running
    assert results[1].items == [] and not results[3].done
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)
    assert containers.state(sleeper).error.startswith("docker unavailable: ")


def test_list_containers_finds_exactly_ours(crashed: str, oomed: str, sleeper: str) -> None:
    found = containers.list_containers(match=PREFIX)
    assert found.error is None
    assert found.names == sorted([crashed, oomed, sleeper])
    by_name = {c.name: c for c in found}
    assert by_name[crashed].exit_code == 3 and by_name[oomed].oom_killed
    assert by_name[sleeper].running
    assert list(found.to_frame()["name"]) == found.names
    running_only = containers.list_containers(match=PREFIX, all=False)
    assert running_only.names == [sleeper]
