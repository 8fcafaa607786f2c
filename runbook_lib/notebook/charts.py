"""Matplotlib charts in one style: thresholds, the alert's start and firing window, the peak.

Each chart stays small (about 100 KB as PNG) so the HTML record remains light.
"""

from __future__ import annotations

import io
import textwrap
from datetime import datetime

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter

from runbook_lib.evidence.panels import PanelData, Scope, fetch
from runbook_lib.evidence.prom import Prom

OVERVIEW = ("error_rate", "latency", "cache_hit_rate", "memory")
STYLE = {
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
WARN, CRIT, ALERT, FIRING = "#e69f00", "#d62728", "#7f3fbf", "#f2e6ff"


def draw(
    data: PanelData,
    ax: Axes,
    alert_start: datetime | None = None,
    alert_end: datetime | None = None,
) -> Axes:
    """One panel on `ax`. A panel without data says why instead of drawing nothing."""
    p = data.panel
    ax.set_title(p.title)
    if not data.ok:
        why = textwrap.fill(data.gap()[:200], 48)
        ax.text(
            0.5,
            0.5,
            f"no data\n{why}",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="gray",
            fontsize=8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
        return ax
    for series, f in data.frame.groupby("series", sort=True):
        f = f.sort_values("timestamp")
        ax.plot(f["timestamp"], f["value"], linewidth=1.4, label=str(series) or p.title)
    for value, color, label in ((p.warn, WARN, "warning"), (p.crit, CRIT, "critical")):
        if value is not None:
            ax.axhline(value, color=color, linestyle="--", linewidth=1, label=f"{label} {value:g}")
    if alert_start is not None:
        start = pd.Timestamp(alert_start)
        end = pd.Timestamp(alert_end) if alert_end else data.frame["timestamp"].max()
        ax.axvspan(start, max(end, start), color=FIRING, alpha=0.6, zorder=0)
        ax.axvline(start, color=ALERT, linewidth=1.2, label="alert fired")
    peak = data.peak()
    if peak is not None:
        ts, value = peak
        times = data.frame["timestamp"]
        left = ts - times.min() > (times.max() - ts)  # in the right half: label to its left,
        ax.annotate(  # or it runs past the figure's edge and is cut off
            f"{'min' if p.below_is_bad else 'peak'} {value:.3g} {p.unit}",
            (ts, value),
            xytext=(-6 if left else 6, 6),
            textcoords="offset points",
            ha="right" if left else "left",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "gray"},
        )
    ax.set_ylabel(p.unit)
    ax.yaxis.set_major_formatter(FuncFormatter(compact))
    time_axis(ax)
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) > 1:
        ax.legend(loc="upper left", ncols=2)
    return ax


class DistinctTimes(Formatter):
    """Time tick labels in the shortest form that tells every tick apart: clock times,
    seconds when minutes repeat, the date when the window spans days (UTC, as the data)."""

    FORMATS = ("%H:%M", "%H:%M:%S", "%d %b", "%d %b %H:%M")

    def format_ticks(self, values: list[float]) -> list[str]:
        times = [mdates.num2date(v) for v in values]
        for fmt in self.FORMATS:
            labels = [t.strftime(fmt) for t in times]
            if len(set(labels)) == len(labels):
                return labels
        return [t.strftime("%Y-%m-%d %H:%M:%S") for t in times]

    def __call__(self, x: float, pos: int | None = None) -> str:
        return mdates.num2date(x).strftime("%H:%M")


def time_axis(ax: Axes) -> None:
    """Three to seven time ticks, each label different from the others."""
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=7))
    ax.xaxis.set_major_formatter(DistinctTimes())


def compact(value: float, _pos: object = None) -> str:
    """A tick label of at most five characters (12k, 3.5M), so labels fit the margin."""
    for at, scale, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= at:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.4g}"


def overview(
    prom: Prom,
    scope: Scope,
    start: datetime,
    end: datetime,
    alert_start: datetime | None = None,
    alert_end: datetime | None = None,
) -> Figure:
    """The four-panel overview: error rate, latency, cache hit rate, memory trend."""
    return grid([fetch(prom, name, scope, start, end) for name in OVERVIEW], alert_start, alert_end)


