"""The charts' canvas keeps fonts, text sizes and shaped glyphs across figures, and draws
the same pixels as matplotlib's own Agg canvas."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends import backend_agg  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties, fontManager  # noqa: E402
from matplotlib.ft2font import RenderMode  # noqa: E402

from runbook_lib.evidence.panels import PANELS, PanelData  # noqa: E402
from runbook_lib.notebook import charts, rendering  # noqa: E402

T0 = datetime(2026, 1, 15, 9, 15, tzinfo=UTC)
ALERT_AT = T0 + timedelta(minutes=45)


def data(name: str, series: dict[str, list[float]]) -> PanelData:
    rows = [{"timestamp": pd.Timestamp(T0 + timedelta(seconds=30 * i)), "series": s, "value": v}
            for s, values in series.items() for i, v in enumerate(values)]  # fmt: skip
    return PanelData(PANELS[name], pd.DataFrame(rows))


def record_charts() -> list[Figure]:
    """A record's kinds of chart: lines with thresholds and a peak label, a state timeline,
    a panel without data (multi-line grey text), the attribution (multi-line labels)."""
    errors = data("error_rate", {"": [0.5] * 60 + [7.5] * 60})
    health = data("component_health", {"cache": [1] * 80 + [0] * 40, "db": [1] * 120})
    empty = PanelData(PANELS["memory"], errors.frame.iloc[0:0], ["memory: no series matched"])
    att = {"total": 10.0, "parts": {"invalid_input": 7.0}, "unexplained": 3.0,
           "of_what": "errors/s over the firing window, by the cause that explains them"}  # fmt: skip
    return [
        charts.grid([errors, health, empty, errors], ALERT_AT, None),
        charts.attribution(att, errors, ALERT_AT, None),
    ]


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@pytest.fixture
def cold() -> None:
    """Empty caches, as in a process that drew nothing yet."""
    rendering.TEXT.__init__()


def test_charts_are_drawn_by_the_caching_canvas(cold: None) -> None:
    fig = record_charts()[0]
    assert isinstance(fig.canvas, rendering.ChartCanvas)
    png(fig)
    assert rendering.TEXT.sizes and rendering.TEXT.glyphs and rendering.TEXT.fonts
    plt.close("all")


def test_the_same_pixels_as_matplotlibs_canvas_with_cold_and_warm_caches(cold: None) -> None:
    for _ in ("cold", "warm"):
        for fig in record_charts():
            ours = png(fig)
            FigureCanvasAgg(fig)  # the same figure on matplotlib's canvas
            assert png(fig) == ours
            plt.close(fig)


def test_a_second_figure_looks_up_no_font_and_measures_and_shapes_no_text(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one chart looked up serves the next figure's renderer (matplotlib's own cache
    ends with each figure): the point of the canvas."""
    for fig in record_charts():
        png(fig)
        plt.close(fig)
    calls = {"find": 0, "measure": 0}

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(fontManager, "_find_fonts_by_props",
                        counted("find", fontManager._find_fonts_by_props))  # fmt: skip
    monkeypatch.setattr(backend_agg.RendererAgg, "get_text_width_height_descent",
                        counted("measure", backend_agg.RendererAgg.get_text_width_height_descent))  # fmt: skip
    for fig in record_charts():
        png(fig)
        plt.close(fig)
    assert calls == {"find": 0, "measure": 0}


def test_a_change_of_font_settings_empties_the_caches(cold: None) -> None:
    """A kernel whose cell changes the font draws the next chart in that font, as
    matplotlib's own canvas does."""
    png(record_charts()[0])
    with plt.rc_context({"font.family": "monospace"}):
        fig = record_charts()[0]
        ours = png(fig)
        FigureCanvasAgg(fig)
        assert png(fig) == ours
        assert all(p.get_family() == ["monospace"] for p in rendering.TEXT.fonts)
    plt.close("all")


def test_the_caches_empty_past_their_limit(cold: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long interactive session does not keep every string it ever drew."""
    monkeypatch.setattr(rendering, "LIMIT", 3)
    rendering.TEXT.check()
    rendering.TEXT.sizes.update({(str(n), None, 90, 0): (1.0, 1.0, 0.0) for n in range(3)})
    rendering.TEXT.check()
    assert len(rendering.TEXT.sizes) == 3  # at the limit: kept
    rendering.TEXT.glyphs[("x", None, 90, 0)] = []
    rendering.TEXT.check()
    assert not rendering.TEXT.sizes and not rendering.TEXT.glyphs


def test_a_glyph_is_rendered_once_per_offset_within_a_pixel(
    cold: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The charts of a record repeat titles, legends and time ticks: drawn again, no glyph
    is rendered again; drawn elsewhere, glyphs kept from other places (moved by whole
    pixels) give matplotlib's pixels."""
    for fig in record_charts():
        png(fig)
        plt.close(fig)
    rendered: list[tuple] = []
    bitmap = rendering.ChartRenderer._bitmap
    monkeypatch.setattr(rendering.ChartRenderer, "_bitmap",
                        lambda self, font, key, matrix: rendered.append(key)
                        or bitmap(self, font, key, matrix))  # fmt: skip
    for fig in record_charts():
        png(fig)
        plt.close(fig)
    assert rendered == []
    for scale in (1.37, 0.83):
        for fig in record_charts():
            fig.set_size_inches(fig.get_size_inches() * scale)  # every text elsewhere
            ours = png(fig)
            FigureCanvasAgg(fig)
            assert png(fig) == ours
            plt.close(fig)
    kept = len(rendering.TEXT.bitmaps)
    assert 0 < len(rendered) < kept  # some glyphs came from other places


def test_a_glyph_moved_by_whole_pixels_is_the_same_bitmap_moved() -> None:
    """What the cache of bitmaps rests on (FreeType hints a glyph, then moves it): a glyph
    rendered at an offset and at that offset plus whole pixels, in each direction and at
    the angles the charts use, has the same bitmap, its left and top moved by the pixels."""
    font = rendering.TEXT.font(FontProperties(size=9))
    flags = backend_agg.get_hinting_flag()
    for angle in (0, 90, 30):
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        matrix = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
        for index in (19, 36, 68, 72):  # "0", "A", "a", "e"
            for offset, pixels in (((5, 41), (3, 7)), ((63, 0), (-12, 250)), ((0, 63), (40, -9))):
                font.set_size(9, 100)
                font._set_transform(matrix, list(offset))
                here = font._render_glyph(index, flags, RenderMode.NORMAL)
                font._set_transform(
                    matrix, [o + 64 * p for o, p in zip(offset, pixels, strict=True)]
                )
                there = font._render_glyph(index, flags, RenderMode.NORMAL)
                assert here.buffer.size and (there.buffer == here.buffer).all()
                assert (there.left, there.top) == (here.left + pixels[0], here.top + pixels[1])
