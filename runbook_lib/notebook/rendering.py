"""The Agg canvas the charts draw on: matplotlib's, with what it looks up for every text
remembered for the life of the kernel instead of for one figure.

Matplotlib resolves a text's font (`findfont`: eleven rcParams read and a FontProperties
hashed per call), reads the font's height tables and measures the string each time it lays a
text out, and a tick label is laid out twice per draw (its axis measures it, then draws it);
its measurement cache lives with one renderer, that is one figure. Profiled over the charts
of every runbook's record (`benchmarks.record_profile` and a replay of the fixture records'
charts), those lookups were about a fifth of drawing a chart. `ChartRenderer` keeps the
font, the font's height metrics, each string's size, its shaped glyphs and each glyph's
bitmap at each offset within a pixel in caches shared by every chart of the process: the
zygote's warm-up chart fills them with the texts every record repeats (titles, legends, time
ticks) and each forked kernel inherits them. Each value is what matplotlib computes, by its
own calls, so a chart's pixels are the same as with `FigureCanvasAgg`
(tests/test_rendering.py compares them).

A forked kernel's additions would die with it, and each record of a storm would render its
glyphs at the offsets its ticks fall on anew (500-800 bitmaps a record, a third of drawing
its charts): a kernel forked by the zygote writes what it added to the zygote's spool
(`share`, after each chart), and the zygote takes it in before its next fork (`absorb`).

The caches hold only what depends on the font settings (`FONT_RC`); a change of those
rcParams empties them, as does passing `LIMIT` strings or `LIMIT` glyph bitmaps. The glyph
drawing calls matplotlib's private font methods (`_layout`, `_set_transform`,
`_render_glyph`), so pyproject.toml holds matplotlib to 3.11.x; the tests compare PNGs with
FigureCanvasAgg's.
"""

from __future__ import annotations

import math
import os
import pickle
import time
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.font_manager import FontProperties, fontManager, get_font
from matplotlib.ft2font import FT2Font, RenderMode

from runbook_lib.contract.environ import TEXT_SPOOL

# The rcParams a font lookup reads (`FontManager.findfont`): what the caches depend on.
FONT_RC = tuple(
    f"font.{key}"
    for key in ("family", "style", "variant", "weight", "stretch", "size", "serif",
                "sans-serif", "cursive", "fantasy", "monospace")
)  # fmt: skip
# Font height tables in the order `Text._get_layout` tries them: (table, gap, ascent, descent).
HEIGHT_TABLES = (
    ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
    ("hhea", "lineGap", "ascent", "descent"),
)
# Strings kept: a record draws about 200 different ones; a long JupyterLab session stays
# bounded (a few MB) instead of growing with every label it ever drew.
LIMIT = 20_000


