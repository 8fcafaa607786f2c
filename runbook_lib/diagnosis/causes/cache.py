"""Cache hit rate: the cache too small, TTL too short, poor keys, varied requests."""

from __future__ import annotations

from runbook_lib.diagnosis.attribution import Attribution, pct
from runbook_lib.diagnosis.constants import (
    EVICTING,
    FEW_KEYS,
    MIN_EVENTS,
    MIN_EVICT_LINES,
    NEW_WORKBOOKS,
    PINNED,
    POOR_KEYS,
    VARYING,
)
from runbook_lib.diagnosis.engine import LITTLE, attributes, rule
from runbook_lib.diagnosis.facts import (
    explains,
    log_fact,
    log_seen,
    metric,
)
from runbook_lib.diagnosis.model import Evidence, Fact

CAUSES = ("cache_too_small", "ttl_too_short", "poor_cache_keys", "high_request_variance")


@attributes("cache_hit_rate", needs=("cache_misses",))
def cache_attribution(ev: Evidence) -> Attribution | None:
    """The misses of the window: those that evicted a workbook (for capacity or for TTL, by
    the logs' reasons, else by whether the size sits at its cap or falls) and those that did
    not (a workbook under yet another key, or a workbook never seen before)."""
    misses = ev.sig("cache_misses")
    if not misses or misses < MIN_EVENTS:
        return None
    att = Attribution(
        "cache_hit_rate", f"cache misses in the last {ev.signals.window}", misses, CAUSES, digits=0
    )
    per_miss = ev.sig("evictions_per_miss")
    if per_miss is None:
        why = f"evictions: {ev.signals.why_missing('evictions_per_miss')}"
        att.cannot_judge("cache_too_small", why)
        att.cannot_judge("ttl_too_short", why)
        evicting = 0.0
    else:
        evicting = min(1.0, per_miss) * misses
        _evictions(ev, att, evicting)
    keys = ev.logs.cache_keys if ev.logs else None
    if keys is None:
        why = f"no log lines naming workbook and key ({ev.logs_missing if ev.logs is None else 'too few'})"
        att.cannot_judge("poor_cache_keys", why)
        att.cannot_judge("high_request_variance", why)
        return att
    # Of the misses the logs name: those for a workbook already seen under another key, and
    # those for a workbook not seen before (distinct workbook-key pairs, not key strings).
    seen, books = keys["identified"], keys["workbooks"]
    pairs = keys["keys_per_workbook"] * books
    rest = misses - evicting
    poor = min(rest, misses * max(0.0, pairs - books) / seen)
    att.claim("poor_cache_keys", poor, "misses for a workbook already cached under another key")
    att.claim(
        "high_request_variance",
        min(rest - poor, misses * books / seen),
        "misses for workbooks not asked for before",
    )
    return att


def _evictions(ev: Evidence, att: Attribution, evicting: float) -> None:
    counts = ev.logs.counts if ev.logs else {}
    cap, ttl = counts.get("cache_evict_capacity", 0), counts.get("cache_evict_ttl", 0)
    if cap + ttl >= MIN_EVICT_LINES:
        att.claim("cache_too_small", evicting * cap / (cap + ttl), "evictions for capacity")
        att.claim("ttl_too_short", evicting * ttl / (cap + ttl), "evictions for TTL expiry")
        return
    cv = ev.sig("cache_size_cv")
    if cv is not None and cv <= PINNED:
        att.claim("cache_too_small", evicting, "evictions while the cache sits at its cap")
    elif cv is not None and cv > VARYING:
        att.claim("ttl_too_short", evicting, "evictions below the cap (expiry)")
    else:
        why = "no eviction reasons in the logs, and the size is neither flat nor falling"
        att.cannot_judge("cache_too_small", why)
        att.cannot_judge("ttl_too_short", why)


@rule(
    "cache_hit_rate",
    "cache_too_small",
    commands=("# raise CACHE_MAX_SIZE (e.g. 2000), then\n{restart}"),
)
def cache_too_small(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v >= EVICTING,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            weight=2,
            required=True,
        ),
        metric(
            ev,
            "cache_size_cv",
            lambda v: v <= PINNED,
            lambda v: f"the cache size is flat (variation {pct(v)}): it sits at its maximum",
            weight=2,
        ),
        log_seen(
            ev, "cache_evict_capacity", "evictions for capacity", weight=2, at_least=MIN_EVICT_LINES
        ),
        log_fact(
            ev,
            lambda lf: lf.counts.get("cache_evict_ttl", 0) == 0,
            lambda lf: f"{lf.counts.get('cache_evict_ttl', 0)} evictions for TTL",
            weight=1,
            sign=False,
        ),
        explains(ev, "cache_too_small", at_least=LITTLE),
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
            lambda v: v >= EVICTING,
            lambda v: f"{pct(v)} of cache misses evict a workbook",
            weight=2,
            required=True,
        ),
        metric(
            ev,
            "cache_size_cv",
            lambda v: v > VARYING,
            lambda v: f"the cache size varies by {pct(v)}: evictions happen below the cap",
            weight=2,
        ),
        log_seen(
            ev, "cache_evict_ttl", "evictions for TTL expiry", weight=2, at_least=MIN_EVICT_LINES
        ),
        log_fact(
            ev,
            lambda lf: lf.counts.get("cache_evict_capacity", 0) == 0,
            lambda lf: f"{lf.counts.get('cache_evict_capacity', 0)} evictions for capacity",
            weight=1,
            sign=False,
        ),
        explains(ev, "ttl_too_short", at_least=LITTLE),
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
            lambda lf: None if lf.keys_per_workbook is None else lf.keys_per_workbook >= POOR_KEYS,
            lambda lf: (
                f"each missed workbook was looked up under "
                f"{lf.keys_per_workbook:.1f} different keys on average"
            ),
            weight=3,
            required=True,
            what="cache keys per workbook in the logs",
        ),
        metric(
            ev,
            "evictions_per_miss",
            lambda v: v < EVICTING,
            lambda v: f"only {pct(v)} of misses evict: the cache has room",
            weight=1,
        ),
        explains(ev, "poor_cache_keys", at_least=LITTLE),
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
                None
                if lf.distinct_workbook_ratio is None
                else lf.distinct_workbook_ratio >= NEW_WORKBOOKS
            ),
            lambda lf: (
                f"{pct(lf.distinct_workbook_ratio)} of cache misses are for a "
                "workbook not seen before in the window"
            ),
            weight=3,
            required=True,
            what="distinct workbooks among cache misses",
        ),
        log_fact(
            ev,
            lambda lf: None if lf.keys_per_workbook is None else lf.keys_per_workbook < FEW_KEYS,
            lambda lf: f"{lf.keys_per_workbook:.1f} keys per workbook",
            weight=1,
            what="keys per workbook",
        ),
        explains(ev, "high_request_variance", at_least=LITTLE),
    ]
