"""Memory: a leak, a cache too large, large payloads, too many LibreOffice processes."""

from __future__ import annotations

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.diagnosis.engine import (
    Evidence,
    Fact,
    host_fact,
    log_seen,
    metric,
    pct,
    processes_named,
    rule,
)


@rule(
    "memory",
    "memory_leak",
    commands=(
        "kill -USR2 {service_pid}   # heap snapshot, if heapdump is enabled\n"
        "docker restart {container}   # temporary mitigation"
    ),
    mitigation="restart_container",
)
def memory_leak(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "memory_growth_mb_h",
            lambda v: v >= 50,
            lambda v: f"memory grew {v:+.0f} MB/h over the last hour",
            2,
            required=True,
        ),
        metric(
            ev,
            "memory_r2",
            lambda v: v >= 0.9,
            lambda v: f"the growth is steady (linear fit R² {v:.2f})",
            3,
        ),
        metric(
            ev,
            "memory_recent_growth_mb_h",
            lambda v: v >= 50,
            lambda v: (
                f"memory still grows {v:+.0f} MB/h over the last {ev.signals.window}: no plateau"
            ),
            2,
        ),
        metric(
            ev,
            "cache_memory_share",
            lambda v: v < 0.4,
            lambda v: f"the cache holds {pct(v)} of resident memory",
            2,
            sign=False,
        ),
        metric(
            ev,
            "memory_jumps",
            lambda v: v < 0.05,
            lambda v: f"{pct(v)} of scrapes jump by over 10% of the limit",
            1,
            sign=False,
        ),
    ]


@rule(
    "memory",
    "cache_too_large",
    commands=(
        "curl -s http://localhost:{port}/metrics | grep cache_size\n"
        "curl -X POST http://localhost:{port}/admin/cache/clear\n"
        "# lower CACHE_MAX_SIZE; add LRU eviction and a TTL"
    ),
)
def cache_too_large(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "cache_memory_share",
            lambda v: v >= 0.4,
            lambda v: f"the cache holds {pct(v)} of resident memory",
            3,
            required=True,
        ),
        metric(ev, "cache_size", lambda v: v >= 2000, lambda v: f"{v:.0f} workbooks are cached", 1),
    ]


@rule(
    "memory",
    "large_payloads",
    commands=("# set MAX_REQUEST_SIZE=10mb; stream large workbooks instead of loading them"),
)
def large_payloads(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "memory_jumps",
            lambda v: v >= 0.05,
            lambda v: f"memory jumps: {pct(v)} of scrapes move by over 10% of the limit",
            2,
            required=True,
        ),
        log_seen(ev, "large_payload", "large request payloads", 2, at_least=3),
    ]


@rule(
    "memory",
    "too_many_libreoffice_processes",
    commands=(
        "ps aux | grep [s]office\nkill -9 {pids}\n"
        "# MAX_LIBREOFFICE_PROCESSES=3; kill idle processes"
    ),
)
def too_many_libreoffice_processes(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "libreoffice",
            lambda v: T["libreoffice_processes"].breached(v),
            lambda v: f"{v:.0f} LibreOffice processes ({T['libreoffice_processes'].rule_text()})",
            3,
            required=True,
        ),
        host_fact(
            ev,
            _soffice_rss,
            lambda h: (
                f"soffice processes hold "
                f"{sum(p['rss_bytes'] for p in processes_named(h, 'soffice')) / 2**20:.0f} MiB"
            ),
            1,
            what="memory held by soffice",
        ),
    ]


def _soffice_rss(h: dict) -> bool | None:
    if "processes" not in h:
        return None
    return sum(p["rss_bytes"] for p in processes_named(h, "soffice")) > 512 * 2**20
