"""The answer first. A completed record opens with what fired, the top cause with its verdict
and evidence, the first command of its resolution, and the links to look further; the
sections of the runbook follow. Built from the summary alone, so it says only what the run
found."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from runbook_lib.diagnosis.answer import unexplained

COLORS = {"likely": "#d62728", "possible": "#e69f00", "none": "#7f7f7f"}


def lead_html(summary: dict[str, Any]) -> str:
    """The opening block of a record, as HTML for a Markdown cell."""
    top = summary.get("top_cause")
    verdicts = summary.get("diagnosis") or []
    found = next((v for v in verdicts if v.get("cause") == top), None) if top else None
    color = COLORS["likely"] if found else COLORS["none"]
    parts = [
        f"<div class='runbook-answer' style='border-left:6px solid {color};"
        "padding:4px 14px;margin-bottom:8px'>",
        f"<p>{_alert_line(summary)}</p>",
        *_escalated(summary),
        *_degraded(summary),
        *_unexplained(summary),
        *_recurrence(summary),
    ]
    if found:
        share = found.get("explained_share")
        explains = f", explains {100 * share:.0f}% of the symptom" if share is not None else ""
        parts.append(
            f"<h2 style='margin:4px 0'>Top cause: {escape(str(top))} — "
            f"{escape(found['verdict'])} ({found['score']:.2f}{explains})</h2>"
        )
        parts.append(_contributing(summary))
        parts.append(_items(found.get("evidence") or []))
    else:
        parts.append("<h2 style='margin:4px 0'>No cause is likely</h2>")
        possible = [v["cause"] for v in verdicts if v.get("verdict") == "possible"]
        if possible:
            parts.append(f"<p>Possible: {escape(', '.join(possible))}.</p>")
        parts.append(
            "<p>Check the overview and the logs below; escalate if the root cause stays "
            "unknown.</p>"
        )
    if summary.get("first_command"):
        parts.append(
            f"<p><b>First step:</b> <code>{escape(summary['first_command'])}</code> "
            "(the rest under Resolution)</p>"
        )
    links = _links(summary)
    if links:
        parts.append(f"<p>{links}</p>")
    parts.append("</div>")
    return "\n".join(parts)


def _escalated(summary: dict[str, Any]) -> list[str]:
    """An escalation says so before the finding: which alert raised it, from what."""
    before = summary.get("escalated_from")
    if not before:
        return []
    return [
        f"<p><b>⬆️ Escalated from {escape(str(before.get('severity') or 'unknown'))} to "
        f"{escape(str(summary.get('severity') or 'unknown'))}</b> by "
        f"{escape(str(summary.get('alert') or ''))}; the earlier investigation led by "
        f"{escape(str(before.get('alertname') or '?'))} is "
        f"<a href='/records/{quote(str(before.get('record') or ''))}/report.html'>here</a>.</p>"
    ]


def _recurrence(summary: dict[str, Any]) -> list[str]:
    """A recurrence within a week is called out before the finding."""
    from runbook_lib.notebook.recurrence import headline

    h = summary.get("history")
    if not h or not h.get("recurrence"):
        return []
    return [f"<p style='color:{COLORS['possible']}'><b>⟳</b> {escape(headline(h))}</p>"]


def _degraded(summary: dict[str, Any]) -> list[str]:
    """A run that could not see (Prometheus silent) says so before any finding."""
    return [
        f"<p style='color:{COLORS['likely']}'><b>Degraded run:</b> {escape(text)}</p>"
        for text in summary.get("degraded_by") or []
    ]


def _unexplained(summary: dict[str, Any]) -> list[str]:
    """When the causes explain less than half of the symptom, that comes first."""
    said = unexplained(summary)
    if said is None:
        return []
    return [
        f"<h2 style='margin:4px 0'>{escape(said.headline)}</h2>",
        f"<p><b>Checked:</b> {escape('; '.join(said.checked))}.</p>",
        f"<p><b>Manual steps:</b> {escape(said.manual)}.</p>",
    ]


def _contributing(summary: dict[str, Any]) -> str:
    """Other likely causes that explain a real part of the same symptom, with their shares."""
    others = (summary.get("top_causes") or [])[1:]
    if not others:
        return ""
    named = ", ".join(
        f"{escape(str(t['cause']))} ({100 * (t.get('explained_share') or 0):.0f}%)" for t in others
    )
    return f"<p><b>Contributing as well:</b> {named}. Both need fixing.</p>"


def _alert_line(s: dict[str, Any]) -> str:
    state = "resolved" if s.get("ends_at") else "firing"
    since = str(s.get("starts_at") or "")[:16].replace("T", " ")
    bits = [f"<b>🚨 {escape(str(s.get('alert') or 'alert'))}</b>"]
    if s.get("severity"):
        bits.append(escape(str(s["severity"])))
    bits.append(f"{state} since {escape(since)} UTC" if since else state)
    bits.append(f"runbook <code>{escape(str(s.get('runbook') or ''))}</code>")
    return " · ".join(bits)


def _items(lines: list[str]) -> str:
    return "<ul style='margin:2px 0'>" + "".join(f"<li>{escape(x)}</li>" for x in lines) + "</ul>"


def _links(s: dict[str, Any]) -> str:
    links = dict(s.get("links") or {})
    out = []
    for key, label in (("prometheus", "Prometheus"), ("alertmanager", "Alertmanager")):
        if links.get(key):
            out.append(f"<a href='{escape(links[key], quote=True)}'>{label}</a>")
    if s.get("incident_id") is not None:
        out.append(f"<a href='/incidents/{int(s['incident_id'])}'>Incident page</a>")
    return " · ".join(out)
