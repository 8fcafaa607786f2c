"""Every metric name the runbooks read, in one table. A site whose GGEN MCP exposes other
names edits this file (or sets RUNBOOK_METRIC_NAMES to a JSON object of overrides)."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

from runbook_lib.contract import config


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
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.name.endswith("job") and f.name not in ("profile", "lacks")
        }

    profile: str = "contract"
    lacks: frozenset[str] = frozenset()  # fields whose series this profile does not expose

    def lacked(self) -> frozenset[str]:
        """The metric names of the series this profile does not expose."""
        return frozenset(getattr(self, f) for f in self.lacks)


# What the GGEN MCP server itself exposes (its src/metrics.rs, Rust prometheus-client 0.22):
# mcp_* names, and every counter sample written as NAME_total by that crate's text encoder,
# so a counter registered as mcp_requests_total is stored as mcp_requests_total_total. It has
# no eviction, cache-memory-share, health, query, template, screenshot or slow-query series,
# and no process_* series unless a process collector is added. A lacked field keeps the
# contract's name, so queries stay well-formed and can be recognised and not sent.
PROFILES: dict[str, MetricNames] = {
    "contract": MetricNames(),
    "server": MetricNames(
        requests="mcp_requests_total_total",
        errors="mcp_errors_total_total",
        duration="mcp_request_duration_seconds",
        active_requests="mcp_active_requests",
        cache_hits="mcp_cache_hits_total_total",
        cache_misses="mcp_cache_misses_total_total",
        cache_size="mcp_workbooks_total",
        cache_memory="mcp_cache_size_bytes",
        active_forks="mcp_forks_total",
        libreoffice="mcp_libreoffice_processes_active",
        recalc="mcp_recalc_duration_seconds",
        profile="server",
        lacks=frozenset(
            {
                "cache_evictions",
                "rss",
                "heap_used",
                "heap_total",
                "cpu",
                "open_fds",
                "max_fds",
                "start_time",
                "query",
                "template",
                "screenshot",
                "slow_queries",
                "health",
            }
        ),  # fmt: skip
    ),
}


def load(profile: str | None = None) -> MetricNames:
    """The names of `profile` (RUNBOOK_METRICS_PROFILE or metrics_profile in runbook.toml,
    default contract), with the
    per-name overrides of RUNBOOK_METRIC_NAMES on top."""
    name = profile or str(config.value("metrics_profile")) or "contract"
    if name not in PROFILES:
        raise ValueError(
            f"RUNBOOK_METRICS_PROFILE={name!r} is not a profile; use one of {', '.join(PROFILES)}"
        )
    overrides = os.environ.get("RUNBOOK_METRIC_NAMES", "")
    base = PROFILES[name]
    return replace(base, **json.loads(overrides)) if overrides else base


class ActiveNames:
    """The names in use. Every module reads them through this one object, so switching the
    profile (`use`) switches the queries everywhere."""

    def __init__(self) -> None:
        try:
            self.current = load()
        except ValueError:  # a bad runbook.toml or profile: the command says so, on one line
            self.current = PROFILES["contract"]

    def __getattr__(self, name: str):
        return getattr(self.current, name)


NAMES = ActiveNames()


@contextmanager
def use(profile: str) -> Iterator[MetricNames]:
    """Run with `profile`'s names (tests, the simulator, `runbook doctor`)."""
    before = NAMES.current
    NAMES.current = load(profile)
    try:
        yield NAMES.current
    finally:
        NAMES.current = before


def not_exposed(series: tuple[str, ...]) -> str:
    """Why a query is not sent: the series it reads that the metrics profile lacks ("" when
    it lacks none)."""
    lacked = [s for s in series if s in NAMES.lacked()]
    if not lacked:
        return ""
    return (
        f"not exposed by the {NAMES.profile} profile: {', '.join(lacked)} "
        "(RUNBOOK_METRICS_PROFILE; `runbook doctor` says which series exist)"
    )


def series_in(query: str) -> tuple[str, ...]:
    """The contract's metric names a PromQL expression reads, so that a gap can name them."""
    return _series_in(query, frozenset(NAMES.metrics().values()))


# A run of name characters; a metric name is read where such a run starts.
_RUN = re.compile(r"(?<![\w:])[\w:]+")
# Inside a run, where a name may end: a word boundary (between a word character and a
# colon, or after the run's last word character).
_END = re.compile(r"\b")
SUFFIXES = ("_bucket", "_count", "_sum")  # a histogram's series, read as its base name


@functools.lru_cache(maxsize=1024)
def _series_in(query: str, names: frozenset[str]) -> tuple[str, ...]:
    """Cached within a kernel: a run asks it of every query it sends and again of those it
    repeats. One pass over the query's names (its runs of name characters, each cut where a
    name may end), looked up in `names`, instead of a regex scan per metric name."""
    if not _tokens_hold(names):
        return _scanned(query, names)
    found = set()
    for run in set(_RUN.findall(query)):
        for token in _ends(run) if ":" in run else (run,):
            if token in names:
                found.add(token)
            if token.endswith(SUFFIXES):
                found.update(b for s in SUFFIXES if (b := token.removesuffix(s)) in names)
    return tuple(sorted(found))


@functools.cache
def _tokens_hold(names: frozenset[str]) -> bool:
    """Whether every name is a run of name characters (else each is scanned for)."""
    return all(_RUN.fullmatch(n) for n in names)


def _ends(run: str) -> list[str]:
    """The names a run with colons may start with: its prefixes ending at a word boundary."""
    return [run[: m.start()] for m in _END.finditer(run) if m.start()]


def _scanned(query: str, names: frozenset[str]) -> tuple[str, ...]:
    """The names `query` reads, a regex scan per name: a name may start at the start of a
    run of name characters and end at a word boundary, its histogram suffix between."""
    found = {
        n for n in names if re.search(rf"(?<![\w:]){re.escape(n)}(?:_bucket|_count|_sum)?\b", query)
    }
    return tuple(sorted(found))


def in_profile(query: str) -> str:
    """A query written with the contract's names (as the notebooks' cells are), with the
    names of the profile in use: `ggen_mcp_errors_total` becomes `mcp_errors_total_total` on
    the server profile. Names the profile lacks stay, so `not_exposed` can name them."""
    contract = PROFILES["contract"].metrics()
    for field_name, name in sorted(contract.items(), key=lambda kv: -len(kv[1])):
        now = getattr(NAMES, field_name)
        if now != name and field_name not in NAMES.lacks:
            query = re.sub(
                rf"(?<![\w:]){re.escape(name)}(?=(?:_bucket|_count|_sum)?\b)", now, query
            )
    return query
