"""One incident generator per cause id of docs/causes.md, plus a healthy baseline.

Each takes a Timeline (already holding healthy traffic) and a seeded random source, and
changes what that cause changes from the onset on, with magnitude and timing drawn from the
seed, so a cause is not one fixed picture. It also returns the log lines and, for causes
that only the host can show, the host snapshot a responder would have seen.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from runbook_lib.lab.scenarios.model import ErrorPart, Timeline
from runbook_lib.lab.sim.modes import DB_TOOLS, LIBREOFFICE_TOOLS, TOOLS


@dataclass
class Extras:
    """What a cause adds beside metrics: log lines and host state."""

    logs: list[tuple[float, str, str, str, dict]] = field(default_factory=list)
    host: dict | None = None
    error_family: str = "generic"

    def log(self, t: float, level: str, event: str, msg: str, **fields: object) -> None:
        self.logs.append((float(t), level, event, msg, fields))


Apply = Callable[[Timeline, random.Random, Extras], None]


@dataclass(frozen=True)
class CauseSpec:
    cause: str
    runbook: str
    alert: str
    apply: Apply


CATALOG: dict[tuple[str, str], CauseSpec] = {}


def cause(runbook: str, cause_id: str, alert: str) -> Callable[[Apply], Apply]:
    def register(fn: Apply) -> Apply:
        CATALOG[(runbook, cause_id)] = CauseSpec(cause_id, runbook, alert, fn)
        return fn

    return register


def every(tl: Timeline, minutes: float, start_min: float = 0.0) -> np.ndarray:
    """Times from onset + start_min, every `minutes`, up to the end of the timeline."""
    t0 = tl.onset + start_min * 60
    return np.arange(t0, tl.times[-1], minutes * 60)


def host_state(tl: Timeline, **parts: object) -> dict:
    return {"taken_at": float(tl.times[-1]), "service_pid": 4242, **parts}


def proc(
    pid: int,
    name: str,
    *,
    ppid: int = 4242,
    status: str = "sleeping",
    age_s: float = 600.0,
    cpu_s: float = 0.3,
    rss: float = 80e6,
    cmd: str = "",
) -> dict:
    return {
        "pid": pid,
        "ppid": ppid,
        "name": name,
        "status": status,
        "age_s": age_s,
        "cpu_seconds": cpu_s,
        "rss_bytes": rss,
        "cmdline": cmd or name,
    }


# ------------------------------------------------------------------ service down
@cause("service_down", "process_crashed", "GgenMcpServiceDown")
def process_crashed(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    tl.up &= ~tl.after(rng.uniform(0.5, 3))
    down = tl.times[~tl.up][0]
    ex.log(
        down - 1,
        "fatal",
        "crash",
        "FATAL: unhandled exception in request handler: "
        "TypeError: Cannot read properties of undefined (reading 'sheets'); process exiting",
    )


@cause("service_down", "port_in_use", "GgenMcpServiceDown")
def port_in_use(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    tl.up &= ~tl.after(rng.uniform(0.5, 3))
    down = tl.times[~tl.up][0]
    ex.log(down - 2, "warning", "restart", "restarting HTTP listener")
    for t in every(tl, rng.uniform(0.5, 1.5), (down - tl.onset) / 60):
        ex.log(
            t,
            "fatal",
            "listen",
            "Error: listen EADDRINUSE: address already in use 0.0.0.0:9464",
            errno=98,
        )
    ex.host = host_state(
        tl,
        listeners=[{"port": 9464, "pid": 3131, "name": "ggen-mcp-old"}],
        processes=[proc(3131, "ggen-mcp-old", ppid=1, age_s=86400)],
    )


@cause("service_down", "oom_killed", "GgenMcpServiceDown")
def oom_killed(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    grow_min = rng.uniform(10, 25)
    tl.onset -= grow_min * 60
    peak = rng.uniform(0.96, 0.995)
    tl.rss += (peak * tl.memory_limit - tl.rss) * tl.ramp(grow_min)
    tl.heap += tl.rss * 0.5 * tl.ramp(grow_min)
    tl.up &= ~tl.after(grow_min + rng.uniform(0.3, 1))
    down = tl.times[~tl.up][0]
    pid = rng.randrange(2000, 30000)
    ex.log(down - 20, "warning", "memory", f"heap usage high: {int(peak * 100)}% of limit")
    ex.host = host_state(
        tl,
        oom_events=[
            f"Memory cgroup out of memory: Killed process {pid} (node) total-vm:9123456kB, "
            f"anon-rss:{int(peak * 4194304)}kB",
        ],
    )


@cause("service_down", "dependency_unavailable", "GgenMcpNoSuccessfulRequests")
def dependency_unavailable(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(0.5, 2))
    tl.errors.append(ErrorPart(0.99 * k, {"io_error": 3, "timeout": 1}))
    tl.health["database"] = 1 - (k > 0.5)
    ex.error_family = "database"


# ------------------------------------------------------------------ error rate
def _errors(tl: Timeline, rng: random.Random, mix: dict, tools=tuple(TOOLS)) -> np.ndarray:
    k = tl.ramp(rng.uniform(1, 4))
    tl.errors.append(ErrorPart(rng.uniform(0.07, 0.25) * k * tl.magnitude, mix, tl.touched(tools)))
    return k


@cause("high_error_rate", "invalid_input", "GgenMcpHighErrorRate")
def invalid_input(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    _errors(tl, rng, {"invalid_input": rng.uniform(2, 4), "parse_error": 1})


@cause("high_error_rate", "database_connection", "GgenMcpHighErrorRate")
def database_connection(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _errors(tl, rng, {"io_error": rng.uniform(2, 4), "timeout": 2}, DB_TOOLS)
    tl.health["database"] = 1 - (k > 0.5)
    ex.error_family = "database"


@cause("high_error_rate", "third_party_api", "GgenMcpHighErrorRate")
def third_party_api(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _errors(
        tl,
        rng,
        {"unknown": rng.uniform(1.5, 3), "timeout": 1},
        ("render_template", "screenshot", "recalc"),
    )
    tl.health["external_api"] = 1 - (k > 0.5)
    ex.error_family = "third_party"


@cause("high_error_rate", "libreoffice_failure", "GgenMcpHighErrorRate")
def libreoffice_failure(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(1, 3))
    tl.errors.append(
        ErrorPart(
            rng.uniform(0.07, 0.2) * k * tl.magnitude,
            {"recalc_error": rng.uniform(1.5, 3), "fork_error": 1},
            tl.touched(LIBREOFFICE_TOOLS),
        )
    )
    tl.health["libreoffice"] = 1 - (k > 0.5)
    tl.libreoffice = np.where(k > 0.5, 0, tl.libreoffice)


# ------------------------------------------------------------------ latency
def _slow(tl: Timeline, tools, extra: float, k: np.ndarray) -> None:
    for t in tools:
        tl.latency_extra[t] = tl.latency_extra[t] + extra * k


@cause("high_latency", "cpu_saturation", "GgenMcpHighLatency")
def cpu_saturation(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(1, 4))
    for t in TOOLS:
        tl.latency_factor[t] = tl.latency_factor[t] * (1 + rng.uniform(25, 45) * k * tl.magnitude)
    tl.cpu = tl.cpu + (rng.uniform(0.93, 1.6) - tl.cpu) * k


@cause("high_latency", "memory_pressure", "GgenMcpHighLatency")
def memory_pressure(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(3, 8))
    tl.rss += (rng.uniform(0.88, 0.97) * tl.memory_limit - tl.rss) * k
    for t in TOOLS:
        tl.latency_factor[t] = tl.latency_factor[t] * (1 + rng.uniform(20, 35) * k * tl.magnitude)
    ex.host = host_state(tl, memory={"swap_percent": rng.uniform(40, 90)})


@cause("high_latency", "slow_database_queries", "GgenMcpHighLatency")
def slow_database_queries(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(1, 4))
    extra = rng.uniform(11, 20) * tl.magnitude
    _slow(tl, tl.touched(DB_TOOLS), extra, k)
    tl.slow_queries = tl.slow_queries + tl.rate * 0.6 * k
    for t in every(tl, 0.25, 1):
        ex.log(
            t,
            "warning",
            "query",
            f"slow query: SELECT * FROM workbook_cells WHERE "
            f"workbook_id = $1 took {int(extra * 700 + rng.uniform(-900, 900))}ms",
        )


@cause("high_latency", "cache_thrashing", "GgenMcpHighLatency")
def cache_thrashing(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(1, 4))
    tl.hit = tl.hit - (tl.hit - tl.lowered_hit(rng.uniform(0.08, 0.25))) * k
    tl.miss_extra = tl.miss_extra + rng.uniform(11, 16) * k * tl.magnitude
    tl.evict_per_miss = tl.evict_per_miss + 0.95 * k
    tl.cache_size = tl.cache_size - (tl.cache_size - 80) * k


@cause("high_latency", "libreoffice_bottleneck", "GgenMcpHighLatency")
def libreoffice_bottleneck(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(1, 4))
    _slow(tl, tl.touched(LIBREOFFICE_TOOLS), rng.uniform(12, 22) * tl.magnitude, k)
    tl.libreoffice = tl.libreoffice + (5 - tl.libreoffice) * k


# ------------------------------------------------------------------ memory
def _memory_to(tl: Timeline, rng: random.Random, minutes: float) -> np.ndarray:
    return tl.ramp(tl.growth(minutes))


@cause("memory", "memory_leak", "GgenMcpMemoryCritical")
def memory_leak(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _memory_to(tl, rng, rng.uniform(40, 70))
    peak = rng.uniform(0.91, 0.97) * tl.memory_limit
    start = tl.grown_from(peak)
    tl.rss = start + (peak - start) * k
    tl.heap = tl.heap + (peak - tl.rss[0]) * 0.8 * k


@cause("memory", "cache_too_large", "GgenMcpMemoryCritical")
def cache_too_large(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _memory_to(tl, rng, rng.uniform(15, 30))
    cache_share = rng.uniform(0.55, 0.7)
    grown = min(0.85, cache_share * tl.magnitude)  # the rest of the process holds the difference
    tl.cache_size = tl.cache_size + (rng.uniform(5000, 9000) - tl.cache_size) * k
    tl.cache_memory = 0.04 * tl.memory_limit + grown * tl.memory_limit * k
    rest = max(0.05, 0.3 + cache_share - grown) * tl.memory_limit
    tl.rss = rest + tl.cache_memory


@cause("memory", "large_payloads", "GgenMcpMemoryCritical")
def large_payloads(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = tl.ramp(rng.uniform(0.5, 2))
    often = 0.85 * min(1.0, tl.magnitude)  # scrapes with a large request in flight: fewer, or all
    spikes = np.array(
        [
            rng.uniform(0.9, 0.99) if rng.random() < often else rng.uniform(0.6, 0.8)
            for _ in tl.times
        ]
    )
    tl.rss = np.where(k > 0, spikes * tl.memory_limit, tl.rss)
    for t in every(tl, 0.5):
        size = rng.randrange(150, 600)
        ex.log(
            t,
            "warning",
            "request",
            f"large request payload: {size} MB workbook upload (read_table)",
            payload_mb=size,
        )


@cause("memory", "too_many_libreoffice_processes", "GgenMcpMemoryCritical")
def too_many_libreoffice_processes(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _memory_to(tl, rng, rng.uniform(10, 20))
    count = max(12, round(rng.randrange(12, 25) * tl.magnitude))
    peak = rng.uniform(0.91, 0.97) * tl.memory_limit
    start = float(tl.rss[0])
    size = (peak - start) / (count - 2)  # each process holds its part of the climb
    if tl.variation.soffice_bytes is not None:  # the sweep's size: as many as fit the limit
        size = tl.variation.soffice_bytes
        count = max(12, min(count, int(2 + (peak - 0.1 * tl.memory_limit) / size)))
        start = max(0.1 * tl.memory_limit, peak - size * (count - 2))
    running = np.round(2 + (count - 2) * k)  # whole processes; memory steps with each
    tl.libreoffice = running
    tl.rss = start + size * (running - 2)
    ex.host = host_state(
        tl,
        processes=[
            proc(5000 + i, "soffice", rss=size, cmd="soffice --headless") for i in range(count)
        ],
    )


# ------------------------------------------------------------------ cache
def _cache_low(tl: Timeline, rng: random.Random) -> np.ndarray:
    k = tl.ramp(rng.uniform(1, 4))
    tl.hit = tl.hit - (tl.hit - tl.lowered_hit(rng.uniform(0.15, 0.42))) * k
    return k


def _cache_log(tl: Timeline, ex: Extras, rng: random.Random, event, fn) -> None:
    for i, t in enumerate(every(tl, 0.1)):
        ex.log(t, "info", "cache", fn(i), **event)


@cause("cache_hit_rate", "cache_too_small", "GgenMcpLowCacheHitRate")
def cache_too_small(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _cache_low(tl, rng)
    size = rng.choice([50, 100, 200])
    tl.cache_size = np.where(k > 0, size, tl.cache_size)
    tl.evict_per_miss = tl.evict_per_miss + 0.97 * k
    _cache_log(
        tl, ex, rng, {}, lambda i: f"cache evict workbook=wb-{i % 900} key=k{i} reason=capacity"
    )


@cause("cache_hit_rate", "poor_cache_keys", "GgenMcpLowCacheHitRate")
def poor_cache_keys(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _cache_low(tl, rng)
    tl.cache_size = tl.cache_size + rng.uniform(1500, 3000) * k
    tl.evict_per_miss = tl.evict_per_miss + 0.05 * k
    books = rng.randrange(8, 20)
    _cache_log(
        tl,
        ex,
        rng,
        {},
        lambda i: f"cache miss workbook=wb-{i % books} key=wb-{i % books}?ts={1700000000 + i}",
    )


@cause("cache_hit_rate", "high_request_variance", "GgenMcpLowCacheHitRate")
def high_request_variance(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _cache_low(tl, rng)
    tl.cache_size = tl.cache_size + rng.uniform(1500, 3000) * k
    tl.evict_per_miss = tl.evict_per_miss + 0.1 * k
    base = rng.randrange(10000, 90000)
    _cache_log(tl, ex, rng, {}, lambda i: f"cache miss workbook=wb-{base + i} key=wb-{base + i}")


@cause("cache_hit_rate", "ttl_too_short", "GgenMcpLowCacheHitRate")
def ttl_too_short(tl: Timeline, rng: random.Random, ex: Extras) -> None:
    k = _cache_low(tl, rng)
    low = rng.uniform(20, 60)
    wobble = np.array([rng.uniform(0.6, 1.0) for _ in tl.times])
    tl.cache_size = tl.cache_size - (tl.cache_size - low * wobble) * k
    tl.evict_per_miss = tl.evict_per_miss + 0.9 * k
    _cache_log(
        tl, ex, rng, {}, lambda i: f"cache evict workbook=wb-{i % 300} key=wb-{i % 300} reason=ttl"
    )
