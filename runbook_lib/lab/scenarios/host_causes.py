"""Incident generators for the causes only the host shows (catalog.py has the rest and the
registry): leaked processes, file descriptors, a filling disk. Registered after catalog.py's,
by the package, so the catalogue keeps its order."""

from __future__ import annotations

import random

import numpy as np

from runbook_lib.lab.scenarios.catalog import (
    CATALOG,
    CauseSpec,
    Extras,
    cause,
    every,
    host_state,
    proc,
)
from runbook_lib.lab.scenarios.model import Timeline


# ------------------------------------------------------------------ process leaks
def _leak(tl: Timeline, rng: random.Random, ex: Extras, gauge: str, name: str, kind: str):
    k = tl.ramp(rng.uniform(3, 10))
    count = max(12, round(rng.randrange(12, 30) * tl.magnitude))
    setattr(tl, gauge, getattr(tl, gauge) + (count - getattr(tl, gauge)) * k)
    procs = [proc(6000, name, age_s=30, cpu_s=0.2)]
    for i in range(count):
        age = rng.uniform(600, 3600)
        if kind == "zombie":
            procs.append(proc(7000 + i, name, status="zombie", age_s=age, cpu_s=0.0, rss=0))
        elif kind == "orphan":
            procs.append(proc(7000 + i, name, ppid=1, age_s=age, cpu_s=rng.uniform(0.5, 5)))
        else:
            procs.append(proc(7000 + i, name, age_s=age, cpu_s=rng.uniform(0.0, 0.05)))
    ex.host = host_state(tl, processes=procs)


for _rb, _gauge, _name in (
    ("libreoffice_leak", "libreoffice", "soffice"),
    ("fork_leak", "forks", "ggen-mcp-fork"),
):
    _alert = (
        "GgenMcpHighLibreOfficeProcessCount"
        if _rb == "libreoffice_leak"
        else "GgenMcpHighActiveForks"
    )
    for _cause, _kind in (
        ("orphaned_processes", "orphan"),
        ("zombie_processes", "zombie"),
        ("hung_processes", "hung"),
    ):

        def _apply(tl, rng, ex, g=_gauge, n=_name, k=_kind):
            _leak(tl, rng, ex, g, n, k)

        CATALOG[(_rb, _cause)] = CauseSpec(_cause, _rb, _alert, _apply)


# ------------------------------------------------------------------ descriptors
@cause("fd_leak", "fd_leak", "GgenMcpFileDescriptorExhaustion")
def fd_leak(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    tl.max_fds[:] = rng.choice([4096, 8192, 16384])
    k = tl.ramp(tl.growth(rng.uniform(20, 45)))
    tl.open_fds = tl.open_fds + (rng.uniform(0.86, 0.97) * tl.max_fds - tl.open_fds) * k
    for t in every(tl, 0.5, (tl.times[-1] - tl.onset) / 60 - 6):
        ex.log(t, "error", "fd", "EMFILE: Too many open files, open '/tmp/ggen-mcp-1.xlsx'")


@cause("fd_leak", "fd_limit_too_low", "GgenMcpFileDescriptorExhaustion")
def fd_limit_too_low(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    limit = rng.choice([256, 512, 1024])
    tl.max_fds[:] = limit
    k = tl.ramp(rng.uniform(1, 3))
    tl.rate = tl.rate * (1 + rng.uniform(1.5, 3) * k)
    busy = np.array([rng.uniform(0.83, 0.95) for _ in tl.times])
    tl.open_fds = np.where(k > 0, busy * limit, 0.3 * limit)


# ------------------------------------------------------------------ disk
def _disk(tl: Timeline, rng: random.Random, ex: Extras, grower: str) -> None:
    k = tl.ramp(tl.growth(rng.uniform(20, 40)))
    tl.disk_used = tl.disk_used + (rng.uniform(0.82, 0.95) - tl.disk_used) * k
    grown = float((tl.disk_used[-1] - tl.disk_used[0]) * tl.disk_size)
    hours = (tl.times[-1] - tl.onset) / 3600
    dirs = {"/var/log/ggen-mcp": 2e9, "/var/lib/prometheus": 6e9, "/tmp": 1e9}
    growth = dict.fromkeys(dirs, 0.0)
    dirs[grower] += grown
    growth[grower] = grown / hours
    old = rng.randrange(200, 2000) if grower == "/tmp" else rng.randrange(0, 3)
    ex.host = host_state(
        tl,
        dirs=dirs,
        dir_growth_bytes_per_h=growth,
        temp_files={
            "count": old + 5,
            "old_count": old,
            "bytes": dirs["/tmp"],
            "old_bytes": dirs["/tmp"] * 0.9 if grower == "/tmp" else 1e6,
        },
    )


for _cause, _dir in (
    ("log_files_growing", "/var/log/ggen-mcp"),
    ("prometheus_data_growing", "/var/lib/prometheus"),
    ("temp_files_not_cleaned", "/tmp"),
):

    def _apply_disk(tl, rng, ex, d=_dir):
        _disk(tl, rng, ex, d)

    CATALOG[("disk_usage", _cause)] = CauseSpec(
        _cause, "disk_usage", "GgenMcpHighDiskUsage", _apply_disk
    )
