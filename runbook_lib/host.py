"""Host checks for the runbook: processes, descriptors, memory, load, disks, temp files,
listeners and the kernel's OOM log, read with psutil.

No public function raises for what it could not read (access denied, a process that ended,
a missing /proc entry, an unreadable kernel log): results carry `error` naming the source and
the reason, so a notebook cell shows the gap instead of dying half-way through an incident.
Every result has `to_frame()` so a notebook can display it.
"""

from __future__ import annotations

import fnmatch
import heapq
import os
import re
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd
import psutil

T = TypeVar("T")
R = TypeVar("R")

IDLE_MIN_AGE_S = 60.0
IDLE_CPU_SHARE = 0.01  # lifetime CPU below 1% of wall time: the process mostly waits
BUSY_CPU_SHARE = 0.10  # more than 10% of a core during the sample: working, not hung
KERN_LOG = Path("/var/log/kern.log")
KERN_LOG_TAIL_BYTES = 16 << 20
OOM_SOURCES = ("dmesg", "kmsg", "kern.log")
OOM_RE = re.compile(r"out of memory|oom-kill|killed process", re.IGNORECASE)


def frame(items: Iterable[Any], item_type: type | None = None) -> pd.DataFrame:
    """A DataFrame of dataclass items, with their `derived` properties as extra columns.

    `item_type` gives the columns when `items` is empty, so an empty result still shows
    what would have been there."""
    rows = list(items)
    cls = type(rows[0]) if rows else item_type
    if cls is None:
        return pd.DataFrame()
    names = [f.name for f in fields(cls)] + list(getattr(cls, "derived", ()))
    return pd.DataFrame([{n: getattr(r, n) for n in names} for r in rows], columns=names)


@dataclass(frozen=True)
class ItemList(Generic[T]):
    """A list-like result: the items found, and what could not be read at all."""

    items: tuple[T, ...] = ()
    error: str | None = None
    item_type: ClassVar[type | None] = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    def to_frame(self) -> pd.DataFrame:
        return frame(self.items, self.item_type)


def _why(exc: BaseException) -> str:
    """A short reason for a failed read, for the `error` fields."""
    if isinstance(exc, psutil.AccessDenied):
        return "access denied"
    if isinstance(exc, psutil.ZombieProcess):
        return "process is a zombie"
    if isinstance(exc, psutil.NoSuchProcess):
        return "process ended"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"timed out after {exc.timeout:g}s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _join(errors: Sequence[str]) -> str | None:
    return "; ".join(errors) if errors else None


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
            self.errors.append(f"{what}: {_why(exc)}")
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
        error=_join(r.errors),
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
    found: list[ProcInfo] = []
    try:
        for proc in psutil.process_iter():
            try:
                info = _info(proc, now, needle)
            except psutil.NoSuchProcess:
                continue
            if info is not None:
                found.append(info)
    except (psutil.Error, OSError) as exc:
        return ProcessList(tuple(found), f"process table: {_why(exc)}")
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
            return DescriptorList((), f"pid {pid}: {_why(exc)}")
        result = ProcessList(() if info is None else (info,), None)
    usage = sorted(
        (_fd_usage(p) for p in result),
        key=lambda u: (u.ratio is None, -(u.ratio or 0.0), u.pid),
    )
    return DescriptorList(tuple(usage), result.error)


# --- memory, load, disks --------------------------------------------------------------------


class _Single:
    def to_frame(self) -> pd.DataFrame:
        return frame([self])


@dataclass(frozen=True)
class MemoryInfo(_Single):
    """RAM and swap. used_percent is psutil's (total - available) / total."""

    total: int | None
    available: int | None
    used_percent: float | None
    swap_total: int | None
    swap_used: int | None
    swap_percent: float | None
    error: str | None = None


def memory() -> MemoryInfo:
    """RAM and swap use; what could not be read is None and named in `error`."""
    errors: list[str] = []
    vm = sw = None
    try:
        vm = psutil.virtual_memory()
    except (psutil.Error, OSError) as exc:
        errors.append(f"virtual_memory: {_why(exc)}")
    try:
        sw = psutil.swap_memory()
    except (psutil.Error, OSError) as exc:
        errors.append(f"swap_memory: {_why(exc)}")
    return MemoryInfo(
        total=vm and vm.total,
        available=vm and vm.available,
        used_percent=vm and vm.percent,
        swap_total=sw and sw.total,
        swap_used=sw and sw.used,
        swap_percent=sw and sw.percent,
        error=_join(errors),
    )


