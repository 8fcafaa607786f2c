"""The runbook's common causes judged from the evidence, and the answer: which causes explain
the symptom and how much of it, and what the runbook's past incidents say of the top one."""

from __future__ import annotations

from typing import Any

from IPython.display import HTML, Markdown, display

from runbook_lib import diagnosis
from runbook_lib.notebook import charts, recurrence
from runbook_lib.notebook.display import SCORE_MEANS, answer_md, causes_html, esc, show
from runbook_lib.notebook.fetching import data, gather
from runbook_lib.notebook.state import Session


def causes(s: Session) -> None:
    """The runbook's common causes, judged from the evidence: one table, most likely
    first, each with its evidence for and against."""
    _judge(s)
    if not s.verdicts:
        display(Markdown("*This runbook has no common causes to judge: see the overview.*"))
        return
    display(HTML(causes_html(s.verdicts)))
    display(Markdown(f"*{SCORE_MEANS}*"))


def answer(s: Session) -> None:
    """The answer (the causes themselves are the table above it): which causes explain
    the symptom and how much of it, as a chart beside the alerting series."""
    if not s.verdicts:
        _judge(s)
    att = s.evidence.attribution if s.evidence else None
    display(Markdown(answer_md(s.verdicts, att, s.runbook)))
    seen = recurrence.headline(history(s))
    if seen:
        display(Markdown(f"**Seen before:** {esc(seen)}"))
    if att is not None and att.total > 0:
        name = charts.SYMPTOM_PANEL.get(s.runbook)
        symptom = data(s, name) if name else None
        show(charts.attribution(att.as_dict(), symptom, s.alert_start, s.ends_at))


def _judge(s: Session) -> None:
    s.verdicts = diagnosis.diagnose(s.runbook, gather(s))
    for gap in diagnosis.unknown_gaps(s.verdicts):
        s.gap(gap)


def history(s: Session) -> dict[str, Any] | None:
    """The runbook's past incidents with this top cause (the receiver passes them)."""
    return recurrence.summarize(list(s.p.incident.past), s.top_cause, s.scope.instance or "", s.at)
