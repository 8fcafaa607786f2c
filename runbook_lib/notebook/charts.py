"""Matplotlib charts in one style: thresholds, the alert's start and firing window, the peak.

Read at a glance: the "alert fired" line is black and thresholds orange and red, colours no
series takes; legends sit under their chart, never over the data or a threshold; the peak's
label stays inside the frame; a y-axis spans at least a fifth of its values (a flat series
stays flat instead of magnifying noise in its fourth digit); health and up/down series are
state timelines, a band per component. Each chart stays small (about 100 KB as PNG) so the
HTML record remains light. Layout is computed, not searched for: each row's height is its
chart, its tick labels and its legend's rows, so no layout pass runs (`figures`).
"""

from __future__ import annotations

import math
import textwrap
from datetime import datetime

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation
from matplotlib.ticker import Formatter, FuncFormatter
from matplotlib.transforms import IdentityTransform

from runbook_lib.evidence.panels import PANELS, PanelData, Scope, fetch_panels
from runbook_lib.evidence.prom import Prom
from runbook_lib.notebook import png, rendering
from runbook_lib.notebook.figures import (
    AXES_IN,
    CHARS_PER_IN,
    GAP_IN,
    LEFT_IN,
    LEGEND_ROW_IN,
    LEGEND_TOP,
    STYLE,
    TEXT_CHARS_PER_IN,
    columns,
    figure,
)
from runbook_lib.notebook.key import Key, columns_of
from runbook_lib.notebook.wording import cause_name

OVERVIEW = ("error_rate", "latency", "cache_hit_rate", "memory")
WARN, CRIT, ALERT, FIRING = "#e69f00", "#d62728", "#000000", "#fde8e8"
# Series colours: none is black, orange, red or purple, nor close to them.
SERIES = ("#1f77b4", "#2ca02c", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#393b79", "#9ecae1", "#8ca252")  # fmt: skip
# Panels whose series are states (1 healthy or up, 0 not): drawn as timelines.
STATES = {"component_health": ("healthy", "unhealthy"), "up": ("up", "down")}
OK_STATE, BAD_STATE = "#2ca02c", "#d62728"
MIN_SPAN = 0.2  # a y-axis spans at least this share of its largest value
HEADROOM = 0.18  # above the highest value, for the peak's label
TICK_PAD_IN = 0.15  # the tick, its pad, and a little air beside the next chart


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
        ax.text(0.5, 0.5, f"no data\n{why}", ha="center", va="center", transform=ax.transAxes,
                color="gray", fontsize=8)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
        return ax
    if p.name in STATES:
        _timeline(data, ax)
    else:
        _lines(data, ax)
    _firing(data, ax, alert_start, alert_end)
    time_axis(ax)
    _legend(ax)
    return ax


def _lines(data: PanelData, ax: Axes) -> None:
    p = data.panel
    for i, (series, f) in enumerate(data.frame.groupby("series", sort=True)):
        f = f.sort_values("timestamp")
        ax.plot(days(f["timestamp"]), f["value"], linewidth=1.4, label=str(series) or p.title,
                color=SERIES[i % len(SERIES)])  # fmt: skip
    levels = [(p.warn, WARN, "warning"), (p.crit, CRIT, "critical")]
    for value, color, label in levels:
        if value is not None:
            ax.axhline(value, color=color, linestyle="--", linewidth=1, label=f"{label} {value:g}")
    values = [*data.frame["value"].dropna(), *(v for v, _, _ in levels if v is not None)]
    ax.set_ylim(*y_limits(values))
    peak = data.peak()
    if peak is not None:
        ts, value = peak
        times = data.frame["timestamp"]
        left = ts - times.min() > (times.max() - ts)  # in the right half: label to its left
        label = PeakLabel(
            f"{'min' if p.below_is_bad else 'peak'} {value:.3g} {p.unit}",
            (mdates.date2num(ts), value),
            xytext=(-6 if left else 6, 6),
            textcoords="offset points",
            ha="right" if left else "left",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "gray"},
        )
        label.set_transform(IdentityTransform())  # as `Axes.annotate` does
        ax._add_text(label)
    ax.set_ylabel(p.unit)
    ax.yaxis.set_major_formatter(FuncFormatter(compact))


class PeakLabel(Annotation):
    """The peak's label and its short grey line to the point, as `Axes.annotate` draws it,
    with the box the line starts from answering the line's clipping by arithmetic: the
    clipping bisects the line, asking at each step whether a point lies in the box, and
    each `Rectangle.contains` builds its transforms and a path for a point-in-path test
    (half the CPU of drawing a chart's peak label, profiled)."""

    def update_positions(self, renderer) -> None:
        super().update_positions(renderer)
        box = self.arrow_patch.patchA if self.arrow_patch is not None else None
        if type(box) is Rectangle:
            self.arrow_patch.set_patchA(TextBox(box))


