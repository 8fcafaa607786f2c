"""Log lines: parsing the formats GGEN MCP and its neighbours write (JSON, logfmt, plain
text with a leading time), levels, and the time window a read keeps."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_LIMIT = 200_000
ERROR_LEVELS = frozenset({"error", "fatal", "critical"})
REDACTED = "[REDACTED]"
SAMPLE_CHARS = 1000  # a sample is evidence, not the whole stack trace


# -- lines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    """One log line: what the runbook greps (`msg`) plus whatever structure it carried."""

    ts: datetime | None  # aware UTC, or None when the line has no timestamp
    level: str  # lowercased and normalised ("warn" -> "warning"); "" if unknown
    msg: str
    fields: dict[str, Any] = field(default_factory=dict)
    raw: str = ""


@dataclass(frozen=True)
class LogRead:
    """The lines one source had in a window; `error` says why some or all are missing."""

    source: str
    lines: tuple[LogLine, ...] = ()
    error: str | None = None
    truncated: bool = False  # more lines matched the window than `limit`

    @property
    def ok(self) -> bool:
        return self.error is None


TS_KEYS = ("ts", "time", "timestamp", "@timestamp")
LEVEL_KEYS = ("level", "severity", "lvl")
MSG_KEYS = ("msg", "message")

_TS_TEXT = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
_LEADING_TS = re.compile(rf"^\s*\[?({_TS_TEXT})\]?", re.I)
_LOGFMT_TS = re.compile(rf"(?:^|\s)(?:ts|time|timestamp)=\"?({_TS_TEXT})", re.I)
# Only when the timestamp is the object's first key: lets a window skip JSON it won't keep.
_JSON_FIRST_TS = re.compile(r'^\s*\{\s*"(?:ts|time|timestamp|@timestamp)"\s*:\s*"([^"]{10,40})"')
_FRACTION = re.compile(r"[.,](\d+)")
_EPOCH_TEXT = re.compile(r"\d{9,19}(?:\.\d+)?")

_LEVEL_ALIASES = {
    "warn": "warning",
    "err": "error",
    "eror": "error",
    "crit": "critical",
    "emerg": "critical",
    "emergency": "critical",
    "alert": "critical",
    "panic": "fatal",
    "dpanic": "fatal",
    "notice": "info",
    "information": "info",
    "informational": "info",
    "verbose": "debug",
}
_PINO_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "fatal"}
_SYSLOG_LEVELS = ("critical", "critical", "critical", "error", "warning", "info", "info", "debug")
_LEVEL_WORDS = "FATAL|CRITICAL|CRIT|ERROR|ERR|WARNING|WARN|NOTICE|INFO|DEBUG|TRACE"
_LEVEL_PREFIX = re.compile(rf"^\s*[\[(<]?({_LEVEL_WORDS})[\])>]?(?=:|\s|$)", re.I)
_LEVEL_KV = re.compile(rf"\b(?:level|lvl|severity)=\"?({_LEVEL_WORDS})\b", re.I)
# Upper case only: "validation error" in prose is a message, not a level.
_LEVEL_UPPER = re.compile(r"\b(FATAL|CRITICAL|ERROR|WARNING|WARN)\b")


def as_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def from_epoch(value: float) -> datetime | None:
    """Seconds, milliseconds (pino), microseconds (journald) or nanoseconds since the epoch."""
    for threshold, divisor in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
        if abs(value) >= threshold:
            value /= divisor
            break
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_ts(value: Any) -> datetime | None:
    """ISO 8601, `YYYY-MM-DD HH:MM:SS[,fff]`, epoch numbers or a datetime -> aware UTC or None."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EPOCH_TEXT.fullmatch(text):
        return from_epoch(float(text))
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    # Docker's nanoseconds, log4j's comma, lower-case 'z': normalise and try once more.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text, count=1)
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def normalize_level(value: Any) -> str:
    """One vocabulary for levels: pino numbers, syslog priorities and aliases like WARN/ERR."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        n = int(value)
        if n in _PINO_LEVELS:
            return _PINO_LEVELS[n]
        return _SYSLOG_LEVELS[n] if 0 <= n < len(_SYSLOG_LEVELS) else ""
    text = str(value).strip().lower()
    if text.isdigit():
        return normalize_level(int(text))
    return _LEVEL_ALIASES.get(text, text)


def json_object(text: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


def _first_key(entry: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in entry), None)


def _from_json(entry: dict[str, Any], raw: str) -> LogLine:
    ts_key, level_key, msg_key = (_first_key(entry, k) for k in (TS_KEYS, LEVEL_KEYS, MSG_KEYS))
    msg = entry.get(msg_key) if msg_key else ""
    if not isinstance(msg, str):
        msg = "" if msg is None else json.dumps(msg, ensure_ascii=False)
    used = {ts_key, level_key, msg_key}
    return LogLine(
        ts=parse_ts(entry[ts_key]) if ts_key else None,
        level=normalize_level(entry[level_key]) if level_key else "",
        msg=msg,
        fields={k: v for k, v in entry.items() if k not in used},
        raw=raw,
    )


def _text_level(text: str) -> str:
    found = _LEVEL_PREFIX.match(text) or _LEVEL_KV.search(text) or _LEVEL_UPPER.search(text)
    return normalize_level(found.group(1)) if found else ""


def _from_text(raw: str) -> LogLine:
    lead = _LEADING_TS.match(raw)
    rest = raw[lead.end() :] if lead else raw
    stamp = lead or _JSON_FIRST_TS.match(raw) or _LOGFMT_TS.search(raw)  # torn JSON, logfmt
    ts = parse_ts(stamp.group(1)) if stamp else None
    return LogLine(ts=ts, level=_text_level(rest), msg=rest.strip(), fields={}, raw=raw)


def parse_line(raw: str) -> LogLine:
    """A JSON object line (simulator, pino, ECS) or a plain text line with a leading timestamp."""
    raw = raw.rstrip("\r\n")
    if raw.lstrip().startswith("{"):
        entry = json_object(raw)
        if entry is not None:
            return _from_json(entry, raw)
    return _from_text(raw)


def _quick_ts(raw: str) -> datetime | None:
    """The timestamp without parsing the whole line, when that is cheap and unambiguous."""
    found = _JSON_FIRST_TS.match(raw) or _LEADING_TS.match(raw)
    return parse_ts(found.group(1)) if found else None


def window_lines(
    raws: Iterable[str], start: datetime, end: datetime, ordered: bool
) -> Iterator[LogLine]:
    """Parsed lines in [start, end). An untimed line (a stack trace's tail) follows the last
    timestamped line before it; untimed lines before any timestamp are kept."""
    keep = True
    for raw in raws:
        if not raw.strip():
            continue
        line = None
        ts = _quick_ts(raw)
        if ts is None:
            line = parse_line(raw)
            ts = line.ts
        if ts is not None:
            if ordered and ts >= end:
                return
            keep = start <= ts < end
        if keep:
            yield line or parse_line(raw)


def take(lines: Iterable[LogLine], limit: int, out: list[LogLine]) -> bool:
    """Append up to `limit` lines to `out`; True if there were more (stops reading there)."""
    for line in lines:
        if len(out) >= limit:
            return True
        out.append(line)
    return False


def why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