@dataclass(frozen=True)
class LoadInfo(_Single):
    """Load averages against the CPU count; `saturated` when more runnable tasks than CPUs."""

    load1: float | None
    load5: float | None
    load15: float | None
    cpu_count: int | None
    cpu_percent: float | None
    error: str | None = None
    derived: ClassVar[tuple[str, ...]] = ("load_per_cpu", "saturated")

    @property
    def load_per_cpu(self) -> float | None:
        if self.load1 is None or not self.cpu_count:
            return None
        return self.load1 / self.cpu_count

    @property
    def saturated(self) -> bool:
        return self.load1 is not None and bool(self.cpu_count) and self.load1 > self.cpu_count


def load(interval_s: float = 0.2) -> LoadInfo:
    """Load averages, logical CPU count and system-wide CPU use measured over `interval_s`."""
    errors: list[str] = []
    loads: tuple[float | None, ...] = (None, None, None)
    count = percent = None
    try:
        loads = psutil.getloadavg()
    except (psutil.Error, OSError) as exc:
        errors.append(f"getloadavg: {_why(exc)}")
    try:
        count = psutil.cpu_count()
    except (psutil.Error, OSError) as exc:
        errors.append(f"cpu_count: {_why(exc)}")
    try:
        percent = psutil.cpu_percent(interval=interval_s)
    except (psutil.Error, OSError) as exc:
        errors.append(f"cpu_percent: {_why(exc)}")
    return LoadInfo(*loads, cpu_count=count, cpu_percent=percent, error=_join(errors))


@dataclass(frozen=True)
class DiskUsage:
    """One mounted filesystem. used_percent is df's Use%: used / (used + free to non-root)."""

    mountpoint: str
    device: str
    fstype: str
    total: int | None
    used: int | None
    free: int | None
    used_percent: float | None
    error: str | None = None


@dataclass(frozen=True)
class DiskList(ItemList[DiskUsage]):
    item_type: ClassVar[type | None] = DiskUsage


def disks() -> DiskList:
    """Physical filesystems (psutil's all=False skips /proc, tmpfs and friends), fullest first."""
    try:
        parts = psutil.disk_partitions(all=False)
    except (psutil.Error, OSError) as exc:
        return DiskList((), f"disk_partitions: {_why(exc)}")
    found = []
    for part in parts:
        try:
            u = psutil.disk_usage(part.mountpoint)
            sizes = (u.total, u.used, u.free, u.percent)
            error = None
        except (psutil.Error, OSError) as exc:
            sizes, error = (None, None, None, None), f"{part.mountpoint}: {_why(exc)}"
        found.append(DiskUsage(part.mountpoint, part.device, part.fstype, *sizes, error=error))
    found.sort(key=lambda d: -(d.used_percent if d.used_percent is not None else -1.0))
    return DiskList(tuple(found), None)


# --- largest directories and files ----------------------------------------------------------


@dataclass(frozen=True)
class SizeEntry:
    """A directory (bytes of the regular files under it) or one regular file."""

    path: str
    kind: str  # "dir" or "file"
    size_bytes: int
    files: int


@dataclass(frozen=True)
class LargestResult:
    """Largest immediate subdirectories and largest files, like `du -d 1` plus `find -size`.

    When `truncated`, the scan stopped at max_entries and sizes are lower bounds."""

    dirs: tuple[SizeEntry, ...]
    files: tuple[SizeEntry, ...]
    scanned: int
    truncated: bool
    skipped: tuple[str, ...]
    error: str | None = None

    def to_frame(self) -> pd.DataFrame:
        return frame(self.dirs + self.files, SizeEntry)