class TextBox:
    """An unstroked box as an arrow's clipping asks it (`contains`): the answer of its
    `Rectangle`, whose edge adds no margin: strictly inside its extents."""

    def __init__(self, box: Rectangle) -> None:
        (self.x0, self.y0), (self.x1, self.y1) = box.get_xy(), box.get_corners()[2]

    def contains(self, point) -> tuple[bool, dict]:
        return (self.x0 < point.x < self.x1 and self.y0 < point.y < self.y1), {}


def y_limits(values: list[float]) -> tuple[float, float]:
    """The y-axis of `values`: at least `MIN_SPAN` of the largest magnitude wide (1 when all
    are zero), from zero rather than below it when none is negative, with room above for
    the peak's label."""
    lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
    floor = MIN_SPAN * max(abs(lo), abs(hi)) or 1.0
    if hi - lo < floor:  # widened around the middle: noise stays small
        mid = (lo + hi) / 2
        lo, hi = mid - floor / 2, mid + floor / 2
    if lo < 0 <= min(values, default=0.0):
        lo, hi = 0.0, hi - lo
    span = hi - lo
    return lo - (0.0 if lo == 0 else 0.05 * span), hi + HEADROOM * span


def _timeline(data: PanelData, ax: Axes) -> None:
    """A band per series: green while the state is 1, red while 0, blank without samples."""
    good, bad = STATES[data.panel.name]
    names = sorted(map(str, data.frame["series"].unique()))
    labelled: set[bool] = set()
    for row, name in enumerate(names):
        f = data.frame[data.frame["series"].astype(str) == name].sort_values("timestamp")
        for start, width, ok in _runs(f):
            label = (good if ok else bad) if ok not in labelled else None
            labelled.add(ok)
            ax.broken_barh([(start, width)], (row - 0.35, 0.7), label=label,
                           color=OK_STATE if ok else BAD_STATE)  # fmt: skip
    labels = [n or data.panel.title for n in names]
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.grid(False, axis="y")
    _room_for(ax, labels)


def _room_for(ax: Axes, labels: list[str]) -> None:
    """Narrow `ax` from the left until its tick labels fit the margin or the gap beside it:
    "workbook_cache" is wider than the gap and ran into the chart to its left."""
    box, fig_w = ax.get_position(), ax.figure.get_figwidth()
    room = (LEFT_IN if box.x0 * fig_w < LEFT_IN + 0.01 else GAP_IN) - TICK_PAD_IN
    need = max(map(len, labels), default=0) / TEXT_CHARS_PER_IN - room
    if need > 0:
        ax.set_position((box.x0 + need / fig_w, box.y0, box.width - need / fig_w, box.height))


def _runs(f: pd.DataFrame) -> list[tuple[float, float, bool]]:
    """(start, width, state) in Matplotlib's date units, one per run of equal states, each
    lasting to its last sample and one step more; samples further apart than three steps
    end a run, and the gap stays blank."""
    times = days(f["timestamp"])
    states = (f["value"].to_numpy() >= 1).tolist()
    step = float(pd.Series(times).diff().median()) if len(times) > 1 else 30 / 86400
    runs: list[list] = []
    for t, ok in zip(times, states, strict=True):
        if runs and runs[-1][2] == ok and t - runs[-1][1] <= 3 * step:
            runs[-1][1] = t
        else:
            runs.append([t, t, ok])
    return [(first, last - first + step, ok) for first, last, ok in runs]


def days(times: pd.Series) -> np.ndarray:
    """UTC timestamps as Matplotlib's date numbers, converted as one array: the values
    Matplotlib's own conversion gives, which goes through a Python datetime per sample (a
    tenth of making a chart's lines, profiled)."""
    return mdates.date2num(times.dt.tz_convert(None).to_numpy())


def _firing(data: PanelData, ax: Axes, start: datetime | None, end: datetime | None) -> None:
    """The alert's firing window, shaded, and a black line where it fired."""
    if start is None:
        return
    begin = mdates.date2num(pd.Timestamp(start))  # numbers, as the series (`days`)
    until = mdates.date2num(pd.Timestamp(end) if end else data.frame["timestamp"].max())
    ax.axvspan(begin, max(until, begin), color=FIRING, zorder=0)
    ax.axvline(begin, color=ALERT, linewidth=1.2, label="alert fired")


