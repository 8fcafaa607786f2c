"""The state of one runbook run and the cells every runbook shares: the alert header, the
assessment, charts, causes and diagnosis, resolution, the incident message, the
post-resolution checks and the summary. Runbook-specific steps are in `steps`."""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from IPython.display import HTML, Markdown, display

from runbook_lib import diagnosis
from runbook_lib.contract.names import NAMES
from runbook_lib.diagnosis import investigate
from runbook_lib.evidence import panels, recording
from runbook_lib.evidence.logs import LogSource
from runbook_lib.evidence.prom import Prom
from runbook_lib.notebook import charts, gaps, recurrence
from runbook_lib.notebook.display import (
    SCORE_MEANS,
    answer_md,
    causes_html,
    code,
    esc,
    plain,
    related_md,
    show,
    show_panels,
    status_of,
    why_md,
)
from runbook_lib.notebook.wording import cause_name

ESCALATE_AFTER = timedelta(minutes=30)


def log_specs(p: dict[str, Any]) -> list[str]:
    """Where a run reads the service's logs, together: `log_file` (a path or a glob, or a
    spec such as journal:UNIT), the `log_unit`'s journal and the `container`'s logs."""
    unit, container = p.get("log_unit") or "", p.get("container") or ""
    return [s for s in (p.get("log_file") or "", unit and f"journal:{unit}",
                        container and f"container:{container}") if s]  # fmt: skip


CHART_HISTORY = timedelta(minutes=45)