class TextCache:
    """Fonts by properties, height metrics by (properties, dpi), sizes and shaped glyphs
    by (string, properties, dpi, ...): one per process, emptied when `FONT_RC` changes."""

    def __init__(self) -> None:
        self.settings: list[Any] = []
        self.fonts: dict[FontProperties, FT2Font] = {}
        self.heights: dict[tuple, tuple[float, float, float] | None] = {}
        self.sizes: dict[tuple, tuple[float, float, float]] = {}
        self.glyphs: dict[tuple, list[tuple[FT2Font, int, float, float]]] = {}
        self.bitmaps: dict[tuple, tuple[np.ndarray, int, int]] = {}
        self.fresh: list[tuple[str, tuple]] = []  # (cache, key) added since `share`
        self.rendered = 0  # glyph bitmaps rendered by this process (not found in `bitmaps`)

    def check(self) -> None:
        """Empty the caches when a font setting changed since they were filled, or when
        they hold more than `LIMIT` strings or `LIMIT` glyph bitmaps."""
        settings = [dict.__getitem__(mpl.rcParams, key) for key in FONT_RC]
        strings = len(self.sizes) + len(self.glyphs)
        if settings != self.settings or strings > LIMIT or len(self.bitmaps) > LIMIT:
            self.__init__()
            self.settings = settings

    def font(self, prop: FontProperties) -> FT2Font:
        """The font matplotlib draws `prop` with (its fallbacks included)."""
        font = self.fonts.get(prop)
        if font is None:
            font = self.fonts[prop.copy()] = get_font(fontManager._find_fonts_by_props(prop))
        return font

    def share(self, spool: Path) -> None:
        """Write what this process added since the last call (sizes, shaped strings, glyph
        bitmaps) to a file of its own in `spool`, for `absorb`. Fonts travel as the
        properties they were looked up by; an entry of another font (a fallback's glyph)
        stays here."""
        if not self.fresh:
            return
        props = {id(font): prop for prop, font in self.fonts.items()}
        entries = []
        for cache, key in self.fresh:
            value = getattr(self, cache)[key]
            if cache == "glyphs":
                if any(id(g[0]) not in props for g in value):
                    continue
                value = [(props[id(f)], *rest) for f, *rest in value]
            elif cache == "bitmaps":
                if id(key[0]) not in props:
                    continue
                key = (props[id(key[0])], *key[1:])
            entries.append((cache, key, value))
        self.fresh.clear()
        path = spool / f"{os.getpid()}-{time.monotonic_ns()}.texts"
        part = path.with_suffix(".part")
        part.write_bytes(pickle.dumps((self.settings, entries), pickle.HIGHEST_PROTOCOL))
        part.rename(path)  # whole or not at all

    def absorb(self, spool: Path) -> int:
        """Take in the files forked kernels wrote to `spool` (`share`) and remove them; up
        to half of `LIMIT`, so that a kernel's own additions do not empty the caches.
        Returns the entries taken in."""
        taken = 0
        for path in sorted(spool.glob("*.texts")):
            settings, entries = pickle.loads(path.read_bytes())
            path.unlink()
            if settings != self.settings:
                continue  # drawn with other font settings: not what these caches hold
            for cache, key, value in entries:
                if self._half_full():
                    break
                if cache == "glyphs":
                    value = [(self.font(prop), *rest) for prop, *rest in value]
                elif cache == "bitmaps":
                    key = (self.font(key[0]), *key[1:])
                taken += getattr(self, cache).setdefault(key, value) is value
        return taken

    def hand_down(self) -> None:
        """What this process holds is for its forks to inherit (the zygote after its
        warm-up and each `absorb`): none of it is theirs to hand over or count."""
        self.fresh.clear()
        self.rendered = 0

    def _half_full(self) -> bool:
        return len(self.bitmaps) >= LIMIT // 2 or len(self.sizes) + len(self.glyphs) >= LIMIT // 2


TEXT = TextCache()


def hand_over() -> None:
    """In a kernel forked by the zygote (`TEXT_SPOOL` set), `TEXT.share` with it; elsewhere
    nothing. A spool gone (the zygote closed) only ends the sharing, never a chart."""
    spool = os.environ.get(TEXT_SPOOL)
    if spool:
        try:
            TEXT.share(Path(spool))
        except OSError:
            pass


