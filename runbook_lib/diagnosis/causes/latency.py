"""High latency: CPU, memory pressure, slow queries, cache thrashing, LibreOffice."""

from __future__ import annotations

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.diagnosis.engine import (
    Evidence,
    Fact,
    host_fact,
    log_seen,
    metric,
    pct,
    rule,
)


def _p95(ev: Evidence, tools: set[str]) -> float | None:
    by = ev.sig("p95_by_tool") or {}
    vals = [v for k, v in by.items() if k in tools]
    return max(vals) if vals else None


def _others_fast(ev: Evidence, tools: set[str], label: str) -> Fact:
    by = ev.sig("p95_by_tool") or {}
    others = [v for k, v in by.items() if k not in tools]
    if not others:
        return Fact(None, f"latency of tools other than {label}", 1, False, "no per-tool latency")
    worst = max(others)
    fast = T["latency_p95"]
    return Fact(
        not fast.breached(worst, "warn"),
        f"other tools' p95 is at most {worst:.1f} s ({fast.rule_text('warn')})",
        2,
    )


@rule(
    "high_latency",
    "cpu_saturation",
    commands=(
        "top -b -n 1 | head -20\nps aux --sort=-%cpu | head -10\n"
        "# scale out: add instances behind the load balancer"
    ),
)
def cpu_saturation(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "cpu",
            lambda v: v >= T["cpu"].warn_value,
            lambda v: (
                f"the process used {v:.2f} CPU cores over the last 5m ({T['cpu'].rule_text()})"
            ),
            3,
            required=True,
        ),
        host_fact(
            ev,
            lambda h: h["load"]["load1"] > h["load"]["cpu_count"] if "load" in h else None,
            lambda h: f"host load {h['load']['load1']:.1f} on {h['load']['cpu_count']} cores",
            1,
            what="host load",
        ),
    ]


@rule(
    "high_latency",
    "memory_pressure",
    commands=(
        "free -h\nvmstat 1 5\ndocker stats --no-stream {container}\ndocker restart {container}"
    ),
)
def memory_pressure(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "memory_percent",
            lambda v: v >= 85,
            lambda v: f"memory is at {v:.0f}% of the limit (pressure from 85%)",
            3,
            required=True,
        ),
        host_fact(
            ev,
            lambda h: h["memory"]["swap_percent"] >= 20 if "memory" in h else None,
            lambda h: f"swap is {h['memory']['swap_percent']:.0f}% used",
            1,
            what="swap use",
        ),
    ]


@rule(
    "high_latency",
    "slow_database_queries",
    commands=(
        'psql -c "SELECT query, mean_exec_time FROM pg_stat_statements '
        'ORDER BY mean_exec_time DESC LIMIT 10"\n'
        "docker logs {container} 2>&1 | grep 'slow query'"
    ),
)
def slow_database_queries(ev: Evidence) -> list[Fact]:
    db = {"read_table", "list_workbooks"}
    return [
        metric(
            ev,
            "query_p95",
            lambda v: v >= 2,
            lambda v: f"database query p95 is {v:.1f} s",
            2,
            required=True,
        ),
        metric(ev, "slow_query_rate", lambda v: v >= 0.5, lambda v: f"{v:.1f} slow queries/s", 2),
        log_seen(ev, "slow_query", "'slow query'", 1, at_least=3),
        _others_fast(ev, db, "database-backed tools"),
    ]


@rule(
    "high_latency",
    "cache_thrashing",
    commands=(
        "curl -s http://localhost:{port}/metrics | grep cache\n"
        "# raise CACHE_MAX_SIZE, pre-warm common workbooks, review TTLs"
    ),
)
def cache_thrashing(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "cache_hit_rate",
            lambda v: T["cache_hit_rate"].breached(v, "crit"),
            lambda v: f"cache hit rate is {v:.0f}% ({T['cache_hit_rate'].rule_text()})",
            2,
            required=True,
        ),
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v >= 0.5,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            2,
        ),
    ]


@rule(
    "high_latency",
    "libreoffice_bottleneck",
    commands=(
        "ps aux | grep [s]office | wc -l\n"
        "# raise MAX_LIBREOFFICE_PROCESSES; pool processes; add timeouts"
    ),
)
def libreoffice_bottleneck(ev: Evidence) -> list[Fact]:
    lo = {"recalc", "screenshot"}
    return [
        metric(
            ev,
            "recalc_p95",
            lambda v: v >= 5,
            lambda v: f"recalc p95 is {v:.1f} s",
            2,
            required=True,
        ),
        metric(ev, "screenshot_p95", lambda v: v >= 5, lambda v: f"screenshot p95 is {v:.1f} s", 1),
        _others_fast(ev, lo, "recalc and screenshot"),
    ]
