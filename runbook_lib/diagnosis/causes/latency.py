"""High latency: CPU, memory pressure, slow queries, cache thrashing, LibreOffice."""

from __future__ import annotations

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.contract.tools import CACHE_TOOLS, DB_TOOLS, LIBREOFFICE_TOOLS
from runbook_lib.diagnosis.attribution import Attribution, pct
from runbook_lib.diagnosis.constants import (
    EVICTING,
    LATENCY_FLOOR_S,
    MIN_LOG_LINES,
    MIN_TRAFFIC,
    PRESSURE_PERCENT,
    QUERY_SLOW_S,
    RESOLUTION,
    SLOW_QUERY_RATE,
    STAGE_SLOW_S,
    SWAP_BUSY,
)
from runbook_lib.diagnosis.engine import LITTLE, attributes, rule
from runbook_lib.diagnosis.estimate import split_by_stage, stage_costs
from runbook_lib.diagnosis.facts import (
    explains,
    host_fact,
    log_seen,
    metric,
)
from runbook_lib.diagnosis.model import Evidence, Fact


def _cpu_busy(v: float) -> bool:
    return v >= T["cpu"].warn_value


def _thrashing(ev: Evidence) -> bool:
    """The cache misses most lookups (its alert's level), more than before the incident (misses
    as frequent then cannot have added latency since), and, where evictions are counted, most
    misses evict; an absent series neither confirms nor denies it."""
    hit, evict = ev.sig("cache_hit_rate"), ev.sig("evictions_per_miss")
    before = ev.sig("cache_hit_rate_before")
    return (
        hit is not None
        and T["cache_hit_rate"].breached(hit, "crit")
        and (before is None or hit < before)
        and (evict is None or evict >= EVICTING)
    )


def _stage_p95(ev: Evidence) -> float | None:
    """The slower of the LibreOffice operations' p95 (None when neither is measured)."""
    known = [v for v in (ev.sig("recalc_p95"), ev.sig("screenshot_p95")) if v is not None]
    return max(known) if known else None


# Causes that slow every tool alike, each with its sign; and the stages that slow the tools
# that go through them, each with its tools and its sign.
EVERYWHERE = {
    "cpu_saturation": ("a saturated CPU", lambda ev: _cpu_busy(ev.sig("cpu") or 0.0)),
    "memory_pressure": (
        "memory pressure",
        lambda ev: (ev.sig("memory_percent") or 0.0) >= PRESSURE_PERCENT,
    ),
}
STAGES = {
    "slow_database_queries": (
        DB_TOOLS,
        lambda ev: (ev.sig("query_p95") or 0.0) >= QUERY_SLOW_S,
    ),
    "libreoffice_bottleneck": (
        LIBREOFFICE_TOOLS,
        lambda ev: (_stage_p95(ev) or 0.0) >= STAGE_SLOW_S,
    ),
    "cache_thrashing": (CACHE_TOOLS, _thrashing),
}
NEEDS = {  # the signals each cause's sign needs (any one of them, for a stage's operations)
    "cpu_saturation": ("cpu",),
    "memory_pressure": ("memory_percent",),
    "cache_thrashing": ("cache_hit_rate",),
    "slow_database_queries": ("query_p95",),
    "libreoffice_bottleneck": ("recalc_p95", "screenshot_p95"),
}


@attributes("high_latency", needs=("p95_by_tool", "p95_by_tool_before", "requests_by_tool"))
def latency_attribution(ev: Evidence) -> Attribution | None:
    """The p95 added since before the incident, per tool and weighted by its traffic, split
    into a slowdown every tool shares (claimed by CPU or memory pressure, whichever shows a
    sign) and what each stage adds to the tools that go through it: the database, a
    LibreOffice process, loading a workbook on a cache miss. What a stage adds is estimated
    from the tools, not assumed: a tool that only one slow stage touches says what that
    stage costs (`estimate.stage_costs`)."""
    now, before = ev.sig("p95_by_tool") or {}, ev.sig("p95_by_tool_before") or {}
    rates = ev.sig("requests_by_tool") or {}
    tools = [t for t in now if t in before and rates.get(t, 0) > 0 and before[t] > 0]
    if not tools:
        return None
    total_rate = sum(rates[t] for t in tools)
    weight = {t: rates[t] / total_rate for t in tools}
    added = {t: max(0.0, now[t] - before[t]) for t in tools}
    total = sum(weight[t] * added[t] for t in tools)
    if total <= LATENCY_FLOOR_S:
        return None
    # A slowdown every tool shares: the least any tool with real traffic slowed down (by a
    # factor, or by added seconds); a tool with little traffic cannot set it.
    busy = [t for t in tools if weight[t] >= MIN_TRAFFIC] or tools
    factor = max(1.0, min(now[t] / before[t] for t in busy))
    least = max(0.0, min(added[t] for t in busy))
    shared = {t: min(added[t], max(before[t] * (factor - 1), least)) for t in tools}
    att = Attribution(
        "high_latency",
        "s added to the p95 of the average request since before the incident",
        total,
        (*EVERYWHERE, *STAGES),
        digits=2,
    )
    for cause, needs in NEEDS.items():
        if all(ev.sig(n) is None for n in needs):
            att.cannot_judge(cause, "; ".join(ev.signals.why_missing(n) for n in needs))
    signed = [c for c, (_, sign) in EVERYWHERE.items() if c not in att.unjudged and sign(ev)]
    common = sum(weight[t] * shared[t] for t in tools)
    att.extra["shared"] = common
    for cause in signed:
        what = EVERYWHERE[cause][0]
        att.claim(cause, common / len(signed), f"{what} (a slowdown every tool shares)")
    if not signed and common > 0:
        att.notes.append("every tool slowed alike, and no sign of CPU or memory pressure")
    # What a tool gained beyond the shared slowdown is a stage's only when it is more than the
    # histogram's buckets can blur: the tool at least `RESOLUTION` times as slow as the shared
    # slowdown alone would make it.
    beyond = {
        t: added[t] - shared[t] if now[t] >= RESOLUTION * (before[t] + shared[t]) else 0.0
        for t in tools
    }
    _stages(ev, att, beyond, weight)
    return att


