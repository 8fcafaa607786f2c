"""The runbook's "Common Causes", one rule each, keyed by the routing table's cause ids."""

from __future__ import annotations

from runbook_lib.diagnosis import (
    Evidence,
    Fact,
    container_fact,
    down,
    errors_share,
    host_fact,
    log_fact,
    log_seen,
    log_share,
    metric,
    pct,
    rule,
    unhealthy,
)

# ---------------------------------------------------------------------------- service down


@rule("service_down", "process_crashed")
def process_crashed(ev: Evidence) -> list[Fact]:
    return [
        down(ev),
        log_seen(ev, "fatal", "a fatal error / unhandled exception", 2),
        container_fact(
            ev,
            lambda c: bool(c.exit_code) and not c.oom_killed,
            lambda c: (
                f"container {c.name} is {c.status}, exit code {c.exit_code}, "
                f"OOMKilled={c.oom_killed}"
            ),
            2,
        ),
        metric(
            ev,
            "memory_percent_peak",
            lambda v: v < 90,
            lambda v: f"memory peaked at {v:.0f}% of the limit before the stop",
            1,
            sign=False,
        ),
        log_fact(
            ev,
            lambda lf: lf.counts.get("eaddrinuse", 0) == 0,
            lambda lf: f"{lf.counts.get('eaddrinuse', 0)} EADDRINUSE lines",
            1,
            sign=False,
        ),
    ]


@rule("service_down", "port_in_use")
def port_in_use(ev: Evidence) -> list[Fact]:
    return [
        down(ev),
        log_seen(ev, "eaddrinuse", "EADDRINUSE (port already in use)", 3),
        host_fact(
            ev,
            _port_held_by_other,
            lambda h: (
                "listening on the service port: "
                + ", ".join(f"{x['name']} (pid {x['pid']})" for x in h.get("listeners", []))
                or "none"
            ),
            3,
            what="who listens on the service port",
        ),
    ]


def _port_held_by_other(h: dict) -> bool | None:
    if "listeners" not in h:
        return None
    return any(x.get("pid") != h.get("service_pid") for x in h["listeners"])


@rule("service_down", "oom_killed")
def oom_killed(ev: Evidence) -> list[Fact]:
    return [
        down(ev),
        metric(
            ev,
            "memory_percent_peak",
            lambda v: v >= 90,
            lambda v: f"memory peaked at {v:.0f}% of the limit before the stop",
            2,
        ),
        host_fact(
            ev,
            lambda h: bool(h["oom_events"]) if "oom_events" in h else None,
            lambda h: (
                f"kernel log: {len(h['oom_events'])} OOM kill lines"
                + (f", e.g. {h['oom_events'][0][:90]}" if h["oom_events"] else "")
            ),
            3,
            what="OOM kills in the kernel log",
        ),
        container_fact(
            ev,
            lambda c: bool(c.oom_killed),
            lambda c: f"container {c.name} OOMKilled={c.oom_killed}",
            3,
        ),
        log_seen(ev, "oom_killed", "'Killed' / out of memory", 1),
    ]


@rule("service_down", "dependency_unavailable")
def dependency_unavailable(ev: Evidence) -> list[Fact]:
    return [
        unhealthy(ev, "database", 2),
        log_share(ev, {"connection_refused", "db_timeout"}, "connection refused or timed out", 2),
        errors_share(ev, {"io_error", "timeout"}, "I/O errors and timeouts", 1, required=False),
        metric(
            ev,
            "successes",
            lambda v: v == 0,
            lambda v: f"{v:.0f} successful requests in the window",
            1,
        ),
    ]


# ---------------------------------------------------------------------------- error rate


@rule("high_error_rate", "invalid_input")
def invalid_input(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, {"invalid_input", "parse_error"}, "validation and parse errors"),
        log_share(ev, {"validation_error", "parse_error"}, "validation or parse errors", 1),
    ]


@rule("high_error_rate", "database_connection")
def database_connection(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, {"io_error", "timeout"}, "I/O errors and timeouts", 2),
        unhealthy(ev, "database"),
        log_share(ev, {"connection_refused", "db_timeout"}, "database connection failures"),
        _tools_share(ev, {"read_table", "list_workbooks"}, "database-backed tools"),
    ]