class _Scan:
    """A bounded walk that never follows symlinks and keeps only the `top` largest files."""

    def __init__(self, top: int, min_file_bytes: int, max_entries: int, dev: int | None):
        self.top, self.min_file, self.budget, self.dev = top, min_file_bytes, max_entries, dev
        self.scanned, self.truncated = 0, False
        self.skipped: list[str] = []
        self.files: list[tuple[int, str]] = []  # a min-heap of (size, path)

    def entries(self, directory: str) -> list[os.DirEntry]:
        try:
            with os.scandir(directory) as it:
                return list(it)
        except OSError as exc:
            self.skipped.append(f"{directory}: {_why(exc)}")
            return []

    def visit(self, entry: os.DirEntry) -> tuple[str, int]:
        """("dir" | "file" | "", size) of one entry; counts it against the budget."""
        if self.scanned >= self.budget:
            self.truncated = True
            return "", 0
        self.scanned += 1
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self.skipped.append(f"{entry.path}: {_why(exc)}")
            return "", 0
        if stat.S_ISREG(st.st_mode):
            self.add_file(entry.path, st.st_size)
            return "file", st.st_size
        if stat.S_ISDIR(st.st_mode) and (self.dev is None or st.st_dev == self.dev):
            return "dir", 0
        return "", 0

    def add_file(self, path: str, size: int) -> None:
        if size < self.min_file or self.top <= 0:
            return
        item = (size, path)
        if len(self.files) < self.top:
            heapq.heappush(self.files, item)
        elif item > self.files[0]:
            heapq.heapreplace(self.files, item)

    def tree(self, directory: str) -> tuple[int, int]:
        """(bytes, regular files) under `directory`."""
        total = count = 0
        stack = [directory]
        while stack and not self.truncated:
            for entry in self.entries(stack.pop()):
                kind, size = self.visit(entry)
                if kind == "file":
                    total, count = total + size, count + 1
                elif kind == "dir":
                    stack.append(entry.path)
        return total, count


def largest(
    paths: Sequence[str | Path],
    *,
    top: int = 10,
    min_file_bytes: int = 0,
    max_entries: int = 200_000,
    same_filesystem: bool = True,
) -> LargestResult:
    """Where the space went under `paths`: the `top` largest immediate subdirectories (recursive
    size of their regular files, apparent size) and the `top` largest files at any depth.

    Symlinks are never followed; with `same_filesystem` (like `du -x`), mounts below a path
    are not entered, so scanning "/" skips /proc and other disks. Unreadable paths are
    listed in `skipped` and `error`; the scan stops after `max_entries` entries."""
    dirs: list[SizeEntry] = []
    scan = _Scan(top, min_file_bytes, max_entries, None)
    for raw in paths:
        root = os.fspath(raw)
        try:
            st = os.lstat(root)
        except OSError as exc:
            scan.skipped.append(f"{root}: {_why(exc)}")
            continue
        if stat.S_ISREG(st.st_mode):
            scan.scanned += 1
            scan.add_file(root, st.st_size)
            continue
        if not stat.S_ISDIR(st.st_mode):
            scan.skipped.append(f"{root}: not a directory or regular file")
            continue
        scan.dev = st.st_dev if same_filesystem else None
        for entry in scan.entries(root):
            kind, size = scan.visit(entry)
            if kind == "dir":
                total, count = scan.tree(entry.path)
                dirs.append(SizeEntry(entry.path, "dir", total, count))
            if scan.truncated:
                break
    dirs.sort(key=lambda d: (-d.size_bytes, d.path))
    files = [SizeEntry(p, "file", s, 1) for s, p in sorted(scan.files, key=lambda f: (-f[0], f[1]))]
    return LargestResult(
        dirs=tuple(dirs[: max(top, 0)]),
        files=tuple(files),
        scanned=scan.scanned,
        truncated=scan.truncated,
        skipped=tuple(scan.skipped),
        error=_skipped_error(scan.skipped),
    )


def _skipped_error(skipped: Sequence[str], show: int = 5) -> str | None:
    if not skipped:
        return None
    more = f" (+{len(skipped) - show} more)" if len(skipped) > show else ""
    return f"unreadable: {'; '.join(skipped[:show])}{more}"


# --- temp files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TempFile:
    path: str
    size_bytes: int
    mtime: float
    age_s: float
    old: bool


