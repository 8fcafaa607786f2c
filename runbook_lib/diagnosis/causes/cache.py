"""Cache hit rate: the cache too small, TTL too short, poor keys, varied requests."""

from __future__ import annotations

from runbook_lib.diagnosis.engine import (
    Evidence,
    Fact,
    log_fact,
    log_seen,
    metric,
    pct,
    rule,
)


@rule(
    "cache_hit_rate",
    "cache_too_small",
    commands=("# raise CACHE_MAX_SIZE (e.g. 2000), then\ndocker restart {container}"),
)
def cache_too_small(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v >= 0.5,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            2,
            required=True,
        ),
        metric(
            ev,
            "cache_size_cv",
            lambda v: v <= 0.02,
            lambda v: f"the cache size is flat (variation {pct(v)}): it sits at its maximum",
            2,
        ),
        log_seen(ev, "cache_evict_capacity", "evictions for capacity", 2, at_least=3),
        log_fact(
            ev,
            lambda lf: lf.counts.get("cache_evict_ttl", 0) == 0,
            lambda lf: f"{lf.counts.get('cache_evict_ttl', 0)} evictions for TTL",
            1,
            sign=False,
        ),
    ]


@rule(
    "cache_hit_rate",
    "ttl_too_short",
    commands=("# raise CACHE_TTL (e.g. 3600); use longer TTLs for hot workbooks"),
)
def ttl_too_short(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v >= 0.5,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            2,
            required=True,
        ),
        metric(
            ev,
            "cache_size_cv",
            lambda v: v > 0.05,
            lambda v: f"the cache size varies by {pct(v)}: evictions happen below the cap",
            2,
        ),
        log_seen(ev, "cache_evict_ttl", "evictions for TTL expiry", 2, at_least=3),
        log_fact(
            ev,
            lambda lf: lf.counts.get("cache_evict_capacity", 0) == 0,
            lambda lf: f"{lf.counts.get('cache_evict_capacity', 0)} evictions for capacity",
            1,
            sign=False,
        ),
    ]


@rule(
    "cache_hit_rate",
    "poor_cache_keys",
    commands=("# normalise cache keys: drop timestamps and volatile query parameters"),
)
def poor_cache_keys(ev: Evidence) -> list[Fact]:
    return [
        log_fact(
            ev,
            lambda lf: None if lf.keys_per_workbook is None else lf.keys_per_workbook >= 2,
            lambda lf: (
                f"each missed workbook was looked up under "
                f"{lf.keys_per_workbook:.1f} different keys on average"
            ),
            3,
            required=True,
            what="cache keys per workbook in the logs",
        ),
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v < 0.5,
            lambda v: f"only {pct(v)} of misses evict: the cache has room",
            1,
        ),
    ]


@rule(
    "cache_hit_rate",
    "high_request_variance",
    commands=("# cache common sub-results; warm the cache for frequent workbooks"),
)
def high_request_variance(ev: Evidence) -> list[Fact]:
    return [
        log_fact(
            ev,
            lambda lf: (
                None if lf.distinct_workbook_ratio is None else lf.distinct_workbook_ratio >= 0.8
            ),
            lambda lf: (
                f"{pct(lf.distinct_workbook_ratio)} of cache misses are for a "
                "workbook not seen before in the window"
            ),
            3,
            required=True,
            what="distinct workbooks among cache misses",
        ),
        log_fact(
            ev,
            lambda lf: None if lf.keys_per_workbook is None else lf.keys_per_workbook < 1.5,
            lambda lf: f"{lf.keys_per_workbook:.1f} keys per workbook",
            1,
            what="keys per workbook",
        ),
    ]
