"""How cells show things: a chart drawn once as the PNG the record keeps, tables without
pandas' 0..n row numbers, alert text made safe for Markdown, numbers and threshold statuses
as the tables print them."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from urllib.parse import quote

import pandas as pd
from IPython import get_ipython
from IPython.display import Image, Markdown, display

from runbook_lib.contract.request import RelatedAlert, RunIncident
from runbook_lib.diagnosis.answer import nothing_explains, unexplained_share
from runbook_lib.diagnosis.attribution import Attribution
from runbook_lib.diagnosis.constants import LIKELY, POSSIBLE
from runbook_lib.diagnosis.engine import top_causes
from runbook_lib.diagnosis.model import Verdict
from runbook_lib.evidence import panels
from runbook_lib.notebook import charts
from runbook_lib.notebook.wording import COLORS, cause_name, evidence_html


def show(fig) -> None:
    """Display a figure once, drawn once: as the PNG the record keeps (the inline backend's
    tight-bbox print would draw it twice), then closed so the backend does not repeat it."""
    import matplotlib.pyplot as plt

    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    alt = "Chart: " + ", ".join(titles) if titles else "Chart"
    display(Image(data=charts.png_bytes(fig), format="png", alt=alt))
    plt.close(fig)


def show_panels(
    datas: list[panels.PanelData], start: datetime, end: datetime | None, ncols: int = 2
) -> None:
    """Panels as one figure; when none has data, one line saying which and why instead of
    a grid of empty frames (a run whose Prometheus did not answer)."""
    if any(d.ok for d in datas):
        show(charts.grid(datas, start, end, ncols=ncols))
        return
    # each error is "<series>: <why>"; the same why for every series is said once
    reasons = list(dict.fromkeys(e.split(": ", 1)[-1] for d in datas for e in d.errors))
    titles = ", ".join(d.panel.title for d in datas)
    display(Markdown(f"*No data for {esc(titles)}: {esc('; '.join(reasons) or 'no data')}*"))


def related_md(alerts: list[RelatedAlert]) -> str:
    """The incident's other alerts: the same fault seen by other rules, investigated here."""
    lines = ["**Also in this incident** (same instance and runbook, one investigation):"]
    for a in alerts:
        state = "" if (a.status or "firing") == "firing" else f", {esc(a.status)}"
        lines.append(f"- {esc(a.alertname)} · {esc(a.severity or 'unknown')}"
                     f" · since {esc(_when(a.starts_at or '?'))}{state}")  # fmt: skip
    return "\n".join(lines)


def why_md(incident: RunIncident, alert: str, severity: str) -> str:
    """Why this run exists when it is not the incident's first investigation: an
    escalation (with the earlier record) or an operator's request."""
    if before := incident.escalated_from:
        rec = before.record
        return (
            f"**⬆️ Escalated** from {esc(before.severity or 'unknown')} to "
            f"{esc(severity or 'unknown')}: {esc(alert)} joined after the investigation of "
            f"{esc(before.alertname or '?')} had started, and leads this one. "
            f"Earlier record: [{esc(rec)}](/records/{quote(rec)}/report.html)"
        )
    if incident.requested:
        who = esc(incident.requested_by or "an operator")
        return f"**Re-investigation** requested by {who} on the incident page."
    return ""


def _when(text: str) -> str:
    """An alert's start as people read it (2026-11-28 04:00:05 UTC); other text as it is."""
    try:
        return f"{datetime.fromisoformat(text).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    except (TypeError, ValueError):
        return str(text)


SCORE_MEANS = (
    "Score: the weighted share of a cause's checks that held, from 0 (none) to 1 (all); "
    f"likely from {LIKELY:.2f}, possible from {POSSIBLE:.2f}; a failed required check rules "
    "the cause out."
)


def causes_html(verdicts: list[Verdict]) -> str:
    """The runbook's causes as the diagnosis ranks them (most likely first): each one's
    verdict, score, share of the symptom, and its evidence for and against it apart."""
    rows = []
    for v in verdicts:
        share = "" if v.explained_share is None else f"{100 * v.explained_share:.0f}%"
        rows.append(
            f"<tr class='cause-{v.verdict}'><td style='text-align:left'><b>"
            f"{html.escape(cause_name(v.cause))}</b></td>"
            f"<td style='color:white;background:{COLORS[v.verdict]};text-align:center'>"
            f"{v.verdict.replace('_', ' ')}</td><td>{v.score:.2f}</td><td>{share}</td>"
            f"<td style='text-align:left'>{evidence_html(v.evidence, v.missing)}</td></tr>"
        )
    return (
        "<table class='causes'><thead><tr><th style='text-align:left'>cause</th><th>verdict</th>"
        "<th>score</th><th>explains</th><th style='text-align:left'>evidence</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table>"
    )


def answer_md(verdicts: list[Verdict], att: Attribution | None = None, runbook: str = "") -> str:
    """The diagnosis: first, when the causes explain less than half of the symptom (`att`),
    that no runbook cause explains it, what was checked and the manual steps; then the top
    cause, or the causes that together explain the symptom with their shares, or that none
    is likely."""
    said = nothing_explains(runbook, unexplained_share(att), verdicts)
    first = (
        f"**{esc(said.headline)}.** Checked: {esc('; '.join(said.checked))}. "
        f"Manual steps: {esc(said.manual)}.\n\n"
        if said
        else ""
    )
    return first + _top_line(verdicts)


def _top_line(verdicts: list[Verdict]) -> str:
    tops = top_causes(verdicts)
    if not tops:
        return (
            "**No cause is likely.** Look at the overview and the logs; "
            "escalate if the root cause stays unknown."
        )

    def named(t: dict) -> str:
        share = t["explained_share"]
        return f"{esc(cause_name(t['cause']))}" + (
            f" ({100 * share:.0f}% of the symptom)" if share is not None else ""
        )

    if len(tops) == 1:
        return f"**Top cause: {named(tops[0])}.**"
    together = sum(t["explained_share"] or 0.0 for t in tops)
    listed = ", ".join(named(t) for t in tops)
    return f"**Top causes, together explaining {100 * together:.0f}% of the symptom: {listed}.**"


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


def code(text: object) -> str:
    """Text as inline code in Markdown. Entities inside backticks would show literally, so
    this is an HTML code element with the text escaped."""
    return f"<code>{html.escape(str(text))}</code>"


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


def numbered_only(frame: pd.DataFrame) -> bool:
    """True when the index is only row numbers (unnamed integers): nothing to show."""
    return frame.index.name is None and pd.api.types.is_integer_dtype(frame.index.dtype)


def table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=not numbered_only(frame), border=0, classes="dataframe")


def table_text(frame: pd.DataFrame) -> str:
    return frame.to_string(index=not numbered_only(frame))


def tables_without_row_numbers() -> None:
    """Make every DataFrame a cell displays drop a row-number index (HTML and text). A named
    or labelled index (a pattern, a setting) is kept. Outside IPython this does nothing."""
    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    formatters["text/html"].for_type(pd.DataFrame, table_html)
    formatters["text/plain"].for_type(pd.DataFrame, lambda df, p, _cycle: p.text(table_text(df)))
