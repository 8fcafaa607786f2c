"""The investigation steps of the runbooks, by name (`run.step("error_types")`): each shows
what the runbook's step looks at, from the run's panels and evidence."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pandas as pd
from IPython.display import Markdown, display

from runbook_lib.evidence import host, logs, panels
from runbook_lib.notebook.display import code, esc, num
from runbook_lib.notebook.fetching import data as panel_data
from runbook_lib.notebook.fetching import gather
from runbook_lib.notebook.header import charts
from runbook_lib.notebook.state import Session


def _service_running(run: Session) -> None:
    charts(run, "up")
    if not run.live_only("the process list"):
        return
    procs = host.processes("ggen-mcp")
    display(procs.to_frame() if len(procs) else Markdown("*No ggen-mcp process on this host.*"))
    if run.p.container:
        from runbook_lib.evidence import containers

        display(containers.state(run.p.container).to_frame())


def _service_logs(run: Session) -> None:
    spec = run.log_source
    if not spec:
        display(
            Markdown(
                "*No log source given: `log_file`, `container` or `log_unit` in "
                "runbook.toml (`runbook init --log-file/--log-container/--log-unit`).*"
            )
        )
        return
    start = run.at - timedelta(minutes=run.lookback_minutes)
    read = run.logs().read(start, run.at)
    if read.error:
        run.source_gap("logs", read.error)
        display(Markdown(f"*Could not read logs: {esc(read.error)}*"))
        return
    m = logs.match(read.lines)
    display(
        Markdown(
            f"{m.total} lines from {code(read.source)} between {start:%H:%M} and "
            f"{run.at:%H:%M} UTC."
        )
    )
    found = m.table()
    display(_matched(found[found["count"] > 0] if "count" in found else found))


def _matched(found: pd.DataFrame) -> pd.DataFrame:
    """The matched patterns as a reader takes them: the pattern a column like the others,
    its share of the error lines in percent."""
    shown = found.reset_index()
    if "error_share" in shown:
        shown["error_share"] = (100 * shown["error_share"]).round(1)
    return shown.rename(columns={"error_share": "% of error lines"})


def _system_resources(run: Session) -> None:
    charts(run, "cpu", "memory")
    if run.live_only("memory, load and disk"):
        display(host.memory().to_frame())
        display(host.load().to_frame())
        display(host.disks().to_frame())


def _network(run: Session) -> None:
    port = run.service_port
    inst = run.scope.instance or ""
    if not run.live_only("the health endpoint and listening ports"):
        return
    try:
        r = httpx.get(f"http://{inst}/health", timeout=3)
        display(
            Markdown(f"{code(f'GET http://{inst}/health')} → {r.status_code} {code(r.text[:200])}")
        )
    except httpx.HTTPError as exc:
        display(Markdown(f"{code(f'GET http://{inst}/health')} failed: {esc(str(exc))}"))
    if port:
        display(host.listeners(port).to_frame())


def _error_types(run: Session) -> None:
    charts(run, "errors_by_type")
    _shares(run, "errors_by_type", "error_type")


def _failing_tools(run: Session) -> None:
    charts(run, "errors_by_tool")
    _shares(run, "errors_by_tool", "tool")


def _shares(run: Session, panel: str, label: str) -> None:
    """Each series' share of the panel's total at the evaluation time (the last point), from
    the panel as its cell defined it."""
    data = panel_data(run, panel)
    if not data.ok:
        display(Markdown(f"*No data: {esc(data.gap())}*"))
        return
    last = data.frame.sort_values("timestamp").groupby("series")["value"].last()
    last = last[last > 0].sort_values(ascending=False)
    total = float(last.sum())
    if total <= 0:
        display(Markdown("*No errors at the evaluation time.*"))
        return
    column = data.panel.split_by or label
    display(
        pd.DataFrame(
            [
                {
                    column: k,
                    data.panel.unit: round(float(v), 3),
                    "share %": round(100 * v / total, 1),
                }
                for k, v in last.items()
            ]
        )
    )


def _latency_by_tool(run: Session) -> None:
    charts(run, "latency_by_tool")


def _system_load(run: Session) -> None:
    charts(run, "cpu")
    if run.live_only("the host load"):
        display(host.load().to_frame())


def _slow_queries(run: Session) -> None:
    ev = gather(run)
    q = ev.signals.get("query_p95")
    rate = ev.signals.get("slow_query_rate")
    display(
        Markdown(
            f"Database query p95: **{num(q, 's')}**, slow queries: "
            f"**{num(rate, '/s')}**; log lines with 'slow query': "
            f"**{ev.logs.counts.get('slow_query', 0) if ev.logs else 'no logs'}**."
        )
    )


def _memory_breakdown(run: Session) -> None:
    charts(run, "memory", "heap")
    share = gather(run).signals.get("cache_memory_share")
    display(
        Markdown(
            f"The workbook cache holds **{num(100 * share if share else None, '%')}**"
            " of resident memory."
        )
    )


def _memory_trend(run: Session) -> None:
    data = panel_data(run, "memory")
    t = panels.trend(data.frame, limit=100.0)
    display(
        Markdown(
            f"Memory trend over the window: {t.describe('% of limit')}"
            if t
            else "*Not enough memory samples for a trend.*"
        )
    )


def _recent_changes(run: Session) -> None:
    ev = gather(run)
    restarts = ev.signals.get("restarts")
    now = panel_data(run, "request_rate")
    first = now.frame.sort_values("timestamp")["value"].iloc[0] if now.ok else None
    last = now.last()
    change = (
        f"{first:.1f} → {last:.1f} req/s"
        if first is not None and last is not None
        else "no request-rate data"
    )
    display(
        Markdown(
            f"- Restarts in the window: **{num(restarts, '')}**\n"
            f"- Traffic over the window: **{change}**\n"
            "- New features deployed? Data size increase? *(ask the team)*"
        )
    )


def _cache_metrics(run: Session) -> None:
    charts(run, "cache_hit_rate", "cache_evictions")


def _cache_size_evictions(run: Session) -> None:
    charts(run, "cache_size", "cache_evictions")


def _access_patterns(run: Session) -> None:
    ev = gather(run)
    if ev.logs is None:
        display(Markdown(f"*No log evidence: {esc(ev.logs_missing)}*"))
        return
    display(
        Markdown(
            f"Cache misses in the logs: keys per workbook **{num(ev.logs.keys_per_workbook, '')}**"
            f", share of misses for a new workbook **"
            f"{num(100 * ev.logs.distinct_workbook_ratio if ev.logs.distinct_workbook_ratio else None, '%')}**."
        )
    )  # noqa: E501


def _process_counts(run: Session) -> None:
    forks = run.runbook == "fork_leak"
    charts(run, "active_forks" if forks else "libreoffice_processes")
    name = "ggen-mcp-fork" if forks else "soffice"
    _processes_table(run, name)


def _processes_table(run: Session, name: str) -> None:
    ev = gather(run)
    if ev.host is None:
        display(Markdown(f"*No host evidence: {esc(ev.host_missing)}*"))
        return
    procs = [p for p in ev.host.get("processes", []) if p.get("name") == name]
    display(pd.DataFrame(procs) if procs else Markdown(f"*No {name} processes.*"))


def _fds(run: Session) -> None:
    charts(run, "descriptors")
    if run.live_only("descriptors per process"):
        display(host.descriptors("ggen-mcp").to_frame())


def _disk_usage(run: Session) -> None:
    charts(run, "disk")
    data = panel_data(run, "disk")
    t = panels.trend(data.frame, limit=100.0)
    if t:
        display(Markdown(f"Disk fill: {t.describe('%')}"))
    if run.live_only("disk usage per mount"):
        display(host.disks().to_frame())


def _large_dirs(run: Session) -> None:
    ev = gather(run)
    if ev.host is None or "dirs" not in ev.host:
        display(Markdown(f"*No directory sizes: {esc(ev.host_missing or 'not in the snapshot')}*"))
        return
    growth = ev.host.get("dir_growth_bytes_per_h") or {}
    display(
        pd.DataFrame(
            [
                {
                    "directory": d,
                    "GB": round(b / 1e9, 2),
                    "GB/h": round(growth.get(d, float("nan")) / 1e9, 2),
                }
                for d, b in ev.host["dirs"].items()
            ]
        )
    )


def _temp_files(run: Session) -> None:
    ev = gather(run)
    tf = (ev.host or {}).get("temp_files")
    if not tf:
        display(Markdown(f"*No temp-file counts: {esc(ev.host_missing or 'not in the snapshot')}*"))
        return
    display(
        Markdown(
            f"`ggen-mcp-*` temp files: **{tf['count']}** ({tf['bytes'] / 1e9:.2f} GB), "
            f"of which **{tf['old_count']}** are older than a day."
        )
    )


STEPS = {
    "service_running": _service_running,
    "service_logs": _service_logs,
    "system_resources": _system_resources,
    "network": _network,
    "error_types": _error_types,
    "recent_errors": _service_logs,
    "failing_tools": _failing_tools,
    "latency_by_tool": _latency_by_tool,
    "system_load": _system_load,
    "slow_queries": _slow_queries,
    "memory_breakdown": _memory_breakdown,
    "memory_trend": _memory_trend,
    "recent_changes": _recent_changes,
    "cache_metrics": _cache_metrics,
    "cache_size_evictions": _cache_size_evictions,
    "access_patterns": _access_patterns,
    "process_counts": _process_counts,
    "fds": _fds,
    "disk_usage": _disk_usage,
    "large_dirs": _large_dirs,
    "temp_files": _temp_files,
}
