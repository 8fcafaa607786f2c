"""What a run files as its summary (summary.json): the alert, the figures, the diagnosis,
what to do first, what was done, and how this incident relates to others. `runbook summary`,
the index, the pages and the messages read these keys."""

from __future__ import annotations

from typing import Any

from runbook_lib import diagnosis
from runbook_lib.diagnosis.answer import unexplained_share
from runbook_lib.notebook.display import escalated_from, iso


def build(s: Any) -> dict[str, Any]:
    """The summary of a finished `notebook.session.Session` (typed loosely: the session
    imports this module)."""
    diag, top = diagnosis.summary(s.verdicts)
    att = s.evidence.attribution if s.evidence else None
    return {
        "alert": s.p["alert_name"],
        "runbook": s.runbook,
        "status": "degraded" if s.down else "completed",
        "degraded_by": s.degraded_by(),
        "severity": s.p.get("severity") or "",
        "starts_at": iso(s.starts_at),
        "ends_at": iso(s.ends_at) if s.ends_at else None,
        "evaluated_at": iso(s.at),
        "fingerprint": s.p.get("fingerprint") or "",
        "labels": s.p.get("labels") or {},
        "figures": s.figures,
        "diagnosis": diag,
        "top_cause": top,
        "top_causes": diagnosis.top_causes(s.verdicts),
        "attribution": att.as_dict() if att else None,
        "unexplained_share": unexplained_share(att),
        "data_gaps": s.gaps,
        "actions": s.actions,
        "post_checks": getattr(s, "post_check_rows", []),
        "first_command": s.first_command(top),
        "history": s.history(),
        "escalated_from": escalated_from(s.p.get("incident") or {}),
        "resolution": s.resolution_steps(),
        "links": {"prometheus": s.graph_url(), "alertmanager": s.alertmanager_url()},
    }
