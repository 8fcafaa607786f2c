"""Fault modes: how each one shapes traffic, and which real fault it starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook_lib.contract.tools import DB_TOOLS, LIBREOFFICE_TOOLS

TOOLS: dict[str, float] = {
    "read_table": 0.35,
    "list_workbooks": 0.25,
    "recalc": 0.15,
    "screenshot": 0.10,
    "render_template": 0.10,
    "fork_workbook": 0.05,
}
# Median duration in seconds of each tool on a healthy service.
BASE_LATENCY: dict[str, float] = {
    "read_table": 0.12,
    "list_workbooks": 0.05,
    "recalc": 0.8,
    "screenshot": 1.1,
    "render_template": 0.3,
    "fork_workbook": 0.4,
}
ERROR_TYPES = (
    "invalid_input",
    "parse_error",
    "timeout",
    "io_error",
    "not_found",
    "permission_denied",
    "capacity_exceeded",
    "fork_error",
    "recalc_error",
    "cache_error",
    "unknown",
)
COMPONENTS = ("workbook_cache", "libreoffice", "database", "storage", "external_api")


@dataclass(frozen=True)
class Profile:
    """How the simulated service behaves in one mode."""

    rate_factor: float = 1.0
    error_ratio: float = 0.0002
    # error_type -> weight; "timeout" becomes status=timeout, the rest status=error.
    error_mix: dict[str, float] = field(default_factory=lambda: {"not_found": 1.0})
    error_tools: frozenset[str] | None = None  # None: errors hit every tool
    latency_factor: float = 1.0
    slow_tools: frozenset[str] = frozenset()
    slow_extra_s: float = 0.0  # added to requests of slow_tools
    hit_ratio: float = 0.85
    cache_max: int = 500
    miss_extra_s: float = 0.0  # added to every cache miss
    unhealthy: frozenset[str] = frozenset()
    soffice_pool: int = 1  # LibreOffice workers kept running
    fault: str | None = None  # a real fault in runbook_lib.lab.sim.faults


_ALL = frozenset(TOOLS)

MODES: dict[str, Profile] = {
    "normal": Profile(),
    "high": Profile(rate_factor=5.0, latency_factor=1.6, soffice_pool=3),
    "errors": Profile(
        error_ratio=0.12,
        error_mix={
            "invalid_input": 3,
            "io_error": 3,
            "timeout": 2,
            "recalc_error": 1,
            "unknown": 1,
        },
    ),
    "errors:invalid_input": Profile(
        error_ratio=0.10, error_mix={"invalid_input": 3, "parse_error": 1}
    ),
    # 3% of requests fail: above the warning's 1%, below the critical's 5%. Switching from
    # here to errors:invalid_input is an error rate that worsens: warning, then critical.
    "errors:elevated": Profile(error_ratio=0.03, error_mix={"invalid_input": 3, "parse_error": 1}),
    # 40%: a surge that takes the error rate past the critical's 5% within seconds.
    "errors:surge": Profile(error_ratio=0.40, error_mix={"invalid_input": 3, "parse_error": 1}),
    "errors:database": Profile(
        error_ratio=0.10,
        error_mix={"io_error": 3, "timeout": 2},
        error_tools=DB_TOOLS,
        unhealthy=frozenset({"database"}),
    ),
    "errors:third_party": Profile(
        error_ratio=0.10,
        error_mix={"unknown": 2, "timeout": 1},
        unhealthy=frozenset({"external_api"}),
    ),
    "errors:libreoffice": Profile(
        error_ratio=0.10,
        error_mix={"recalc_error": 2, "fork_error": 1},
        error_tools=LIBREOFFICE_TOOLS,
        unhealthy=frozenset({"libreoffice"}),
        soffice_pool=0,
    ),
    "latency:cpu": Profile(latency_factor=40.0, fault="cpu_burn"),
    "latency:slow_db": Profile(slow_tools=DB_TOOLS, slow_extra_s=12.0),
    "latency:cache_thrash": Profile(hit_ratio=0.15, cache_max=60, miss_extra_s=11.0),
    "latency:libreoffice": Profile(slow_tools=LIBREOFFICE_TOOLS, slow_extra_s=14.0, soffice_pool=5),
    "memory_leak": Profile(fault="memory_leak"),
    "cache_too_small": Profile(hit_ratio=0.30, cache_max=20, miss_extra_s=0.4),
    "soffice_leak": Profile(fault="soffice_leak"),
    "fork_leak": Profile(fault="fork_leak"),
    "fd_leak": Profile(fault="fd_leak"),
    "crash": Profile(fault="crash"),
    "port_conflict": Profile(fault="port_conflict"),
    "disk_fill": Profile(fault="disk_fill"),
}


def error_tools(profile: Profile) -> frozenset[str]:
    return profile.error_tools if profile.error_tools is not None else _ALL


# The alert each fault mode makes fire (None: no alert by design, e.g. the real disk is large).
EXPECTED_ALERT: dict[str, str | None] = {
    "normal": None,
    "high": None,
    "errors": "GgenMcpHighErrorRate",
    "errors:invalid_input": "GgenMcpHighErrorRate",
    "errors:elevated": "GgenMcpElevatedErrorRate",
    "errors:surge": "GgenMcpHighErrorRate",
    "errors:database": "GgenMcpHighErrorRate",
    "errors:third_party": "GgenMcpHighErrorRate",
    "errors:libreoffice": "GgenMcpHighErrorRate",
    "latency:cpu": "GgenMcpHighLatency",
    "latency:slow_db": "GgenMcpHighLatency",
    "latency:cache_thrash": "GgenMcpHighLatency",
    "latency:libreoffice": "GgenMcpHighLatency",
    "memory_leak": "GgenMcpMemoryCritical",
    "cache_too_small": "GgenMcpLowCacheHitRate",
    "soffice_leak": "GgenMcpHighLibreOfficeProcessCount",
    "fork_leak": "GgenMcpHighActiveForks",
    "fd_leak": "GgenMcpFileDescriptorExhaustion",
    "crash": "GgenMcpServiceDown",
    "port_conflict": "GgenMcpServiceDown",
    "disk_fill": None,
}

# The causes a mode really produces (the routing table's ids): the diagnosis must judge
# each `likely` and put one of them on top. The soffice leak cycles hung, orphaned and
# zombie processes; its sleepers count as hung only once they are old, so in the first
# minutes the orphans and zombies are what it shows.
EXPECTED_CAUSES: dict[str, frozenset[str]] = {
    "errors:invalid_input": frozenset({"invalid_input"}),
    "soffice_leak": frozenset({"orphaned_processes", "zombie_processes"}),
}
