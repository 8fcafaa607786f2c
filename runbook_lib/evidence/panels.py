"""The named series the runbooks chart, each with its data, unit and thresholds.

Queries are built from `names.NAMES` and scoped to the alert's job and instance, using raw
metrics (not recording rules) so they also work on backfilled history.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from runbook_lib.contract.names import NAMES, in_profile, not_exposed, series_in
from runbook_lib.contract.settings import MEMORY_LIMIT_BYTES
from runbook_lib.contract.thresholds import THRESHOLDS, Threshold
from runbook_lib.evidence.prom import Prom, QueryResult, ask_ranges, escape

GiB = 1 << 30
N = NAMES


@dataclass(frozen=True)
class Scope:
    """Which series belong to the incident: the service's job/instance, the node's."""

    instance: str | None = None
    job: str = N.job
    node_instance: str | None = None
    memory_limit_bytes: float = MEMORY_LIMIT_BYTES

    @classmethod
    def from_labels(cls, labels: dict[str, str], **kw: object) -> Scope:
        if labels.get("job") == N.node_job:
            return cls(instance=None, node_instance=labels.get("instance"), **kw)
        return cls(instance=labels.get("instance") or None, job=labels.get("job") or N.job, **kw)

    def sel(self, **extra: str) -> str:
        """`{job="...",instance="...",extra...}`; extra values may be regexes (key=~)."""
        parts = [f'job="{escape(self.job)}"']
        if self.instance:
            parts.append(f'instance="{escape(self.instance)}"')
        for key, value in extra.items():
            op = "=~" if key.endswith("_re") else "="
            parts.append(f'{key.removesuffix("_re")}{op}"{value}"')
        return "{" + ",".join(parts) + "}"

    def node_sel(self) -> str:
        parts = [f'job="{escape(N.node_job)}"', 'mountpoint="/"', 'fstype!="rootfs"']
        if self.node_instance:
            parts.append(f'instance="{escape(self.node_instance)}"')
        return "{" + ",".join(parts) + "}"

    def limit(self) -> str:
        """The memory limit in bytes, as PromQL reads it."""
        return f"{self.memory_limit_bytes:.0f}"


class Template(Scope):
    """A scope that writes placeholders instead of the alert's labels: the PromQL a notebook
    shows (`{sel}`, `{sel,status=~"error|timeout"}`, `{node_sel}`, `{memory_limit}`), which
    `fill` turns into the query for an alert."""

    def sel(self, **extra: str) -> str:
        parts = ["sel"]
        for key, value in extra.items():
            op = "=~" if key.endswith("_re") else "="
            parts.append(f'{key.removesuffix("_re")}{op}"{value}"')
        return "{" + ",".join(parts) + "}"

    def node_sel(self) -> str:
        return "{node_sel}"

    def limit(self) -> str:
        return "{memory_limit}"


PLACEHOLDER = re.compile(r"\{(sel|node_sel|memory_limit)(?:,([^{}]*))?\}")


def fill(template: str, scope: Scope) -> str:
    """The PromQL of `template` for `scope`: `{sel}` becomes the alert's escaped job and
    instance matchers (plus any written after a comma), `{node_sel}` the node exporter's,
    `{memory_limit}` the limit in bytes. Other braces are left as written. Metric names are
    the contract's, as written, mapped to the metrics profile in use."""

    def put(m: re.Match[str]) -> str:
        name, extra = m.group(1), m.group(2)
        if name == "memory_limit":
            return scope.limit()
        base = scope.sel() if name == "sel" else scope.node_sel()
        return base[:-1] + "," + extra + "}" if extra else base

    return PLACEHOLDER.sub(put, in_profile(template))


def error_rate_q(s: Scope, w: str = "5m") -> str:
    bad = s.sel(status_re="error|timeout")
    return f"100 * sum(rate({N.requests}{bad}[{w}])) / (sum(rate({N.requests}{s.sel()}[{w}])) > 0)"


def quantile_q(s: Scope, q: float, by: str = "", w: str = "5m", metric: str = "") -> str:
    metric = metric or N.duration  # read now: the metrics profile may have changed
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{s.sel()}[{w}])))"


def cache_hit_q(s: Scope, w: str = "5m") -> str:
    hits, misses = (
        f"sum(rate({N.cache_hits}{s.sel()}[{w}]))",
        f"sum(rate({N.cache_misses}{s.sel()}[{w}]))",
    )
    return f"100 * {hits} / (({hits} + {misses}) > 0)"


def memory_percent_q(s: Scope) -> str:
    return f"100 * max({N.rss}{s.sel()}) / {s.limit()}"


