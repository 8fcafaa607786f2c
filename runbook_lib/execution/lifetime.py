"""Processes that end with their parent: a worker with the server, a zygote with its worker,
a kernel with its zygote. Linux kills the child when the parent exits (PR_SET_PDEATHSIG), so
a `kill -9` of the server leaves no orphaned worker or kernel behind."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the pool's sweep on restart still cleans up
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


MARK = "RUNBOOK_RUN_MARK"  # environment variable carried by every process a run started


def sweep(mark_prefix: str) -> list[int]:
    """Kill every process whose environment carries a mark starting with `mark_prefix`."""
    import psutil

    killed: list[psutil.Process] = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            mark = proc.environ().get(MARK, "")
        except (psutil.Error, OSError):
            continue
        if mark.startswith(mark_prefix):
            try:
                proc.kill()
                killed.append(proc)
            except psutil.Error:
                pass
    psutil.wait_procs(killed, timeout=5)
    return [p.pid for p in killed]


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid`, if it still exists."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