@dataclass(frozen=True)
class TempFiles:
    """Regular files directly in `directory` named like `pattern`, oldest first; `old` ones
    are what `find DIR -maxdepth 1 -name PATTERN -mmin +older_than_s/60` would delete."""

    directory: str
    pattern: str
    older_than_s: float
    items: tuple[TempFile, ...]
    error: str | None = None

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.items)

    @property
    def old_count(self) -> int:
        return sum(f.old for f in self.items)

    @property
    def old_bytes(self) -> int:
        return sum(f.size_bytes for f in self.items if f.old)

    def to_frame(self) -> pd.DataFrame:
        return frame(self.items, TempFile)


def temp_files(
    directory: str | Path,
    pattern: str = "ggen-mcp-*",
    older_than_s: float = 86400,
    now: float | None = None,
) -> TempFiles:
    """The service's leftover temp files and how many are older than `older_than_s` (by mtime,
    as `find -mtime` judges). Only the top level of `directory` is read: that is where the
    service writes them, and /tmp can be deep."""
    now = time.time() if now is None else now
    found: list[TempFile] = []
    errors: list[str] = []
    try:
        with os.scandir(directory) as it:
            entries = [e for e in it if fnmatch.fnmatchcase(e.name, pattern)]
    except OSError as exc:
        entries, errors = [], [f"{directory}: {_why(exc)}"]
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            errors.append(f"{entry.path}: {_why(exc)}")
            continue
        if stat.S_ISREG(st.st_mode):
            age = now - st.st_mtime
            found.append(TempFile(entry.path, st.st_size, st.st_mtime, age, age > older_than_s))
    found.sort(key=lambda f: (f.mtime, f.path))
    return TempFiles(str(directory), pattern, older_than_s, tuple(found), _join(errors))


# --- listening sockets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket and the process holding it (the answer to EADDRINUSE)."""

    ip: str
    port: int
    family: str
    pid: int | None
    name: str | None
    cmdline: str | None
    error: str | None = None


@dataclass(frozen=True)
class ListenerList(ItemList[Listener]):
    item_type: ClassVar[type | None] = Listener


