"""Charts read at a glance: the alert's marker in a colour no series has, legends and labels
where they hide nothing and are not cut off, y-axes that do not magnify noise, states drawn
as timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from runbook_lib.evidence.panels import PANELS, PanelData  # noqa: E402
from runbook_lib.notebook import charts, figures  # noqa: E402

T0 = datetime(2026, 1, 15, 9, 15, tzinfo=UTC)
ALERT_AT = T0 + timedelta(minutes=45)


def frame(series: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {"timestamp": pd.Timestamp(T0 + timedelta(seconds=30 * i)), "series": name, "value": v}
        for name, values in series.items()
        for i, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def drawn(name: str, series: dict[str, list[float]], ncols: int = 1):
    fig = charts.grid([PanelData(PANELS[name], frame(series))], ALERT_AT, None, ncols=ncols)
    fig.canvas.draw()
    return fig, fig.axes[0]


def distance(a, b) -> float:
    """How far apart two colours are (RGB, 0-255 per channel)."""
    return sum((255 * (x - y)) ** 2 for x, y in zip(to_rgb(a), to_rgb(b), strict=True)) ** 0.5


def test_the_alert_marker_looks_like_no_series_and_no_threshold() -> None:
    """It was purple, beside a purple series; a dozen tools take every series colour."""
    tools = {f"tool{i:02d}": [1.0 + i] * 60 for i in range(12)}
    fig, ax = drawn("latency_by_tool", tools)
    lines = {line.get_label(): line.get_color() for line in ax.get_lines()}
    marker = lines.pop("alert fired")
    assert {"warning 5", "critical 10"} <= set(lines) and len(lines) == 14
    assert min(distance(marker, c) for c in lines.values()) > 100, lines
    plt.close(fig)


def test_legends_sit_outside_the_data_and_threshold_lines() -> None:
    """Inside the axes (upper left) the legend covered the critical line at 5%."""
    fig = charts.grid(
        [PanelData(PANELS["error_rate"], frame({"": [4.9] * 60})),
         PanelData(PANELS["latency"], frame({"p50": [1] * 60, "p95": [2] * 60, "p99": [3] * 60}))],
        ALERT_AT,
    )  # fmt: skip
    fig.canvas.draw()
    for ax in fig.axes:
        legend, data = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.y1 < data.y0, ax.get_title()  # wholly below the plotting area
        assert fig.bbox.y0 <= legend.y0  # and inside the figure, not cut off
    plt.close(fig)


@pytest.mark.parametrize("peak_at", [0, 59])  # the first point, the last point
def test_the_peak_label_stays_inside_the_frame(peak_at: int) -> None:
    """A peak at the top was labelled above the axes, cut off by the title; one at the right
    edge was labelled to its right, past the figure's edge."""
    values = [1.0] * 60
    values[peak_at] = 1.25  # the highest point of a chart without thresholds above it
    data = PanelData(PANELS["heap"], frame({"used": values}))
    fig = charts.grid([data, data], ALERT_AT)
    fig.canvas.draw()
    ax = fig.axes[1]  # the right-hand chart, at the figure's edge
    [label] = [t for t in ax.texts if t.get_text().startswith("peak 1.25")]
    box, frame_ = label.get_window_extent(), ax.get_window_extent()
    assert frame_.x0 <= box.x0 and box.x1 <= frame_.x1 and frame_.y0 <= box.y0
    assert box.y1 <= frame_.y1
    plt.close(fig)


def test_a_flat_series_stays_flat() -> None:
    """0.00334-0.00335 made an axis of exactly that: noise in the fourth digit filled it."""
    fig, ax = drawn("request_rate", {"requests/s": [0.00334, 0.00335] * 30})
    lo, hi = ax.get_ylim()
    assert hi - lo >= 0.2 * 0.00335 and lo >= 0  # a fifth of the value at least, not below 0
    plt.close(fig)