class ChartRenderer(RendererAgg):
    """`RendererAgg` whose font lookups, text sizes and glyph shaping come from `TEXT`."""

    def _prepare_font(self, font_prop: FontProperties) -> FT2Font:
        font = TEXT.font(font_prop)
        font.clear()
        font.set_size(font_prop.get_size_in_points(), self.dpi)
        return font

    def _get_font_height_metrics(
        self, prop: FontProperties
    ) -> tuple[float, float, float] | tuple[None, None, None]:
        """The ascent, descent and line gap `Text._get_layout` reads from the font's tables
        (its own formula, which it applies when a renderer has no such method), kept."""
        key = (prop, self.dpi)
        if key not in TEXT.heights:
            TEXT.heights[(prop.copy(), self.dpi)] = self._height_metrics(prop)
        return TEXT.heights[key] or (None, None, None)

    def _height_metrics(self, prop: FontProperties) -> tuple[float, float, float] | None:
        font = TEXT.font(prop)
        for table_name, gap_key, ascent_key, descent_key in HEIGHT_TABLES:
            table = font.get_sfnt_table(table_name)
            if table is None:
                continue
            units_per_em = font.get_sfnt_table("head")["unitsPerEm"]
            scale = 1 / units_per_em * prop.get_size_in_points() * self.dpi / 72
            return table[ascent_key] * scale, -table[descent_key] * scale, table[gap_key] * scale
        return None

    def get_text_width_height_descent(
        self, s: str, prop: FontProperties, ismath: bool | str
    ) -> tuple[float, float, float]:
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, prop, self.dpi, get_hinting_flag())
        size = TEXT.sizes.get(key)
        if size is None:
            size = super().get_text_width_height_descent(s, prop, ismath)
            key = (s, prop.copy(), *key[2:])
            TEXT.sizes[key] = size
            TEXT.fresh.append(("sizes", key))
        return size

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None) -> None:
        """As `RendererAgg.draw_text`, the glyphs shaped once per string and font."""
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        if ismath or features is not None or language is not None:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        font = self._prepare_font(prop)
        key = (s, prop, self.dpi, get_hinting_flag())
        glyphs = TEXT.glyphs.get(key)
        if glyphs is None:
            items = font._layout(s, flags=key[3], features=None, language=None)
            glyphs = [(i.ft_object, i.glyph_index, i.x, i.y) for i in items]
            key = (s, prop.copy(), *key[2:])
            TEXT.glyphs[key] = glyphs
            TEXT.fresh.append(("glyphs", key))
        self._draw_glyphs(gc, x, y, angle, prop.get_size_in_points(), glyphs)
        return None

    def _draw_glyphs(self, gc, x: float, y: float, angle: float, size: float, glyphs) -> None:
        """`RendererAgg._draw_text_glyphs_and_boxes` for a plain text (no slant, no
        stretch, no boxes): the same calls with the same values, its rotation matrix made
        once per text instead of once per glyph (numpy's matrix product, rounding and cast
        per glyph were a tenth of drawing a text, profiled), and each glyph's bitmap
        rendered once per font, size, angle and offset in 1/64 pixel (`_bitmap`)."""
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]]) @ [[1, 0], [0, 1]]).round()
        matrix = matrix.astype(int)
        antialiased, flags = gc.get_antialiased(), get_hinting_flag()
        top = self.height - y
        for font, index, dx, dy in glyphs:  # dy is upwards, y downwards
            delta = (
                round(0x40 * (x + dx * cos - dy * sin)),
                round(0x40 * (top + dx * sin + dy * cos)),
            )
            pixel, offset = (delta[0] >> 6, delta[1] >> 6), (delta[0] & 0x3F, delta[1] & 0x3F)
            key = (font, index, size, self.dpi, angle, antialiased, flags, offset)
            bitmap = TEXT.bitmaps.get(key)
            if bitmap is None:
                bitmap = TEXT.bitmaps[key] = self._bitmap(font, key, matrix)
                TEXT.fresh.append(("bitmaps", key))
                TEXT.rendered += 1
            buffer, left, glyph_top = bitmap
            self._renderer.draw_text_image(
                buffer,
                left + pixel[0],
                int(self.height) - glyph_top - pixel[1] + buffer.shape[0],
                0,
                gc,
            )

    def _bitmap(self, font: FT2Font, key: tuple, matrix: np.ndarray) -> tuple[np.ndarray, int, int]:
        """A glyph as FreeType renders it at `key`'s offset within a pixel (its buffer, and
        its left and top from the pixel the offset is in), a function of what `key` holds
        (`matrix` is its angle's). FreeType hints a glyph before it moves it, so moved by
        whole pixels a glyph's bitmap is the same, its left and top moved by as many pixels
        (tests/test_rendering.py checks it); a record draws the same digits and letters in
        one size at most of the 64 x 64 offsets a few times over. Rendering was a quarter
        of drawing a record's texts, profiled."""
        _, index, size, dpi, _, antialiased, flags, offset = key
        font.set_size(size, dpi)
        font._set_transform(matrix, list(offset))
        mode = RenderMode.NORMAL if antialiased else RenderMode.MONO
        bitmap = font._render_glyph(index, flags, mode)
        buffer = bitmap.buffer  # its own array, not FreeType's slot
        if not antialiased:
            buffer *= 0xFF
        return buffer, bitmap.left, bitmap.top


class ChartCanvas(FigureCanvasAgg):
    """`FigureCanvasAgg` drawing with a `ChartRenderer`."""

    def get_renderer(self) -> ChartRenderer:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = ChartRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        TEXT.check()
        return self.renderer
