"""Memory, load and disks of the host, and its listening sockets (the largest files and temp
files are in `files`)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import psutil

from runbook_lib.evidence.host.common import (
    ItemList,
    frame,
    join_errors,
    why,
)

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
        errors.append(f"virtual_memory: {why(exc)}")
    try:
        sw = psutil.swap_memory()
    except (psutil.Error, OSError) as exc:
        errors.append(f"swap_memory: {why(exc)}")
    return MemoryInfo(
        total=vm and vm.total,
        available=vm and vm.available,
        used_percent=vm and vm.percent,
        swap_total=sw and sw.total,
        swap_used=sw and sw.used,
        swap_percent=sw and sw.percent,
        error=join_errors(errors),
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


def load(interval_s: float | None = 0.2) -> LoadInfo:
    """Load averages, logical CPU count and system-wide CPU use measured over `interval_s`
    (the call sleeps that long); with None, CPU use is not measured (`cpu_percent` None), for
    a caller that needs only the load averages and must not wait."""
    errors: list[str] = []
    loads: tuple[float | None, ...] = (None, None, None)
    count = percent = None
    try:
        loads = psutil.getloadavg()
    except (psutil.Error, OSError) as exc:
        errors.append(f"getloadavg: {why(exc)}")
    try:
        count = psutil.cpu_count()
    except (psutil.Error, OSError) as exc:
        errors.append(f"cpu_count: {why(exc)}")
    try:
        percent = None if interval_s is None else psutil.cpu_percent(interval=interval_s)
    except (psutil.Error, OSError) as exc:
        errors.append(f"cpu_percent: {why(exc)}")
    return LoadInfo(*loads, cpu_count=count, cpu_percent=percent, error=join_errors(errors))


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
        return DiskList((), f"disk_partitions: {why(exc)}")
    found = []
    for part in parts:
        try:
            u = psutil.disk_usage(part.mountpoint)
            sizes = (u.total, u.used, u.free, u.percent)
            error = None
        except (psutil.Error, OSError) as exc:
            sizes, error = (None, None, None, None), f"{part.mountpoint}: {why(exc)}"
        found.append(DiskUsage(part.mountpoint, part.device, part.fstype, *sizes, error=error))
    found.sort(key=lambda d: -(d.used_percent if d.used_percent is not None else -1.0))
    return DiskList(tuple(found), None)


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
        return ListenerList((), f"net_connections: {why(exc)}")
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
                error = f"pid {c.pid}: {why(exc)}"
        family = "IPv6" if c.family == socket.AF_INET6 else "IPv4"
        found.append(Listener(c.laddr.ip, c.laddr.port, family, c.pid, name, cmdline, error))
    found.sort(key=lambda x: (x.port, x.ip, x.pid or 0))
    return ListenerList(tuple(found), None)
