"""Charts' PNG files, encoded by `png.encode`: Pillow reads back exactly the pixels given,
and a chart's file holds the pixels matplotlib's own `savefig` writes for it."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from runbook_lib.evidence.panels import PANELS, PanelData  # noqa: E402
from runbook_lib.notebook import charts, png  # noqa: E402

T0 = datetime(2026, 1, 15, 9, 15, tzinfo=UTC)


def pixels(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGBA"))


def test_every_byte_value_and_both_edges_read_back_as_given() -> None:
    """Noise, so that rows differ by every amount modulo 256, and an odd size."""
    rgba = np.random.default_rng(7).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[0, 0], rgba[-1, -1] = (255, 0, 0, 0), (0, 0, 255, 128)
    image = Image.open(io.BytesIO(png.encode(rgba)))
    assert image.mode == "RGBA" and image.size == (53, 37)
    assert (np.asarray(image) == rgba).all()


def test_a_chart_holds_the_pixels_savefig_writes() -> None:
    times = [pd.Timestamp(T0 + timedelta(seconds=30 * i)) for i in range(60)]
    data = PanelData(PANELS["error_rate"], pd.DataFrame(
        {"timestamp": times, "series": "", "value": [1.0] * 30 + [9.5] * 30}))  # fmt: skip
    fig = charts.grid([data, data], T0 + timedelta(minutes=15), None)
    ours = charts.png_bytes(fig)
    theirs = io.BytesIO()
    fig.savefig(theirs, format="png")
    assert pixels(ours).shape == (pixels(theirs.getvalue()).shape[0], 990, 4)
    assert (pixels(ours) == pixels(theirs.getvalue())).all()


def test_pixels_of_another_kind_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="8-bit RGBA pixels, not uint8 x 3"):
        png.encode(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="not float64 x 4"):
        png.encode(np.zeros((2, 2, 4)))
