"""The pid registry stops what it recorded, and only that."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil

from runbook_lib.lab import pids


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"])


def test_stop_all_ends_recorded_processes(tmp_path: Path) -> None:
    procs = [sleeper() for _ in range(3)]
    for p in procs:
        pids.record(tmp_path, p.pid, "sleep")
    stopped = pids.stop_all(tmp_path, timeout=5)
    assert sorted(r.pid for r in stopped) == sorted(p.pid for p in procs)
    assert all(p.wait(5) == -15 for p in procs)
    assert pids.records(tmp_path) == []


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    other = sleeper()
    try:
        pids.record(tmp_path, other.pid, "sleep")
        path = tmp_path / f"{other.pid}.json"
        rec = json.loads(path.read_text())
        rec["create_time"] -= 100  # as if the pid had belonged to an earlier process
        rec["boot_s"] -= 100
        path.write_text(json.dumps(rec))
        assert pids.stop_all(tmp_path, timeout=1) == []
        assert psutil.Process(other.pid).is_running()
    finally:
        other.kill()
        other.wait()


def test_a_clock_set_since_the_record_still_stops_the_process(tmp_path: Path, monkeypatch) -> None:
    """The wall clock set a second forward (NTP, a VM's clock corrected): psutil's start time
    of every process moves with the boot time it reads (/proc/stat btime), yet the recorded
    process is the same one and is stopped."""
    proc = sleeper()
    try:
        pids.record(tmp_path, proc.pid, "sleep")
        booted = psutil.boot_time()
        monkeypatch.setattr(psutil._psplatform, "boot_time", lambda: booted + 1.0)
        recorded = json.loads((tmp_path / f"{proc.pid}.json").read_text())["create_time"]
        assert psutil.Process(proc.pid).create_time() > recorded + 0.9  # as psutil now says
        assert [r.pid for r in pids.stop_all(tmp_path, timeout=5)] == [proc.pid]
        assert proc.wait(5) == -15
    finally:
        proc.kill()
        proc.wait()


def test_a_record_written_before_boot_times_were_kept_still_stops_its_process(
    tmp_path: Path,
) -> None:
    proc = sleeper()
    try:
        created = psutil.Process(proc.pid).create_time()
        (tmp_path / f"{proc.pid}.json").write_text(
            json.dumps({"pid": proc.pid, "create_time": created, "name": "sleep"})
        )
        assert [r.pid for r in pids.stop_all(tmp_path, timeout=5)] == [proc.pid]
        assert proc.wait(5) == -15
    finally:
        proc.kill()
        proc.wait()


def test_stop_all_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout.readline() == b"ready\n"
    pids.record(tmp_path, stubborn.pid, "sh")
    pids.stop_all(tmp_path, timeout=0.5)
    assert stubborn.wait(5) == -9
