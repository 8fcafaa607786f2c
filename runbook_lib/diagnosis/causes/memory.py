"""Memory: a leak, a cache too large, large payloads, too many LibreOffice processes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from runbook_lib.contract.thresholds import THRESHOLDS as T
from runbook_lib.diagnosis.attribution import Attribution, ends, minutes, pct
from runbook_lib.diagnosis.constants import (
    CACHE_HEAVY,
    DEJUMP_POINTS,
    GAIN_FLOOR,
    JUMPY,
    LEAK_MB_H,
    LEAK_R2,
    MANY_CACHED,
    MIN_LOG_LINES,
    MOSTLY,
    SOFFICE_DEFAULT,
    SOFFICE_HEAVY,
    STEADY_R2,
)
from runbook_lib.diagnosis.engine import LITTLE, attributes, rule
from runbook_lib.diagnosis.estimate import ProcessSize, climb, per_process
from runbook_lib.diagnosis.facts import (
    explains,
    host_fact,
    log_seen,
    metric,
    processes_named,
)
from runbook_lib.diagnosis.model import Evidence, Fact

if TYPE_CHECKING:
    import pandas as pd

CAUSES = ("memory_leak", "cache_too_large", "large_payloads", "too_many_libreoffice_processes")


@attributes("memory", needs=("memory_series",))
def memory_attribution(ev: Evidence) -> Attribution | None:
    """Resident memory gained over the hour, split into the cache's growth, the LibreOffice
    processes spawned (count x typical size), memory that comes and goes with large requests,
    and a leak: the remainder, when it is still growing steadily."""
    import pandas as pd  # here, not where the rule registers (`diagnosis/__init__.py`)

    rss = ev.sig("memory_series")
    level = ends(rss)
    if level is None:
        return None
    rss = rss.sort_values("timestamp")
    recent = rss[
        rss["timestamp"]
        >= rss["timestamp"].max() - pd.Timedelta(minutes=minutes(ev.signals.window))
    ]
    peak = float(recent["value"].max())
    total = peak - level[0]
    if total < GAIN_FLOOR:
        return None
    att = Attribution(
        "memory", "GB of resident memory gained over the last hour", total, CAUSES, scale=1e9
    )
    parts = pd.DataFrame({"timestamp": rss["timestamp"], "value": rss["value"].to_numpy(float)})
    cache = _component(ev, "cache_memory_series", 1.0, att, "cache_too_large")
    if cache is not None:
        att.claim("cache_too_large", cache[0], "the cache's growth")
        parts = _minus(parts, cache[1])
    size = _soffice_size(ev, parts)
    lo = _component(ev, "libreoffice_series", size.bytes, att, "too_many_libreoffice_processes")
    if lo is not None:
        att.claim(
            "too_many_libreoffice_processes",
            lo[0],
            f"{lo[0] / size.bytes:.0f} more LibreOffice processes ({size.text()})",
        )
        parts = _minus(parts, lo[1])
    jumps = ev.sig("memory_jumps")
    jumpy = jumps is not None and jumps >= JUMPY
    if jumpy:  # the level under the spikes: a leak shows in it, not in the spikes
        parts["value"] = parts["value"].rolling(int(DEJUMP_POINTS), min_periods=1).min()
    _leak(att, parts, jumpy)
    if jumps is None:
        att.cannot_judge("large_payloads", ev.signals.why_missing("memory_jumps"))
    elif jumpy:
        swing = peak - float(recent["value"].min())
        att.claim(
            "large_payloads",
            min(swing, att.unexplained),
            "memory that comes and goes with large requests",
        )
    return att


def _component(
    ev: Evidence, name: str, size: float, att: Attribution, cause: str
) -> tuple[float, pd.DataFrame] | None:
    """A component's gain over the hour in bytes (x `size` per unit), and its series as bytes
    above its starting level; None (noted) when Prometheus has no such series."""
    frame = ev.sig(name)
    level = ends(frame)
    if level is None:
        att.cannot_judge(cause, ev.signals.why_missing(name))
        return None
    above = frame.sort_values("timestamp")[["timestamp", "value"]].copy()
    above["value"] = (above["value"].astype(float) - level[0]) * size
    return max(0.0, (level[1] - level[0]) * size), above


def _minus(parts: pd.DataFrame, component: pd.DataFrame) -> pd.DataFrame:
    joined = parts.merge(component, on="timestamp", how="left", suffixes=("", "_c"))
    joined["value"] = joined["value"] - joined["value_c"].fillna(0.0)
    return joined[["timestamp", "value"]]


def _soffice_size(ev: Evidence, memory: pd.DataFrame) -> ProcessSize:
    """What one soffice process holds: read from how `memory` (resident memory less the
    cache) moves with the process count, else the host's processes, else the default."""
    procs = processes_named(ev.host or {}, "soffice")
    sizes = [p["rss_bytes"] for p in procs if p.get("rss_bytes")]
    return per_process(memory, ev.sig("libreoffice_series"), sizes, SOFFICE_DEFAULT, "soffice")


