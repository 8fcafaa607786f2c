"""Processes and their descriptors, read with psutil: matched by name, zombies, orphans,
hung ones, descriptor counts against the limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import psutil

from runbook_lib.evidence.host.common import (
    BUSY_CPU_SHARE,
    IDLE_CPU_SHARE,
    IDLE_MIN_AGE_S,
    ItemList,
    R,
    join_errors,
    why,
)

# --- processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    """One process as the runbook sees it. Fields that could not be read are None (or "")
    and named in `error`; a zombie's missing cmdline and descriptors are not errors."""

    pid: int
    ppid: int
    name: str
    cmdline: str
    status: str
    create_time: float
    age_s: float
    cpu_seconds: float | None
    rss_bytes: int | None
    num_fds: int | None
    fd_limit: int | None
    username: str | None
    parent_name: str | None
    error: str | None = None
    derived: ClassVar[tuple[str, ...]] = ("is_zombie", "is_orphan", "idle")

    @property
    def is_zombie(self) -> bool:
        return self.status == psutil.STATUS_ZOMBIE

    @property
    def is_orphan(self) -> bool:
        """Reparented to init (ppid 1), whatever init is (systemd, process_api, tini).

        Daemons started by init look the same, which is why `orphans()` takes a match; a
        child subreaper adopting orphans is caught by `orphans(expected_parent=...)`."""
        return self.ppid == 1 and self.pid != 1

    @property
    def idle(self) -> bool:
        """Used under 1% of a core over its life, and older than a minute."""
        return (
            self.cpu_seconds is not None
            and self.age_s > IDLE_MIN_AGE_S
            and self.cpu_seconds < IDLE_CPU_SHARE * self.age_s
        )


@dataclass(frozen=True)
class ProcessList(ItemList[ProcInfo]):
    item_type: ClassVar[type | None] = ProcInfo

    @property
    def pids(self) -> frozenset[int]:
        return frozenset(p.pid for p in self.items)


class _Reader:
    """Reads process attributes one by one, so one denied read does not lose the rest."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.errors = proc, []

    def get(self, what: str, fn: Callable[[], R], default: R | None = None) -> R | None:
        try:
            return fn()
        except psutil.ZombieProcess:
            return default
        except psutil.NoSuchProcess:
            raise
        except (psutil.Error, OSError) as exc:
            self.errors.append(f"{what}: {why(exc)}")
            return default


def _matches(needle: str | None, name: str, cmdline: str) -> bool:
    return needle is None or needle in name.lower() or needle in cmdline.lower()


def _info(proc: psutil.Process, now: float, needle: str | None = None) -> ProcInfo | None:
    """The process's ProcInfo, or None if it does not match `needle` (lowercase).

    Raises NoSuchProcess (not a zombie) when it ended while being read: callers skip it."""
    r = _Reader(proc)
    with proc.oneshot():
        name = r.get("name", proc.name, "") or ""
        cmdline = " ".join(r.get("cmdline", proc.cmdline, []) or [])
        if not _matches(needle, name, cmdline):
            return None
        ppid = r.get("ppid", proc.ppid, 0) or 0
        created = r.get("create_time", proc.create_time, 0.0) or 0.0
        times = r.get("cpu_times", proc.cpu_times)
        mem = r.get("memory_info", proc.memory_info)
        rlimit = r.get("fd_limit", lambda: proc.rlimit(psutil.RLIMIT_NOFILE))
        status = r.get("status", proc.status, "") or ""
        num_fds = r.get("num_fds", proc.num_fds)
        username = r.get("username", proc.username)
    return ProcInfo(
        pid=proc.pid,
        ppid=ppid,
        name=name,
        cmdline=cmdline,
        status=status,
        create_time=created,
        age_s=max(0.0, now - created),
        cpu_seconds=None if times is None else times.user + times.system,
        rss_bytes=None if mem is None else mem.rss,
        num_fds=num_fds,
        fd_limit=None if rlimit is None else rlimit[0],
        username=username,
        parent_name=_name(ppid),
        error=join_errors(r.errors),
    )


def _name(pid: int) -> str | None:
    if pid <= 0:
        return None
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, OSError):
        return None


def processes(match: str | None = None, *, now: float | None = None) -> ProcessList:
    """Processes whose name or command line contains `match` (case-insensitive; None: all).

    `now` (epoch seconds) is what ages are measured against; pass one to ask "how would
    these look in an hour". Processes that end while being read are left out."""
    now = time.time() if now is None else now
    needle = None if match is None else match.lower()
    return _collect(psutil.process_iter(), now, needle)


