"""A GGEN MCP timeline as arrays over a time grid: what a cause changes, and the metric
series (per the metrics contract) that follow from it.

Quantities are instantaneous (rates, ratios, gauges); counters and histograms are integrated
from them, so PromQL over the backfilled data sees what it would have seen live.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from runbook_lib.contract.names import NAMES
from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES
from runbook_lib.contract.tools import CACHE_TOOLS
from runbook_lib.lab.sim.modes import BASE_LATENCY, COMPONENTS, DB_TOOLS, ERROR_TYPES, TOOLS

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, math.inf)
SIGMA = 0.5
GiB = 1 << 30


@dataclass
class ErrorPart:
    """A share of requests failing with a mix of error types, on some tools."""

    ratio: np.ndarray
    mix: dict[str, float]
    tools: tuple[str, ...] = tuple(TOOLS)


@dataclass(frozen=True)
class Variation:
    """How one scenario of the robustness sweep differs from its cause's usual picture (the
    defaults change nothing): the fault's effect scaled, the size of one LibreOffice process,
    which of a stage's tools the fault touches, the series the service does not expose, and
    how long before the alert the fault began."""

    seed: str = ""
    magnitude: float = 1.0
    soffice_bytes: float | None = None
    pick_tools: bool = False
    dropped: frozenset[str] = frozenset()
    onset_min: float | None = None

    def tools(self, tools: tuple[str, ...] | frozenset[str]) -> tuple[str, ...]:
        """The tools of `tools` the fault touches: all, or (when picking) a non-empty subset
        drawn from this variation's own seed."""
        ordered = tuple(sorted(tools))
        if not self.pick_tools or len(ordered) < 2:
            return ordered
        rng = random.Random(f"{self.seed}/{','.join(ordered)}")
        kept = tuple(t for t in ordered if rng.random() < 0.6)
        return kept or (rng.choice(ordered),)


