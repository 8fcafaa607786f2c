"""Every metric name the runbooks read, in one table. A site whose GGEN MCP exposes other
names edits this file (or sets RUNBOOK_METRIC_NAMES to a JSON object of overrides)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class MetricNames:
    job: str = "ggen-mcp"
    node_job: str = "node-exporter"
    up: str = "up"
    requests: str = "ggen_mcp_requests_total"
    errors: str = "ggen_mcp_errors_total"
    duration: str = "ggen_mcp_request_duration_seconds"  # histogram base name
    active_requests: str = "ggen_mcp_active_requests"
    cache_hits: str = "ggen_mcp_cache_hits_total"
    cache_misses: str = "ggen_mcp_cache_misses_total"
    cache_evictions: str = "ggen_mcp_cache_evictions_total"
    cache_size: str = "ggen_mcp_cache_size_workbooks"
    cache_memory: str = "ggen_mcp_cache_memory_bytes"
    active_forks: str = "ggen_mcp_active_forks"
    libreoffice: str = "ggen_mcp_libreoffice_processes"
    rss: str = "process_resident_memory_bytes"
    heap_used: str = "nodejs_heap_size_used_bytes"
    heap_total: str = "nodejs_heap_size_total_bytes"
    cpu: str = "process_cpu_seconds_total"
    open_fds: str = "process_open_fds"
    max_fds: str = "process_max_fds"
    start_time: str = "process_start_time_seconds"
    recalc: str = "ggen_mcp_recalc_duration_seconds"
    query: str = "ggen_mcp_query_duration_seconds"
    template: str = "ggen_mcp_template_render_duration_seconds"
    screenshot: str = "ggen_mcp_screenshot_duration_seconds"
    slow_queries: str = "ggen_mcp_slow_queries_total"
    health: str = "ggen_mcp_component_health"
    fs_avail: str = "node_filesystem_avail_bytes"
    fs_size: str = "node_filesystem_size_bytes"

    def metrics(self) -> dict[str, str]:
        """Field -> metric name, without the job labels."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("job")}


def load() -> MetricNames:
    overrides = os.environ.get("RUNBOOK_METRIC_NAMES", "")
    return replace(MetricNames(), **json.loads(overrides)) if overrides else MetricNames()


NAMES = load()
