"""The charts' figures: their style, and their layout to the inch, computed rather than
searched for (no tight_layout, no bbox_inches="tight": each row's height is its chart, its
tick labels and its legend's rows). Figures are made ahead by the kernel zygote
(`make_spares`): creating a figure's axes and tick artists is about a fifth of a chart's CPU,
and a forked kernel takes its copies ready; a chart drawn on one is the same PNG, byte for
byte, as one drawn on a new figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

from runbook_lib.notebook.rendering import ChartCanvas

STYLE = {
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titley": 1.0,  # where matplotlib would put it (no top ticks): no search at draw
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}

# layout, in inches
WIDTH_IN = 11.0
LEFT_IN, RIGHT_IN, GAP_IN = 0.8, 0.3, 0.75  # margins, and between two charts of a row
TITLE_IN, AXES_IN, TICKS_IN, LEGEND_ROW_IN, AFTER_IN = 0.32, 2.2, 0.3, 0.17, 0.12
LEGEND_TOP = TICKS_IN / AXES_IN  # the legend's top, under the tick labels (axes fraction)
YLABEL_IN = 0.55  # the y label's edge: beside "-14.5k" at 9 pt, its tick and pads, 3 pt more
XLABEL_IN = 0.3  # the x label's top: under its tick labels, as TICKS_IN leaves room for
CHARS_PER_IN = 13  # legend text at 8 pt, with its handle
TEXT_CHARS_PER_IN = 14  # 8 pt text alone, wide letters ("workbook_cache" is 0.92 in)


def figure(rows: list[list[tuple[float, float]]], legend: list[int]) -> tuple[Figure, list[Axes]]:
    """A figure whose row r holds axes at the (left, width) pairs of `rows[r]`, with room
    for `legend[r]` legend rows under it: a spare one when there is (`make_spares`)."""
    heights = [TITLE_IN + AXES_IN + TICKS_IN + n * LEGEND_ROW_IN + AFTER_IN for n in legend]
    total = sum(heights)
    boxes, top = [], total
    for cells, height in zip(rows, heights, strict=True):
        bottom = top - TITLE_IN - AXES_IN
        boxes += [(left / WIDTH_IN, bottom / total, width / WIDTH_IN, AXES_IN / total)
                  for left, width in cells]  # fmt: skip
        top -= height
    spare = _spares.get(len(boxes))
    fig = spare.pop() if spare else _blank(len(boxes))
    fig.set_size_inches(WIDTH_IN, total)
    for ax, box in zip(fig.axes, boxes, strict=True):
        ax.set_position(box)
    return fig, list(fig.axes)


# Figures made ahead (`make_spares`, by the zygote), by axes count, each used once, with tick
# artists for as many ticks as the locators give (time: up to 9; y: up to 11); fewer drawn.
SPARE_TICKS = (9, 11)
_spares: dict[int, list[Figure]] = {}


def make_spares(counts: dict[int, int]) -> None:
    """Make `counts[n]` figures of n axes ahead, their tick artists included."""
    for n_axes, count in counts.items():
        _spares.setdefault(n_axes, []).extend(_blank(n_axes, SPARE_TICKS) for _ in range(count))


def _blank(n_axes: int, ticks: tuple[int, int] | None = None) -> Figure:
    """A figure of `n_axes` axes in the charts' style, drawn by Agg; not pyplot's, whose
    inline backend would show it a second time."""
    with plt.rc_context(STYLE):
        fig = Figure()
        ChartCanvas(fig)
        for _ in range(n_axes):
            ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
            _fixed_labels(ax)
            if ticks:
                ax.xaxis.get_major_ticks(ticks[0])
                ax.yaxis.get_major_ticks(ticks[1])
    return fig


def _fixed_labels(ax: Axes) -> None:
    """Axis labels at fixed distances from the axes (as far as matplotlib puts them beside
    the widest tick labels `charts.compact` writes), so no draw measures every tick label a
    second time (with its axis' siblings) to place them: ~5% of a record's kernel CPU."""
    inch = ax.figure.dpi_scale_trans
    ax.yaxis.set_label_coords(0, 0.5, ax.transAxes + ScaledTranslation(-YLABEL_IN, 0, inch))
    ax.xaxis.set_label_coords(0.5, 0, ax.transAxes + ScaledTranslation(0, -XLABEL_IN, inch))


def columns(ratios: tuple[float, ...]) -> list[tuple[float, float]]:
    """(left, width) of charts side by side across the figure, widths in these ratios."""
    usable = WIDTH_IN - LEFT_IN - RIGHT_IN - GAP_IN * (len(ratios) - 1)
    out, left = [], LEFT_IN
    for r in ratios:
        width = usable * r / sum(ratios)
        out.append((left, width))
        left += width + GAP_IN
    return out