@dataclass
class Timeline:
    """Everything that varies over time for one service instance."""

    times: np.ndarray  # epoch seconds
    step_s: float
    onset: float  # epoch seconds the fault began
    memory_limit: float = MEMORY_LIMIT_BYTES
    variation: Variation = field(default_factory=Variation)
    up: np.ndarray = field(init=False)
    rate: np.ndarray = field(init=False)
    errors: list[ErrorPart] = field(init=False)
    latency_factor: dict[str, np.ndarray] = field(init=False)
    latency_extra: dict[str, np.ndarray] = field(init=False)
    hit: np.ndarray = field(init=False)
    miss_extra: np.ndarray = field(init=False)
    evict_per_miss: np.ndarray = field(init=False)
    cache_size: np.ndarray = field(init=False)
    cache_bytes_per_wb: float = 400 * 1024
    cache_memory: np.ndarray | None = None
    rss: np.ndarray = field(init=False)
    heap: np.ndarray = field(init=False)
    cpu: np.ndarray = field(init=False)
    libreoffice: np.ndarray = field(init=False)
    forks: np.ndarray = field(init=False)
    open_fds: np.ndarray = field(init=False)
    max_fds: np.ndarray = field(init=False)
    disk_used: np.ndarray = field(init=False)
    disk_size: float = 100 * GiB
    slow_queries: np.ndarray = field(init=False)
    query_factor: np.ndarray = field(init=False)
    health: dict[str, np.ndarray] = field(init=False)
    start_time: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.times)
        ones = np.ones(n)
        self.up = np.ones(n, dtype=bool)
        self.rate = 20.0 * ones
        self.errors = [ErrorPart(0.0002 * ones, {"not_found": 1.0})]
        self.latency_factor = {t: ones.copy() for t in TOOLS}
        self.latency_extra = {t: np.zeros(n) for t in TOOLS}
        self.hit = 0.85 * ones
        self.miss_extra = np.zeros(n)
        self.evict_per_miss = np.zeros(n)
        self.cache_size = 300.0 * ones
        self.rss = 0.35 * self.memory_limit * ones
        self.heap = 60e6 * ones
        self.cpu = 0.15 * ones
        self.libreoffice = 2.0 * ones
        self.forks = 1.0 * ones
        self.open_fds = 120.0 * ones
        self.max_fds = 65536.0 * ones
        self.disk_used = 0.45 * ones
        self.slow_queries = np.zeros(n)
        self.query_factor = ones.copy()
        self.health = {c: ones.copy() for c in COMPONENTS}
        self.start_time = float(self.times[0]) - 3 * 86400

    # -- helpers for causes ----------------------------------------------------------------
    def ramp(self, minutes: float = 3.0, delay_min: float = 0.0) -> np.ndarray:
        """0 before onset (+delay), rising linearly to 1 over `minutes`."""
        t = (self.times - self.onset) / 60.0 - delay_min
        return np.clip(t / max(minutes, 1e-9), 0.0, 1.0)

    def after(self, delay_min: float = 0.0) -> np.ndarray:
        return (self.times - self.onset) / 60.0 >= delay_min

    # -- what the robustness sweep varies (nothing, by default) ----------------------------
    @property
    def magnitude(self) -> float:
        """How strongly the fault acts."""
        return self.variation.magnitude

    def touched(self, tools) -> tuple[str, ...]:
        """The tools the fault touches: all of `tools`, or the sweep's pick of them."""
        return self.variation.tools(tools) if self.variation.pick_tools else tuple(tools)

    def growth(self, minutes: float) -> float:
        """How long a growth lasts, its start becoming the onset: `minutes`, ending at the
        usual onset; in the sweep, from the onset it draws until five minutes before the
        alert (which fires as the level crosses its threshold)."""
        if self.variation.onset_min is not None:
            return max(5.0, self.variation.onset_min - 5.0)
        self.onset -= minutes * 60
        return minutes

    def grown_from(self, peak: float) -> float:
        """Where resident memory growing to `peak` starts: the healthy level, or (the sweep
        scaling the growth) the level from which it is that much larger or smaller."""
        start = float(self.rss[0])
        return max(0.05 * self.memory_limit, peak - self.magnitude * (peak - start))

    def lowered_hit(self, target: float) -> float:
        """The hit rate a cache fault brings: its drop from 85 % scaled by the sweep, kept
        where the hit-rate alert (under 50 %) fires."""
        return float(np.clip(0.85 - (0.85 - target) * self.magnitude, 0.03, 0.45))


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    samples: list[tuple[str, dict[str, str], np.ndarray]]  # (sample name, labels, values)


def _lognorm_cdf(x: np.ndarray, median: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.where(x > 0, x, np.nan) / median) / (SIGMA * math.sqrt(2))
    cdf = 0.5 * (1 + _erf(z))
    return np.nan_to_num(cdf, nan=0.0)


def _erf(z: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[float])(z)


def _miss_extra(tl: Timeline, tool: str, request: bool) -> np.ndarray:
    """What a cache miss adds to `tool`: loading the workbook, so only to a whole request of a
    tool that loads one; an operation's own timer (recalc, query) starts after the load."""
    return tl.miss_extra if request and tool in CACHE_TOOLS else np.zeros(len(tl.times))


def _duration_cdf(
    tl: Timeline, tool: str, le: float, scale: float = 1.0, request: bool = True
) -> np.ndarray:
    """P(duration * scale <= le) for `tool` at each time (hit/miss mixture)."""
    if math.isinf(le):
        return np.ones(len(tl.times))
    median = BASE_LATENCY[tool] * tl.latency_factor[tool] * scale
    base = le - tl.latency_extra[tool] * scale
    hit = _lognorm_cdf(base, median)
    miss = _lognorm_cdf(base - _miss_extra(tl, tool, request) * scale, median)
    return tl.hit * hit + (1 - tl.hit) * miss


def _mean_duration(tl: Timeline, tool: str, scale: float = 1.0, request: bool = True):
    median = BASE_LATENCY[tool] * tl.latency_factor[tool]
    miss = (1 - tl.hit) * _miss_extra(tl, tool, request)
    return (median * math.exp(SIGMA**2 / 2) + tl.latency_extra[tool] + miss) * scale