def _leak(att: Attribution, remainder: pd.DataFrame, jumpy: bool) -> None:
    """The leak claims the growth nothing else explains: the rise of the line fitted to the
    remainder (resident memory less the cache's and the processes' growth, under its spikes)
    since it began to climb (over the whole window under spikes, whose rolling minimum lags),
    when it climbed steadily. It cannot claim while a component is unmeasured."""
    from runbook_lib.evidence.panels import trend  # pandas: see `diagnosis/__init__.py`

    if att.unjudged:
        if att.unexplained < LITTLE * att.total:  # whatever the unmeasured parts hold
            att.notes.append(
                f"the parts measured explain {pct(1 - att.unexplained / att.total)} of it: "
                "a leak could be no more than the rest"
            )
            return
        att.cannot_judge("memory_leak", "a leak is what the other parts do not explain")
        return
    if jumpy:  # the whole window: the spikes' rolling minimum lags, and blurs a start
        t = trend(remainder)
        span_h = (remainder["timestamp"].max() - remainder["timestamp"].min()).total_seconds()
        rising, rise = remainder, (t.slope_per_h * span_h / 3600 if t else 0.0)
    else:
        found = climb(remainder)
        rising, rise, t = found.frame, found.rise, trend(found.frame)
    if t is not None:
        att.extra["leak_r2"] = t.r2
        att.extra["leak_since"] = rising["timestamp"].min().timestamp()
    if t is None or t.slope_per_h / 1e6 < LEAK_MB_H or t.r2 < LEAK_R2:
        att.notes.append("what the other parts do not explain did not climb steadily")
        return
    since = rising["timestamp"].min().strftime("%H:%M")
    att.claim(
        "memory_leak",
        min(att.unexplained, rise),  # the climb, from the level before it to the level after
        f"growth nothing else explains ({t.slope_per_h / 1e6:+.0f} MB/h since {since}, "
        f"fit R² {t.r2:.2f})",
    )


@rule(
    "memory",
    "memory_leak",
    commands=(
        "kill -USR2 {service_pid}   # heap snapshot, if heapdump is enabled\n"
        "{restart}   # temporary mitigation"
    ),
    mitigation="restart_container",
)
def memory_leak(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "memory_growth_mb_h",
            lambda v: v >= LEAK_MB_H,
            lambda v: f"memory grew {v:+.0f} MB/h over the last hour",
            weight=2,
            required=True,
        ),
        _steady(ev),
        metric(
            ev,
            "memory_recent_growth_mb_h",
            lambda v: v >= LEAK_MB_H,
            lambda v: (
                f"memory still grows {v:+.0f} MB/h over the last {ev.signals.window}: no plateau"
            ),
            weight=2,
        ),
        metric(
            ev,
            "cache_memory_share",
            lambda v: v < CACHE_HEAVY,
            lambda v: f"the cache holds {pct(v)} of resident memory",
            weight=2,
            sign=False,
        ),
        metric(
            ev,
            "memory_jumps",
            lambda v: v < JUMPY,
            lambda v: f"{pct(v)} of scrapes jump by over 10% of the limit",
            weight=1,
            sign=False,
        ),
        explains(ev, "memory_leak", at_least=LITTLE, weight=3),
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
        _cache_heavy(ev),
        metric(
            ev,
            "cache_size",
            lambda v: v >= MANY_CACHED,
            lambda v: f"{v:.0f} workbooks are cached",
            weight=1,
        ),
        explains(ev, "cache_too_large", at_least=LITTLE, weight=2),
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
            lambda v: v >= JUMPY,
            lambda v: f"memory jumps: {pct(v)} of scrapes move by over 10% of the limit",
            weight=2,
            required=True,
        ),
        log_seen(ev, "large_payload", "large request payloads", weight=2, at_least=MIN_LOG_LINES),
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
            weight=3,
            required=True,
        ),
        host_fact(
            ev,
            _soffice_rss,
            lambda h: (
                f"soffice processes hold "
                f"{sum(p['rss_bytes'] for p in processes_named(h, 'soffice')) / 2**20:.0f} MiB"
            ),
            weight=1,
            what="memory held by soffice",
        ),
        explains(ev, "too_many_libreoffice_processes", at_least=LITTLE, weight=1),
    ]


def _steady(ev: Evidence) -> Fact:
    """The growth is steady: what nothing else explains fits a line since it began to climb
    (the attribution's fit), else resident memory fits one over the hour."""
    att = ev.attribution
    if att is not None and "leak_r2" in att.extra:
        r2 = att.extra["leak_r2"]
        since = datetime.fromtimestamp(att.extra["leak_since"], UTC).strftime("%H:%M")
        return Fact(
            r2 >= STEADY_R2,
            f"what nothing else explains grows steadily since {since} (linear fit R² {r2:.2f})",
            weight=3,
        )
    return metric(
        ev,
        "memory_r2",
        lambda v: v >= STEADY_R2,
        lambda v: f"the growth is steady (linear fit R² {v:.2f})",
        weight=3,
    )


def _cache_heavy(ev: Evidence) -> Fact:
    """The gate: the cache holds a large part of resident memory, or its growth is most of
    what the process gained."""
    held = ev.sig("cache_memory_share")
    if held is None:
        why = ev.signals.why_missing("cache_memory_share")
        return Fact(
            None,
            "the cache's share of memory",
            weight=3,
            required=True,
            missing=f"the cache's share: {why}",
        )
    grew = ev.attribution.share("cache_too_large") if ev.attribution else None
    text = f"the cache holds {pct(held)} of resident memory"
    if grew is not None:
        text += f" and its growth is {pct(grew)} of what the process gained"
    return Fact(held >= CACHE_HEAVY or (grew or 0.0) >= MOSTLY, text, weight=3, required=True)


def _soffice_rss(h: dict) -> bool | None:
    if "processes" not in h:
        return None
    return sum(p["rss_bytes"] for p in processes_named(h, "soffice")) > SOFFICE_HEAVY
