"""High latency: CPU, memory pressure, slow queries, cache thrashing, LibreOffice."""

from __future__ import annotations

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.contract.tools import DB_TOOLS, LIBREOFFICE_TOOLS
from runbook_lib.diagnosis.attribution import Attribution
from runbook_lib.diagnosis.engine import (
    LITTLE,
    Evidence,
    Fact,
    attributes,
    explains,
    host_fact,
    log_seen,
    metric,
    pct,
    rule,
)

PRESSURE_PERCENT = 85  # memory above this share of the limit slows everything (GC, swap)
QUERY_SLOW_S, STAGE_SLOW_S = 2.0, 5.0  # a stage's p95 that counts as slow
EVICTING = 0.5  # share of misses that evict: the cache is churning
MIN_TRAFFIC_SHARE = 0.05  # tools below this share of requests do not set the shared slowdown


def _cpu_busy(v: float) -> bool:
    return v >= T["cpu"].warn_value


def _thrashing(ev: Evidence) -> bool:
    hit, evict = ev.sig("cache_hit_rate"), ev.sig("evictions_per_miss")
    return (
        hit is not None
        and evict is not None
        and T["cache_hit_rate"].breached(hit, "crit")
        and evict >= EVICTING
    )


# Causes that slow every tool alike, each with its sign; and the stages that slow some.
EVERYWHERE = {
    "cpu_saturation": ("a saturated CPU", lambda ev: _cpu_busy(ev.sig("cpu") or 0.0)),
    "memory_pressure": (
        "memory pressure",
        lambda ev: (ev.sig("memory_percent") or 0.0) >= PRESSURE_PERCENT,
    ),
    "cache_thrashing": ("cache misses", _thrashing),
}
STAGES = {
    "slow_database_queries": (
        "the database stage",
        DB_TOOLS,
        lambda ev: (ev.sig("query_p95") or 0.0) >= QUERY_SLOW_S,
    ),
    "libreoffice_bottleneck": (
        "the LibreOffice stage",
        LIBREOFFICE_TOOLS,
        lambda ev: (
            max(ev.sig("recalc_p95") or 0.0, ev.sig("screenshot_p95") or 0.0) >= STAGE_SLOW_S
        ),
    ),
}


NEEDS = {  # the signals each cause's sign reads
    "cpu_saturation": ("cpu",),
    "memory_pressure": ("memory_percent",),
    "cache_thrashing": ("cache_hit_rate", "evictions_per_miss"),
    "slow_database_queries": ("query_p95",),
    "libreoffice_bottleneck": ("recalc_p95",),
}


@attributes("high_latency")
def latency_attribution(ev: Evidence) -> Attribution | None:
    """The p95 added since an hour before, per tool and weighted by its traffic, split into
    a slowdown every tool shares (claimed by CPU, memory pressure or cache misses, whichever
    show a sign) and what one stage adds to the tools that use it."""
    now, before = ev.sig("p95_by_tool") or {}, ev.sig("p95_by_tool_before") or {}
    rates = ev.sig("requests_by_tool") or {}
    tools = [t for t in now if t in before and rates.get(t, 0) > 0 and before[t] > 0]
    if not tools:
        return None
    total_rate = sum(rates[t] for t in tools)
    weight = {t: rates[t] / total_rate for t in tools}
    added = {t: max(0.0, now[t] - before[t]) for t in tools}
    total = sum(weight[t] * added[t] for t in tools)
    if total <= 0.05:
        return None
    # A slowdown every tool shares: the least any tool with real traffic slowed down (by a
    # factor, or by added seconds); a tool with little traffic cannot set it.
    busy = [t for t in tools if weight[t] >= MIN_TRAFFIC_SHARE] or tools
    factor = max(1.0, min(now[t] / before[t] for t in busy))
    extra = max(0.0, min(added[t] for t in busy))
    shared = {t: min(added[t], max(before[t] * (factor - 1), extra)) for t in tools}
    att = Attribution(
        "high_latency",
        "s added to the p95 of the average request since an hour before",
        total,
        (*EVERYWHERE, *STAGES),
        digits=2,
    )
    for cause, needs in NEEDS.items():
        lacking = [n for n in needs if ev.sig(n) is None]
        if lacking:
            att.cannot_judge(cause, "; ".join(ev.signals.why_missing(n) for n in lacking))
    signed = [
        (c, what) for c, (what, sign) in EVERYWHERE.items() if c not in att.unjudged and sign(ev)
    ]
    common = sum(weight[t] * shared[t] for t in tools)
    att.extra["shared"] = common
    for cause, what in signed:
        att.claim(cause, common / len(signed), f"{what} (a slowdown every tool shares)")
    if not signed and common > 0:
        att.notes.append("every tool slowed alike, and no sign of CPU, memory or cache")
    for cause, (what, stage_tools, sign) in STAGES.items():
        mine = [t for t in tools if t in stage_tools]
        if mine and cause not in att.unjudged and sign(ev):
            att.claim(
                cause,
                sum(weight[t] * (added[t] - shared[t]) for t in mine),
                f"{what} (the tools that use it: {', '.join(sorted(mine))})",
            )
    return att