def named(names: Iterable[str], *, now: float | None = None) -> ProcessList:
    """Processes whose name is one of `names`, in `names`' order, from one pass over the
    process table (`processes` per name read every process's name and command line once
    per name)."""
    now = time.time() if now is None else now
    order = {name: i for i, name in enumerate(names)}
    listed = (p for p in psutil.process_iter(["name"]) if p.info["name"] in order)
    result = _collect(listed, now)
    found = sorted((p for p in result if p.name in order), key=lambda p: order[p.name])
    return ProcessList(tuple(found), result.error)


def _collect(procs: Iterable[psutil.Process], now: float, needle: str | None = None) -> ProcessList:
    """The ProcInfo of each of `procs` that matches `needle`; those that end while being
    read are left out, and a process table that cannot be read is the list's error."""
    found: list[ProcInfo] = []
    try:
        for proc in procs:
            try:
                info = _info(proc, now, needle)
            except psutil.NoSuchProcess:
                continue
            if info is not None:
                found.append(info)
    except (psutil.Error, OSError) as exc:
        return ProcessList(tuple(found), f"process table: {why(exc)}")
    return ProcessList(tuple(found), None)


def _where(result: ProcessList, keep: Callable[[ProcInfo], bool]) -> ProcessList:
    return ProcessList(tuple(p for p in result if keep(p)), result.error)


def zombies(match: str | None = None, now: float | None = None) -> ProcessList:
    """Exited children nobody reaped: their parent leaks them (or is stuck)."""
    return _where(processes(match, now=now), lambda p: p.is_zombie)


def orphans(
    match: str | None, now: float | None = None, *, expected_parent: str | None = None
) -> ProcessList:
    """Matching processes reparented to init (ppid 1) — their parent died without ending
    them. With `expected_parent` (a process name), any matching process whose parent has
    another name counts too, which catches adoption by a child subreaper."""

    def orphaned(p: ProcInfo) -> bool:
        adopted = expected_parent is not None and p.parent_name != expected_parent
        return p.is_orphan or adopted

    return _where(processes(match, now=now), orphaned)


def hung(
    match: str | None,
    min_age_s: float = 300,
    now: float | None = None,
    *,
    sample_s: float = 0.5,
) -> ProcessList:
    """Matching processes that are alive but not working: not zombies, `idle` over their life
    (measured against `now`), at least `min_age_s` old, and using under 10% of a core during
    a `sample_s` real-time sample — so a busy loop is never called hung, whatever `now`."""
    result = processes(match, now=now)
    dead = {psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD}
    candidates = [p for p in result if p.status not in dead and p.idle and p.age_s >= min_age_s]
    if not candidates:
        return ProcessList((), result.error)
    time.sleep(sample_s)
    quiet = [p for p in candidates if _cpu_since(p) < BUSY_CPU_SHARE * sample_s]
    return ProcessList(tuple(quiet), result.error)


def _cpu_since(p: ProcInfo) -> float:
    """CPU seconds `p` used since it was read; infinite if it ended or the pid was reused."""
    try:
        proc = psutil.Process(p.pid)
        if abs(proc.create_time() - p.create_time) > 0.05:
            return float("inf")
        times = proc.cpu_times()
    except (psutil.Error, OSError):
        return float("inf")
    return times.user + times.system - (p.cpu_seconds or 0.0)


# --- descriptors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FdUsage:
    """Open descriptors of one process against its own soft RLIMIT_NOFILE."""

    pid: int
    name: str
    cmdline: str
    num_fds: int | None
    fd_limit: int | None
    ratio: float | None
    error: str | None = None


@dataclass(frozen=True)
class DescriptorList(ItemList[FdUsage]):
    item_type: ClassVar[type | None] = FdUsage


def _fd_usage(p: ProcInfo) -> FdUsage:
    ratio = None
    if p.num_fds is not None and p.fd_limit is not None and p.fd_limit > 0:
        ratio = p.num_fds / p.fd_limit
    return FdUsage(p.pid, p.name, p.cmdline, p.num_fds, p.fd_limit, ratio, p.error)


def descriptors(match: str | None = None, pid: int | None = None) -> DescriptorList:
    """Per process, open descriptors vs its own soft limit, closest to the limit first
    (processes whose count or limit is unreadable last). `pid` narrows to one process."""
    if pid is None:
        result = processes(match)
    else:
        try:
            info = _info(psutil.Process(pid), time.time(), None if match is None else match.lower())
        except (psutil.Error, OSError) as exc:
            return DescriptorList((), f"pid {pid}: {why(exc)}")
        result = ProcessList(() if info is None else (info,), None)
    usage = sorted(
        (_fd_usage(p) for p in result),
        key=lambda u: (u.ratio is None, -(u.ratio or 0.0), u.pid),
    )
    return DescriptorList(tuple(usage), result.error)