def test_y_limits_by_hand() -> None:
    # span at least 0.2 x 0.00335 = 0.00067 around the middle 0.003345: 0.00301-0.00368;
    # then 5% of it below (0.0000335) and 18% above for the label (0.0001206)
    lo, hi = charts.y_limits([0.00334, 0.00335])
    assert lo == pytest.approx(0.0029765, abs=1e-9) and hi == pytest.approx(0.0038006, abs=1e-9)
    assert charts.y_limits([0.0, 0.0]) == (0.0, pytest.approx(1.18))  # nothing: 0-1
    assert charts.y_limits([35.0, 70.0, 90.0]) == (pytest.approx(32.25), pytest.approx(99.9))
    lo, _ = charts.y_limits([-2.0, -1.9])  # negative values keep their place below zero
    assert lo < -2.0


def test_component_health_is_a_state_timeline() -> None:
    """Overlapping flat lines at 1 hid which component failed and when."""
    health = {"cache": [1.0] * 60, "database": [1.0] * 20 + [0.0] * 10 + [1.0] * 30}
    fig, ax = drawn("component_health", health)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cache", "database"]
    assert [line.get_label() for line in ax.get_lines()] == ["alert fired"]  # no state lines
    bars = [(c.get_paths()[0].get_extents(), c.get_facecolor()[0]) for c in ax.collections]
    red = [box for box, color in bars if distance(color, charts.BAD_STATE) < 1]
    assert len(red) == 1
    [box] = red
    step = 30 / 86400  # days, Matplotlib's date unit
    start = matplotlib.dates.date2num(T0 + timedelta(seconds=30 * 20))
    assert box.x0 == pytest.approx(start) and box.width == pytest.approx(10 * step)
    assert 0.5 < box.y0 < 1.5  # the database's row
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "healthy", "unhealthy", "alert fired"}  # fmt: skip
    plt.close(fig)


def test_a_figure_made_ahead_draws_the_same_pixels_as_a_new_one() -> None:
    """The zygote makes figures ahead (axes and tick artists: a fifth of a chart's CPU);
    a chart drawn on one must be the chart drawn on a new figure, to the byte."""
    pair = [PanelData(PANELS["error_rate"], frame({"": [4.9] * 30 + [9.5] * 30})),
            PanelData(PANELS["component_health"], frame({"cache": [1] * 40 + [0] * 20}))]  # fmt: skip
    fresh = charts.png_bytes(charts.grid(pair, ALERT_AT))
    figures.make_spares({2: 1})
    spare = figures._spares[2][-1]
    ahead = charts.grid(pair, ALERT_AT)
    assert ahead is spare and spare not in figures._spares[2]  # taken, and taken once
    assert charts.png_bytes(ahead) == fresh
    assert charts.png_bytes(charts.grid(pair, ALERT_AT)) == fresh  # none left: a new one


def test_a_timelines_labels_stay_out_of_the_chart_beside_it() -> None:
    """ "workbook_cache" (0.92 in at 8 pt) is wider than the 0.75 in gap between two charts:
    it ran into the Request rate chart to its left, over its peak label."""
    health = {n: [1.0] * 60 for n in ("database", "storage", "workbook_cache")}
    fig = charts.grid(
        [PanelData(PANELS["request_rate"], frame({"requests/s": [0.2 + 0.05 * i for i in range(60)]})),
         PanelData(PANELS["component_health"], frame(health))],
        ALERT_AT,
    )  # fmt: skip
    fig.canvas.draw()
    left, right = fig.axes
    labels = [t.get_window_extent() for t in right.get_yticklabels()]
    assert min(box.x0 for box in labels) > left.get_window_extent().x1
    assert right.get_window_extent().x1 == pytest.approx(fig.bbox.x1 - 0.3 * fig.dpi)  # same right
    plt.close(fig)