def listeners(port: int | None = None) -> ListenerList:
    """Listening TCP sockets (all, or on `port`), with the owning process. Without root, other
    users' sockets have no pid; that is named in the item's `error`."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError) as exc:
        return ListenerList((), f"net_connections: {_why(exc)}")
    found = []
    for c in conns:
        if (
            c.status != psutil.CONN_LISTEN
            or not c.laddr
            or (port is not None and c.laddr.port != port)
        ):
            continue
        name = cmdline = error = None
        if c.pid is None:
            error = "owning process not visible (needs root)"
        else:
            try:
                proc = psutil.Process(c.pid)
                name, cmdline = proc.name(), " ".join(proc.cmdline())
            except (psutil.Error, OSError) as exc:
                error = f"pid {c.pid}: {_why(exc)}"
        family = "IPv6" if c.family == socket.AF_INET6 else "IPv4"
        found.append(Listener(c.laddr.ip, c.laddr.port, family, c.pid, name, cmdline, error))
    found.sort(key=lambda x: (x.port, x.ip, x.pid or 0))
    return ListenerList(tuple(found), None)


# --- kernel log: OOM kills ------------------------------------------------------------------


@dataclass(frozen=True)
class OomLine:
    time: float | None  # epoch seconds; None when the source line carries no readable time
    text: str
    source: str


@dataclass(frozen=True)
class OomEvidence:
    """OOM lines from the first kernel log source that could be read.

    `scanned` counts all kernel log lines read (0 with an error); `tried` says why earlier
    sources failed; `error` is set only when no source could be read."""

    events: tuple[OomLine, ...]
    source: str | None
    scanned: int
    tried: tuple[str, ...]
    error: str | None = None

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(e.text for e in self.events)

    def to_frame(self) -> pd.DataFrame:
        return frame(self.events, OomLine)


class _Unreadable(Exception):
    pass


def _iso_time(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace(",", ".")).timestamp()
    except ValueError:
        return None


def _read_dmesg(timeout_s: float) -> list[tuple[float | None, str]]:
    try:
        done = subprocess.run(
            ["dmesg", "--time-format", "iso"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unreadable(_why(exc)) from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip() or "no message"
        raise _Unreadable(f"exit {done.returncode}: {err}")
    out = []
    for line in done.stdout.decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        when = _iso_time(stamp)
        out.append((when, text) if when is not None else (None, line))
    return out


def _read_kmsg(timeout_s: float, path: str = "/dev/kmsg") -> list[tuple[float | None, str]]:
    """Records of /dev/kmsg ("prio,seq,usec,flags;text"), read without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unreadable(_why(exc)) from exc
    try:
        boot = psutil.boot_time()
        out: list[tuple[float | None, str]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                record = os.read(fd, 16384)
            except BlockingIOError:
                break  # the end of the buffer
            except BrokenPipeError:
                continue  # records were overwritten while reading; go on with the next
            except OSError as exc:
                raise _Unreadable(_why(exc)) from exc
            if not record:
                break
            head, _, text = record.decode(errors="replace").partition(";")
            parts = head.split(",")
            when = boot + int(parts[2]) / 1e6 if len(parts) > 2 and parts[2].isdigit() else None
            out.append((when, text.split("\n", 1)[0]))
        return out
    finally:
        os.close(fd)


_SYSLOG_RE = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (.*)$")


def _syslog_time(stamp: str) -> float | None:
    """A traditional syslog stamp has no year: take this year, or last year if that is ahead."""
    now = datetime.now()
    try:
        when = datetime.strptime(f"{now.year} {stamp}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None
    if when.timestamp() > now.timestamp() + 86400:
        when = when.replace(year=now.year - 1)
    return when.timestamp()


def _read_kern_log(path: Path) -> list[tuple[float | None, str]]:
    """The last KERN_LOG_TAIL_BYTES of a syslog file; refuses non-regular files (a FIFO
    would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unreadable(f"{path}: {_why(exc)}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unreadable(f"{path}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            fh.seek(max(0, st.st_size - KERN_LOG_TAIL_BYTES))
            data = fh.read(KERN_LOG_TAIL_BYTES)
    except OSError as exc:
        raise _Unreadable(f"{path}: {_why(exc)}") from exc
    finally:
        os.close(fd)
    out = []
    for line in data.decode(errors="replace").splitlines():
        stamp, _, rest = line.partition(" ")
        when = _iso_time(stamp)
        if when is None and (m := _SYSLOG_RE.match(line)):
            when, rest = _syslog_time(m.group(1)), m.group(2)
        out.append((when, rest if when is not None else line))
    return out


def oom_events(
    since: float | None = None,
    *,
    sources: Sequence[str] = OOM_SOURCES,
    kern_log: str | Path = KERN_LOG,
    timeout_s: float = 5.0,
) -> OomEvidence:
    """Kernel OOM lines (/out of memory|oom-kill|Killed process/i) at or after `since` (epoch
    seconds; lines without a readable time are then left out).

    Sources are tried in order until one reads: `dmesg --time-format iso`, /dev/kmsg (read
    non-blocking) and `kern_log`. dmesg is bounded by `timeout_s`; nothing blocks."""
    readers: dict[str, Callable[[], list[tuple[float | None, str]]]] = {
        "dmesg": lambda: _read_dmesg(timeout_s),
        "kmsg": lambda: _read_kmsg(timeout_s),
        "kern.log": lambda: _read_kern_log(Path(kern_log)),
    }
    tried: list[str] = []
    for source in sources:
        reader = readers.get(source)
        if reader is None:
            tried.append(f"{source}: unknown source (known: {', '.join(readers)})")
            continue
        try:
            lines = reader()
        except _Unreadable as exc:
            tried.append(f"{source}: {exc}")
            continue
        events = tuple(
            OomLine(when, text.strip(), source)
            for when, text in lines
            if OOM_RE.search(text) and (since is None or (when is not None and when >= since))
        )
        return OomEvidence(events, source, len(lines), tuple(tried), None)
    return OomEvidence((), None, 0, tuple(tried), f"kernel log not readable: {_join(tried)}")
