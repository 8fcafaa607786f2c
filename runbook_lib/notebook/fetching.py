"""What a run reads, once: a panel's series over the window (as a cell defined it, else the
default panel), and the evidence the diagnosis judges. Every failure becomes a data gap of
the run, never an exception in the cell."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from runbook_lib import diagnosis
from runbook_lib.diagnosis import investigate
from runbook_lib.evidence import panels
from runbook_lib.notebook import gaps
from runbook_lib.notebook.state import Session


def data(s: Session, name: str) -> panels.PanelData:
    """A panel's series over the window: as a cell last defined it, else the default."""
    prefetch(s, name)
    return s.panel_cache[name]


def prefetch(s: Session, *names: str) -> None:
    """The panels `names` not fetched yet, each as a cell last defined it (else the
    default), asked together: one request per window instead of one per query."""
    fresh = list(dict.fromkeys(n for n in names if n not in s.panel_cache))
    windows: dict[tuple[datetime, datetime], list[panels.Panel]] = {}
    for name in fresh:
        if name in s.panel_defs:
            panel, before = s.panel_defs[name]
            window = (min(s.starts_at, s.at) - before, s.at)
        else:
            panel, window = panels.PANELS[name], s.window
        windows.setdefault(window, []).append(panel)
    for window, chosen in windows.items():
        for got in panels.fetch_panels(s.prom, chosen, s.scope, *window):
            s.panel_cache[got.panel.name] = got
    for name in fresh:  # their gaps in the order they were asked for
        _gap_of(s, s.panel_cache[name])


def define_panel(
    s: Session,
    name: str,
    promql: str | dict[str, str],
    *,
    by: str | None = None,
    warn: float | None = None,
    crit: float | None = None,
    window: str = "45m",
) -> None:
    """Define panel `name` by its PromQL, as the cell shows it; the step after it charts
    it and judges from it. `{sel}` stands for the alert's job and instance (filled in and
    escaped here), `window` for the history before the alert's start."""
    base = panels.PANELS.get(name) or panels.Panel(name, name.replace("_", " "), "", dict)
    queries = promql if isinstance(promql, dict) else {"" if by else base.title: promql}
    panel = replace(
        base,
        queries=lambda sc: {k: panels.fill(q, sc) for k, q in queries.items()},
        levels=(warn, crit),
        split_by=by,
    )
    s.panel_defs[name] = (panel, duration(window))
    s.panel_cache.pop(name, None)
    data(s, name)


def _gap_of(s: Session, got: panels.PanelData) -> None:
    if not got.ok:
        kept = [e for e in got.errors if not s.unreachable(e)]
        if kept or not got.errors:  # a panel lost to a silent Prometheus is said once
            s.gap(f"panel {got.panel.name}: {'; '.join(kept) or 'no data'}")


def gather(s: Session) -> diagnosis.Evidence:
    """The evidence of the run, gathered once: signals, logs, host, container."""
    if s.evidence is None:
        s.evidence = investigate.gather(
            investigate.Inputs(
                prometheus_url=s.prom.url,
                prom=s.prom,
                scope=s.scope,
                at=s.at,
                lookback_minutes=s.lookback_minutes,
                log_source=s.logs() or "",
                host_snapshot=s.p.host_snapshot,
                live=s.p.live,
                container=s.p.container,
                service_port=s.service_port,
                temp_dir=s.temp_dir,
                watch_dirs=tuple(s.p.watch_dirs),
            )
        )
        _gaps_of(s, s.evidence)
    return s.evidence


def _gaps_of(s: Session, ev: diagnosis.Evidence) -> None:
    for why in ev.signals.missing.values():
        s.unreachable(why)
    for part, why in (
        ("logs", ev.logs_missing),
        ("host", ev.host_missing),
        ("container", ev.container_missing),
    ):
        if getattr(ev, part) is None and why:
            s.source_gap(part, why)
    if ev.host is not None and not s.p.host_snapshot and not s.service_port:
        s.gap(gaps.NO_SERVICE_PORT)


def duration(text: str) -> timedelta:
    """'45m', '2h', '1d' as a timedelta."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"window {text!r}: write a number and s, m, h or d, e.g. '45m'")
    return timedelta(**{units[text[-1]]: int(text[:-1])})