def _p95(ev: Evidence, tools: set[str]) -> float | None:
    by = ev.sig("p95_by_tool") or {}
    vals = [v for k, v in by.items() if k in tools]
    return max(vals) if vals else None


def _others_fast(ev: Evidence, tools: frozenset[str], label: str) -> Fact:
    """Not a slowdown of every tool: the other tools are fast, or (when the symptom is
    attributed) what slowed them is not shared by all tools but explained stage by stage."""
    att = ev.attribution
    if att is not None and "shared" in att.extra:
        shared = att.extra["shared"] / att.total if att.total else 0.0
        return Fact(
            shared < LITTLE,
            f"a slowdown every tool shares is {pct(shared)} of the added p95",
            2,
        )
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
            _cpu_busy,
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
        explains(ev, "cpu_saturation", at_least=LITTLE),
    ]


@rule(
    "high_latency",
    "memory_pressure",
    commands=("free -h\nvmstat 1 5\ndocker stats --no-stream {container}\n{restart}"),
)
def memory_pressure(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "memory_percent",
            lambda v: v >= PRESSURE_PERCENT,
            lambda v: f"memory is at {v:.0f}% of the limit (pressure from {PRESSURE_PERCENT}%)",
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
        explains(ev, "memory_pressure", at_least=LITTLE),
    ]


@rule(
    "high_latency",
    "slow_database_queries",
    commands=(
        'psql -c "SELECT query, mean_exec_time FROM pg_stat_statements '
        'ORDER BY mean_exec_time DESC LIMIT 10"\n'
        "{logs} | grep 'slow query'"
    ),
)
def slow_database_queries(ev: Evidence) -> list[Fact]:
    db = DB_TOOLS
    return [
        metric(
            ev,
            "query_p95",
            lambda v: v >= QUERY_SLOW_S,
            lambda v: f"database query p95 is {v:.1f} s",
            2,
            required=True,
        ),
        metric(ev, "slow_query_rate", lambda v: v >= 0.5, lambda v: f"{v:.1f} slow queries/s", 2),
        log_seen(ev, "slow_query", "'slow query'", 1, at_least=3),
        _others_fast(ev, db, "database-backed tools"),
        explains(ev, "slow_database_queries", at_least=LITTLE),
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
            lambda v: v >= EVICTING,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            2,
        ),
        explains(ev, "cache_thrashing", at_least=LITTLE),
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
    lo = LIBREOFFICE_TOOLS
    return [
        metric(
            ev,
            "recalc_p95",
            lambda v: v >= STAGE_SLOW_S,
            lambda v: f"recalc p95 is {v:.1f} s",
            2,
            required=True,
        ),
        metric(
            ev,
            "screenshot_p95",
            lambda v: v >= STAGE_SLOW_S,
            lambda v: f"screenshot p95 is {v:.1f} s",
            1,
        ),
        _others_fast(ev, lo, "recalc and screenshot"),
        explains(ev, "libreoffice_bottleneck", at_least=LITTLE),
    ]