def _legend(ax: Axes) -> None:
    """The legend under the chart (below its time labels), in as many columns as fit."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > 1:
        Key(ax, handles, labels, LEGEND_TOP)


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
    chosen = [PANELS[name] for name in OVERVIEW]
    return grid(fetch_panels(prom, chosen, scope, start, end), alert_start, alert_end)


def _rows_of(labels: list[str], width_in: float) -> int:
    return math.ceil(len(labels) / columns_of(labels, width_in)) if labels else 0


def legend_rows(data: PanelData | None, width_in: float) -> int:
    """The rows the legend of `data` takes under a chart `width_in` wide (counted from the
    data, before drawing, so the row's height is known)."""
    if data is None or not data.ok:
        return 0
    p = data.panel
    if p.name in STATES:
        labels = [*STATES[p.name], "alert fired"]
    else:
        labels = [str(s) or p.title for s in data.frame["series"].unique()]
        labels += [f"{name} {v:g}" for name, v in (("warning", p.warn), ("critical", p.crit))
                   if v is not None]  # fmt: skip
        labels += ["alert fired"]
    return _rows_of(labels, width_in) if len(labels) > 1 else 0


def grid(
    datas: list[PanelData],
    alert_start: datetime | None = None,
    alert_end: datetime | None = None,
    ncols: int = 2,
) -> Figure:
    """Several already-fetched panels side by side, `ncols` per row."""
    cols = columns((1.0,) * ncols)
    nrows = -(-len(datas) // ncols)
    rows = [cols[: min(ncols, len(datas) - r * ncols)] for r in range(nrows)]
    legend = [
        max(legend_rows(d, cols[0][1]) for d in datas[r * ncols : (r + 1) * ncols])
        for r in range(nrows)
    ]
    with plt.rc_context(STYLE):
        fig, axes = figure(rows, legend)
        for data, ax in zip(datas, axes, strict=True):
            draw(data, ax, alert_start, alert_end)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as a PNG file: drawn by its Agg canvas as `savefig` would (the charts'
    style sets the same dpi for both; no tight box), encoded by `png.encode`."""
    fig.canvas.draw()
    data = png.encode(np.asarray(fig.canvas.buffer_rgba()))
    rendering.hand_over()  # the texts it drew, to the kernels forked after this one
    return data


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
PART_COLORS = ("#1f77b4", "#8c564b", "#2ca02c", "#17becf", "#e377c2", "#bcbd22")
UNEXPLAINED = "#c7c7c7"


def attribution(
    att: dict,
    symptom: PanelData | None,
    alert_start: datetime | None = None,
    alert_end: datetime | None = None,
) -> Figure:
    """The alerting series (left) and how its symptom splits among the causes (right): one
    stacked bar, a segment per cause that claims a part, grey for what nothing explains."""
    (left_cell, right_cell) = columns((1.4, 1.0))
    of_what = textwrap.wrap(str(att.get("of_what", "")), int(right_cell[1] * CHARS_PER_IN))
    labels = [*(att.get("parts") or {}), *(["unexplained"] if att.get("unexplained") else [])]
    rows = len(of_what) + _rows_of([f"{cause_name(c)} 100%" for c in labels], right_cell[1])
    legend = max(legend_rows(symptom, left_cell[1]), rows)
    with plt.rc_context(STYLE):
        fig, (left, right) = figure([[left_cell, right_cell]], [legend])
        if symptom is not None:
            draw(symptom, left, alert_start, alert_end)
        else:
            left.set_visible(False)
        _stacked(att, right, of_what)
    return fig


def _stacked(att: dict, ax: Axes, of_what: list[str]) -> None:
    total = att.get("total") or 0.0
    parts = sorted((att.get("parts") or {}).items(), key=lambda kv: -kv[1])
    if att.get("unexplained"):
        parts.append(("unexplained", att["unexplained"]))
    ax.set_title("What explains it")
    left = 0.0
    for i, (cause, amount) in enumerate(parts):
        share = amount / total if total else 0.0
        color = UNEXPLAINED if cause == "unexplained" else PART_COLORS[i % len(PART_COLORS)]
        name = cause if cause == "unexplained" else cause_name(cause)
        ax.barh(0, amount, left=left, color=color, label=f"{name} {100 * share:.0f}%", height=0.6)
        if share >= 0.15:
            ax.text(left + amount / 2, 0, f"{textwrap.fill(name, 14)}\n{100 * share:.0f}%",
                    ha="center", va="center", fontsize=9,
                    color="black" if cause == "unexplained" else "white")  # fmt: skip
        left += amount
    ax.set_yticks([])
    ax.set_ylim(-0.45, 0.45)
    ax.set_xlim(0, max(left, total) or 1.0)
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.grid(False)
    ax.set_xlabel("\n".join(of_what), fontsize=8, loc="left")
    below = LEGEND_TOP + len(of_what) * LEGEND_ROW_IN / AXES_IN
    Key(ax, *ax.get_legend_handles_labels(), below)
