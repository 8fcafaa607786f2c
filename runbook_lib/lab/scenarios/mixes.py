"""Incidents in which a second cause's signal moves with the true cause's.

A differential diagnosis earns its keep here: in each of these, the rule of another cause
sees its own sign (a busy CPU, a growing cache, a few orphans, a flapping health check)
although that cause explains little of the symptom. Two scenarios per runbook family, and
some in which two causes truly contribute (`causes` then names both).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runbook_lib.lab.scenarios.catalog import CATALOG, Extras, every, proc
from runbook_lib.lab.scenarios.model import ErrorPart, Timeline


@dataclass(frozen=True)
class Mix:
    name: str
    runbook: str
    causes: tuple[str, ...]  # the true cause(s), the one that explains most first
    follower: str  # what moves along, in words
    apply: Callable[[Timeline, random.Random, Extras], None]


MIXES: dict[str, Mix] = {}


def mix(runbook: str, causes: tuple[str, ...], follower: str):
    def register(fn: Callable[[Timeline, random.Random, Extras], None]):
        name = fn.__name__.replace("_", "-")
        MIXES[name] = Mix(name, runbook, causes, follower, fn)
        return fn

    return register


def _true(tl: Timeline, rng: random.Random, ex: Extras, runbook: str, cause: str) -> None:
    CATALOG[(runbook, cause)].apply(tl, rng, ex)


# ------------------------------------------------------------------ memory
@mix("memory", ("cache_too_large",), "resident memory grows steadily, like a leak")
def cache_grows_like_a_leak(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(tl.growth(rng.uniform(65, 80)))
    tl.cache_memory = 0.05 * tl.memory_limit + rng.uniform(0.5, 0.56) * tl.memory_limit * k
    tl.cache_size = tl.cache_size + (rng.uniform(1500, 1900) - tl.cache_size) * k
    tl.rss = 0.32 * tl.memory_limit + tl.cache_memory


@mix("memory", ("memory_leak",), "LibreOffice processes pile up meanwhile")
def leak_while_libreoffice_spawns(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    """Over ten processes (their rule's sign), holding together about a tenth of what the
    leak added: a minor part, not a second cause."""
    minutes = tl.growth(rng.uniform(45, 70))
    k = tl.ramp(minutes)
    leaked = rng.uniform(0.78, 0.81) * tl.memory_limit - tl.rss[0]
    tl.rss = tl.rss + leaked * k
    tl.heap = tl.heap + tl.rss * 0.5 * k
    count = rng.randrange(13, 16)
    size = min(rng.uniform(40e6, 48e6), 0.12 * leaked / (count - 2))
    spawn = tl.ramp(min(15.0, minutes), delay_min=max(0.0, minutes - 15))
    running = np.round(2 + (count - 2) * spawn)  # whole processes; memory steps with each
    tl.libreoffice = running
    tl.rss = tl.rss + (running - 2) * size
    procs = [proc(5000 + i, "soffice", rss=size, cmd="soffice --headless") for i in range(count)]
    ex.host = {"taken_at": float(tl.times[-1]), "service_pid": 4242, "processes": procs}


@mix("memory", ("cache_too_large", "memory_leak"), "both grow: a cache and a leak")
def leak_and_cache_together(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    minutes = tl.growth(rng.uniform(50, 70))
    k = tl.ramp(minutes)
    tl.cache_memory = 0.04 * tl.memory_limit + rng.uniform(0.37, 0.4) * tl.memory_limit * k
    tl.cache_size = tl.cache_size + (rng.uniform(2500, 4000) - tl.cache_size) * k
    leak = rng.uniform(0.24, 0.28) * tl.memory_limit * tl.ramp(minutes + 20)  # still leaking
    tl.heap = tl.heap + leak
    tl.rss = 0.3 * tl.memory_limit + tl.cache_memory + leak


# ------------------------------------------------------------------ latency
@mix("high_latency", ("slow_database_queries",), "the CPU gets busy too")
def database_slow_cpu_busy(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "high_latency", "slow_database_queries")
    tl.cpu = tl.cpu + (rng.uniform(0.95, 1.3) - tl.cpu) * tl.ramp(rng.uniform(1, 3))


@mix("high_latency", ("libreoffice_bottleneck",), "the cache churns without slowing others")
def libreoffice_slow_cache_churns(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "high_latency", "libreoffice_bottleneck")
    k = tl.ramp(rng.uniform(1, 3))
    tl.hit = tl.hit - (tl.hit - rng.uniform(0.1, 0.25)) * k
    tl.evict_per_miss = tl.evict_per_miss + 0.9 * k


@mix("high_latency", ("slow_database_queries", "libreoffice_bottleneck"), "two stages slow")
def database_and_libreoffice_slow(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "high_latency", "slow_database_queries")
    _true(tl, rng, ex, "high_latency", "libreoffice_bottleneck")


# ------------------------------------------------------------------ errors
@mix("high_error_rate", ("third_party_api",), "the database's health check flaps")
def third_party_database_flaps(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "high_error_rate", "third_party_api")
    flap = (((tl.times - tl.onset) // 120) % 2 == 1) & tl.after(0)
    tl.health["database"] = np.where(flap, 0.0, 1.0)
    for t in every(tl, 0.25, 1):
        ex.log(t, "error", "db", "pool: connect ECONNREFUSED 127.0.0.1:5432, retrying")


@mix("high_error_rate", ("database_connection",), "a few template calls fail upstream")
def database_with_upstream_noise(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "high_error_rate", "database_connection")
    k = tl.ramp(rng.uniform(1, 3))
    tl.errors.append(ErrorPart(rng.uniform(0.01, 0.02) * k, {"unknown": 1}, ("render_template",)))
    tl.health["external_api"] = 1 - (k > 0.5)


# ------------------------------------------------------------------ cache
@mix("cache_hit_rate", ("cache_too_small",), "some entries expire as well")
def too_small_some_expire(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "cache_hit_rate", "cache_too_small")
    for i, t in enumerate(every(tl, 0.5)):
        ex.log(t, "info", "cache", f"cache evict workbook=wb-{i % 40} key=wb-{i % 40} reason=ttl")


@mix("cache_hit_rate", ("ttl_too_short",), "the cache fills up now and then")
def ttl_short_sometimes_full(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "cache_hit_rate", "ttl_too_short")
    for i, t in enumerate(every(tl, 0.8)):
        ex.log(t, "info", "cache", f"cache evict workbook=wb-{i % 90} key=k{i} reason=capacity")


# ------------------------------------------------------------------ process leaks
def _extra_procs(ex: Extras, name: str, kind: str, n: int) -> None:
    """`n` processes of another kind, kept a minor part (under a fifth) of the processes."""
    n = min(n, max(3, int(0.15 * len(ex.host["processes"]))))
    for i in range(n):
        if kind == "orphan":
            p = proc(9000 + i, name, ppid=1, age_s=900, cpu_s=2.0)
        else:
            p = proc(9000 + i, name, status="zombie", age_s=900, cpu_s=0.0, rss=0)
        ex.host["processes"].append(p)


for _rb, _name in (("libreoffice_leak", "soffice"), ("fork_leak", "ggen-mcp-fork")):

    def _zombies(tl, rng, ex, rb=_rb, name=_name):
        _true(tl, rng, ex, rb, "zombie_processes")
        _extra_procs(ex, name, "orphan", rng.randrange(3, 5))

    def _hung(tl, rng, ex, rb=_rb, name=_name):
        _true(tl, rng, ex, rb, "hung_processes")
        _extra_procs(ex, name, "zombie", rng.randrange(3, 5))

    _short = _rb.split("_")[0]
    _zombies.__name__ = f"{_short}_zombies_with_orphans"
    _hung.__name__ = f"{_short}_hung_with_zombies"
    mix(_rb, ("zombie_processes",), "a few processes are orphaned too")(_zombies)
    mix(_rb, ("hung_processes",), "a few processes are zombies too")(_hung)


# ------------------------------------------------------------------ descriptors
@mix("fd_leak", ("fd_leak",), "the descriptor limit is low as well")
def fd_leak_on_a_low_limit(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "fd_leak", "fd_leak")
    limit = rng.choice([1024, 2048])
    tl.open_fds = tl.open_fds * limit / tl.max_fds[0]
    tl.open_fds = np.maximum(tl.open_fds, 100.0)
    tl.max_fds[:] = limit


@mix("fd_leak", ("fd_limit_too_low",), "descriptors drift up slowly")
def low_limit_slow_drift(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "fd_leak", "fd_limit_too_low")
    hours = (tl.times - tl.times[0]) / 3600
    tl.open_fds = np.minimum(tl.open_fds + tl.max_fds * 0.03 * hours, tl.max_fds * 0.99)


# ------------------------------------------------------------------ disk
def _also_grows(ex: Extras, path: str, share: float) -> None:
    growth = ex.host["dir_growth_bytes_per_h"]
    growth[path] = max(growth.values()) * share
    ex.host["dirs"][path] += growth[path]


@mix("disk_usage", ("log_files_growing",), "Prometheus' data grows too")
def logs_grow_prometheus_too(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "disk_usage", "log_files_growing")
    _also_grows(ex, "/var/lib/prometheus", rng.uniform(0.25, 0.35))


@mix("disk_usage", ("temp_files_not_cleaned",), "the logs grow too")
def temp_files_logs_too(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "disk_usage", "temp_files_not_cleaned")
    _also_grows(ex, "/var/log/ggen-mcp", rng.uniform(0.25, 0.35))


# ------------------------------------------------------------------ service down
@mix("service_down", ("process_crashed",), "memory was high before the crash")
def crash_with_high_memory(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    tl.rss = tl.rss + (rng.uniform(0.8, 0.86) * tl.memory_limit - tl.rss) * tl.ramp(5, -10)
    _true(tl, rng, ex, "service_down", "process_crashed")


@mix("service_down", ("oom_killed",), "a fatal line in the log")
def oom_with_a_fatal_line(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _true(tl, rng, ex, "service_down", "oom_killed")
    down = tl.times[~tl.up][0]
    ex.log(down - 5, "fatal", "crash", "FATAL ERROR: Reached heap limit Allocation failed")
