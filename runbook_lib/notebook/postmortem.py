"""The post-mortem notebook's display API: `notebooks/postmortem.ipynb` shows the draft
section by section through `Draft`, the way the other runbooks show theirs through `Run`.
What the draft says comes from the incident's records (incidents/postmortem.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Records(Protocol):
    """What the draft needs of an incident's records."""

    def markdown(self, chart_files: list[tuple[str, str]] = ...) -> str: ...

    def chart_figures(self) -> list[tuple[str, Any]]: ...


class Draft:
    """What the post-mortem notebook shows, section by section, as the Markdown draft says
    it (tables in full, no row numbers); charts are saved as PNGs beside the draft so the
    Markdown can link them. `records`: the incident's records as the draft reads them
    (`incidents.postmortem.IncidentRecords`)."""

    def __init__(self, records: Records, output_dir: str | Path = ".") -> None:
        self.records = records
        self.output_dir = Path(output_dir)
        self.chart_files: list[tuple[str, str]] = []

    def _section(self, title: str) -> None:
        """Display one section of the Markdown draft, from its heading to the next."""
        from IPython.display import Markdown, display

        body = self.records.markdown().split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]
        display(Markdown(body.split("\n", 1)[1] if "\n" in body else ""))

    def show_summary(self) -> None:
        self._section("Summary")

    def show_timeline(self) -> None:
        self._section("Timeline (UTC)")

    def show_root_cause(self) -> None:
        self._section("Root cause")

    def show_charts(self) -> None:
        from IPython.display import Markdown, display

        from runbook_lib.notebook import charts
        from runbook_lib.notebook.display import show

        figures = self.records.chart_figures()
        if not figures:
            display(Markdown("*The records hold no saved data to redraw charts from.*"))
        (self.output_dir / "charts").mkdir(parents=True, exist_ok=True)
        for i, (title, fig) in enumerate(figures, 1):
            name = f"charts/overview-{i}.png"
            (self.output_dir / name).write_bytes(charts.png_bytes(fig))
            self.chart_files.append((title, name))
            display(Markdown(f"**{title}**"))
            show(fig)  # once, and closed: the backend must not draw it again

    def show_resolution(self) -> None:
        self._section("Resolution")

    def show_verification(self) -> None:
        self._section("Verification")

    def write_markdown(self) -> None:
        """Write postmortem.md beside the notebook and say so (by its name: the directory
        is a temporary one until the draft is published)."""
        from IPython.display import Markdown, display

        path = self.output_dir / "postmortem.md"
        path.write_text(self.records.markdown(self.chart_files), encoding="utf-8")
        display(Markdown(f"Written to [{path.name}]({path.name}) beside this notebook."))
