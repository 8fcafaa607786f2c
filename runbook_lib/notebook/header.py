"""The top of a record: what fired, since when, with which labels and links, why this run
exists; then the assessment (the figures against their thresholds and the overview charts)
and the runbook's own charts."""

from __future__ import annotations

import math
import urllib.parse
from datetime import timedelta

import pandas as pd
from IPython.display import HTML, Markdown, display

from runbook_lib.contract.names import NAMES
from runbook_lib.evidence import panels
from runbook_lib.notebook import charts as charting
from runbook_lib.notebook.display import (
    code,
    esc,
    plain,
    related_md,
    show_panels,
    status_of,
    why_md,
)
from runbook_lib.notebook.fetching import data, prefetch
from runbook_lib.notebook.state import Session

ESCALATE_AFTER = timedelta(minutes=30)
# The assessment's figures: panel -> the key the summary files its last value under.
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


def header(s: Session) -> None:
    """What fired, since when, its labels, links for the window, escalation banner."""
    if s.exploring:
        display(Markdown(s.exploring))
        return
    p = s.p
    minutes = s.firing_for.total_seconds() / 60
    state = "resolved" if s.ends_at else "firing"
    lines = [
        f"## {esc(p.alert_name)} · {esc(p.severity or 'unknown')} · {state}",
        f"**Started** {s.starts_at:%Y-%m-%d %H:%M:%S} UTC, {state} for "
        f"{minutes:.0f} min at evaluation time {s.at:%Y-%m-%d %H:%M:%S} UTC.  ",
        f"**Runbook** `{s.runbook}` · **fingerprint** {code(p.fingerprint)}",
    ]
    if s.found_by_hand:
        lines.append(f"*{esc(s.found_by_hand)}*")
    for key in ("summary", "description", "impact"):
        if p.annotations.get(key):
            lines.append(f"- **{key}**: {esc(p.annotations[key])}")
    lines.append(
        f"- **Prometheus**: [the alert's series over the window]({graph_url(s)})"
        f" · **Alertmanager**: [this alert]({alertmanager_url(s)})"
    )
    display(Markdown("\n".join(lines)))
    if p.labels:
        display(pd.DataFrame(sorted(p.labels.items()), columns=["label", "value"]))
    if p.related_alerts:
        display(Markdown(related_md(p.related_alerts)))
    why = why_md(p.incident, p.alert_name, p.severity)
    if why:
        display(Markdown(why))
    if s.firing_for > ESCALATE_AFTER and not s.ends_at:
        display(
            HTML(
                "<div style='background:#d62728;color:white;padding:8px;font-weight:bold'>"
                f"Firing for {minutes:.0f} minutes: escalate (the runbook escalates incidents "
                "that persist over 30 minutes).</div>"
            )
        )


def graph_url(s: Session) -> str:
    """Prometheus' graph of the runbook's symptom over the window."""
    start, end = s.window
    expr = {
        "high_error_rate": panels.error_rate_q(s.scope),
        "high_latency": panels.quantile_q(s.scope, 0.95),
        "memory": panels.memory_percent_q(s.scope),
        "cache_hit_rate": panels.cache_hit_q(s.scope),
    }.get(s.runbook, f"{NAMES.up}{s.scope.sel()}")
    hours = max(1, math.ceil((end - start).total_seconds() / 3600))
    query = urllib.parse.urlencode(
        {
            "g0.expr": expr,
            "g0.tab": "0",
            "g0.range_input": f"{hours}h",
            "g0.end_input": end.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )
    return f"{s.prom.url}/graph?{query}"


def alertmanager_url(s: Session) -> str:
    base = (s.p.alertmanager_url or "http://127.0.0.1:9093").rstrip("/")
    flt = urllib.parse.quote(f'{{alertname="{s.p.alert_name}"}}')
    return f"{base}/#/alerts?filter={flt}"


def assess(s: Session) -> None:
    """Current figures against thresholds, then the four-panel overview."""
    prefetch(s, *FIGURES, *charting.OVERVIEW)
    rows = []
    for name, key in FIGURES.items():
        got = data(s, name)
        value = got.last()
        if value is not None:
            s.figures[key] = round(value, 3)
        rows.append(
            {
                "figure": got.panel.title,
                "now": "no data" if value is None else round(value, 2),
                "unit": "" if value is None else got.panel.unit,
                "warning": plain(got.panel.warn),
                "critical": plain(got.panel.crit),
                "status": "?" if value is None else status_of(got.panel, value),
            }
        )
    display(pd.DataFrame(rows))
    show_panels([data(s, n) for n in charting.OVERVIEW], s.alert_start, s.ends_at)


def charts(s: Session, *names: str) -> None:
    """The runbook's own charts."""
    prefetch(s, *names)
    datas = [data(s, n) for n in names]
    show_panels(datas, s.alert_start, s.ends_at, ncols=2 if len(names) > 1 else 1)
