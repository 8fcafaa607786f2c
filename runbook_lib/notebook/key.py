"""Chart legends ("keys") drawn as plain artists at places computed from their entries.

Matplotlib's `Axes.legend` lays its entries out in offset boxes at every draw, measuring each
text again at each level (a quarter of a record's chart CPU, profiled, went to its ten
legends); the layout here is known before drawing (`figures`: the rows under each chart are
counted from the data), so a key is a line or block and a text per entry, placed by
arithmetic. Hand-written rather than matplotlib's for that cost; it answers `get_legend()`
like a legend does.
"""

from __future__ import annotations

import math

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from runbook_lib.notebook.figures import AXES_IN, CHARS_PER_IN, LEGEND_ROW_IN, TEXT_CHARS_PER_IN

FONT_PT = 8.0
HANDLE_EM, PAD_EM, BORDER_EM = 1.6, 0.8, 0.4  # as the legends these replace
STEP_EM = HANDLE_EM + PAD_EM + 2.0  # a column's handle, its pad, and the space after it


def columns_of(labels: list[str], width_in: float) -> int:
    """How many entries fit side by side in `width_in` inches."""
    return max(1, min(len(labels), int(width_in * CHARS_PER_IN // _pitch(labels))))


def _pitch(labels: list[str]) -> int:
    return max((len(x) for x in labels), default=1) + 4  # the handle and the gap, in chars


class Key(Artist):
    """Entries in columns filled top to bottom (as a legend's), `top` (axes fraction) under
    the axes' bottom edge; the axes' legend, drawn with it."""

    zorder = 5

    def __init__(self, ax: Axes, handles: list[Artist], labels: list[str], top: float) -> None:
        super().__init__()
        width_in = ax.get_position().width * ax.figure.get_figwidth()
        nrows = math.ceil(len(labels) / columns_of(labels, width_in))
        em_x, em_y = FONT_PT / 72 / width_in, FONT_PT / 72 / AXES_IN  # in axes fractions
        row = LEGEND_ROW_IN / AXES_IN
        self._parts: list[Artist] = []
        self._texts: list[Text] = []
        lefts = [BORDER_EM * em_x]  # each column as wide as its widest entry
        for c in range(0, len(labels), nrows):
            widest = max(len(x) for x in labels[c : c + nrows])
            lefts.append(
                lefts[-1] + (STEP_EM * FONT_PT / 72 + widest / TEXT_CHARS_PER_IN) / width_in
            )
        for i, (handle, label) in enumerate(zip(handles, labels, strict=True)):
            x = lefts[i // nrows]
            y = -top - BORDER_EM * em_y - (i % nrows + 0.5) * row
            self._parts.append(_swatch(handle, x, y, HANDLE_EM * em_x, 0.7 * em_y))
            self._texts.append(Text(x + (HANDLE_EM + PAD_EM) * em_x, y, label,
                                    fontsize=FONT_PT, va="center_baseline"))  # fmt: skip
        for part in (*self._parts, *self._texts):
            part.set_figure(ax.figure)
            part.set_transform(ax.transAxes)
            part.set_clip_on(False)
        self.set_figure(ax.figure)
        self.axes = ax
        ax.legend_ = self

    def get_texts(self) -> list[Text]:
        return self._texts

    def get_swatches(self) -> list[Artist]:
        """Each entry's line or block, in the entries' order."""
        return self._parts

    def get_window_extent(self, renderer=None) -> Bbox:
        return Bbox.union([a.get_window_extent(renderer) for a in (*self._parts, *self._texts)])

    def draw(self, renderer) -> None:
        for part in (*self._parts, *self._texts):
            part.draw(renderer)
        self.stale = False


def _swatch(handle: Artist, x: float, y: float, length: float, height: float) -> Artist:
    """A line for a line (its colour, style and width); a block in the colour of a bar or
    band."""
    if isinstance(handle, Line2D):
        return Line2D([x, x + length], [y, y], color=handle.get_color(),
                      linestyle=handle.get_linestyle(), linewidth=handle.get_linewidth())  # fmt: skip
    handle = getattr(handle, "patches", [handle])[0]  # a bar chart's first bar
    color = handle.get_facecolor()
    color = color[0] if getattr(color, "ndim", 1) == 2 else color
    return Rectangle((x, y - height / 2), length, height, facecolor=color, linewidth=0)