def disk_used_q(s: Scope) -> str:
    sel = s.node_sel()
    return f"100 * (1 - max({N.fs_avail}{sel}) / (max({N.fs_size}{sel}) > 0))"


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    unit: str
    queries: Callable[[Scope], dict[str, str]]  # legend -> PromQL
    threshold: str | None = None  # a key of contract.thresholds.THRESHOLDS
    split_by: str | None = None  # a label whose values become legends

    levels: tuple[float | None, float | None] | None = None  # (warn, crit) written in a cell

    @property
    def limits(self) -> Threshold | None:
        return THRESHOLDS[self.threshold] if self.threshold else None

    @property
    def warn(self) -> float | None:
        if self.levels is not None:
            return self.levels[0]
        return self.limits.warn_value if self.limits else None

    @property
    def crit(self) -> float | None:
        if self.levels is not None:
            return self.levels[1]
        return self.limits.crit_value if self.limits else None

    def promql(self) -> dict[str, str]:
        """legend -> the PromQL with placeholders, as a notebook cell shows it."""
        return self.queries(Template())

    @property
    def below_is_bad(self) -> bool:
        return bool(self.limits and self.limits.below_is_bad)


PANELS: dict[str, Panel] = {
    p.name: p
    for p in [
        Panel(
            "request_rate",
            "Request rate",
            "req/s",
            lambda s: {"requests/s": f"sum(rate({N.requests}{s.sel()}[5m]))"},
        ),
        Panel(
            "error_rate",
            "Error rate",
            "%",
            lambda s: {"error rate": error_rate_q(s)},
            "error_rate",
        ),
        Panel(
            "errors_by_type",
            "Errors by type",
            "errors/s",
            lambda s: {"": f"sum by (error_type) (rate({N.errors}{s.sel()}[5m])) > 0"},
            split_by="error_type",
        ),
        Panel(
            "errors_by_tool",
            "Errors by tool",
            "errors/s",
            lambda s: {"": f"sum by (tool) (rate({N.errors}{s.sel()}[5m])) > 0"},
            split_by="tool",
        ),
        Panel(
            "latency",
            "Request latency",
            "s",
            lambda s: {f"p{int(q * 100)}": quantile_q(s, q) for q in (0.5, 0.95, 0.99)},
            "latency_p95",
        ),
        Panel(
            "latency_by_tool",
            "p95 latency by tool",
            "s",
            lambda s: {"": quantile_q(s, 0.95, by="tool")},
            "latency_p95",
            split_by="tool",
        ),
        Panel(
            "cache_hit_rate",
            "Cache hit rate",
            "%",
            lambda s: {"hit rate": cache_hit_q(s)},
            "cache_hit_rate",
        ),
        Panel(
            "cache_evictions",
            "Cache evictions",
            "evictions/s",
            lambda s: {"evictions/s": f"sum(rate({N.cache_evictions}{s.sel()}[5m]))"},
        ),
        Panel(
            "cache_size",
            "Cache size",
            "workbooks",
            lambda s: {"workbooks": f"max({N.cache_size}{s.sel()})"},
        ),
        Panel(
            "memory",
            "Memory (% of limit)",
            "%",
            lambda s: {"resident": memory_percent_q(s)},
            "memory",
        ),
        Panel(
            "heap",
            "Heap",
            "MiB",
            lambda s: {
                "used": f"max({N.heap_used}{s.sel()}) / 1048576",
                "total": f"max({N.heap_total}{s.sel()}) / 1048576",
            },
        ),
        Panel("cpu", "CPU", "cores", lambda s: {"cpu": f"max(rate({N.cpu}{s.sel()}[5m]))"}, "cpu"),
        Panel(
            "libreoffice_processes",
            "LibreOffice processes",
            "processes",
            lambda s: {"soffice": f"max({N.libreoffice}{s.sel()})"},
            "libreoffice_processes",
        ),
        Panel(
            "active_forks",
            "Active forks",
            "processes",
            lambda s: {"forks": f"max({N.active_forks}{s.sel()})"},
            "active_forks",
        ),
        Panel(
            "descriptors",
            "File descriptors (% of limit)",
            "%",
            lambda s: {
                "open / max": f"100 * max({N.open_fds}{s.sel()}) / (max({N.max_fds}{s.sel()}) > 0)"
            },
            "descriptors",
        ),
        Panel("disk", "Disk used on /", "%", lambda s: {"used": disk_used_q(s)}, "disk"),
        Panel("up", "Scrape up", "", lambda s: {"up": f"max({N.up}{s.sel()})"}),
        Panel(
            "component_health",
            "Component health",
            "",
            lambda s: {"": f"{N.health}{s.sel()}"},
            split_by="component",
        ),
    ]
}


