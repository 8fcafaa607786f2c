"""What the team is told about each event of an incident, whatever the channel.

A message is composed when it is sent, from the incident as the index holds it then, so its
title carries the incident's severity now (after an escalation: critical, like the page and
the record's lead). The first message of an incident is its investigation's finding; every
later event is a follow-up that names it. How a follow-up reaches people is the channel's
business (service/notify.py): a reply in a Slack thread, or a message of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runbook_lib.contract.clock import utc
from runbook_lib.contract.incident import Incident, IncidentRun
from runbook_lib.contract.summary import Summary
from runbook_lib.diagnosis.answer import unexplained
from runbook_lib.diagnosis.postcheck import HELD
from runbook_lib.incidents.index import Index
from runbook_lib.records import record
from runbook_lib.service import incident_view
from runbook_lib.storage import outbox as ob

# One more line under a finding, from the index (e.g. the incident's past occurrences and
# what fixed them): given the index and the incident (`incident_view.load`), '' for none.
Recall = Callable[[Index, incident_view.Described], str]
log = logging.getLogger("runbook.notify")


@dataclass(frozen=True)
class Message:
    title: str
    body: str  # Markdown
    severity: str = ""  # the incident's, now: the channel's colour or type follows it
    attach: Path | None = None
    follows: str = ""  # a follow-up: the first message it follows ('' for a first message)
    status: str = ""  # the incident's status line now (a Slack thread's first message shows it)

    def standalone(self) -> str:
        """The body for a channel without threads: a follow-up says what it follows."""
        return f"Follow-up to {self.follows}\n{self.body}" if self.follows else self.body


@dataclass(frozen=True)
class _Facts:
    """What a message is made of."""

    ev: ob.Event
    inc: incident_view.Described
    run: IncidentRun | None
    summary: Summary | None  # None: no record, or one that cannot be read here
    link: str
    recalled: str


def compose(
    ev: ob.Event, index: Index, output_dir: Path, base_url: str, *, recall: Recall | None = None
) -> Message:
    """What to say about `ev`, from the incident and its records now."""
    inc = incident_view.load(index, ev.incident_id)
    run = next((r for r in inc.runs if r.id == ev.run_id), None)
    finds = ev.kind in FINDINGS
    facts = _Facts(
        ev=ev, inc=inc, run=run, summary=_summary(output_dir, run),
        link=f"{base_url.rstrip('/')}/incidents/{inc.id}" if base_url else "",
        recalled=_recalled(recall, index, inc) if finds else "",
    )  # fmt: skip
    title, lines = WRITERS[ev.kind](facts)
    attach = _overview_png(output_dir, run.record) if run and finds else None
    follows = "" if ev.kind == "investigation" else _first(inc)
    return Message(title, "\n".join(lines), inc.severity, attach, follows, status_line(inc))


def _recalled(recall: Recall | None, index: Index, inc: incident_view.Described) -> str:
    """The recall hook's line; a hook that fails costs its line, never the message."""
    if recall is None:
        return ""
    try:
        return recall(index, inc) or ""
    except Exception:
        log.exception("recall for incident %s failed; the message goes without its line",
                      inc.id)  # fmt: skip
        return ""


def _head(inc: Incident) -> str:
    """Alert, severity and instance as the incident stands now."""
    where = inc.labels.get("instance", "")
    return f"{inc.alertname} · {inc.severity or 'no severity'}" + (f" · {where}" if where else "")


def _first(inc: incident_view.Described) -> str:
    """The incident's first message as a follow-up names it: the title its first
    investigation was sent with, and when the fault started."""
    first = next((r for r in inc.runs if r.kind == "investigation" and not r.trigger), None)
    name = (first and first.alertname) or inc.alertname
    sev = (first and first.severity) or inc.severity or "no severity"
    where = inc.labels.get("instance", "")
    starts = inc.fault_starts_at
    title = f"🚨 {name} · {sev}" + (f" · {where}" if where else "")
    return f"“{title}” (started {utc(starts):%Y-%m-%d %H:%M} UTC)"


