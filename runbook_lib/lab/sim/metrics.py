"""The GGEN MCP metrics contract, on a private registry so /metrics shows nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from runbook_lib.contract.names import PROFILES
from runbook_lib.lab.sim.modes import COMPONENTS, ERROR_TYPES, TOOLS

# The contract has no *_created series; the real service exposes none.
disable_created_metrics()

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)
SERVER_BUCKETS = tuple(0.01 * 2.5**i for i in range(10))  # the server's exponential_buckets


class ProcessCollector(Collector):
    """Exactly the process_* series of the contract, read from this process with psutil."""

    def __init__(self) -> None:
        self._proc = psutil.Process()

    def collect(self) -> Iterator:
        p = self._proc
        with p.oneshot():
            cpu = p.cpu_times()
            yield GaugeMetricFamily(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.memory_info().rss,
            )
            yield CounterMetricFamily(
                "process_cpu_seconds_total",
                "Total user and system CPU time in seconds.",
                cpu.user + cpu.system,
            )
            yield GaugeMetricFamily(
                "process_open_fds", "Number of open file descriptors.", p.num_fds()
            )
            soft, _hard = p.rlimit(psutil.RLIMIT_NOFILE)
            yield GaugeMetricFamily(
                "process_max_fds", "Maximum number of open file descriptors.", soft
            )
            yield GaugeMetricFamily(
                "process_start_time_seconds",
                "Start time of the process since the epoch.",
                p.create_time(),
            )


class Absent:
    """A metric the profile does not expose: updates go nowhere (the real server has no
    such series), so the simulator's code stays the same for both profiles."""

    def labels(self, *args: object) -> Absent:
        return self

    def inc(self, *args: object) -> None: ...

    def set(self, *args: object) -> None: ...

    def observe(self, *args: object) -> None: ...


class PerTool:
    """The server's `mcp_active_requests {tool}`: the simulator's total, split by each
    tool's share of the traffic."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge

    def set(self, value: float) -> None:
        total = sum(TOOLS.values())
        for tool, weight in TOOLS.items():
            self.gauge.labels(tool).set(round(value * weight / total, 3))


class SimMetrics:
    """Every metric the simulator exposes, pre-initialised so rate() sees the first event.
    `profile` "contract" exposes the runbook's contract; "server" exactly what the GGEN MCP
    server exposes (names, labels, buckets, the doubled `_total` of its counters)."""

    def __init__(self, profile: str = "contract") -> None:
        n = PROFILES[profile]
        server = profile == "server"
        r = self.registry = CollectorRegistry()
        if not server:
            r.register(ProcessCollector())
        buckets = SERVER_BUCKETS if server else BUCKETS

        def made(field: str, make):
            return Absent() if field in n.lacks else make(getattr(n, field))

        self.requests = Counter(n.requests, "Tool requests.", ["tool", "status"], registry=r)
        self.errors = Counter(n.errors, "Tool errors.", ["tool", "error_type"], registry=r)
        self.duration = Histogram(
            n.duration, "Request duration.", ["tool"], buckets=buckets, registry=r
        )
        self.active_requests = (
            PerTool(Gauge(n.active_requests, "In-flight requests.", ["tool"], registry=r))
            if server
            else Gauge(n.active_requests, "In-flight requests.", registry=r)
        )
        self.cache_hits = Counter(n.cache_hits, "Workbook cache hits.", registry=r)
        self.cache_misses = Counter(n.cache_misses, "Workbook cache misses.", registry=r)
        self.cache_evictions = made(
            "cache_evictions", lambda x: Counter(x, "Cache evictions.", registry=r)
        )
        self.cache_size = Gauge(n.cache_size, "Cached workbooks.", registry=r)
        self.cache_memory = Gauge(n.cache_memory, "Cache memory.", registry=r)
        self.active_forks = Gauge(n.active_forks, "Fork processes alive.", registry=r)
        self.libreoffice = Gauge(n.libreoffice, "LibreOffice processes alive.", registry=r)
        self.heap_used = made("heap_used", lambda x: Gauge(x, "Heap used.", registry=r))
        self.heap_total = made("heap_total", lambda x: Gauge(x, "Heap total.", registry=r))
        self.recalc = Histogram(n.recalc, "Recalc duration.", buckets=buckets, registry=r)

        def hist(field: str, text: str):
            return made(field, lambda x: Histogram(x, text, buckets=buckets, registry=r))

        self.query = hist("query", "Database query duration.")
        self.template = hist("template", "Template render duration.")
        self.screenshot = hist("screenshot", "Screenshot duration.")
        self.slow_queries = made(
            "slow_queries", lambda x: Counter(x, "Queries slower than 1 s.", registry=r)
        )
        self.health = made(
            "health",
            lambda x: Gauge(x, "1 healthy, 0 unhealthy.", ["component"], registry=r),
        )
        for tool in TOOLS:
            self.duration.labels(tool)
            for status in ("success", "error", "timeout"):
                self.requests.labels(tool, status)
            for error_type in ERROR_TYPES:
                self.errors.labels(tool, error_type)
        for component in COMPONENTS:
            self.health.labels(component).set(1)
