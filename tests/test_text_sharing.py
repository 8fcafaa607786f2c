"""Kernels forked by the zygote hand the texts their charts drew (sizes, shaped strings,
glyph bitmaps) to the zygote, which takes them in before its next fork: a record drawn after
another draws the texts they share without rendering them again, to the same pixels."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from runbook_lib.contract.environ import TEXT_SPOOL  # noqa: E402
from runbook_lib.evidence.panels import PANELS, PanelData  # noqa: E402
from runbook_lib.notebook import charts, rendering  # noqa: E402

T0 = datetime(2026, 1, 15, 9, 15, tzinfo=UTC)


def chart() -> bytes:
    times = [pd.Timestamp(T0 + timedelta(seconds=30 * i)) for i in range(90)]
    frame = pd.DataFrame({"timestamp": times, "series": "", "value": [0.7] * 60 + [8.25] * 30})
    return charts.png_bytes(charts.grid([PanelData(PANELS["error_rate"], frame)] * 2,
                                        T0 + timedelta(minutes=30), None))  # fmt: skip


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernel's view: the spool named in its environment, its caches empty."""
    monkeypatch.setenv(TEXT_SPOOL, str(tmp_path))
    rendering.TEXT.__init__()
    return tmp_path


def test_what_one_kernel_drew_the_next_draws_without_rendering(spool: Path) -> None:
    first = chart()
    rendered = rendering.TEXT.rendered
    assert rendered > 50 and rendering.TEXT.fresh == []  # handed over with the chart
    [handed] = list(spool.glob("*.texts"))
    rendering.TEXT.__init__()  # the zygote, which never drew this chart
    rendering.TEXT.check()
    taken = rendering.TEXT.absorb(spool)
    assert list(spool.iterdir()) == []  # taken in and removed
    assert taken == len(rendering.TEXT.bitmaps) + len(rendering.TEXT.sizes) + len(
        rendering.TEXT.glyphs)  # fmt: skip
    assert len(rendering.TEXT.bitmaps) == rendered
    again = chart()  # a later kernel
    assert rendering.TEXT.rendered == 0
    assert again == first  # the same pixels, byte for byte


def test_texts_drawn_with_other_font_settings_are_not_taken(spool: Path) -> None:
    chart()
    rendering.TEXT.__init__()
    with matplotlib.rc_context({"font.family": ["serif"]}):
        rendering.TEXT.check()
        assert rendering.TEXT.absorb(spool) == 0
    assert list(spool.iterdir()) == []  # read, and dropped


def test_the_zygote_takes_in_no_more_than_half_of_the_limit(
    spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart()
    rendering.TEXT.__init__()
    rendering.TEXT.check()
    monkeypatch.setattr(rendering, "LIMIT", 100)
    rendering.TEXT.absorb(spool)
    assert len(rendering.TEXT.bitmaps) == 50  # room left for a kernel's own
    assert list(spool.iterdir()) == []


def test_without_a_spool_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(TEXT_SPOOL, raising=False)
    rendering.TEXT.__init__()
    chart()
    assert rendering.TEXT.fresh != []  # kept for no one: JupyterLab's kernel, a test
    monkeypatch.setenv(TEXT_SPOOL, str(tmp_path / "gone"))  # the zygote closed its spool
    chart()  # drawn all the same
    assert list(tmp_path.iterdir()) == []  # and nothing written, nor the spool made again


FORKS = """
import json, sys
from runbook_lib.execution.kernels import Zygote
from jupyter_client import BlockingKernelClient
CELL = '''
from datetime import UTC, datetime, timedelta
import pandas as pd
from runbook_lib.evidence.panels import PANELS, PanelData
from runbook_lib.notebook import charts, rendering
t0 = datetime(2026, 1, 15, 9, 15, tzinfo=UTC)
times = [pd.Timestamp(t0 + timedelta(seconds=30 * i)) for i in range(90)]
frame = pd.DataFrame({"timestamp": times, "series": "", "value": [0.7] * 60 + [8.25] * 30})
png = charts.png_bytes(charts.grid([PanelData(PANELS["error_rate"], frame)] * 2,
                                   t0 + timedelta(minutes=30), None))
print(rendering.TEXT.rendered, hash(png))
'''
z = Zygote("/tmp/text-sharing-test#").start()
out = []
try:
    for _ in range(2):
        k = z.fork()
        kc = BlockingKernelClient(); kc.load_connection_info(k.km.get_connection_info())
        kc.start_channels()
        seen = []
        kc.execute_interactive(CELL, output_hook=lambda m: seen.append(m["content"].get("text", "")), timeout=60)
        kc.stop_channels(); k.kill()
        out.append("".join(seen).split())
    spool = str(z.spool)
finally:
    z.close()
import os
print(json.dumps({"runs": out, "spool_left": os.path.exists(spool)}))
"""


def test_a_kernel_forked_after_another_renders_none_of_its_texts(tmp_path: Path) -> None:
    """With the real zygote and kernels: the second kernel draws the first one's chart
    without rendering a glyph, to the same PNG; the spool goes with the zygote."""
    done = subprocess.run([sys.executable, "-c", FORKS], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (first_rendered, first_png), (second_rendered, second_png) = result["runs"]
    assert int(first_rendered) > 50 and int(second_rendered) == 0
    assert first_png == second_png
    assert result["spool_left"] is False


def test_a_spool_file_holds_fonts_by_their_properties(spool: Path) -> None:
    chart()
    [handed] = list(spool.glob("*.texts"))
    settings, entries = pickle.loads(handed.read_bytes())
    assert settings == rendering.TEXT.settings
    kinds = {cache for cache, _, _ in entries}
    assert kinds == {"sizes", "glyphs", "bitmaps"}
    assert all(type(key[0]).__name__ == "FontProperties"
               for cache, key, _ in entries if cache == "bitmaps")  # fmt: skip
