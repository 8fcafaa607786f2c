"""Silencing an incident's alerts in Alertmanager, through its API v2.

A silence matches the incident's alert names on its instance, for a duration an operator
chose from a bounded range, created by the operator and commented with the incident's page,
so whoever looks at it in Alertmanager knows who silenced what and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

SHORTEST, LONGEST = timedelta(minutes=15), timedelta(days=7)
CHOICES = ("15m", "1h", "4h", "12h", "1d", "3d", "7d")  # what the page offers
_DURATION = re.compile(r"(\d{1,4})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class SilenceError(Exception):
    """Alertmanager did not take the silence; says what it answered."""


def duration(text: str) -> timedelta:
    """`15m`, `2h`, `1d`...: minutes, hours or days, from 15m to 7d; ValueError naming the
    allowed range otherwise."""
    m = _DURATION.fullmatch(text.strip())
    span = timedelta(**{_UNITS[m[2]]: int(m[1])}) if m else None
    if span is None or not SHORTEST <= span <= LONGEST:
        raise ValueError(f"silence duration {text!r} is not allowed: give minutes, hours or "
                         "days (e.g. 15m, 4h, 1d) from 15m to 7d")  # fmt: skip
    return span


@dataclass(frozen=True)
class Silence:
    id: str
    starts_at: datetime
    ends_at: datetime


def matchers(alertnames: list[str], instance: str) -> list[dict]:
    """The incident's alert names (one exact name, or an anchored alternation) on its
    instance."""
    names = sorted(set(alertnames))
    by_name = (
        {"name": "alertname", "value": names[0], "isRegex": False, "isEqual": True}
        if len(names) == 1
        else {"name": "alertname", "value": "|".join(re.escape(n) for n in names),
              "isRegex": True, "isEqual": True}
    )  # fmt: skip
    return [by_name, {"name": "instance", "value": instance, "isRegex": False, "isEqual": True}]


def create(
    alertmanager_url: str, *, alertnames: list[str], instance: str, span: timedelta,
    created_by: str, comment: str, timeout: float = 10.0,
) -> Silence:  # fmt: skip
    """POST /api/v2/silences; `SilenceError` with Alertmanager's answer when it refuses or
    cannot be reached."""
    starts = datetime.now(UTC)
    body = {
        "matchers": matchers(alertnames, instance),
        "startsAt": starts.isoformat(),
        "endsAt": (starts + span).isoformat(),
        "createdBy": created_by,
        "comment": comment,
    }
    url = f"{alertmanager_url.rstrip('/')}/api/v2/silences"
    try:
        resp = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SilenceError(f"could not reach Alertmanager at {url}: {exc}") from exc
    if resp.status_code != 200:
        raise SilenceError(f"Alertmanager at {url} refused the silence: {resp.status_code} "
                           f"{resp.text.strip()[:300]}")  # fmt: skip
    try:
        return Silence(str(resp.json()["silenceID"]), starts, starts + span)
    except (ValueError, KeyError, TypeError) as exc:
        raise SilenceError(f"Alertmanager at {url} answered without a silence id: "
                           f"{resp.text.strip()[:300]}") from exc  # fmt: skip


def expire(alertmanager_url: str, silence_id: str, timeout: float = 10.0) -> None:
    """Undo a silence we made but could not record (best effort: it ends on its own)."""
    try:
        httpx.delete(f"{alertmanager_url.rstrip('/')}/api/v2/silence/{silence_id}", timeout=timeout)
    except httpx.HTTPError:
        pass