def families(tl: Timeline, labels: dict[str, str]) -> list[Family]:
    """Every contract series of one instance; values are NaN where the target is down."""
    n, dt = len(tl.times), tl.step_s
    up = tl.up
    down_nan = np.where(up, 1.0, np.nan)
    requests = tl.rate * dt
    weights = {t: w / sum(TOOLS.values()) for t, w in TOOLS.items()}
    fams: list[Family] = []

    err_by_tool_type: dict[tuple[str, str], np.ndarray] = {}
    status: dict[tuple[str, str], np.ndarray] = {}
    for tool, w in weights.items():
        reqs = requests * w
        p_total = np.zeros(n)
        parts = []
        for part in tl.errors:
            if tool not in part.tools:
                continue
            share = sum(weights[t] for t in part.tools)
            p = np.minimum(part.ratio / share, 0.99)
            parts.append((p, part.mix))
            p_total += p
        scale = np.where(p_total > 0.99, 0.99 / np.maximum(p_total, 1e-12), 1.0)
        for etype in ERROR_TYPES:
            err_by_tool_type[(tool, etype)] = np.zeros(n)
        for p, mix in parts:
            total_w = sum(mix.values())
            for etype, mw in mix.items():
                err_by_tool_type[(tool, etype)] += reqs * p * scale * mw / total_w
        errors = sum(err_by_tool_type[(tool, e)] for e in ERROR_TYPES)
        timeouts = err_by_tool_type[(tool, "timeout")]
        status[(tool, "timeout")] = timeouts
        status[(tool, "error")] = errors - timeouts
        status[(tool, "success")] = reqs - errors

    def counter(values: np.ndarray) -> np.ndarray:
        return np.cumsum(np.where(up, values, 0.0)) * down_nan

    base = {"job": NAMES.job, **labels}
    fams.append(
        Family(
            NAMES.requests[: -len("_total")],
            "counter",
            [
                (NAMES.requests, {**base, "tool": t, "status": s}, counter(v))
                for (t, s), v in status.items()
            ],
        )
    )
    fams.append(
        Family(
            NAMES.errors[: -len("_total")],
            "counter",
            [
                (NAMES.errors, {**base, "tool": t, "error_type": e}, counter(v))
                for (t, e), v in err_by_tool_type.items()
            ],
        )
    )
    fams.append(
        _histogram(
            NAMES.duration, tl, base, weights, counter, {t: (t, 1.0) for t in TOOLS}, request=True
        )
    )
    ops = {
        NAMES.recalc: {"": ("recalc", 0.9)},
        NAMES.screenshot: {"": ("screenshot", 0.9)},
        NAMES.template: {"": ("render_template", 0.8)},
    }
    for name, spec in ops.items():
        fams.append(_histogram(name, tl, base, weights, counter, spec))
    fams.append(_query_histogram(tl, base, weights, counter))

    misses = requests * (1 - tl.hit)
    fams += [
        Family(
            NAMES.cache_hits[:-6], "counter", [(NAMES.cache_hits, base, counter(requests * tl.hit))]
        ),
        Family(NAMES.cache_misses[:-6], "counter", [(NAMES.cache_misses, base, counter(misses))]),
        Family(
            NAMES.cache_evictions[:-6],
            "counter",
            [(NAMES.cache_evictions, base, counter(misses * tl.evict_per_miss))],
        ),
        Family(
            NAMES.slow_queries[:-6],
            "counter",
            [(NAMES.slow_queries, base, counter(tl.slow_queries * dt))],
        ),
        Family(NAMES.cpu[:-6], "counter", [(NAMES.cpu, base, counter(tl.cpu * dt))]),
    ]
    cache_memory = (
        tl.cache_memory if tl.cache_memory is not None else (tl.cache_size * tl.cache_bytes_per_wb)
    )
    active = sum(requests * weights[t] * _mean_duration(tl, t) for t in TOOLS) / dt
    gauges = {
        NAMES.active_requests: active,
        NAMES.cache_size: tl.cache_size,
        NAMES.cache_memory: cache_memory,
        NAMES.active_forks: np.round(tl.forks),  # processes come whole
        NAMES.libreoffice: np.round(tl.libreoffice),
        NAMES.rss: tl.rss,
        NAMES.heap_used: tl.heap,
        NAMES.heap_total: tl.heap * 1.25,
        NAMES.open_fds: tl.open_fds,
        NAMES.max_fds: tl.max_fds,
        NAMES.start_time: np.full(n, tl.start_time),
    }
    for name, values in gauges.items():
        fams.append(Family(name, "gauge", [(name, base, np.round(values, 3) * down_nan)]))
    fams.append(
        Family(
            NAMES.health,
            "gauge",
            [(NAMES.health, {**base, "component": c}, v * down_nan) for c, v in tl.health.items()],
        )
    )
    fams.append(Family(NAMES.up, "gauge", [(NAMES.up, base, up.astype(float))]))
    node = {
        "job": NAMES.node_job,
        "instance": labels["instance"] + "-node",
        "mountpoint": "/",
        "fstype": "ext4",
        "device": "/dev/vda",
    }
    fams.append(Family(NAMES.fs_size, "gauge", [(NAMES.fs_size, node, np.full(n, tl.disk_size))]))
    fams.append(
        Family(
            NAMES.fs_avail,
            "gauge",
            [(NAMES.fs_avail, node, np.round(tl.disk_size * (1 - tl.disk_used)))],
        )
    )
    return [f for f in fams if not _lacked(f, tl.variation.dropped)]


