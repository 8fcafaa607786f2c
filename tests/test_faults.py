"""Each real fault of the simulator, checked from outside the process (psutil, the disk,
the log file, the socket table), and cleaned up by the pid registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from runbook_lib.lab import pids
from tests.conftest import SimProcess, named
from tests.polling import wait_for

# Host-wide process checks: never beside another test that spawns named processes.
pytestmark = pytest.mark.xdist_group("host")


def _children_named(sim: SimProcess, name: str) -> list[psutil.Process]:
    return [p for p in named(name) if p.pid in _tracked(sim)]


def _tracked(sim: SimProcess) -> set[int]:
    return {r.pid for r in pids.records(sim.state / "pids")}


def test_soffice_leak_starts_real_processes_named_soffice(sim: SimProcess) -> None:
    assert sim.set_mode("soffice_leak").status_code == 200
    procs = wait_for(
        lambda: len(_children_named(sim, "soffice")) > 10 and _children_named(sim, "soffice"),
        30,
        "more than 10 soffice processes",
    )
    statuses = {p.status() for p in procs}
    assert psutil.STATUS_ZOMBIE in statuses, "some leaked soffice should be zombies"
    parents = {p.ppid() for p in procs}
    assert sim.proc.pid in parents and parents - {sim.proc.pid}, "children and orphans expected"
    assert any("--headless" in p.cmdline() for p in procs if p.status() != "zombie")
    assert sim.metric("ggen_mcp_libreoffice_processes") > 10

    assert sim.set_mode("normal").status_code == 200
    wait_for(
        lambda: len([p for p in procs if _alive(p)]) <= 1,
        10,
        "leaked soffice processes to end after switching back to normal (pool of 1 stays)",
    )


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_fork_leak_leaves_zombies_and_orphans(sim: SimProcess) -> None:
    sim.set_mode("fork_leak")
    wait_for(lambda: sim.metric("ggen_mcp_active_forks") > 10, 30, "active forks > 10")
    procs = _children_named(sim, "ggen-mcp-fork")
    # A fork just started to become a zombie is still running, its parent the simulator (seen
    # under load): orphans are told by their parent, zombies by their status.
    zombies = [p for p in procs if p.status() == psutil.STATUS_ZOMBIE]
    orphans = [p for p in procs if p.ppid() != sim.proc.pid]
    assert zombies and all(p.ppid() == sim.proc.pid for p in zombies)  # never reaped
    assert orphans and all(p.status() != psutil.STATUS_ZOMBIE for p in orphans)  # live on


@pytest.mark.sim_max_fds(160)  # the leak opens 60 a second: a small limit is reached soon
def test_fd_leak_really_opens_descriptors(sim: SimProcess) -> None:
    before = psutil.Process(sim.proc.pid).num_fds()
    sim.set_mode("fd_leak")
    wait_for(
        lambda: psutil.Process(sim.proc.pid).num_fds() > 0.8 * 160,
        30,
        "open descriptors above 80% of the 160 limit",
    )
    assert sim.metric("process_max_fds") == 160
    assert sim.metric("process_open_fds") > 0.8 * 160 > before
    wait_for(
        lambda: "Too many open files" in sim.log.read_text(), 20, "'Too many open files' in the log"
    )
    sim.set_mode("normal")
    wait_for(
        lambda: psutil.Process(sim.proc.pid).num_fds() < before + 20, 10, "descriptors released"
    )


def test_memory_leak_grows_resident_memory(sim: SimProcess) -> None:
    rss0 = psutil.Process(sim.proc.pid).memory_info().rss
    sim.set_mode("memory_leak")
    wait_for(
        lambda: psutil.Process(sim.proc.pid).memory_info().rss > rss0 + (100 << 20),
        20,
        "resident memory to grow by 100 MiB",
    )
    assert sim.metric("nodejs_heap_size_used_bytes") > 100 << 20


def test_disk_fill_writes_ggen_mcp_temp_files(sim: SimProcess) -> None:
    sim.set_mode("disk_fill")

    def written() -> list[Path]:
        """The files of 1 MiB or more, once there are 4. The sim writes one file after the
        other and back-dates every other one when it is written: the newest file may still
        be short (under load, at every look), so it is not waited for; the first is whole
        and back-dated once 4 are whole."""
        files = [f for f in sim.temp_dir.glob("ggen-mcp-*") if f.stat().st_size >= 1 << 20]
        return files if len(files) >= 4 else []

    files = wait_for(written, 60, "4 temp files of 1 MiB or more")
    day_ago = time.time() - 86400
    assert any(f.stat().st_mtime < day_ago for f in files), "some files should be over a day old"


def test_crash_exits_the_process(sim: SimProcess) -> None:
    sim.set_mode("crash")
    assert sim.proc.wait(10) == 1
    last = json.loads(sim.log.read_text().splitlines()[-1])
    assert last["level"] == "fatal" and "process exiting" in last["msg"]


def test_port_conflict_leaves_another_process_on_the_port(sim: SimProcess) -> None:
    sim.set_mode("port_conflict")
    assert sim.proc.wait(15) == 1
    assert "EADDRINUSE" in sim.log.read_text()
    holders = [
        c
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == sim.port and c.status == psutil.CONN_LISTEN
    ]
    assert holders and holders[0].pid != sim.proc.pid
    assert psutil.Process(holders[0].pid).name() == "ggen-mcp-old"
    assert holders[0].pid in _tracked(sim)


def test_errors_mode_logs_what_the_runbook_greps(sim: SimProcess) -> None:
    sim.set_mode("errors:database")
    wait_for(lambda: "database connection" in sim.log.read_text(), 15, "database errors logged")
    sim.set_mode("errors:libreoffice")
    wait_for(
        lambda: "Failed to start LibreOffice" in sim.log.read_text(),
        15,
        "LibreOffice errors logged",
    )
    lines = [json.loads(line) for line in sim.log.read_text().splitlines()]
    assert all({"ts", "level", "event", "msg"} <= set(line) for line in lines)


def test_unknown_mode_is_refused_with_the_valid_ones(sim: SimProcess) -> None:
    resp = sim.set_mode("../etc")
    assert resp.status_code == 400
    assert (
        "unknown mode '../etc'" in resp.json()["detail"] and "soffice_leak" in resp.json()["detail"]
    )