@dataclass
class Session:
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
    down: dict[str, str] = field(default_factory=dict)  # Prometheus URL -> why it did not answer
    # The notebook's globals, read again by each cell (run.Run.refresh), and what the
    # parameters were when last read; panels as cells defined them, kept across a change.
    namespace: dict[str, Any] | None = None
    given: dict[str, Any] = field(default_factory=dict)
    panel_defs: dict[str, tuple[panels.Panel, timedelta]] = field(default_factory=dict)
    exploring: str = ""  # opened by hand with no alert firing: what the header says instead
    found_by_hand: str = ""  # opened by hand: where the firing alert examined came from

    # -- window ------------------------------------------------------------------------
    @property
    def window(self) -> tuple[datetime, datetime]:
        return min(self.starts_at, self.at) - CHART_HISTORY, self.at

    @property
    def firing_for(self) -> timedelta:
        return (self.ends_at or self.at) - self.starts_at

    @property
    def alert_start(self) -> datetime | None:
        """Where the charts mark the alert: nowhere while exploring a healthy service."""
        return None if self.exploring else self.starts_at

    def data(self, name: str) -> panels.PanelData:
        """A panel's series over the window: as a cell last defined it, else the default."""
        if name not in self.panel_cache:
            if name in self.panel_defs:
                panel, before = self.panel_defs[name]
                self._fetch(panel, (min(self.starts_at, self.at) - before, self.at))
            else:
                self._fetch(panels.PANELS[name], self.window)
        return self.panel_cache[name]

    def panel(
        self,
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
            queries=lambda s: {k: panels.fill(q, s) for k, q in queries.items()},
            levels=(warn, crit),
            split_by=by,
        )
        self.panel_defs[name] = (panel, _duration(window))
        self.panel_cache.pop(name, None)
        self.data(name)

    def _fetch(self, panel: panels.Panel, window: tuple[datetime, datetime]) -> None:
        data = panels.fetch_panel(self.prom, panel, self.scope, *window)
        self.panel_cache[panel.name] = data
        if not data.ok:
            kept = [e for e in data.errors if not self._unreachable(e)]
            if kept or not data.errors:  # a panel lost to a silent Prometheus is said once
                self._gap(f"panel {panel.name}: {'; '.join(kept) or 'no data'}")

    def _gap(self, text: str) -> None:
        if text not in self.gaps:
            self.gaps.append(text)

    def _unreachable(self, text: str) -> bool:
        """Whether `text` says Prometheus did not answer; the first reason is kept, to be
        stated once for the run (`degraded_by`) instead of once per panel and signal."""
        found = gaps.UNREACHABLE.search(text)
        if found:
            self.down.setdefault(found["url"], found["why"])
        return found is not None

    def degraded_by(self) -> list[str]:
        """What the run could not see at all, and where its address is set."""
        return [gaps.unanswered(url, why) for url, why in self.down.items()]

    # -- header ------------------------------------------------------------------------
    def header(self) -> None:
        """What fired, since when, its labels, links for the window, escalation banner."""
        if self.exploring:
            display(Markdown(self.exploring))
            return
        p, ann = self.p, self.p.get("annotations") or {}
        minutes = self.firing_for.total_seconds() / 60
        state = "resolved" if self.ends_at else "firing"
        lines = [
            f"## {esc(p['alert_name'])} · {esc(p.get('severity') or 'unknown')} · {state}",
            f"**Started** {self.starts_at:%Y-%m-%d %H:%M:%S} UTC, {state} for "
            f"{minutes:.0f} min at evaluation time {self.at:%Y-%m-%d %H:%M:%S} UTC.  ",
            f"**Runbook** `{self.runbook}` · **fingerprint** {code(p.get('fingerprint') or '')}",
        ]
        if self.found_by_hand:
            lines.append(f"*{esc(self.found_by_hand)}*")
        for key in ("summary", "description", "impact"):
            if ann.get(key):
                lines.append(f"- **{key}**: {esc(ann[key])}")
        lines.append(
            f"- **Prometheus**: [the alert's series over the window]({self.graph_url()})"
            f" · **Alertmanager**: [this alert]({self.alertmanager_url()})"
        )
        display(Markdown("\n".join(lines)))
        labels = p.get("labels") or {}
        if labels:
            display(pd.DataFrame(sorted(labels.items()), columns=["label", "value"]))
        if self.p.get("related_alerts"):
            display(Markdown(related_md(self.p["related_alerts"])))
        why = why_md(self.p.get("incident") or {}, p["alert_name"], p.get("severity") or "")
        if why:
            display(Markdown(why))
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
            data = self.data(name)
            value = data.last()
            if value is None:
                rows.append(
                    {
                        "figure": data.panel.title,
                        "now": "no data",
                        "unit": "",
                        "warning": plain(data.panel.warn),
                        "critical": plain(data.panel.crit),
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
                    "warning": plain(data.panel.warn),
                    "critical": plain(data.panel.crit),
                    "status": status_of(data.panel, value),
                }
            )
        display(pd.DataFrame(rows))
        show_panels([self.data(n) for n in charts.OVERVIEW], self.alert_start, self.ends_at)

    def charts(self, *names: str) -> None:
        """The runbook's own charts."""
        datas = [self.data(n) for n in names]
        show_panels(datas, self.alert_start, self.ends_at, ncols=2 if len(names) > 1 else 1)

    # -- investigation steps -----------------------------------------------------------
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
                    log_source=self.logs() or "",
                    host_snapshot=self.p.get("host_snapshot") or "",
                    live=bool(self.p.get("live")),
                    container=self.p.get("container") or "",
                    service_port=self.service_port,
                    temp_dir=self.p.get("temp_dir") or "/tmp",
                    watch_dirs=tuple(self.p.get("watch_dirs") or ()),
                )
            )
            ev = self.evidence
            for why in ev.signals.missing.values():
                self._unreachable(why)
            for part, why in (
                ("logs", ev.logs_missing),
                ("host", ev.host_missing),
                ("container", ev.container_missing),
            ):
                if getattr(ev, part) is None and why:
                    self.source_gap(part, why)
            if ev.host is not None and not self.p.get("host_snapshot") and not self.service_port:
                self._gap(gaps.NO_SERVICE_PORT)
        return self.evidence

    @property
    def log_source(self) -> list[str]:
        return log_specs(self.p)

    def logs(self) -> LogSource | None:
        """The log source as this run reads it: saved into the record, or its saved lines."""
        return recording.log_source(self.prom, self.log_source) if self.log_source else None

    def source_gap(self, part: str, why: str) -> None:
        """A missing source of evidence, with the parameter that supplies it."""
        hint = gaps.source_hint(part, why, self.p)
        self._gap(f"{part}: {why}" + (f": {hint}" if hint else ""))

    def causes(self) -> None:
        """The runbook's common causes, judged from the evidence: one table, most likely
        first, each with its evidence for and against."""
        self.verdicts = diagnosis.diagnose(self.runbook, self.gather())
        self._unknown_gaps()
        if not self.verdicts:
            display(Markdown("*This runbook has no common causes to judge: see the overview.*"))
            return
        display(HTML(causes_html(self.verdicts)))
        display(Markdown(f"*{SCORE_MEANS}*"))

    def _unknown_gaps(self) -> None:
        for gap in diagnosis.unknown_gaps(self.verdicts):
            self._gap(gap)

    def diagnosis(self) -> None:
        """The answer (the causes themselves are the table above it): which causes explain
        the symptom and how much of it, as a chart beside the alerting series."""
        if not self.verdicts:
            self.verdicts = diagnosis.diagnose(self.runbook, self.gather())
            self._unknown_gaps()
        att = self.evidence.attribution if self.evidence else None
        display(Markdown(answer_md(self.verdicts, att, self.runbook)))
        seen = recurrence.headline(self.history())
        if seen:
            display(Markdown(f"**Seen before:** {esc(seen)}"))
        if att is not None and att.total > 0:
            name = charts.SYMPTOM_PANEL.get(self.runbook)
            symptom = self.data(name) if name else None
            show(charts.attribution(att.as_dict(), symptom, self.alert_start, self.ends_at))

    @property
    def top_cause(self) -> str | None:
        return diagnosis.summary(self.verdicts)[1]

    def history(self) -> dict[str, Any] | None:
        """The runbook's past incidents with this top cause (the receiver passes them)."""
        past = (self.p.get("incident") or {}).get("past") or []
        return recurrence.summarize(past, self.top_cause, self.scope.instance or "", self.at)

    # -- resolution, communication, follow-up ------------------------------------------
    def resolution(self) -> None:
        """The runbook's commands for the likely and possible causes, with real values."""
        steps = self.resolution_steps()
        if not steps:
            display(
                Markdown(
                    "*No likely or possible cause: the runbook's general steps "
                    "apply (check logs, restart if unhealthy, escalate).*"
                )
            )
        for s in steps:
            title = f"{esc(cause_name(s['cause']))} ({s['verdict']})"
            display(Markdown(f"#### {title}\n```bash\n{s['commands']}\n```"))

    def resolution_steps(self) -> list[dict[str, str]]:
        """Per likely or possible cause, its commands filled in (kept in the summary too)."""
        from runbook_lib.diagnosis.resolution import commands

        return [
            {"cause": v.cause, "verdict": v.verdict,
             "commands": commands(self.runbook, v.cause, self.values())}
            for v in self.verdicts
            if v.verdict in ("likely", "possible")
        ]  # fmt: skip

    def values(self) -> dict[str, Any]:
        """Real values for the commands: container, port, pids, paths."""
        ev = self.evidence
        pids = []
        if ev and ev.host:
            pids = [p["pid"] for p in ev.host.get("processes", [])]
        return {
            "container": self.p.get("container") or "",
            "log_sources": self.log_source,
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
        """A mitigation that acts only when `allow_mitigation` is true (and, in a run an
        operator approved, only when it is one they approved); says what it did."""
        from runbook_lib.diagnosis.mitigation import ACTIONS, not_approved

        approved = (self.p.get("incident") or {}).get("approved_mitigations")
        if approved is not None and action not in approved:
            result = not_approved(action, approved)
        else:
            allowed = bool(self.p.get("allow_mitigation"))
            result = ACTIONS[action](self.values(), allowed, self.p.get("live"))
        self.actions.append(result)
        display(Markdown(f"**{action}**: {esc(result['outcome'])}"))

    def message(self) -> None:
        """The runbook's communication template, filled in."""
        from runbook_lib.notebook.communication import message, status_of

        if self.exploring:
            display(Markdown("*No incident message: no alert is firing, this is an exploration.*"))
            return
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
        from runbook_lib.diagnosis.postcheck import run_checks

        self.post_check_rows = run_checks(self.runbook, self.scope, self.prom, self.at)
        display(pd.DataFrame(self.post_check_rows)[["check", "status"]])

    # -- summary -----------------------------------------------------------------------
    def summary(self) -> dict:
        """The summary the record files (summary.json), displayed as the last output."""
        from runbook_lib.notebook.summary import build

        out = build(self)
        display(
            {"application/json": out, "text/plain": json.dumps(out, indent=1, ensure_ascii=False)},
            raw=True,
            metadata={"runbook_summary": True},
        )
        return out

    def first_command(self, cause: str | None) -> str | None:
        """The first command of the runbook's resolution for `cause` (what to do first)."""
        from runbook_lib.diagnosis.resolution import commands

        if cause is None:
            return None
        lines = commands(self.runbook, cause, self.values()).splitlines()
        return next((ln for ln in lines if ln.strip() and not ln.startswith("#")), None)

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


def _duration(text: str) -> timedelta:
    """'45m', '2h', '1d' as a timedelta."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"window {text!r}: write a number and s, m, h or d, e.g. '45m'")
    return timedelta(**{units[text[-1]]: int(text[:-1])})
