"""A runbook opened by hand (no alert in its parameters) tells the truth: it asks Alertmanager
whether one of its alerts is firing for the instance and takes that alert's start, severity
and labels; when none is, it says it explores a healthy service, and no alert is drawn.

Alertmanager knows the alerts firing now, not those of the past: for an evaluation time
more than a few minutes ago it is not asked, and the header says to give the alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from runbook_lib.contract.alerts import route

SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
RECENT = timedelta(minutes=5)  # an evaluation time this close to now is "now" for Alertmanager
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Lookup:
    """What Alertmanager said: the alert to examine (as notebook parameters), or why none."""

    params: dict[str, Any] | None
    url: str
    error: str = ""  # why Alertmanager could not be asked, or did not answer


def firing(alertmanager_url: str, runbook: str, labels: dict[str, str], at: datetime,
           now: datetime) -> Lookup:  # fmt: skip
    """The most severe (then the oldest) alert routed to `runbook` that Alertmanager holds
    active for the instance of `labels`, as the parameters an alert would give."""
    base = (alertmanager_url or "").rstrip("/")
    if not base:
        return Lookup(None, "", "no alertmanager_url is set")
    if abs(now - at) > RECENT:
        when = f"{at:%Y-%m-%d %H:%M} UTC"
        return Lookup(None, base, f"Alertmanager knows the alerts firing now, not at {when}")
    query: list[tuple[str, str]] = [("active", "true")]
    if labels.get("instance"):
        query.append(("filter", f'instance="{_escape(labels["instance"])}"'))
    try:
        answer = httpx.get(f"{base}/api/v2/alerts", params=query, timeout=TIMEOUT_S)
        answer.raise_for_status()
        alerts = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Lookup(None, base, f"Alertmanager at {base} did not answer "
                      f"({str(exc) or type(exc).__name__})")  # fmt: skip
    mine = [a for a in alerts if route(a.get("labels", {}).get("alertname", "")) == runbook]
    if not mine:
        return Lookup(None, base)
    lead = min(mine, key=lambda a: (SEVERITY_RANK.get(a["labels"].get("severity", ""), 9),
                                    a.get("startsAt", "")))  # fmt: skip
    found = dict(lead["labels"])
    return Lookup(
        {
            "alert_name": found["alertname"],
            "severity": found.get("severity", ""),
            "labels": found,
            "annotations": dict(lead.get("annotations") or {}),
            "starts_at": lead.get("startsAt", ""),
            "ends_at": "",
            "fingerprint": lead.get("fingerprint", ""),
        },
        base,
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def exploring_md(runbook: str, instance: str, at: datetime, lookup: Lookup) -> str:
    """The header of a run that examines no alert."""
    where = f"`{instance}`" if instance else "the service"
    if lookup.error:
        said = (f"Whether an alert of `{runbook}` is firing for {where} is not known: "
                f"{lookup.error}.")  # fmt: skip
        title = "Exploration"
    else:
        said = (f"No alert of `{runbook}` is firing for {where} (asked Alertmanager at "
                f"{lookup.url}).")  # fmt: skip
        title = "Exploration of a healthy service"
    return (
        f"## {title} · {runbook} · {instance or 'any instance'}\n"
        f"At {at:%Y-%m-%d %H:%M:%S} UTC. {said} This is a look at the service as it is, not an "
        "incident: the charts mark no alert and there is no incident message. To examine an "
        "alert, set `alert_name` (and `starts_at`) in the parameters cell, run it, then the "
        "cells below."
    )
