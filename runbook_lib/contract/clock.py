"""Times as the runbooks use them: aware UTC datetimes from ISO text, a datetime, or now.
Kept apart from `prom` so the processes that only name and file records (the receiver, the
workers) do not import pandas for it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: str | datetime | None) -> datetime:
    """An aware UTC datetime from ISO text (Z allowed), a datetime, or None (now)."""
    if value is None or value == "":
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
