"""A directory of the processes we started, so stopping kills exactly those (never by name).

Each record is one JSON file holding the pid and its start time; a pid that was reused by an
unrelated process has a different start time and is left alone. The start time that decides
is the kernel's, counted from boot: psutil's wall-clock start time adds the boot time the
clock gives now (/proc/stat's btime), which moves whenever the clock is set, and a process
whose record then looked a second off was never stopped.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class PidRecord:
    pid: int
    create_time: float  # its start by the wall clock, for people
    name: str
    boot_s: float | None = None  # its start in seconds after boot, which identifies it

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None if it ended or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            if self.boot_s is None:  # recorded before boot_s was kept
                same = abs(proc.create_time() - self.create_time) <= 0.05
            else:
                same = abs(since_boot(proc) - self.boot_s) <= 0.05
            return proc if same else None
        except psutil.NoSuchProcess:
            return None


def since_boot(proc: psutil.Process) -> float:
    """When `proc` started, in seconds after boot, whatever the clock did since."""
    return proc.create_time() - psutil.boot_time()


def record(pid_dir: Path, pid: int, name: str) -> PidRecord | None:
    """Remember `pid` under `pid_dir`; None if it already ended."""
    try:
        proc = psutil.Process(pid)
        created, boot_s = proc.create_time(), since_boot(proc)
    except psutil.NoSuchProcess:
        return None
    rec = PidRecord(pid=pid, create_time=created, name=name, boot_s=round(boot_s, 2))
    pid_dir.mkdir(parents=True, exist_ok=True)
    tmp = pid_dir / f".{pid}.tmp"
    tmp.write_text(json.dumps(asdict(rec)))
    os.replace(tmp, pid_dir / f"{pid}.json")
    return rec


def records(pid_dir: Path) -> list[PidRecord]:
    out = []
    for path in sorted(pid_dir.glob("*.json")) if pid_dir.is_dir() else []:
        try:
            out.append(PidRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError, OSError):
            continue
    return out


def forget(pid_dir: Path, pid: int) -> None:
    (pid_dir / f"{pid}.json").unlink(missing_ok=True)


def stop_all(pid_dir: Path, timeout: float = 10.0) -> list[PidRecord]:
    """SIGTERM every recorded live process, SIGKILL what is left after `timeout`.

    Returns the records whose process was running. Zombies count as ended.
    """
    live = [(rec, rec.process()) for rec in records(pid_dir)]
    live = [(rec, p) for rec, p in live if p is not None and _running(p)]
    for _, proc in live:
        _signal(proc, signal.SIGTERM)
    left = _wait_gone([p for _, p in live], timeout)
    for proc in left:
        _signal(proc, signal.SIGKILL)
    _wait_gone(left, 5.0)
    for rec in records(pid_dir):
        forget(pid_dir, rec.pid)
    return [rec for rec, _ in live]


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process has ended or is a zombie; return those still running."""
    deadline = time.monotonic() + timeout
    left = [p for p in procs if _running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if _running(p)]
    return left


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass
