"""Real faults: processes named soffice, zombie and orphaned forks, leaked descriptors,
leaked memory, temp files on disk, a busy CPU. Every process started is recorded by pid so
`stop-monitoring.sh` ends exactly these, and each has a bounded lifetime of its own.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil

from runbook_lib.lab import pids

SLEEP = "import sys,time; time.sleep(float(sys.argv[1]))"
# The child forks a grandchild that outlives it (reparented: an orphan) and prints its pid.
ORPHAN = (
    "import os,sys,time\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.setsid(); time.sleep(float(sys.argv[1]))\n"
    "else:\n"
    "    print(pid, flush=True)\n"
)
SOFFICE_ARGS = ("--headless", "--invisible", "--norestore", "--nologo")
LEAK_LIMIT = 16  # leaked processes per kind; > 10 makes the alerts fire


class ProcessFaults:
    """Named helper processes: the LibreOffice pool, and leaked soffice / fork processes."""

    def __init__(self, bin_dir: Path, pid_dir: Path, lifetime_s: float) -> None:
        self.bin_dir, self.pid_dir, self.lifetime = bin_dir, pid_dir, lifetime_s
        self._python = os.path.realpath(sys.executable)
        self.pool: list[subprocess.Popen] = []
        self.leaked: dict[str, list[tuple[int, subprocess.Popen | None]]] = {
            "soffice": [],
            "ggen-mcp-fork": [],
        }
        self._kinds = {"soffice": 0, "ggen-mcp-fork": 0}

    def _exe(self, name: str) -> str:
        link = self.bin_dir / name
        if not link.exists():
            self.bin_dir.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self._python)
        return str(link)

    def spawn(self, name: str, kind: str) -> tuple[int, subprocess.Popen | None]:
        """Start a process named `name`: `hung` (sleeps), `zombie` (exits, never reaped) or
        `orphan` (its parent exits, so it is reparented). Returns the pid that lingers."""
        extra = SOFFICE_ARGS if name == "soffice" else ("--workbook", f"wb-{uuid.uuid4().hex[:8]}")
        code = {"hung": SLEEP, "zombie": "pass", "orphan": ORPHAN}[kind]
        proc = subprocess.Popen(
            [name, "-S", "-c", code, str(self.lifetime), *extra],
            executable=self._exe(name),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if kind == "orphan" else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if kind == "orphan":
            pid = int(proc.stdout.readline())
            proc.wait()
            proc.stdout.close()
            pids.record(self.pid_dir, pid, name)
            return pid, None
        pids.record(self.pid_dir, proc.pid, name)
        return proc.pid, proc

    def keep_pool(self, size: int) -> None:
        """Keep `size` LibreOffice workers running (the healthy steady state)."""
        self.pool = [p for p in self.pool if p.poll() is None]
        while len(self.pool) > size:
            _end(self.pool.pop())
        while len(self.pool) < size:
            self.pool.append(self.spawn("soffice", "hung")[1])

    def leak(self, name: str) -> None:
        """Leak one more `name` process, cycling hung -> orphan -> zombie, up to LEAK_LIMIT."""
        leaked = self.leaked[name]
        if len(leaked) >= LEAK_LIMIT:
            return
        kinds = ("hung", "orphan", "zombie") if name == "soffice" else ("zombie", "orphan")
        kind = kinds[self._kinds[name] % len(kinds)]
        self._kinds[name] += 1
        leaked.append(self.spawn(name, kind))

    def count(self, name: str) -> int:
        """Processes named `name` that we started and that still exist (zombies included)."""
        alive = 0
        tracked = [pid for pid, _ in self.leaked[name]]
        if name == "soffice":
            tracked += [p.pid for p in self.pool]
        for pid in tracked:
            try:
                alive += psutil.Process(pid).name() == name
            except psutil.NoSuchProcess:
                continue
        return alive

    def release(self) -> None:
        """End leaked processes and reap zombies (what a service restart would do)."""
        for leaked in self.leaked.values():
            for pid, proc in leaked:
                if proc is not None:
                    _end(proc)
                else:
                    try:
                        psutil.Process(pid).kill()
                    except psutil.NoSuchProcess:
                        pass
                pids.forget(self.pid_dir, pid)
            leaked.clear()

    def close(self) -> None:
        self.release()
        for proc in self.pool:
            _end(proc)
            pids.forget(self.pid_dir, proc.pid)
        self.pool.clear()


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class DescriptorLeak:
    """Opens real descriptors and never closes them, up to `stop_ratio` of the soft limit."""

    def __init__(self, stop_ratio: float = 0.92) -> None:
        self.fds: list[int] = []
        self.stop_ratio = stop_ratio

    def step(self, n: int) -> bool:
        """Leak up to `n` more; True when the limit is reached (opens now fail)."""
        soft, _ = psutil.Process().rlimit(psutil.RLIMIT_NOFILE)
        room = int(soft * self.stop_ratio) - psutil.Process().num_fds()
        for _ in range(max(0, min(n, room))):
            try:
                self.fds.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                if exc.errno == errno.EMFILE:
                    return True
                raise
        return room <= n

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


class MemoryLeak:
    """Holds on to real, touched memory, up to `cap_bytes`."""

    def __init__(self, cap_bytes: int) -> None:
        self.chunks: list[bytes] = []
        self.cap = cap_bytes

    @property
    def leaked(self) -> int:
        return sum(len(c) for c in self.chunks)

    def step(self, nbytes: int) -> None:
        rss = psutil.Process().memory_info().rss
        nbytes = min(nbytes, self.cap - rss)
        if nbytes > 0:
            self.chunks.append(b"\x01" * nbytes)

    def release(self) -> None:
        self.chunks.clear()


class DiskFill:
    """Writes `ggen-mcp-*` temp files; every other one is back-dated two days."""

    def __init__(self, directory: Path, file_bytes: int = 2 << 20, max_files: int = 60) -> None:
        self.dir, self.file_bytes, self.max_files = directory, file_bytes, max_files
        self.written: list[Path] = []

    def step(self) -> Path | None:
        if len(self.written) >= self.max_files:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"ggen-mcp-{uuid.uuid4().hex[:12]}.xlsx.tmp"
        with open(path, "wb") as fh:
            fh.write(os.urandom(64) * (self.file_bytes // 64))
        if len(self.written) % 2 == 0:
            old = time.time() - 2 * 86400
            os.utime(path, (old, old))
        self.written.append(path)
        return path


class CpuBurn:
    """A thread that keeps one core busy while `active` is set."""

    def __init__(self) -> None:
        self.active = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-burn", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.active.wait()
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass
