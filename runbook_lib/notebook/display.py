"""How cells show things: a chart drawn once as the PNG the record keeps, alert text made
safe for Markdown, numbers and threshold statuses as the tables print them."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from IPython.display import Image, display

from runbook_lib.evidence import panels
from runbook_lib.notebook import charts


def show(fig) -> None:
    """Display a figure once, drawn once: as the PNG the record keeps (the inline backend's
    tight-bbox print would draw it twice), then closed so the backend does not repeat it."""
    import matplotlib.pyplot as plt

    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    alt = "Chart: " + ", ".join(titles) if titles else "Chart"
    display(Image(data=charts.png_bytes(fig), format="png", alt=alt))
    plt.close(fig)


def esc(text: object) -> str:
    """Alert text into Markdown without it becoming markup."""
    return (
        html.escape(str(text))
        .replace("|", "&#124;")
        .replace("`", "&#96;")
        .replace("*", "&#42;")
        .replace("_", "&#95;")
        .replace("[", "&#91;")
        .replace("\n", " ")
    )


def plain(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def num(value: float | None, unit: str) -> str:
    return "no data" if value is None else f"{value:.2f}{(' ' + unit) if unit else ''}"


def status_of(panel: panels.Panel, value: float) -> str:
    if panel.below_is_bad:
        if panel.crit is not None and value < panel.crit:
            return "✖ critical"
        return "⚠ warning" if panel.warn is not None and value < panel.warn else "✔ ok"
    if panel.crit is not None and value > panel.crit:
        return "✖ critical"
    return "⚠ warning" if panel.warn is not None and value > panel.warn else "✔ ok"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