WIDTH_IN, ROW_IN = 11.0, 3.1
# Margins in inches, fitted once to these sizes and fonts (what tight_layout finds for the
# overview): fixed margins spare a layout pass that cost a third of each chart's rendering.
MARGINS_IN = {"left": 0.7, "right": 0.35, "top": 0.33, "bottom": 0.36}
SPACING = {"wspace": 0.22, "hspace": 0.3}


def grid(
    datas: list[PanelData],
    alert_start: datetime | None = None,
    alert_end: datetime | None = None,
    ncols: int = 2,
) -> Figure:
    """Several already-fetched panels side by side, two per row."""
    rows = -(-len(datas) // ncols)
    height = ROW_IN * rows
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, ncols, figsize=(WIDTH_IN, height), squeeze=False)
        for ax in axes.flat[len(datas) :]:
            ax.set_visible(False)
        for data, ax in zip(datas, axes.flat, strict=False):
            draw(data, ax, alert_start, alert_end)
        m = MARGINS_IN
        fig.subplots_adjust(
            left=m["left"] / WIDTH_IN,
            right=1 - m["right"] / WIDTH_IN,
            top=1 - m["top"] / height,
            bottom=m["bottom"] / height,
            **SPACING,
        )
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# The series each runbook's alert fires on, charted beside the attribution of its symptom.
SYMPTOM_PANEL = {
    "memory": "memory",
    "high_latency": "latency",
    "high_error_rate": "error_rate",
    "cache_hit_rate": "cache_hit_rate",
    "fd_leak": "descriptors",
    "disk_usage": "disk",
    "libreoffice_leak": "libreoffice_processes",
    "fork_leak": "active_forks",
}
PART_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
UNEXPLAINED = "#c7c7c7"


def attribution(
    att: dict,
    symptom: PanelData | None,
    alert_start: datetime | None = None,
    alert_end: datetime | None = None,
) -> Figure:
    """The alerting series (left) and how its symptom splits among the causes (right): one
    stacked bar, a segment per cause that claims a part, grey for what nothing explains."""
    height = ROW_IN
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(WIDTH_IN, height), gridspec_kw={"width_ratios": (1.4, 1)}
        )
        if symptom is not None:
            draw(symptom, left, alert_start, alert_end)
        else:
            left.set_visible(False)
        _stacked(att, right)
        m = MARGINS_IN
        fig.subplots_adjust(
            left=m["left"] / WIDTH_IN,
            right=1 - m["right"] / WIDTH_IN,
            top=1 - m["top"] / height,
            bottom=0.9 / height,
            wspace=0.3,
        )
    return fig


def _stacked(att: dict, ax: Axes) -> None:
    total = att.get("total") or 0.0
    parts = sorted((att.get("parts") or {}).items(), key=lambda kv: -kv[1])
    if att.get("unexplained"):
        parts.append(("unexplained", att["unexplained"]))
    ax.set_title("What explains it")
    left = 0.0
    for i, (cause, amount) in enumerate(parts):
        share = amount / total if total else 0.0
        color = UNEXPLAINED if cause == "unexplained" else PART_COLORS[i % len(PART_COLORS)]
        name = cause.replace("_", " ")
        ax.barh(0, amount, left=left, color=color, label=f"{name} {100 * share:.0f}%", height=0.6)
        if share >= 0.15:
            ax.text(
                left + amount / 2,
                0,
                f"{textwrap.fill(name, 14)}\n{100 * share:.0f}%",
                ha="center",
                va="center",
                color="black" if cause == "unexplained" else "white",
                fontsize=9,
            )
        left += amount
    ax.set_yticks([])
    ax.set_ylim(-0.45, 1.05)
    ax.set_xlim(0, max(left, total) or 1.0)
    ax.set_xlabel(textwrap.fill(str(att.get("of_what", "")), 60), fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.grid(False)
    ax.legend(loc="upper left", ncols=2, fontsize=8)
