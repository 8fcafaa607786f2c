"""The answer first. A record opens with what it is (a replay says so before anything),
what fired with its severity and state, the top cause with the evidence for and against
it, what to do first, and the links to look further; the sections of the runbook follow.
Built from the summary alone, so it says only what the run found."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from runbook_lib.contract.summary import CauseVerdict, Summary
from runbook_lib.diagnosis.answer import unexplained
from runbook_lib.notebook.wording import COLORS, cause_name, evidence_html

SEVERITY = {"critical": "#b91c1c", "warning": "#b45309"}


def lead_html(summary: Summary) -> str:
    """The opening block of a completed record, as HTML for a Markdown cell."""
    found = summary.verdict_of(summary.top_cause) if summary.top_cause else None
    color = COLORS["likely"] if found else COLORS["unknown"]
    parts = [
        replay_html(summary),
        f"<div class='runbook-answer' style='border-left:6px solid {color};"
        "padding:4px 14px;margin-bottom:8px'>",
        f"<p>{_alert_line(summary)}</p>",
        *_escalated(summary),
        *_degraded(summary),
        *_unexplained(summary),
        *_recurrence(summary),
    ]
    if found:
        parts += [_answer(found), _contributing(summary), _first_step(summary), _evidence(found)]
    else:
        parts.append("<h2 style='margin:4px 0'>No cause is likely</h2>")
        possible = [cause_name(v.cause) for v in summary.diagnosis if v.verdict == "possible"]
        if possible:
            parts.append(f"<p>Possible: {escape(', '.join(possible))}.</p>")
        parts.append(f"<p><b>What to do:</b> {_no_cause_step(summary)}</p>")
    parts += [f"<p>{_links(summary)}</p>", "</div>"]
    return "\n".join(p for p in parts if p)


def replay_html(summary: Summary) -> str:
    """A replay says so first: it re-ran another record's saved data, it saw nothing new."""
    of = summary.replay_of
    if not of:
        return ""
    name = escape(str(of))
    sibling = "/" not in str(of)  # a record beside this one: link it
    target = f"<a href='../{quote(str(of))}/report.html'>{name}</a>" if sibling else name
    return (
        "<div class='runbook-replay' style='background:#e0e7ff;border:1px solid #6366f1;"
        f"padding:6px 12px;margin-bottom:8px'><b>↻ Replay of {target}</b>: the runbook re-run "
        "on the data that record saved (Prometheus answers and log lines), not a new "
        "investigation.</div>"
    )


def _answer(found: CauseVerdict) -> str:
    share = found.explained_share
    explains = f", explains {100 * share:.0f}% of the symptom" if share is not None else ""
    return (
        f"<h2 style='margin:4px 0'>Top cause: {escape(cause_name(found.cause))} — "
        f"{escape(found.verdict)} (score {found.score:.2f}{explains})</h2>"
    )


def _contributing(summary: Summary) -> str:
    """Other likely causes that explain a real part of the same symptom, with their shares."""
    others = summary.top_causes[1:]
    if not others:
        return ""
    named = ", ".join(
        f"{escape(cause_name(t.cause))} ({100 * (t.explained_share or 0):.0f}%)" for t in others
    )
    return f"<p><b>Contributing as well:</b> {named}. Both need fixing.</p>"


def _first_step(summary: Summary) -> str:
    if not summary.first_command:
        return ""
    return (
        f"<p><b>What to do first:</b> <code>{escape(summary.first_command)}</code> "
        "(every command under Resolution)</p>"
    )


def _no_cause_step(summary: Summary) -> str:
    if summary.degraded_by:
        return (
            "make Prometheus reachable (above) and investigate again; until then, look at "
            "the service and its logs directly."
        )
    return "check the overview and the logs below; escalate if the root cause stays unknown."


def _evidence(found: CauseVerdict) -> str:
    """The top cause's evidence: what supports it apart from what speaks against it."""
    return evidence_html(found.evidence, labels=("Evidence for", "Against", ""))


def _escalated(summary: Summary) -> list[str]:
    """An escalation says so before the finding: which alert raised it, from what."""
    before = summary.escalated_from
    if not before:
        return []
    return [
        f"<p><b>⬆️ Escalated from {escape(before.severity or 'unknown')} to "
        f"{escape(summary.severity or 'unknown')}</b> by "
        f"{escape(summary.alert)}; the earlier investigation led by "
        f"{escape(before.alertname or '?')} is "
        f"<a href='/records/{quote(before.record)}/report.html'>here</a>.</p>"
    ]


def _recurrence(summary: Summary) -> list[str]:
    """A recurrence within a week is called out before the finding."""
    from runbook_lib.notebook.recurrence import headline

    h = summary.history
    if not h or not h.recurrence:
        return []
    return [f"<p style='color:{COLORS['possible']}'><b>⟳</b> {escape(headline(h.as_dict()))}</p>"]


def _degraded(summary: Summary) -> list[str]:
    """A run that could not see (Prometheus silent) says so before any finding."""
    return [
        f"<p style='color:{COLORS['likely']}'><b>Degraded run:</b> {escape(text)}</p>"
        for text in summary.degraded_by
    ]


def _unexplained(summary: Summary) -> list[str]:
    """When the causes explain less than half of the symptom, that comes first."""
    said = unexplained(summary)
    if said is None:
        return []
    return [
        f"<h2 style='margin:4px 0'>{escape(said.headline)}</h2>",
        f"<p><b>Checked:</b> {escape('; '.join(said.checked))}.</p>",
        f"<p><b>Manual steps:</b> {escape(said.manual)}.</p>",
    ]


def _alert_line(s: Summary) -> str:
    """What fired, how severe, and the state of the incident when the run looked."""
    since = _minute(s.starts_at)
    severity = s.severity
    bits = [f"<b>🚨 {escape(s.alert or 'alert')}</b>"]
    if severity:
        color = SEVERITY.get(severity, "#374151")
        bits.append(f"<b style='color:{color}'>{escape(severity)}</b>")
    if s.ends_at:
        state = f"resolved at {escape(_minute(s.ends_at))} UTC (started {escape(since)})"
    else:
        state = f"firing since {escape(since)} UTC" if since else "firing"
        if s.evaluated_at:
            state += f", seen at {escape(_minute(s.evaluated_at)[11:])}"
    bits.append(state)
    if s.kind == "verification":
        bits.append("verification run after it resolved")
    bits.append(f"runbook <code>{escape(s.runbook)}</code>")
    return " · ".join(bits)


def _minute(text: object) -> str:
    return str(text or "")[:16].replace("T", " ")


def _links(s: Summary) -> str:
    """Where to look further: the alert's series and the alert, the incident page, and this
    record's own files (relative: they work from a copy of the directory as well)."""
    links = s.links
    out = []
    for key, label in (("prometheus", "Prometheus"), ("alertmanager", "Alertmanager")):
        if links.get(key):
            out.append(f"<a href='{escape(links[key], quote=True)}'>{label}</a>")
    if s.incident_id is not None:
        out.append(f"<a href='/incidents/{s.incident_id}'>Incident page</a>")
    out.append("<a href='summary.json'>summary.json</a>")
    out.append("<a href='record.html'>the notebook with its code</a>")
    return " · ".join(out)
