"""What to do about the causes found: the runbook's commands filled with the run's real
values, the guarded mitigations (acting only when allowed), and the post-resolution checks."""

from __future__ import annotations

from typing import Any

import pandas as pd
from IPython.display import Markdown, display

from runbook_lib.notebook.display import esc
from runbook_lib.notebook.state import Session
from runbook_lib.notebook.wording import cause_name

DEFAULT_PORT = 9464  # the service's port in the commands when the alert names none


def resolution(s: Session) -> None:
    """The runbook's commands for the likely and possible causes, with real values."""
    steps = resolution_steps(s)
    if not steps:
        display(
            Markdown(
                "*No likely or possible cause: the runbook's general steps "
                "apply (check logs, restart if unhealthy, escalate).*"
            )
        )
    for step in steps:
        title = f"{esc(cause_name(step['cause']))} ({step['verdict']})"
        display(Markdown(f"#### {title}\n```bash\n{step['commands']}\n```"))


def resolution_steps(s: Session) -> list[dict[str, str]]:
    """Per likely or possible cause, its commands filled in (kept in the summary too)."""
    from runbook_lib.diagnosis.resolution import commands

    return [
        {"cause": v.cause, "verdict": v.verdict,
         "commands": commands(s.runbook, v.cause, values(s))}
        for v in s.verdicts
        if v.verdict in ("likely", "possible")
    ]  # fmt: skip


def first_command(s: Session, cause: str | None) -> str | None:
    """The first command of the runbook's resolution for `cause` (what to do first)."""
    from runbook_lib.diagnosis.resolution import commands

    if cause is None:
        return None
    lines = commands(s.runbook, cause, values(s)).splitlines()
    return next((ln for ln in lines if ln.strip() and not ln.startswith("#")), None)


def values(s: Session) -> dict[str, Any]:
    """Real values for the commands: container, port, pids, paths."""
    host = (s.evidence.host if s.evidence else None) or {}
    return {
        "container": s.p.container,
        "log_sources": s.log_source,
        "port": s.service_port or DEFAULT_PORT,
        "instance": s.scope.instance or "",
        "pids": [p["pid"] for p in host.get("processes", [])],
        "processes": host.get("processes", []),  # the run's snapshot (a replay's: then)
        "temp_dir": s.temp_dir,
        "prometheus_url": s.prom.url,
        "holder": next(
            (x for x in host.get("listeners", []) if x.get("pid") != host.get("service_pid")),
            None,
        ),
    }


def mitigate(s: Session, action: str) -> None:
    """A mitigation that acts only when `allow_mitigation` is true (and, in a run an
    operator approved, only when it is one they approved); says what it did."""
    from runbook_lib.diagnosis.mitigation import ACTIONS, not_approved

    approved = s.p.incident.approved_mitigations
    if approved is not None and action not in approved:
        result = not_approved(action, approved)
    else:
        result = ACTIONS[action](values(s), s.p.allow_mitigation, s.p.live)
    s.actions.append(result)
    display(Markdown(f"**{action}**: {esc(result['outcome'])}"))


def post_checks(s: Session) -> None:
    """The runbook's post-resolution checks, answered by a query where one can."""
    from runbook_lib.diagnosis.postcheck import run_checks

    s.post_check_rows = run_checks(s.runbook, s.scope, s.prom, s.at)
    display(pd.DataFrame(s.post_check_rows)[["check", "status"]])
