"""The figures the diagnosis judges, read from Prometheus once per run.

Each signal is a number (or a dict by label) at the evaluation time, over the lookback
window; a signal Prometheus could not give is None, with the reason kept beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from runbook_lib.contract.names import NAMES as N
from runbook_lib.contract.names import not_exposed, series_in
from runbook_lib.evidence.panels import (
    Scope,
    cache_hit_q,
    error_rate_q,
    memory_percent_q,
    quantile_q,
    trend,
)
from runbook_lib.evidence.prom import (
    NO_DATA,
    SIGNAL_LABEL,
    Failure,
    Prom,
    QueryResult,
    ask_ranges,
    joined,
)

TREND_WINDOW = timedelta(minutes=60)  # a leak shows as a steady climb over this
TREND_STEP_S = 15.0  # one point per scrape: jumps between scrapes stay visible
# The service's level before the incident is read from this window: a fault that began up to
# an hour and a half ago still leaves a healthy half hour in it ...
BASELINE_WINDOW = timedelta(minutes=120)
BASELINE_STEP_S = 60.0
# ... as a low quantile of what rises with trouble (latency) and a high one of what falls
# (the hit rate): the quiet stretch of the window, not one lucky scrape.
BASELINE_QUANTILE = 0.1


@dataclass
class Signals:
    values: dict[str, object] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    window: str = "15m"
    series: dict[str, tuple[str, ...]] = field(default_factory=dict)  # signal -> metrics read

    def get(self, name: str) -> object | None:
        return self.values.get(name)

    def why_missing(self, name: str) -> str:
        why = self.missing.get(name, "no data")
        reads = self.series.get(name)
        return f"{why} (reads {', '.join(reads)})" if reads else why


def _queries(s: Scope, w: str) -> dict[str, tuple[str, str | None]]:
    """name -> (PromQL, label to split by or None)."""
    sel = s.sel()
    return {
        "up": (f"max({N.up}{sel})", None),
        "up_min": (f"min(min_over_time({N.up}{sel}[{w}]))", None),
        "requests": (f"sum(increase({N.requests}{sel}[{w}]))", None),
        "successes": (f"sum(increase({N.requests}{s.sel(status='success')}[{w}]))", None),
        "error_rate": (error_rate_q(s), None),
        "errors_by_type": (f"sum by (error_type) (increase({N.errors}{sel}[{w}]))", "error_type"),
        "errors_by_tool": (f"sum by (tool) (increase({N.errors}{sel}[{w}]))", "tool"),
        "errors_by_tool_type": (
            f"sum by (tool, error_type) (increase({N.errors}{sel}[{w}]))",
            "tool,error_type",
        ),
        "requests_by_tool": (f"sum by (tool) (rate({N.requests}{sel}[{w}]))", "tool"),
        "p95": (quantile_q(s, 0.95), None),
        "p95_by_tool": (quantile_q(s, 0.95, by="tool"), "tool"),
        "cpu": (f"max(rate({N.cpu}{sel}[5m]))", None),
        "memory_percent": (memory_percent_q(s), None),
        "memory_percent_peak": (
            f"100 * max(max_over_time({N.rss}{sel}[{w}])) / {s.limit()}",
            None,
        ),
        "cache_hit_rate": (cache_hit_q(s, w), None),
        "evictions_per_miss": (
            f"sum(increase({N.cache_evictions}{sel}[{w}])) / "
            f"(sum(increase({N.cache_misses}{sel}[{w}])) > 0)",
            None,
        ),
        "cache_misses": (f"sum(increase({N.cache_misses}{sel}[{w}]))", None),
        "cache_size": (f"max({N.cache_size}{sel})", None),
        "cache_size_cv": (
            f"max(stddev_over_time({N.cache_size}{sel}[5m])) / "
            f"(max(avg_over_time({N.cache_size}{sel}[5m])) > 0)",
            None,
        ),
        "cache_memory_share": (f"max({N.cache_memory}{sel}) / (max({N.rss}{sel}) > 0)", None),
        "slow_query_rate": (f"sum(rate({N.slow_queries}{sel}[{w}]))", None),
        "query_p95": (quantile_q(s, 0.95, w=w, metric=N.query.removesuffix("_total")), None),
        "recalc_p95": (quantile_q(s, 0.95, w=w, metric=N.recalc), None),
        "screenshot_p95": (quantile_q(s, 0.95, w=w, metric=N.screenshot), None),
        "libreoffice": (f"max({N.libreoffice}{sel})", None),
        "forks": (f"max({N.active_forks}{sel})", None),
        "open_fds": (f"max({N.open_fds}{sel})", None),
        "max_fds": (f"max({N.max_fds}{sel})", None),
        "health": (f"min by (component) ({N.health}{sel})", "component"),
        "disk_used": (
            f"100 * (1 - max({N.fs_avail}{s.node_sel()}) / (max({N.fs_size}{s.node_sel()}) > 0))",
            None,
        ),
        "restarts": (f"max(changes({N.start_time}{sel}[{w}]))", None),
    }


def _history_queries(s: Scope) -> dict[str, tuple[str, str | None, bool]]:
    """The service's level before the incident, read over the baseline window:
    name -> (PromQL, label to split by, whether higher is healthier)."""
    return {
        "p95_by_tool_before": (quantile_q(s, 0.95, by="tool"), "tool", False),
        "cache_hit_rate_before": (cache_hit_q(s), None, True),
    }


def _range_queries(s: Scope) -> dict[str, str]:
    sel = s.sel()
    return {
        "memory_series": f"max({N.rss}{sel})",
        "fds_series": f"max({N.open_fds}{sel})",
        "cache_memory_series": f"max({N.cache_memory}{sel})",
        "libreoffice_series": f"max({N.libreoffice}{sel})",
    }


def collect(prom: Prom, scope: Scope, at: datetime, lookback_minutes: int = 15) -> Signals:
    """Every signal at `at`; trends over the hour before it."""
    w = f"{int(lookback_minutes)}m"
    out = Signals(window=w)
    start = at - TREND_WINDOW
    queries = _queries(scope, w)
    answers = ask_together(lambda q: prom.instant(q, at), _exposed(out, {
        name: query for name, (query, _) in queries.items()}))  # fmt: skip
    for name, res in answers.items():
        label = queries[name][1]
        if not res.ok:
            out.missing[name] = res.reason
            continue
        out.values[name] = res.by(label) if label else res.last()
    history = _history_queries(scope)
    levels = ask_ranges(prom, _exposed(out, {name: q for name, (q, _, _) in history.items()}),
                        at - BASELINE_WINDOW, at, step=BASELINE_STEP_S)  # fmt: skip
    for level, res in levels.items():
        _, label, healthy_high = history[level]
        found = _baseline(res.frame, label, healthy_high) if res.ok else None
        if found is None:
            out.missing[level] = res.reason or "no data in the baseline window"
        else:
            out.values[level] = found
    trends = ask_together(lambda q: prom.range(q, start, at, step=TREND_STEP_S),
                          _exposed(out, _range_queries(scope)))  # fmt: skip
    for name, res in trends.items():
        if res.ok and len(res.frame) >= 3:
            out.values[name] = res.frame[["timestamp", "value"]]
        else:
            out.missing[name] = res.reason or "fewer than 3 points in the last hour"
    _derive(out, scope, lookback_minutes)
    return out


def _exposed(out: Signals, queries: dict[str, str]) -> dict[str, str]:
    """The queries whose series the metrics profile exposes; the others missing in `out`,
    naming what they lack."""
    sent = {}
    for name, query in queries.items():
        out.series[name] = series_in(query)
        if lacking := not_exposed(out.series[name]):
            out.missing[name] = lacking
        else:
            sent[name] = query
    return sent


def ask_together(
    ask: Callable[[str], QueryResult], queries: dict[str, str]
) -> dict[str, QueryResult]:
    """Each query's answer, from one request for all of them: each query's series marked with
    its name by `label_replace` and the queries joined by `or` (their series never share a
    label set), as Prometheus would have answered each alone (a record's requests: 54 -> 21,
    less client and server work per request). When the joined query fails
    though Prometheus answered (a record saved before, which asked one query at a time; no
    series at all; a query refused), each query is asked alone."""
    res = ask(joined(queries)) if len(queries) > 1 else None
    if res is not None and res.failure is Failure.UNREACHABLE:
        return {name: replace(res, query=query) for name, query in queries.items()}
    if res is None or not res.ok:
        return {name: ask(query) for name, query in queries.items()}
    # Each query's rows taken by position from the answer without its marking column
    # (a pandas group, column drop and index per query: 13.5 ms for a record's two joined
    # answers of 25 and 10 queries, 4.9 ms so; py-spy put the split at 3% of a kernel's CPU).
    marks = res.frame[SIGNAL_LABEL].to_numpy()
    rest = res.frame.drop(columns=SIGNAL_LABEL)
    labels = tuple(c for c in res.labels if c != SIGNAL_LABEL)  # others' empty in its rows
    out = {}
    for name, query in queries.items():
        rows = rest.take(np.flatnonzero(marks == name)).reset_index(drop=True)
        failure, reason = (Failure.NO_DATA, NO_DATA) if rows.empty else (None, "")
        out[name] = QueryResult(query, rows, failure, reason, res.step_s, labels)
    return out


def _baseline(frame: pd.DataFrame, label: str | None, healthy_high: bool) -> object | None:
    """The quiet level of a series over the baseline window (per value of `label`)."""
    q = 1 - BASELINE_QUANTILE if healthy_high else BASELINE_QUANTILE
    frame = frame.dropna(subset=["value"])
    if frame.empty:
        return None
    if label is None:
        return float(frame["value"].quantile(q))
    if label not in frame:
        return None
    return {str(k): float(v) for k, v in frame.groupby(label)["value"].quantile(q).items()}


def _derive(sig: Signals, scope: Scope, lookback_minutes: int) -> None:
    """Trend figures: over the hour (is it a steady climb?) and over the lookback window
    (is it still climbing? does it jump between scrapes?)."""
    derived = {
        "memory_series": ("memory_growth_mb_h", "memory_r2", "memory_recent_growth_mb_h",
                          "memory_jumps"),
        "fds_series": ("fds_growth_per_h", "fds_r2"),
    }  # fmt: skip
    for source, names in derived.items():  # figures of a series that is missing miss too
        if source in sig.missing:
            for name in names:
                sig.missing[name] = sig.missing[source]
                sig.series[name] = sig.series.get(source, ())
    mem = sig.values.get("memory_series")
    if isinstance(mem, pd.DataFrame):
        mem = mem.sort_values("timestamp")
        t = trend(mem)
        sig.values["memory_growth_mb_h"] = t.slope_per_h / 1e6 if t else None
        sig.values["memory_r2"] = t.r2 if t else None
        recent = mem[
            mem["timestamp"] >= mem["timestamp"].max() - pd.Timedelta(minutes=lookback_minutes)
        ]
        rt = trend(recent)
        sig.values["memory_recent_growth_mb_h"] = rt.slope_per_h / 1e6 if rt else None
        steps = np.abs(np.diff(recent["value"].to_numpy(dtype=float)))
        # per scrape: a point that repeats the one before is the same scrape read twice (a
        # query step finer than the scrape interval); memory that never moved never jumped
        moved = steps[steps > 0]
        big = moved > 0.1 * scope.memory_limit_bytes
        jumps = float(big.mean()) if len(moved) else 0.0
        sig.values["memory_jumps"] = jumps if len(steps) else None
    fds = sig.values.get("fds_series")
    if isinstance(fds, pd.DataFrame):
        t = trend(fds)
        sig.values["fds_growth_per_h"] = t.slope_per_h if t else None
        sig.values["fds_r2"] = t.r2 if t else None
