"""An incident's story, for its post-mortem: every alert (when it went pending, fired, and
ended), the escalations, every run with its finding, every operator action, and when the
incident was acknowledged and mitigated.

`snapshot` takes the incident from the index (embedded or distributed) and asks Prometheus,
while it still has them, when the alerts went pending (`ALERTS{alertstate="pending"}`): the
post-mortem keeps that snapshot as `incident.json`, so it can be re-run after the index has
changed or Prometheus has dropped the series. `rows` and `facts` read only the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_lib.contract.clock import utc
from runbook_lib.contract.incident import Incident, IncidentAlert
from runbook_lib.diagnosis.postcheck import HELD
from runbook_lib.incidents import actions
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import event_kind

# How far before an alert fired its pending state is looked for: beyond the longest `for:`.
PENDING_LOOKBACK = timedelta(hours=1)
RUN_WORDS = {  # jobs.event_kind -> how the timeline names the run
    "investigation": "investigation",
    "escalated": "escalated investigation",
    "reinvestigation": "re-investigation",
    "mitigation": "mitigation run",
    "verification": "verification",
    "manual": "run by hand",
}


@dataclass(frozen=True)
class Row:
    """One line of the timeline."""

    at: datetime
    event: str


def snapshot(index: Index, incident_id: int, prometheus_url: str = "") -> dict[str, Any]:
    """The incident as the index holds it now (alerts, runs, actions), with each alert's
    `pending_at` from Prometheus and `pending_note` saying where that came from; JSON-able.
    LookupError naming the id when there is no such incident."""
    return snapshot_of(index.incident(incident_id), prometheus_url)


def snapshot_of(inc: Incident, prometheus_url: str = "") -> dict[str, Any]:
    """`snapshot` of an incident already read: the post-mortem's `incident.json`, a dict
    because the records alone (`postmortem.from_records`) tell only part of it."""
    snap = inc.model_dump(mode="json")
    pending, snap["pending_note"] = pending_times(prometheus_url, inc.alerts)
    for alert in snap["alerts"]:
        alert["pending_at"] = pending.get(alert["id"])
    return snap


def pending_times(
    prometheus_url: str, alerts: Sequence[IncidentAlert]
) -> tuple[dict[int, str], str]:
    """When each alert went pending, by alert id (ISO times), from the samples of its
    `ALERTS{alertstate="pending"}` series before it fired; and a note for the reader."""
    from runbook_lib.evidence.prom import Failure, Prom, selector

    if not prometheus_url:
        return {}, "Pending times: no Prometheus URL was given (--prometheus-url)."
    prom, found = Prom(prometheus_url, timeout=5.0), {}
    for a in alerts:
        fired = utc(a.starts_at)
        labels = selector(alertstate="pending", alertname=a.alertname,
                          instance=a.labels.get("instance"))  # fmt: skip
        window = f"{int(PENDING_LOOKBACK.total_seconds())}s"
        result = prom.instant(f"ALERTS{labels}[{window}]", fired)
        if result.failure in (Failure.UNREACHABLE, Failure.BAD_QUERY):
            return found, f"Pending times: {result.reason}; the alerts start when they fired."
        started = episode_start([t.to_pydatetime() for t in result.frame["timestamp"]], fired)
        if started is not None:
            found[a.id] = started.isoformat()
    if len(found) < len(alerts):
        missing = len(alerts) - len(found)
        return found, (f"Pending times from Prometheus at {prometheus_url}; it no longer holds "
                       f"(or never had) the pending state of {missing} of {len(alerts)} alerts.")  # fmt: skip
    return found, f"Pending times from Prometheus at {prometheus_url} (ALERTS)."


def episode_start(samples: list[datetime], fired: datetime) -> datetime | None:
    """The first sample of the pending episode that ended when the alert fired: samples at
    the rule's evaluation interval, walked back from the last while none is missing. None
    when there is no pending sample within a few intervals before the firing."""
    samples = sorted(s for s in samples if s <= fired)
    if not samples:
        return None
    gaps = [b - a for a, b in zip(samples, samples[1:], strict=False)]
    step = min(gaps, default=timedelta(minutes=1))
    if fired - samples[-1] > 3 * step:
        return None  # an earlier episode: this firing's pending state is gone
    start = len(samples) - 1
    while start > 0 and samples[start] - samples[start - 1] <= 1.5 * step:
        start -= 1
    return samples[start]


# -- the timeline ----------------------------------------------------------------------------
def rows(inc: dict[str, Any]) -> list[Row]:
    """The timeline of a snapshot, oldest first (events at one time in the order they
    happen: an alert, then what the receiver and the people did)."""
    out = _alert_rows(inc) + _run_rows(inc) + _people_rows(inc)
    if inc.get("resolved_at") and inc["status"] in ("resolved", "stale"):
        said = "closed as stale" if inc["status"] == "stale" else "resolved"
        out.append(Row(_at(inc["resolved_at"]), f"incident {said}"))
    return sorted(out, key=lambda r: r.at)


def _alert_rows(inc: dict[str, Any]) -> list[Row]:
    out = []
    for a in sorted(inc["alerts"], key=lambda a: (a["starts_at"], a["id"])):
        name = a["alertname"]
        what = f"{name} ({a['severity'] or 'no severity'}{', slow-burn: context' if a['context'] else ''})"
        if a.get("pending_at"):
            out.append(Row(utc(a["pending_at"]), f"{what} went pending"))
        fired = utc(a["starts_at"])
        late = f" (received {_span(a['received_at'] - fired.timestamp())} later)" if a.get(
            "received_at") else ""  # fmt: skip
        out.append(Row(fired, f"{what} fired{late}"))
        if a["status"] == "resolved":
            out.append(Row(utc(a["ends_at"]) if a.get("ends_at") else _at(a["closed_at"]),
                           f"{name} resolved"))  # fmt: skip
        elif a["status"] == "stale" and a.get("closed_at"):
            out.append(Row(_at(a["closed_at"]),
                           f"{name} closed as stale (Alertmanager no longer listed it)"))  # fmt: skip
    return out


def _run_rows(inc: dict[str, Any]) -> list[Row]:
    out, severity = [], None
    for run in sorted(inc["runs"], key=lambda r: r["id"]):
        kind = event_kind(run["kind"], run.get("trigger") or "")
        what = RUN_WORDS.get(kind, kind)
        if run.get("requested_by"):
            asked = "approved" if kind == "mitigation" else "asked"
            what += f" ({asked} by {run['requested_by']})"
        if kind == "escalated":
            by = run.get("alertname") or "a more severe alert"
            out.append(Row(_at(run["enqueued_at"]),
                           f"escalated from {severity or 'a lower severity'} to "
                           f"{run.get('severity') or 'a higher severity'} by {by}"))  # fmt: skip
        if run["kind"] in ("investigation", "mitigation"):
            severity = run.get("severity") or severity
        if run.get("held_since"):
            out.append(Row(_at(run["held_since"]), f"{what} held: {run.get('hold_note') or ''}"))
        if run["state"] != "done":
            out.append(Row(_at(run["enqueued_at"]), f"{what} {run['state']}"))
            continue
        out.append(Row(_at(run["finished_at"]), f"{what} {run['status']}: {_finding(run)}"))
    return out


def _finding(run: dict[str, Any]) -> str:
    if run["kind"] == "verification":
        said = HELD[run.get("verified")]
    elif run.get("top_cause"):
        said = f"likely cause {run['top_cause']}"
    else:
        said = run.get("error") or "no likely cause"
    return f"{said} ({run['record']})"


def _people_rows(inc: dict[str, Any]) -> list[Row]:
    out = []
    for act in inc.get("actions", []):
        said = actions.detail_text(act["kind"], act.get("detail") or {})  # its run: a row
        out.append(Row(_at(act["at"]), f"{act['actor']} {actions.DID[act['kind']]}"
                       + (f" ({said})" if said else "")))  # fmt: skip
    kinds = {a["kind"] for a in inc.get("actions", [])}
    if inc.get("acknowledged_at") and "acknowledge" not in kinds:
        out.append(Row(_at(inc["acknowledged_at"]), f"acknowledged by {inc['acknowledged_by']}"))
    if inc.get("mitigated_at") and "mitigated" not in kinds:
        by = inc.get("mitigated_by")
        how = f"said by {by}" if by else "the runbook's mitigation acted"
        out.append(Row(_at(inc["mitigated_at"]), f"mitigation in place ({how})"))
    return out


# -- the summary's figures -------------------------------------------------------------------
def facts(inc: dict[str, Any]) -> dict[str, Any]:
    """When it started (the first symptom alert fired), ended, and how long people took to
    acknowledge and mitigate it, counted from that start."""
    symptoms = [a for a in inc["alerts"] if not a["context"]] or inc["alerts"]
    first = min(symptoms, key=lambda a: a["starts_at"])
    starts = utc(first["starts_at"])
    ends = None  # as Prometheus says the last symptom ended, else when the receiver closed it
    if inc.get("status") in ("resolved", "stale"):
        ends = utc(inc["ends_at"]) if inc.get("ends_at") else _at(inc["resolved_at"])
    ack = _who_when(inc, "acknowledge", "acknowledged_at", "acknowledged_by")
    mitigated = _who_when(inc, "mitigated", "mitigated_at", "mitigated_by")
    return {
        "first_alert": first["alertname"],
        "starts_at": starts,
        "ends_at": ends,
        "duration": (ends - starts) if ends else None,
        "acknowledged": (ack[0] - starts, ack[1]) if ack else None,
        "mitigated": (mitigated[0] - starts, mitigated[1]) if mitigated else None,
        "escalated_at": _at(inc["escalated_at"]) if inc.get("escalated_at") else None,
    }


def _who_when(inc: dict, kind: str, at_key: str, by_key: str) -> tuple[datetime, str] | None:
    """The first action of `kind`, else the incident's own columns (a run's mitigation)."""
    act = next((a for a in inc.get("actions", []) if a["kind"] == kind), None)
    if act:
        return _at(act["at"]), act["actor"]
    if inc.get(at_key):
        return _at(inc[at_key]), inc.get(by_key) or "the runbook"
    return None


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _span(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"