@dataclass
class PanelData:
    """A panel's series over a window: `frame` has timestamp, series, value."""

    panel: Panel
    frame: pd.DataFrame
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.frame.empty

    def gap(self) -> str:
        """Why there is nothing to show (empty when there is data)."""
        if self.ok:
            return ""
        return "; ".join(self.errors) or "no data"

    def last(self, series: str | None = None) -> float | None:
        f = self.frame if series is None else self.frame[self.frame["series"] == series]
        return None if f.empty else float(f.sort_values("timestamp")["value"].iloc[-1])

    def peak(self) -> tuple[pd.Timestamp, float] | None:
        if self.frame.empty:
            return None
        pick = (
            self.frame["value"].idxmin()
            if self.panel.below_is_bad
            else self.frame["value"].idxmax()
        )
        row = self.frame.loc[pick]
        return row["timestamp"], float(row["value"])


def fetch(prom: Prom, name: str, scope: Scope, start: datetime, end: datetime) -> PanelData:
    """One named panel over [start, end]; unreachable or empty sources become `errors`."""
    return fetch_panel(prom, PANELS[name], scope, start, end)


def fetch_panel(
    prom: Prom, panel: Panel, scope: Scope, start: datetime, end: datetime
) -> PanelData:
    """`panel` (a named one, or one a notebook cell defined) over [start, end]."""
    return fetch_panels(prom, [panel], scope, start, end)[0]


def fetch_panels(
    prom: Prom, chosen: list[Panel], scope: Scope, start: datetime, end: datetime
) -> list[PanelData]:
    """Each of `chosen` over [start, end], their queries asked together (`ask_ranges`: one
    request instead of one per query); a query the metrics profile does not expose is not
    sent, and is named in its panel's `errors`."""
    asked: dict[str, str] = {}  # query -> its name in the joined request
    for panel in chosen:
        for query in panel.queries(scope).values():
            if not not_exposed(series_in(query)):
                asked.setdefault(query, str(len(asked)))
    named = ask_ranges(prom, {name: query for query, name in asked.items()}, start, end)
    answers = {query: named[name] for query, name in asked.items()}
    return [_panel_data(panel, scope, answers) for panel in chosen]


def _panel_data(panel: Panel, scope: Scope, answers: dict[str, QueryResult]) -> PanelData:
    """`panel`'s series from the answers to its queries (a query not sent has none); what
    is missing in `errors`."""
    frames, errors = [], []
    for legend, query in panel.queries(scope).items():
        res = answers.get(query)
        if res is None or not res.ok:
            why = res.reason if res else not_exposed(series_in(query))
            errors.append(f"{legend or panel.title}: {why}")
        else:
            frames.append(_legend(res, legend, panel.split_by))
    empty = pd.DataFrame(columns=["timestamp", "series", "value"])
    return PanelData(panel, pd.concat(frames, ignore_index=True) if frames else empty, errors)


def _legend(res: QueryResult, legend: str, split_by: str | None) -> pd.DataFrame:
    """The answer's rows as timestamp, series (the legend, or the `split_by` label's value),
    value: built from those columns alone (copying the whole answer cost 4x the CPU)."""
    f = res.frame
    series = f[split_by].astype(str) if split_by and split_by in f else legend
    return pd.DataFrame({"timestamp": f["timestamp"], "series": series, "value": f["value"]})


@dataclass(frozen=True)
class Trend:
    """A straight-line fit of one series: slope per hour, fit quality, and when it would
    cross `limit` if it kept going."""

    slope_per_h: float
    r2: float
    last: float
    limit: float | None
    eta: datetime | None

    def describe(self, unit: str) -> str:
        text = f"{self.slope_per_h:+.1f} {unit}/h (fit R² {self.r2:.2f})"
        if self.eta is not None:
            text += f", reaches {self.limit:g} {unit} at {self.eta:%Y-%m-%d %H:%M} UTC"
        return text


def trend(frame: pd.DataFrame, limit: float | None = None) -> Trend | None:
    """Least-squares line through (timestamp, value); None with fewer than 3 points."""
    f = frame.dropna(subset=["value"]).sort_values("timestamp")
    if len(f) < 3:
        return None
    t = f["timestamp"].map(lambda x: x.timestamp()).to_numpy(dtype=float)
    y = f["value"].to_numpy(dtype=float)
    slope, intercept = np.polyfit(t - t[0], y, 1)
    fitted = slope * (t - t[0]) + intercept
    ss_res, ss_tot = float(((y - fitted) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    eta = None
    if limit is not None and slope > 0 and y[-1] < limit:
        seconds = (limit - y[-1]) / slope
        if seconds < 365 * 86400:
            eta = f["timestamp"].iloc[-1].to_pydatetime() + timedelta(seconds=float(seconds))
    return Trend(slope * 3600, max(0.0, r2), float(y[-1]), limit, eta)
