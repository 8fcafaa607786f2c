"""Memory of past incidents: has this happened before, what fixed it, and did the fix hold.

The receiver gives each run the incidents of its runbook over the last 90 days (from the
index, `incidents.history`); once the diagnosis names a top cause, `summarize` counts the
ones with the same cause on this instance and on the whole fleet, and names the last one's
fix and whether its verification held. A recurrence within a week is called out first in
the record, the page and the message. Pure data in, data out: the kernel, the pages and the
messages share it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runbook_lib.diagnosis.postcheck import HELD

HISTORY_DAYS = 90  # how far back the index is asked
RECENT_DAYS = 7  # a recurrence within this is called out at the top


def summarize(
    past: list[dict[str, Any]], top_cause: str | None, instance: str, now: datetime
) -> dict[str, Any] | None:
    """What the past says about this incident's top cause; None when there is no cause.

    `past` rows: `id`, `instance`, `starts_at` (ISO), `top_cause`, `fix` (text or ''),
    `held` (True/False/None), `link` (may be '')."""
    if not top_cause:
        return None
    same = sorted(
        (p for p in past if p.get("top_cause") == top_cause),
        key=lambda p: p["starts_at"],
        reverse=True,
    )
    here = [p for p in same if p.get("instance") == instance]
    last = here[0] if here else (same[0] if same else None)
    out: dict[str, Any] = {
        "days": HISTORY_DAYS,
        "cause": top_cause,
        "instance": instance,
        "on_instance": len(here),
        "on_fleet": len(same),
        "last": last,
        "recurrence": False,
    }
    if here:
        age = now - _utc(here[0]["starts_at"])
        out["recurrence"] = age.total_seconds() <= RECENT_DAYS * 86400
        out["last_age_days"] = round(age.total_seconds() / 86400, 1)
    return out


def headline(h: dict[str, Any] | None) -> str:
    """What a person reads first: the recurrence (when there is one), how often this cause
    was seen here and on the fleet, and the last one's fix and whether it held."""
    if not h:
        return ""
    cause, here = h["cause"].replace("_", " "), h["instance"] or "this instance"
    if not h["on_fleet"]:
        return f"First incident of {cause} in {h['days']} days, here and on the fleet."
    last = h["last"]
    counts = (
        f"{h['on_instance']} earlier incident{'' if h['on_instance'] == 1 else 's'} of {cause} "
        f"on {here}, {h['on_fleet']} on the fleet in {h['days']} days"
    )
    where = "" if last.get("instance") == h["instance"] else f" on {last.get('instance') or '?'}"
    fixed = (
        f"the last, #{last['id']}{where} at {_utc(last['starts_at']):%Y-%m-%d %H:%M} UTC: "
        f"{last.get('fix') or 'no recorded fix'}, {HELD[last.get('held')]}"
    )
    if h["recurrence"]:
        return (
            f"Recurrence: {cause} again on {here}, {h['last_age_days']:g} days after "
            f"#{last['id']} ({counts}); {fixed}."
        )
    return f"{counts[0].upper()}{counts[1:]}; {fixed}."


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