def status_line(inc: Incident) -> str:
    """Where the incident stands: firing, escalated, mitigated, resolved (and who took it)."""
    if inc.status == "resolved":
        now = "resolved"
    elif inc.status == "stale":
        now = "closed as stale (no resolution came)"
    elif inc.mitigated_at:
        now = "mitigated"
    elif inc.escalated_at:
        now = "escalated"
    else:
        now = "firing"
    who = inc.acknowledged_by
    return f"Status: {now}" + (f" · acknowledged by {who}" if who else "")


# ---------------------------------------------------------------------- each event
def _investigation(f: _Facts) -> tuple[str, list[str]]:
    return f"🚨 {_head(f.inc)}", _finding_block(f)


def _escalated(f: _Facts) -> tuple[str, list[str]]:
    run_id = f.run.id if f.run else 0
    before = [r for r in f.inc.runs if r.kind == "investigation" and r.id < run_id]
    was = (before[-1].severity if before else None) or "no severity"
    now = (f.run and f.run.severity) or f.inc.severity
    by = (f.run and f.run.alertname) or f.inc.alertname
    line = f"⬆️ Escalated from {was} to {now} by {by}"
    return f"⬆️ Escalated: {_head(f.inc)}", [line, *_finding_block(f)]


def _reinvestigation(f: _Facts) -> tuple[str, list[str]]:
    who = (f.run and f.run.requested_by) or "an operator"
    line = f"🔁 Re-investigation requested by {who}"
    return f"🔁 Re-investigated: {_head(f.inc)}", [line, *_finding_block(f)]


def _mitigation(f: _Facts) -> tuple[str, list[str]]:
    who = (f.run and f.run.requested_by) or "an operator"
    done = f.summary.actions if f.summary else []
    lines = [f"🛠️ The mitigation approved by {who} ran:"]
    lines += [f"- {'✔' if a.done else '✘'} {a.action or '?'}: {a.outcome}"
              for a in done] or ["- nothing was done (see the record)"]  # fmt: skip
    return f"🛠️ Mitigation: {_head(f.inc)}", [*lines, *_link(f), "", *_paste(f)]


def _acknowledged(f: _Facts) -> tuple[str, list[str]]:
    line = f"👀 Acknowledged by {_actor(f)} at {_when(f)}."
    return f"👀 Acknowledged: {_head(f.inc)}", [line, *_link(f)]


def _mitigated(f: _Facts) -> tuple[str, list[str]]:
    line = f"🩹 Marked mitigated by {_actor(f)} at {_when(f)}."
    return f"🩹 Mitigated: {_head(f.inc)}", [line, *_link(f), "", *_paste(f)]


def _silenced(f: _Facts) -> tuple[str, list[str]]:
    ends = f.ev.detail.get("ends_at")
    until = f" until {_at(ends)}" if ends is not None else ""
    line = f"🔕 Silenced in Alertmanager by {_actor(f)} at {_when(f)}{until}."
    return f"🔕 Silenced: {_head(f.inc)}", [line, *_link(f)]


def _resolved(f: _Facts) -> tuple[str, list[str]]:
    return f"✅ Resolved: {_head(f.inc)}", [
        f"Resolved after {f.inc.duration}.",
        *_link(f),
        "",
        *_paste(f),
    ]


def _verification(f: _Facts) -> tuple[str, list[str]]:
    from runbook_lib.diagnosis.postcheck import verified

    held = verified(f.summary.post_checks if f.summary else [])
    verdict = HELD[held]
    title = f"{'✅' if held else '⚠️'} Verification: {_head(f.inc)}: {verdict}"
    return title, [f"Verification after the resolve: {verdict}.", *_link(f)]


WRITERS: dict[str, Callable[[_Facts], tuple[str, list[str]]]] = {
    "investigation": _investigation, "escalated": _escalated,
    "reinvestigation": _reinvestigation, "mitigation": _mitigation,
    "acknowledged": _acknowledged, "mitigated": _mitigated, "silenced": _silenced,
    "resolved": _resolved, "verification": _verification,
}  # fmt: skip
FINDINGS = ("investigation", "escalated", "reinvestigation")  # events that carry a finding


