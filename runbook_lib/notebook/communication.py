"""The runbook's incident message ("🚨 INCIDENT: ..."), filled in for an incident's state.

One function serves the notebook (at run time) and `runbook incidents --message` (later,
when the state has moved on: investigating -> mitigating -> resolved)."""

from __future__ import annotations

from datetime import datetime, timedelta

STATUSES = ("Investigating", "Mitigating", "Resolved")


def next_update(severity: str, now: datetime) -> datetime:
    """Critical incidents are updated every 30 minutes, the others every hour."""
    return now + timedelta(minutes=30 if severity.lower() == "critical" else 60)


def message(
    *,
    alert: str,
    severity: str,
    starts_at: datetime,
    now: datetime,
    status: str,
    summary: str = "",
    impact: str = "",
    top_cause: str | None = None,
    ends_at: datetime | None = None,
    link: str = "",
    note: str = "",
) -> str:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    sev = (severity or "unknown").capitalize()
    cause = f" (likely cause: {top_cause.replace('_', ' ')})" if top_cause else ""
    lines = [
        f"🚨 INCIDENT: {summary or alert}{cause}",
        f"Severity: {sev}",
        f"Start Time: {starts_at:%Y-%m-%d %H:%M} UTC",
        f"Impact: {impact or 'under assessment'}",
        f"Status: {status}",
    ]
    if status == "Resolved":
        lines.append(f"Resolved: {ends_at:%Y-%m-%d %H:%M} UTC" if ends_at else "Resolved")
    else:
        lines.append(f"Next Update: {next_update(sev, now):%H:%M} UTC")
    if note:
        lines.append(note)
    if link:
        lines.append(f"Record: {link}")
    return "\n".join(lines)


def status_of(resolved: bool, mitigated: bool) -> str:
    return "Resolved" if resolved else ("Mitigating" if mitigated else "Investigating")