@rule("high_error_rate", "third_party_api")
def third_party_api(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, {"unknown", "timeout"}, "unclassified errors and timeouts", 1),
        unhealthy(ev, "external_api"),
        log_share(ev, {"http_5xx"}, "HTTP 5xx answers from an external API", 3),
    ]


@rule("high_error_rate", "libreoffice_failure")
def libreoffice_failure(ev: Evidence) -> list[Fact]:
    return [
        errors_share(ev, {"recalc_error", "fork_error"}, "recalc and fork errors", 2),
        unhealthy(ev, "libreoffice"),
        log_share(ev, {"libreoffice_start_failed"}, "'Failed to start LibreOffice'"),
        _tools_share(ev, {"recalc", "screenshot"}, "LibreOffice tools (recalc, screenshot)"),
    ]


def _tools_share(ev: Evidence, tools: set[str], label: str) -> Fact:
    by = ev.sig("errors_by_tool") or {}
    total = sum(by.values())
    if total <= 0:
        return Fact(None, f"errors of {label}", 1, False, "no errors by tool in the window")
    s = sum(v for k, v in by.items() if k in tools) / total
    return Fact(s >= 0.8, f"{pct(s)} of errors come from {label}", 1)


# ---------------------------------------------------------------------------- latency


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
    return Fact(worst < 5, f"other tools' p95 is at most {worst:.1f} s", 2)


@rule("high_latency", "cpu_saturation")
def cpu_saturation(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "cpu",
            lambda v: v >= 0.8,
            lambda v: f"the process used {v:.2f} CPU cores over the last 5m (threshold 0.8)",
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


@rule("high_latency", "memory_pressure")
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


@rule("high_latency", "slow_database_queries")
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


@rule("high_latency", "cache_thrashing")
def cache_thrashing(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "cache_hit_rate",
            lambda v: v < 50,
            lambda v: f"cache hit rate is {v:.0f}% (threshold 50%)",
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


@rule("high_latency", "libreoffice_bottleneck")
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


# ---------------------------------------------------------------------------- memory


@rule("memory", "memory_leak")
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


@rule("memory", "cache_too_large")
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


@rule("memory", "large_payloads")
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


@rule("memory", "too_many_libreoffice_processes")
def too_many_libreoffice_processes(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "libreoffice",
            lambda v: v > 10,
            lambda v: f"{v:.0f} LibreOffice processes (threshold 10)",
            3,
            required=True,
        ),
        host_fact(
            ev,
            _soffice_rss,
            lambda h: (
                f"soffice processes hold "
                f"{sum(p['rss_bytes'] for p in _named(h, 'soffice')) / 2**20:.0f} MiB"
            ),
            1,
            what="memory held by soffice",
        ),
    ]


def _soffice_rss(h: dict) -> bool | None:
    if "processes" not in h:
        return None
    return sum(p["rss_bytes"] for p in _named(h, "soffice")) > 512 * 2**20


def _named(h: dict, name: str) -> list[dict]:
    return [p for p in h.get("processes", []) if p.get("name") == name]


# ---------------------------------------------------------------------------- cache


@rule("cache_hit_rate", "cache_too_small")
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


@rule("cache_hit_rate", "ttl_too_short")
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


@rule("cache_hit_rate", "poor_cache_keys")
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


@rule("cache_hit_rate", "high_request_variance")
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


# ---------------------------------------------------------------------------- process leaks

LEAK_NAMES = {"libreoffice_leak": "soffice", "fork_leak": "ggen-mcp-fork"}


def _procs(ev: Evidence, runbook: str) -> list[dict] | None:
    if ev.host is None or "processes" not in ev.host:
        return None
    return _named(ev.host, LEAK_NAMES[runbook])


def _leak_rule(runbook: str, kind: str):
    def facts(ev: Evidence) -> list[Fact]:
        gauge = "libreoffice" if runbook == "libreoffice_leak" else "forks"
        name = LEAK_NAMES[runbook]
        procs = _procs(ev, runbook)
        service = (ev.host or {}).get("service_pid")
        if procs is None:
            found = Fact(
                None,
                f"{kind} {name} processes",
                3,
                True,
                f"{kind} {name} processes: {ev.host_missing if ev.host is None else ''}"
                "needs the host's process list (live run or host snapshot)",
            )
        else:
            pick = {
                "orphaned": lambda p: p["ppid"] == 1 and p["status"] != "zombie",
                "zombie": lambda p: p["status"] == "zombie",
                "hung": lambda p: (
                    p["status"] != "zombie"
                    and p["ppid"] == service
                    and p["age_s"] > 300
                    and p["cpu_seconds"] < 0.01 * p["age_s"]
                ),
            }[kind]
            hits = [p for p in procs if pick(p)]
            pids = ", ".join(str(p["pid"]) for p in hits[:8])
            found = Fact(
                len(hits) >= 3,
                f"{len(hits)} of {len(procs)} {name} processes are "
                f"{kind}" + (f" (pids {pids}{', ...' if len(hits) > 8 else ''})" if hits else ""),
                3,
                True,
            )
        return [
            found,
            metric(
                ev,
                gauge,
                lambda v: v > 10,
                lambda v: f"{v:.0f} {name} processes counted by the service",
                1,
            ),
        ]

    return facts


for _rb in LEAK_NAMES:
    for _kind in ("orphaned", "zombie", "hung"):
        rule(_rb, f"{_kind}_processes")(_leak_rule(_rb, _kind))


# ---------------------------------------------------------------------------- descriptors


@rule("fd_leak", "fd_leak")
def fd_leak(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "fds_growth_per_h",
            lambda v: v > 0,
            lambda v: f"open descriptors grew {v:+.0f}/h over the last hour",
            2,
            required=True,
        ),
        metric(
            ev,
            "fds_r2",
            lambda v: v >= 0.9,
            lambda v: f"the growth is steady (linear fit R² {v:.2f})",
            2,
        ),
        metric(
            ev,
            "max_fds",
            lambda v: v >= 4096,
            lambda v: f"the descriptor limit is {v:.0f}",
            1,
            sign=False,
        ),
    ]