# ---------------------------------------------------------------------- parts
def _finding_block(f: _Facts) -> list[str]:
    """The finding, what the index recalls, the first step, the link, the message to paste."""
    lines = [_finding(f.summary, f.run)]
    if f.recalled:
        lines.append(f.recalled)
    if f.summary and f.summary.first_command:
        lines.append(f"First step: `{f.summary.first_command}`")
    return lines + _link(f) + ["", "Incident message, ready to paste:", *_paste(f)]


def _link(f: _Facts) -> list[str]:
    return [f"Investigation: {f.link}"] if f.link else []


def _paste(f: _Facts) -> list[str]:
    """The runbook's incident message as it stands now, in a block to copy."""
    return ["```", incident_view.message_of(f.inc), "```"]


def _actor(f: _Facts) -> str:
    return f.ev.detail.get("actor") or "someone"


def _when(f: _Facts) -> str:
    return _at(f.ev.created_at)


def _at(value: float | str) -> str:
    """An epoch or an ISO 8601 time, as messages write times."""
    at = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else utc(value)
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _summary(output_dir: Path, run: IncidentRun | None) -> Summary | None:
    if not run:
        return None
    try:
        return record.summary(output_dir / run.record)
    except (OSError, ValueError, KeyError):
        return None


def _finding(summ: Summary | None, run: IncidentRun | None) -> str:
    if summ is None:  # the record could not be read here: the index still knows
        return _indexed(run)
    if summ.status not in ("completed", "degraded"):
        return f"The investigation did not complete ({summ.error or summ.status}); see the record."
    blind = [f"⚠️ Degraded: {text}" for text in summ.degraded_by]
    nothing = unexplained(summ)  # no runbook cause explains most of it: said first
    return "\n".join([*blind, *([nothing.text()] if nothing else []), _cause(summ)])


def _indexed(run: IncidentRun | None) -> str:
    """The finding as the index files it, for a record that cannot be read."""
    if run and run.status not in (None, "completed", "degraded"):
        return f"The investigation did not complete ({run.status}); see the record."
    if run and run.top_cause:
        return f"Top cause: **{run.top_cause}** (details in the record)"
    return NO_CAUSE


NO_CAUSE = "No cause is likely: check the overview and the logs; escalate if it persists."


def _cause(summ: Summary) -> str:
    """The top cause with its verdict, share and strongest evidence, or that none is likely."""
    top = summ.top_cause
    found = summ.verdict_of(top)
    if top and not found:
        return f"Top cause: **{top}** (details in the record)"
    if not found:
        return NO_CAUSE
    share = found.explained_share
    explains = f", explains {100 * share:.0f}% of the symptom" if share is not None else ""
    out = [f"Top cause: **{top}** — {found.verdict} ({found.score:.2f}{explains})"]
    others = summ.top_causes[1:]
    if others:
        out.append(
            "Contributing as well: "
            + ", ".join(f"{t.cause} ({100 * (t.explained_share or 0):.0f}%)" for t in others)
        )
    strongest = found.strongest or [e for e in found.evidence if e.startswith("✔")]
    out += [f"- {e}" for e in strongest[:2]]
    return "\n".join(out)


def _overview_png(output_dir: Path, record_name: str) -> Path | None:
    """The assessment's four-panel overview, cut out of the executed notebook once."""
    out = output_dir / ".notify" / f"{record_name}-overview.png"
    if out.exists():
        return out
    try:
        nb = json.loads((output_dir / record_name / "record.ipynb").read_text())
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "run.assess()" not in "".join(cell["source"]):
            continue
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png:
                out.parent.mkdir(parents=True, exist_ok=True)
                part = out.with_suffix(f".{threading.get_ident()}.part")
                part.write_bytes(base64.b64decode(png))
                os.replace(part, out)  # lanes for two targets may cut it at once
                return out
    return None
