"""What a run files as its summary (`contract.summary.Summary`, summary.json): the alert, the
figures, the diagnosis, what to do first, what was done, and how this incident relates to
others; displayed as the notebook's last output, where the engine finds it."""

from __future__ import annotations

import json

from IPython.display import display

from runbook_lib import diagnosis
from runbook_lib.contract.summary import Summary
from runbook_lib.diagnosis.answer import unexplained_share
from runbook_lib.notebook.diagnosing import history
from runbook_lib.notebook.display import iso
from runbook_lib.notebook.header import alertmanager_url, graph_url
from runbook_lib.notebook.resolving import first_command, resolution_steps
from runbook_lib.notebook.state import Session


def build(s: Session) -> Summary:
    """The summary of a finished run."""
    diag, top = diagnosis.summary(s.verdicts)
    att = s.evidence.attribution if s.evidence else None
    return Summary(
        alert=s.p.alert_name,
        runbook=s.runbook,
        status="degraded" if s.down else "completed",
        degraded_by=s.degraded_by(),
        severity=s.p.severity,
        starts_at=iso(s.starts_at),
        ends_at=iso(s.ends_at) if s.ends_at else None,
        evaluated_at=iso(s.at),
        fingerprint=s.p.fingerprint,
        labels=s.p.labels,
        figures=s.figures,
        diagnosis=diag,
        top_cause=top,
        top_causes=diagnosis.top_causes(s.verdicts),
        attribution=att.as_dict() if att else None,
        unexplained_share=unexplained_share(att),
        data_gaps=s.gaps,
        actions=s.actions,
        post_checks=s.post_check_rows,
        first_command=first_command(s, top),
        history=history(s),
        escalated_from=s.p.incident.escalated_from,
        resolution=resolution_steps(s),
        links={"prometheus": graph_url(s), "alertmanager": alertmanager_url(s)},
    )


def show(s: Session) -> Summary:
    """The summary, displayed as the notebook's last output (the engine files it)."""
    summary = build(s)
    out = summary.as_json()
    display(
        {"application/json": out, "text/plain": json.dumps(out, indent=1, ensure_ascii=False)},
        raw=True,
        metadata={"runbook_summary": True},
    )
    return summary
