"""The incident message cell: the runbook's communication template (`communication`), filled
in with what this run found."""

from __future__ import annotations

from IPython.display import Markdown, display

from runbook_lib.notebook.communication import message as incident_message
from runbook_lib.notebook.communication import status_of
from runbook_lib.notebook.state import Session


def message(s: Session) -> None:
    """The runbook's communication template, filled in."""
    if s.exploring:
        display(Markdown("*No incident message: no alert is firing, this is an exploration.*"))
        return
    text = incident_message(
        alert=s.p.alert_name,
        severity=s.p.severity,
        starts_at=s.starts_at,
        now=s.at,
        status=status_of(bool(s.ends_at), any(a.get("done") for a in s.actions)),
        summary=s.p.annotations.get("summary", ""),
        impact=s.p.annotations.get("impact", ""),
        top_cause=s.top_cause,
        ends_at=s.ends_at,
    )
    display(Markdown(f"```\n{text}\n```"))
