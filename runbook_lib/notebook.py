"""What the runbook notebooks call: one method per runbook step.

A notebook's parameters go in once (`start`); every later cell is one call on the `Run`.
Each method shows its result (tables, charts, text) and keeps what the summary needs. A
source that cannot be reached is shown as a gap with its reason; the run goes on.
"""

from __future__ import annotations

import html
import json
import math
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from IPython.display import HTML, Image, Markdown, display

from runbook_lib import charts, diagnosis, host, investigate, logs, panels
from runbook_lib.alerts import route
from runbook_lib.names import NAMES
from runbook_lib.prom import Prom, utc

PARAMS = (
    "alert_name",
    "severity",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "fingerprint",
    "prometheus_url",
    "alertmanager_url",
    "at",
    "lookback_minutes",
    "live",
    "log_file",
    "container",
    "allow_mitigation",
    "host_snapshot",
    "node_instance",
    "memory_limit_bytes",
    "temp_dir",
    "watch_dirs",
    "snapshot_dir",
    "replay_from",
)
ESCALATE_AFTER = timedelta(minutes=30)
CHART_HISTORY = timedelta(minutes=45)


@dataclass
class Run:
    runbook: str
    p: dict[str, Any]
    at: datetime
    starts_at: datetime
    ends_at: datetime | None
    scope: panels.Scope
    prom: Prom
    panel_cache: dict[str, panels.PanelData] = field(default_factory=dict)
    evidence: diagnosis.Evidence | None = None
    verdicts: list[diagnosis.Verdict] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    actions: list[dict] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)

    # -- window ------------------------------------------------------------------------
    @property
    def window(self) -> tuple[datetime, datetime]:
        return min(self.starts_at, self.at) - CHART_HISTORY, self.at

    @property
    def firing_for(self) -> timedelta:
        return (self.ends_at or self.at) - self.starts_at

    def panel(self, name: str) -> panels.PanelData:
        if name not in self.panel_cache:
            data = panels.fetch(self.prom, name, self.scope, *self.window)
            self.panel_cache[name] = data
            if not data.ok:
                self._gap(f"panel {name}: {data.gap()}")
        return self.panel_cache[name]

    def _gap(self, text: str) -> None:
        if text not in self.gaps:
            self.gaps.append(text)

    # -- header ------------------------------------------------------------------------
    def header(self) -> None:
        """What fired, since when, its labels, links for the window, escalation banner."""
        p, ann = self.p, self.p.get("annotations") or {}
        minutes = self.firing_for.total_seconds() / 60
        state = "resolved" if self.ends_at else "firing"
        lines = [
            f"## {_e(p['alert_name'])} · {_e(p.get('severity') or 'unknown')} · {state}",
            f"**Started** {self.starts_at:%Y-%m-%d %H:%M:%S} UTC, {state} for "
            f"{minutes:.0f} min at evaluation time {self.at:%Y-%m-%d %H:%M:%S} UTC.  ",
            f"**Runbook** `{self.runbook}` · **fingerprint** `{_e(p.get('fingerprint') or '')}`",
        ]
        for key in ("summary", "description", "impact"):
            if ann.get(key):
                lines.append(f"- **{key}**: {_e(ann[key])}")
        lines.append(
            f"- **Prometheus**: [the alert's series over the window]({self.graph_url()})"
            f" · **Alertmanager**: [this alert]({self.alertmanager_url()})"
        )
        display(Markdown("\n".join(lines)))
        labels = p.get("labels") or {}
        if labels:
            display(pd.DataFrame(sorted(labels.items()), columns=["label", "value"]))
        if self.firing_for > ESCALATE_AFTER and not self.ends_at:
            display(
                HTML(
                    "<div style='background:#d62728;color:white;padding:8px;font-weight:bold'>"
                    f"Firing for {minutes:.0f} minutes: escalate (the runbook escalates incidents "
                    "that persist over 30 minutes).</div>"
                )
            )

    def graph_url(self) -> str:
        start, end = self.window
        expr = {
            "high_error_rate": panels.error_rate_q(self.scope),
            "high_latency": panels.quantile_q(self.scope, 0.95),
            "memory": panels.memory_percent_q(self.scope),
            "cache_hit_rate": panels.cache_hit_q(self.scope),
        }.get(self.runbook, f"{NAMES.up}{self.scope.sel()}")
        hours = max(1, math.ceil((end - start).total_seconds() / 3600))
        query = urllib.parse.urlencode(
            {
                "g0.expr": expr,
                "g0.tab": "0",
                "g0.range_input": f"{hours}h",
                "g0.end_input": end.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        return f"{self.prom.url}/graph?{query}"

    def alertmanager_url(self) -> str:
        base = (self.p.get("alertmanager_url") or "http://127.0.0.1:9093").rstrip("/")
        flt = urllib.parse.quote(f'{{alertname="{self.p["alert_name"]}"}}')
        return f"{base}/#/alerts?filter={flt}"

    # -- assess ------------------------------------------------------------------------
    def assess(self) -> None:
        """Current figures against thresholds, then the four-panel overview."""
        rows = []
        for name, key in FIGURES.items():
            data = self.panel(name)
            value = data.last()
            if value is None:
                rows.append(
                    {
                        "figure": data.panel.title,
                        "now": "no data",
                        "unit": "",
                        "warning": _t(data.panel.warn),
                        "critical": _t(data.panel.crit),
                        "status": "?",
                    }
                )
                continue
            self.figures[key] = round(value, 3)
            rows.append(
                {
                    "figure": data.panel.title,
                    "now": round(value, 2),
                    "unit": data.panel.unit,
                    "warning": _t(data.panel.warn),
                    "critical": _t(data.panel.crit),
                    "status": _status(data.panel, value),
                }
            )
        display(pd.DataFrame(rows))
        _show(charts.grid([self.panel(n) for n in charts.OVERVIEW], self.starts_at, self.ends_at))

    def charts(self, *names: str) -> None:
        """The runbook's own charts."""
        _show(
            charts.grid(
                [self.panel(n) for n in names],
                self.starts_at,
                self.ends_at,
                ncols=2 if len(names) > 1 else 1,
            )
        )

    # -- investigation steps -----------------------------------------------------------
    def step(self, name: str) -> None:
        """One investigation step of the runbook (see STEPS)."""
        STEPS[name](self)

    def _live_only(self, what: str) -> bool:
        if self.p.get("live"):
            return True
        display(
            Markdown(
                f"*Skipped: {what} describes the host now, and this run replays a "
                "past incident (`live=False`).*"
            )
        )
        return False

    # -- causes and diagnosis ----------------------------------------------------------
    def gather(self) -> diagnosis.Evidence:
        if self.evidence is None:
            self.evidence = investigate.gather(
                investigate.Inputs(
                    prometheus_url=self.prom.url,
                    prom=self.prom,
                    scope=self.scope,
                    at=self.at,
                    lookback_minutes=int(self.p.get("lookback_minutes") or 15),
                    log_source=self.p.get("log_file") or "",
                    host_snapshot=self.p.get("host_snapshot") or "",
                    live=bool(self.p.get("live")),
                    container=self.p.get("container") or "",
                    service_port=self.service_port,
                    temp_dir=self.p.get("temp_dir") or "/tmp",
                    watch_dirs=tuple(self.p.get("watch_dirs") or ()),
                )
            )
            ev = self.evidence
            unreachable = [w for w in ev.signals.missing.values() if "unreachable" in w]
            if unreachable:
                self._gap(f"prometheus: {unreachable[0]}")
            for part, why in (
                ("logs", ev.logs_missing),
                ("host", ev.host_missing),
                ("container", ev.container_missing),
            ):
                if getattr(ev, part) is None and why:
                    self._gap(f"{part}: {why}")
        return self.evidence

    def causes(self) -> None:
        """Each of the runbook's common causes, judged with its evidence."""
        self.verdicts = diagnosis.diagnose(self.runbook, self.gather())
        if not self.verdicts:
            display(Markdown("*This runbook has no common causes to judge: see the overview.*"))
        for v in sorted(self.verdicts, key=lambda v: v.cause):
            items = "\n".join(f"  - {_e(line)}" for line in v.evidence)
            items += "".join(f"\n  - *cannot judge: {_e(m)}*" for m in v.missing)
            display(
                Markdown(
                    f"### {v.cause.replace('_', ' ').capitalize()} — "
                    f"**{v.verdict.replace('_', ' ')}** ({v.score:.2f})\n{items}"
                )
            )

    def diagnosis(self) -> None:
        """The diagnosis table, most likely first."""
        if not self.verdicts:
            self.verdicts = diagnosis.diagnose(self.runbook, self.gather())
        display(HTML(diagnosis.to_html(self.verdicts)))
        top = self.top_cause
        display(
            Markdown(
                f"**Top cause: `{top}`**"
                if top
                else "**No cause is likely.** Look at the overview and the logs; "
                "escalate if the root cause stays unknown."
            )
        )

    @property
    def top_cause(self) -> str | None:
        return diagnosis.summary(self.verdicts)[1]

    # -- resolution, communication, follow-up ------------------------------------------
    def resolution(self) -> None:
        """The runbook's commands for the likely and possible causes, with real values."""
        from runbook_lib.resolution import commands

        shown = [v for v in self.verdicts if v.verdict in ("likely", "possible")]
        if not shown:
            display(
                Markdown(
                    "*No likely or possible cause: the runbook's general steps "
                    "apply (check logs, restart if unhealthy, escalate).*"
                )
            )
        for v in shown:
            text = commands(self.runbook, v.cause, self.values())
            display(Markdown(f"#### {v.cause} ({v.verdict})\n```bash\n{text}\n```"))

    def values(self) -> dict[str, Any]:
        """Real values for the commands: container, port, pids, paths."""
        ev = self.evidence
        pids = []
        if ev and ev.host:
            pids = [p["pid"] for p in ev.host.get("processes", [])]
        return {
            "container": self.p.get("container") or "ggen-mcp-server",
            "port": self.service_port or 9464,
            "instance": self.scope.instance or "",
            "pids": pids,
            "temp_dir": self.p.get("temp_dir") or "/tmp",
            "prometheus_url": self.prom.url,
            "holder": next(
                (
                    x
                    for x in (ev.host or {}).get("listeners", [])
                    if x.get("pid") != (ev.host or {}).get("service_pid")
                ),
                None,
            )
            if ev
            else None,
        }

    def mitigate(self, action: str) -> None:
        """A mitigation that acts only when `allow_mitigation` is true; says what it did."""
        from runbook_lib.mitigation import ACTIONS

        result = ACTIONS[action](
            self.values(), bool(self.p.get("allow_mitigation")), self.p.get("live")
        )
        self.actions.append(result)
        display(Markdown(f"**{action}**: {_e(result['outcome'])}"))

    def message(self) -> None:
        """The runbook's communication template, filled in."""
        from runbook_lib.communication import message, status_of

        ann = self.p.get("annotations") or {}
        text = message(
            alert=self.p["alert_name"],
            severity=self.p.get("severity") or "",
            starts_at=self.starts_at,
            now=self.at,
            status=status_of(bool(self.ends_at), any(a.get("done") for a in self.actions)),
            summary=ann.get("summary", ""),
            impact=ann.get("impact", ""),
            top_cause=self.top_cause,
            ends_at=self.ends_at,
        )
        display(Markdown(f"```\n{text}\n```"))

    def post_checks(self) -> None:
        """The runbook's post-resolution checks, answered by a query where one can."""
        from runbook_lib.postcheck import run_checks

        self.post_check_rows = run_checks(self)
        display(pd.DataFrame(self.post_check_rows)[["check", "status"]])

    # -- summary -----------------------------------------------------------------------
    def summary(self) -> dict:
        diag, top = diagnosis.summary(self.verdicts)
        out = {
            "alert": self.p["alert_name"],
            "runbook": self.runbook,
            "status": "completed",
            "severity": self.p.get("severity") or "",
            "starts_at": _iso(self.starts_at),
            "ends_at": _iso(self.ends_at) if self.ends_at else None,
            "evaluated_at": _iso(self.at),
            "fingerprint": self.p.get("fingerprint") or "",
            "labels": self.p.get("labels") or {},
            "figures": self.figures,
            "diagnosis": diag,
            "top_cause": top,
            "data_gaps": self.gaps,
            "actions": self.actions,
            "post_checks": getattr(self, "post_check_rows", []),
        }
        display(
            {"application/json": out, "text/plain": json.dumps(out, indent=1)},
            raw=True,
            metadata={"runbook_summary": True},
        )
        return out

    @property
    def service_port(self) -> int | None:
        inst = self.scope.instance or ""
        tail = inst.rsplit(":", 1)[-1] if ":" in inst else ""
        return int(tail) if tail.isdigit() else None


FIGURES = {
    "error_rate": "error_rate_percent",
    "latency": "latency_p99_seconds",
    "cache_hit_rate": "cache_hit_rate_percent",
    "memory": "memory_percent",
    "cpu": "cpu_cores",
    "libreoffice_processes": "libreoffice_processes",
    "active_forks": "active_forks",
    "descriptors": "fd_usage_percent",
    "disk": "disk_used_percent",
}


def start(runbook: str, namespace: dict[str, Any]) -> Run:
    """The run of `runbook` from the notebook's parameters (picked out of `namespace`)."""
    p = {k: namespace[k] for k in PARAMS if k in namespace}
    p.setdefault("labels", {})
    p.setdefault("alert_name", p["labels"].get("alertname", runbook))
    at = utc(p.get("at") or None)
    starts_at = utc(p.get("starts_at") or at.isoformat())
    ends = p.get("ends_at") or ""
    ends_at = utc(ends) if ends and not str(ends).startswith("0001") else None
    scope = panels.Scope.from_labels(
        p["labels"],
        node_instance=p.get("node_instance") or None,
        memory_limit_bytes=float(p.get("memory_limit_bytes") or 4 * (1 << 30)),
    )
    run = Run(
        runbook,
        p,
        at,
        starts_at,
        ends_at,
        scope,
        _prometheus(p),
    )
    expected = route(p["alert_name"])
    if expected != runbook and runbook != "triage":
        run._gap(f"alert {p['alert_name']} routes to {expected}, not {runbook}")
    return run


def _prometheus(p: dict[str, Any]) -> Any:
    """Live Prometheus, recording its answers into the record; or a record's saved answers."""
    from runbook_lib.snapshot import Recording, Replay

    if p.get("replay_from"):
        return Replay(Path(p["replay_from"]), url=p.get("prometheus_url") or "")
    prom = Prom(p.get("prometheus_url") or "http://127.0.0.1:9090")
    return Recording(prom, Path(p["snapshot_dir"])) if p.get("snapshot_dir") else prom


# ---------------------------------------------------------------------------- steps


def _service_running(run: Run) -> None:
    run.charts("up")
    if not run._live_only("the process list"):
        return
    procs = host.processes("ggen-mcp")
    display(procs.to_frame() if len(procs) else Markdown("*No ggen-mcp process on this host.*"))
    if run.p.get("container"):
        from runbook_lib import containers

        display(containers.state(run.p["container"]).to_frame())


def _service_logs(run: Run) -> None:
    spec = run.p.get("log_file") or (
        f"container:{run.p['container']}" if run.p.get("container") else ""
    )
    if not spec:
        display(Markdown("*No log source given (`log_file` or `container`).*"))
        return
    start = run.at - timedelta(minutes=int(run.p.get("lookback_minutes") or 15))
    read = logs.source_for(spec).read(start, run.at)
    if read.error:
        run._gap(f"logs: {read.error}")
        display(Markdown(f"*Could not read logs: {_e(read.error)}*"))
        return
    m = logs.match(read.lines)
    display(
        Markdown(
            f"{m.total} lines from `{_e(read.source)}` between {start:%H:%M} and "
            f"{run.at:%H:%M} UTC."
        )
    )
    found = m.table()
    display(found[found["count"] > 0] if "count" in found else found)


def _system_resources(run: Run) -> None:
    run.charts("cpu", "memory")
    if run._live_only("memory, load and disk"):
        display(host.memory().to_frame())
        display(host.load().to_frame())
        display(host.disks().to_frame())


def _network(run: Run) -> None:
    port = run.service_port
    inst = run.scope.instance or ""
    if not run._live_only("the health endpoint and listening ports"):
        return
    try:
        r = httpx.get(f"http://{inst}/health", timeout=3)
        display(Markdown(f"`GET http://{_e(inst)}/health` → {r.status_code} `{_e(r.text[:200])}`"))
    except httpx.HTTPError as exc:
        display(Markdown(f"`GET http://{_e(inst)}/health` failed: {_e(str(exc))}"))
    if port:
        display(host.listeners(port).to_frame())


def _error_types(run: Run) -> None:
    run.charts("errors_by_type")
    _shares(run, "errors_by_type", "error_type")


def _failing_tools(run: Run) -> None:
    run.charts("errors_by_tool")
    _shares(run, "errors_by_tool", "tool")


def _shares(run: Run, signal: str, label: str) -> None:
    by = run.gather().signals.get(signal) or {}
    total = sum(by.values())
    if total <= 0:
        display(Markdown("*No errors in the window.*"))
        return
    rows = sorted(by.items(), key=lambda kv: -kv[1])
    display(
        pd.DataFrame(
            [
                {label: k, "errors": round(v), "share %": round(100 * v / total, 1)}
                for k, v in rows
                if v > 0
            ]
        )
    )


def _latency_by_tool(run: Run) -> None:
    run.charts("latency_by_tool")


def _system_load(run: Run) -> None:
    run.charts("cpu")
    if run._live_only("the host load"):
        display(host.load().to_frame())


def _slow_queries(run: Run) -> None:
    ev = run.gather()
    q = ev.signals.get("query_p95")
    rate = ev.signals.get("slow_query_rate")
    display(
        Markdown(
            f"Database query p95: **{_num(q, 's')}**, slow queries: "
            f"**{_num(rate, '/s')}**; log lines with 'slow query': "
            f"**{ev.logs.counts.get('slow_query', 0) if ev.logs else 'no logs'}**."
        )
    )


def _memory_breakdown(run: Run) -> None:
    run.charts("memory", "heap")
    share = run.gather().signals.get("cache_memory_share")
    display(
        Markdown(
            f"The workbook cache holds **{_num(100 * share if share else None, '%')}**"
            " of resident memory."
        )
    )


def _memory_trend(run: Run) -> None:
    data = run.panel("memory")
    t = panels.trend(data.frame, limit=100.0)
    display(
        Markdown(
            f"Memory trend over the window: {t.describe('% of limit')}"
            if t
            else "*Not enough memory samples for a trend.*"
        )
    )


def _recent_changes(run: Run) -> None:
    ev = run.gather()
    restarts = ev.signals.get("restarts")
    now = run.panel("request_rate")
    first = now.frame.sort_values("timestamp")["value"].iloc[0] if now.ok else None
    last = now.last()
    change = (
        f"{first:.1f} → {last:.1f} req/s"
        if first is not None and last is not None
        else "no request-rate data"
    )
    display(
        Markdown(
            f"- Restarts in the window: **{_num(restarts, '')}**\n"
            f"- Traffic over the window: **{change}**\n"
            "- New features deployed? Data size increase? *(ask the team)*"
        )
    )


def _cache_metrics(run: Run) -> None:
    run.charts("cache_hit_rate", "cache_evictions")


def _cache_size_evictions(run: Run) -> None:
    run.charts("cache_size", "cache_evictions")


def _access_patterns(run: Run) -> None:
    ev = run.gather()
    if ev.logs is None:
        display(Markdown(f"*No log evidence: {_e(ev.logs_missing)}*"))
        return
    display(
        Markdown(
            f"Cache misses in the logs: keys per workbook **{_num(ev.logs.keys_per_workbook, '')}**"
            f", share of misses for a new workbook **"
            f"{_num(100 * ev.logs.distinct_workbook_ratio if ev.logs.distinct_workbook_ratio else None, '%')}**."
        )
    )  # noqa: E501


def _process_counts(run: Run) -> None:
    name = "soffice" if run.runbook != "fork_leak" else "ggen-mcp-fork"
    run.charts("libreoffice_processes" if name == "soffice" else "active_forks")
    _processes_table(run, name)


def _processes_table(run: Run, name: str) -> None:
    ev = run.gather()
    if ev.host is None:
        display(Markdown(f"*No host evidence: {_e(ev.host_missing)}*"))
        return
    procs = [p for p in ev.host.get("processes", []) if p.get("name") == name]
    display(pd.DataFrame(procs) if procs else Markdown(f"*No {name} processes.*"))


def _fds(run: Run) -> None:
    run.charts("descriptors")
    if run._live_only("descriptors per process"):
        display(host.descriptors("ggen-mcp").to_frame())


def _disk_usage(run: Run) -> None:
    run.charts("disk")
    data = run.panel("disk")
    t = panels.trend(data.frame, limit=100.0)
    if t:
        display(Markdown(f"Disk fill: {t.describe('%')}"))
    if run._live_only("disk usage per mount"):
        display(host.disks().to_frame())


def _large_dirs(run: Run) -> None:
    ev = run.gather()
    if ev.host is None or "dirs" not in ev.host:
        display(Markdown(f"*No directory sizes: {_e(ev.host_missing or 'not in the snapshot')}*"))
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


def _temp_files(run: Run) -> None:
    ev = run.gather()
    tf = (ev.host or {}).get("temp_files")
    if not tf:
        display(Markdown(f"*No temp-file counts: {_e(ev.host_missing or 'not in the snapshot')}*"))
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


# ---------------------------------------------------------------------------- helpers


def _show(fig) -> None:
    """Display a figure once, drawn once: as the PNG the record keeps (the inline backend's
    tight-bbox print would draw it twice), then closed so the backend does not repeat it."""
    import matplotlib.pyplot as plt

    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    alt = "Chart: " + ", ".join(titles) if titles else "Chart"
    display(Image(data=charts.png_bytes(fig), format="png", alt=alt))
    plt.close(fig)


def _e(text: object) -> str:
    """Alert text into Markdown without it becoming markup."""
    return (
        html.escape(str(text))
        .replace("|", "&#124;")
        .replace("`", "&#96;")
        .replace("*", "&#42;")
        .replace("_", "&#95;")
        .replace("[", "&#91;")
        .replace("\n", " ")
    )


def _t(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _num(value: float | None, unit: str) -> str:
    return "no data" if value is None else f"{value:.2f}{(' ' + unit) if unit else ''}"


def _status(panel: panels.Panel, value: float) -> str:
    if panel.below_is_bad:
        if panel.crit is not None and value < panel.crit:
            return "✖ critical"
        return "⚠ warning" if panel.warn is not None and value < panel.warn else "✔ ok"
    if panel.crit is not None and value > panel.crit:
        return "✖ critical"
    return "⚠ warning" if panel.warn is not None and value > panel.warn else "✔ ok"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
