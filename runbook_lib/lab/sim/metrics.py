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

from runbook_lib.lab.sim.modes import COMPONENTS, ERROR_TYPES, TOOLS

# The contract has no *_created series; the real service exposes none.
disable_created_metrics()

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)


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


class SimMetrics:
    """Every metric the simulator exposes, pre-initialised so rate() sees the first event."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        r.register(ProcessCollector())
        self.requests = Counter(
            "ggen_mcp_requests", "Tool requests.", ["tool", "status"], registry=r
        )
        self.errors = Counter("ggen_mcp_errors", "Tool errors.", ["tool", "error_type"], registry=r)
        self.duration = Histogram(
            "ggen_mcp_request_duration_seconds",
            "Request duration.",
            ["tool"],
            buckets=BUCKETS,
            registry=r,
        )
        self.active_requests = Gauge("ggen_mcp_active_requests", "In-flight requests.", registry=r)
        self.cache_hits = Counter("ggen_mcp_cache_hits", "Workbook cache hits.", registry=r)
        self.cache_misses = Counter("ggen_mcp_cache_misses", "Workbook cache misses.", registry=r)
        self.cache_evictions = Counter("ggen_mcp_cache_evictions", "Cache evictions.", registry=r)
        self.cache_size = Gauge("ggen_mcp_cache_size_workbooks", "Cached workbooks.", registry=r)
        self.cache_memory = Gauge("ggen_mcp_cache_memory_bytes", "Cache memory.", registry=r)
        self.active_forks = Gauge("ggen_mcp_active_forks", "Fork processes alive.", registry=r)
        self.libreoffice = Gauge(
            "ggen_mcp_libreoffice_processes", "LibreOffice processes alive.", registry=r
        )
        self.heap_used = Gauge("nodejs_heap_size_used_bytes", "Heap used.", registry=r)
        self.heap_total = Gauge("nodejs_heap_size_total_bytes", "Heap total.", registry=r)
        self.recalc = Histogram(
            "ggen_mcp_recalc_duration_seconds", "Recalc duration.", buckets=BUCKETS, registry=r
        )
        self.query = Histogram(
            "ggen_mcp_query_duration_seconds",
            "Database query duration.",
            buckets=BUCKETS,
            registry=r,
        )
        self.template = Histogram(
            "ggen_mcp_template_render_duration_seconds",
            "Template render duration.",
            buckets=BUCKETS,
            registry=r,
        )
        self.screenshot = Histogram(
            "ggen_mcp_screenshot_duration_seconds",
            "Screenshot duration.",
            buckets=BUCKETS,
            registry=r,
        )
        self.slow_queries = Counter("ggen_mcp_slow_queries", "Queries slower than 1 s.", registry=r)
        self.health = Gauge(
            "ggen_mcp_component_health", "1 healthy, 0 unhealthy.", ["component"], registry=r
        )
        for tool in TOOLS:
            self.duration.labels(tool)
            for status in ("success", "error", "timeout"):
                self.requests.labels(tool, status)
            for error_type in ERROR_TYPES:
                self.errors.labels(tool, error_type)
        for component in COMPONENTS:
            self.health.labels(component).set(1)