@rule("fd_leak", "fd_limit_too_low")
def fd_limit_too_low(ev: Evidence) -> list[Fact]:
    return [
        metric(
            ev,
            "max_fds",
            lambda v: v < 4096,
            lambda v: f"the descriptor limit is {v:.0f} (the runbook suggests 4096+)",
            3,
            required=True,
        ),
        metric(
            ev,
            "fds_r2",
            lambda v: v < 0.6,
            lambda v: f"open descriptors follow load rather than grow steadily (fit R² {v:.2f})",
            1,
        ),
    ]


# ---------------------------------------------------------------------------- disk

DISK_DIRS = {
    "log_files_growing": "/var/log/ggen-mcp",
    "prometheus_data_growing": "/var/lib/prometheus",
    "temp_files_not_cleaned": "/tmp",
}


def _disk_rule(cause: str, path: str):
    def facts(ev: Evidence) -> list[Fact]:
        out = [
            host_fact(
                ev,
                lambda h: _grows_most(h, path),
                lambda h: _growth_text(h, path),
                3,
                required=True,
                what=f"growth of {path}",
            )
        ]
        if cause == "temp_files_not_cleaned":
            out.append(
                host_fact(
                    ev,
                    lambda h: h["temp_files"]["old_count"] >= 50 if "temp_files" in h else None,
                    lambda h: (
                        f"{h['temp_files']['old_count']} ggen-mcp-* temp files are older than a day"
                    ),
                    2,
                    what="old temp files",
                )
            )
        return out

    return facts


def _grows_most(h: dict, path: str) -> bool | None:
    growth = h.get("dir_growth_bytes_per_h") or h.get("dirs")
    if not growth or path not in growth:
        return None
    return max(growth, key=growth.get) == path


def _growth_text(h: dict, path: str) -> str:
    if h.get("dir_growth_bytes_per_h"):
        g = h["dir_growth_bytes_per_h"]
        return f"{path} grows {g[path] / 1e9:.1f} GB/h; fastest is {max(g, key=g.get)}"
    d = h["dirs"]
    return f"{path} holds {d[path] / 1e9:.1f} GB; largest is {max(d, key=d.get)}"


for _cause, _path in DISK_DIRS.items():
    rule("disk_usage", _cause)(_disk_rule(_cause, _path))