def _stages(
    ev: Evidence, att: Attribution, extra: dict[str, float], weight: dict[str, float]
) -> None:
    """Each slow stage claims what it adds to its tools beyond the shared slowdown."""
    slow = {
        c: frozenset(t for t in extra if t in tools)
        for c, (tools, sign) in STAGES.items()
        if c not in att.unjudged and sign(ev)
    }
    slow = {c: tools for c, tools in slow.items() if tools}
    costs = stage_costs(extra, weight, slow)
    for cause, per_tool in split_by_stage(extra, costs, slow).items():
        mine = sorted(slow[cause])
        att.claim(
            cause,
            sum(weight[t] * s for t, s in per_tool.items()),
            _stage_words(ev, cause, costs[cause], mine),
        )


def _stage_words(ev: Evidence, cause: str, cost: float, tools: list[str]) -> str:
    if cause != "cache_thrashing":
        stage = "the database" if cause == "slow_database_queries" else "the LibreOffice"
        return f"{stage} stage (the tools that use it: {', '.join(tools)})"
    hit, before = ev.sig("cache_hit_rate"), ev.sig("cache_hit_rate_before")
    ratio = (
        f"the miss ratio rose from {pct(1 - before / 100)} to {pct(1 - hit / 100)}"
        if before is not None
        else f"the miss ratio is {pct(1 - hit / 100)}"
    )
    return (
        f"a miss adds {cost:.1f} s at p95 to the tools that load a workbook "
        f"({', '.join(tools)}), {ratio}"
    )


def _stage_slow(ev: Evidence) -> Fact:
    """The gate: one LibreOffice operation (recalc or screenshot) is slow; unknown only when
    neither is measured."""
    worst = _stage_p95(ev)
    what = "the LibreOffice operations' p95"
    if worst is None:
        why = "; ".join(ev.signals.why_missing(n) for n in NEEDS["libreoffice_bottleneck"])
        return Fact(None, what, weight=0, required=True, missing=f"{what}: {why}")
    return Fact(worst >= STAGE_SLOW_S, f"the slower LibreOffice operation's p95 is {worst:.1f} s"
                f" (slow from {STAGE_SLOW_S:g} s)", weight=0, required=True)  # fmt: skip


def _others_fast(ev: Evidence, tools: frozenset[str], label: str) -> Fact:
    """Not a slowdown of every tool: the other tools are fast, or (when the symptom is
    attributed) what slowed them is not shared by all tools but explained stage by stage."""
    att = ev.attribution
    if att is not None and "shared" in att.extra:
        shared = att.extra["shared"] / att.total if att.total else 0.0
        return Fact(
            shared < LITTLE,
            f"a slowdown every tool shares is {pct(shared)} of the added p95",
            weight=2,
        )
    by = ev.sig("p95_by_tool") or {}
    others = [v for k, v in by.items() if k not in tools]
    if not others:
        return Fact(
            None,
            f"latency of tools other than {label}",
            weight=1,
            required=False,
            missing="no per-tool latency",
        )
    worst = max(others)
    fast = T["latency_p95"]
    return Fact(
        not fast.breached(worst, "warn"),
        f"other tools' p95 is at most {worst:.1f} s ({fast.rule_text('warn')})",
        weight=2,
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
            weight=3,
            required=True,
        ),
        host_fact(
            ev,
            lambda h: h["load"]["load1"] > h["load"]["cpu_count"] if "load" in h else None,
            lambda h: f"host load {h['load']['load1']:.1f} on {h['load']['cpu_count']} cores",
            weight=1,
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
            weight=3,
            required=True,
        ),
        host_fact(
            ev,
            lambda h: h["memory"]["swap_percent"] >= SWAP_BUSY if "memory" in h else None,
            lambda h: f"swap is {h['memory']['swap_percent']:.0f}% used",
            weight=1,
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
            weight=2,
            required=True,
        ),
        metric(
            ev,
            "slow_query_rate",
            lambda v: v >= SLOW_QUERY_RATE,
            lambda v: f"{v:.1f} slow queries/s",
            weight=2,
        ),
        log_seen(ev, "slow_query", "'slow query'", weight=1, at_least=MIN_LOG_LINES),
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
            weight=2,
            required=True,
        ),
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v >= EVICTING,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            weight=2,
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
        _stage_slow(ev),
        metric(
            ev,
            "recalc_p95",
            lambda v: v >= STAGE_SLOW_S,
            lambda v: f"recalc p95 is {v:.1f} s",
            weight=2,
        ),
        metric(
            ev,
            "screenshot_p95",
            lambda v: v >= STAGE_SLOW_S,
            lambda v: f"screenshot p95 is {v:.1f} s",
            weight=1,
        ),
        _others_fast(ev, lo, "recalc and screenshot"),
        explains(ev, "libreoffice_bottleneck", at_least=LITTLE),
    ]