def test_a_key_shows_each_entry_in_its_series_style_side_by_side_without_overlap() -> None:
    """Legends are drawn as plain artists (`key`): each entry's swatch must be its series'
    colour and line style, and entries must neither overlap nor leave the figure."""
    lat = {"p50": [1.0] * 60, "p95": [2.0] * 60, "p99": [3.0] * 60}
    fig, ax = drawn("latency", lat, ncols=2)
    key = ax.get_legend()
    texts = [t.get_text() for t in key.get_texts()]
    assert texts == ["p50", "p95", "p99", "warning 5", "critical 10", "alert fired"]
    swatches = {t: s for t, s in zip(texts, key.get_swatches(), strict=True)}
    assert distance(swatches["critical 10"].get_color(), charts.CRIT) < 1
    assert swatches["critical 10"].get_linestyle() == "--"
    assert distance(swatches["alert fired"].get_color(), charts.ALERT) < 1
    assert swatches["alert fired"].get_linestyle() == "-"
    boxes = [t.get_window_extent() for t in key.get_texts()]
    for i, a in enumerate(boxes):
        assert fig.bbox.x0 <= a.x0 and a.x1 <= fig.bbox.x1 and fig.bbox.y0 <= a.y0
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    # a chart 4.6 in wide fits 4 columns of "critical 10" (11 + 4 chars at 13 per inch):
    # 6 entries take 2 rows (3 columns), filled top to bottom as legends are
    ys = [round(t.get_position()[1], 4) for t in key.get_texts()]  # baselines
    assert ys[0] == ys[2] == ys[4] > ys[1] == ys[3] == ys[5]
    xs = [round(t.get_position()[0], 4) for t in key.get_texts()]
    assert xs[0] == xs[1] < xs[2] == xs[3] < xs[4] == xs[5]  # three columns, left to right
    plt.close(fig)


def test_axis_labels_clear_the_widest_tick_labels_and_the_chart_beside() -> None:
    """Axis labels sit at fixed places (`figures`: no second measure of the tick labels):
    beside the widest tick labels `compact` writes ("-14.5k") they must still not touch them."""
    values = [-14_000.0 + 40 * i for i in range(60)]
    fig = charts.grid(
        [PanelData(PANELS["request_rate"], frame({"requests/s": values}))] * 2, ALERT_AT
    )
    fig.canvas.draw()
    left, right = fig.axes
    for ax in (left, right):
        label = ax.yaxis.label.get_window_extent()
        ticks = [t.get_window_extent() for t in ax.get_yticklabels() if t.get_text()]
        assert "-14.5k" in [t.get_text() for t in ax.get_yticklabels()]
        assert label.x1 < min(b.x0 for b in ticks)
    assert right.yaxis.label.get_window_extent().x0 > left.get_window_extent().x1
    assert left.yaxis.label.get_window_extent().x0 > fig.bbox.x0
    plt.close(fig)


def test_days_are_matplotlibs_date_numbers_of_utc_timestamps() -> None:
    """2026-01-15 is day 20468 after 1970-01-01; 09:15 is 0.385416... of a day."""
    got = charts.days(pd.Series([pd.Timestamp(T0), pd.Timestamp(T0 + timedelta(seconds=30))]))
    assert got.tolist() == pytest.approx([20468 + 9.25 / 24, 20468 + 9.25 / 24 + 30 / 86400],
                                         abs=1e-9)  # fmt: skip


@pytest.mark.parametrize("left", [False, True])
def test_a_peak_label_draws_what_axes_annotate_draws(left: bool) -> None:
    """The label's line is clipped at its box by arithmetic rather than `Rectangle.contains`:
    the same pixels as matplotlib's own annotation."""
    import io

    from matplotlib.figure import Figure

    def drawn(own: bool) -> bytes:
        fig = Figure(figsize=(3, 2), dpi=90)
        ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
        ax.plot([0, 1, 2], [0, 5, 1])
        kwargs = {"xytext": (-6 if left else 6, 6), "textcoords": "offset points",
                  "ha": "right" if left else "left", "fontsize": 8,
                  "arrowprops": {"arrowstyle": "-", "color": "gray"}}  # fmt: skip
        if own:
            label = charts.PeakLabel("peak 5 errors/s", (1, 5), **kwargs)
            label.set_transform(matplotlib.transforms.IdentityTransform())
            ax._add_text(label)
        else:
            ax.annotate("peak 5 errors/s", (1, 5), **kwargs)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    assert drawn(own=True) == drawn(own=False)