def _lacked(f: Family, dropped: frozenset[str] = frozenset()) -> bool:
    """A family the metrics profile in use does not expose (the server profile has no
    process_*, eviction, health, query, template, screenshot or slow-query series), or one
    this scenario's service does not expose."""
    lacked = NAMES.lacked() | dropped
    return any(
        name in lacked or name.removesuffix(sfx) in lacked
        for name, _, _ in f.samples
        for sfx in ("_bucket", "_count", "_sum")
    )


def _histogram(name, tl, base, weights, counter, spec: dict, request: bool = False) -> Family:
    samples = []
    requests = tl.rate * tl.step_s
    for key, (tool, scale) in spec.items():
        lab = {**base, "tool": key} if key else dict(base)
        n_req = requests * weights[tool]
        for le in BUCKETS:
            le_text = "+Inf" if math.isinf(le) else f"{le:g}"
            samples.append(
                (
                    f"{name}_bucket",
                    {**lab, "le": le_text},
                    counter(n_req * _duration_cdf(tl, tool, le, scale, request)),
                )
            )
        samples.append((f"{name}_count", lab, counter(n_req)))
        mean = _mean_duration(tl, tool, scale, request)
        samples.append((f"{name}_sum", lab, counter(n_req * mean)))
    return Family(name, "histogram", samples)


def _query_histogram(tl, base, weights, counter) -> Family:
    """Database query durations: the DB tools' time, scaled by `query_factor`."""
    name = NAMES.query
    requests = tl.rate * tl.step_s
    db_share = sum(weights[t] for t in DB_TOOLS)
    n_req = requests * db_share
    scale = 0.7 * tl.query_factor
    samples = []
    for le in BUCKETS:
        le_text = "+Inf" if math.isinf(le) else f"{le:g}"
        cdf = sum(weights[t] * _duration_cdf(tl, t, le, scale, False) for t in DB_TOOLS) / db_share
        samples.append((f"{name}_bucket", {**base, "le": le_text}, counter(n_req * cdf)))
    samples.append((f"{name}_count", base, counter(n_req)))
    mean = sum(weights[t] * _mean_duration(tl, t, scale, False) for t in DB_TOOLS) / db_share
    samples.append((f"{name}_sum", base, counter(n_req * mean)))
    return Family(name, "histogram", samples)


def grid(start: datetime, end: datetime, step_s: float) -> np.ndarray:
    return np.arange(start.timestamp(), end.timestamp() + 1e-6, step_s)
