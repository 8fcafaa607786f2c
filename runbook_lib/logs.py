"""Read GGEN MCP logs in a time window and map them to the runbook's symptoms.

A source (file, container, journal) never raises for a problem with the source itself: a read
returns a `LogRead` whose `error` names the source and why, so a notebook cell can show it and
carry on with the evidence it has. Times are UTC; naive datetimes are read as UTC.
"""

from __future__ import annotations

import gzip
import importlib
import json
import math
import re
import subprocess
import tempfile
import threading
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import pandas as pd

__all__ = [
    "DEFAULT_LIMIT",
    "ERROR_LEVELS",
    "PATTERNS",
    "REDACTED",
    "ContainerSource",
    "FileSource",
    "JournalSource",
    "LogLine",
    "LogMatches",
    "LogRead",
    "LogSource",
    "Pattern",
    "cache_key_stats",
    "match",
    "normalize_level",
    "parse_line",
    "parse_ts",
    "redact",
    "source_for",
]

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


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _from_epoch(value: float) -> datetime | None:
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
        return _utc(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EPOCH_TEXT.fullmatch(text):
        return _from_epoch(float(text))
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    # Docker's nanoseconds, log4j's comma, lower-case 'z': normalise and try once more.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text, count=1)
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        return _utc(datetime.fromisoformat(text))
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


def _json_object(text: str) -> dict[str, Any] | None:
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
        entry = _json_object(raw)
        if entry is not None:
            return _from_json(entry, raw)
    return _from_text(raw)


def _quick_ts(raw: str) -> datetime | None:
    """The timestamp without parsing the whole line, when that is cheap and unambiguous."""
    found = _JSON_FIRST_TS.match(raw) or _LEADING_TS.match(raw)
    return parse_ts(found.group(1)) if found else None


def _window(
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


def _take(lines: Iterable[LogLine], limit: int, out: list[LogLine]) -> bool:
    """Append up to `limit` lines to `out`; True if there were more (stops reading there)."""
    for line in lines:
        if len(out) >= limit:
            return True
        out.append(line)
    return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# -- sources -------------------------------------------------------------------------------


class LogSource(Protocol):
    @property
    def description(self) -> str: ...

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead: ...


@dataclass(frozen=True)
class FileSource:
    """A log file (optionally .gz), streamed line by line so a huge rotated file is fine.

    `ordered=True` stops at the first line past the window end: only safe when the file's
    timestamps never go backwards (one writer, no concatenated rotations).
    """

    path: Path
    ordered: bool = False

    @property
    def description(self) -> str:
        return f"file:{self.path}"

    def _open(self) -> IO[str]:
        path = Path(self.path).expanduser()
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace", buffering=1 << 20)

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        start, end = _utc(start), _utc(end)
        lines: list[LogLine] = []
        try:
            with self._open() as fh:
                truncated = _take(_window(fh, start, end, self.ordered), limit, lines)
        except (OSError, EOFError, zlib.error) as exc:  # EOFError: a .gz cut short
            return LogRead(self.description, tuple(lines), f"{self.description}: {_why(exc)}")
        return LogRead(self.description, tuple(lines), None, truncated)


def _container_item(item: Any) -> tuple[datetime | None, str, str]:
    """(ts, stream, text) from a containers.LogLine, an object with .ts/.text, or a tuple."""
    text = getattr(item, "text", None)
    if text is not None:
        ts = getattr(item, "timestamp", None) or getattr(item, "ts", None)
        return parse_ts(ts), str(getattr(item, "stream", "") or ""), str(text)
    if isinstance(item, tuple | list) and len(item) >= 2:
        stream = str(item[1]) if len(item) >= 3 else ""
        return parse_ts(item[0]), stream, str(item[-1])
    return None, "", item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)


def _container_line(item: Any) -> LogLine:
    """Docker's receive time wins: it is zone-aware and what since/until were applied to."""
    ts, stream, text = _container_item(item)
    line = parse_line(text)
    fields = {**line.fields, "stream": stream} if stream else line.fields
    return replace(line, ts=ts or line.ts, fields=fields)


@dataclass(frozen=True)
class ContainerSource:
    """`docker logs` of one container, through runbook_lib.containers."""

    name: str

    @property
    def description(self) -> str:
        return f"container:{self.name}"

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        start, end = _utc(start), _utc(end)
        unavailable = f"{self.description}: container logs unavailable"
        try:  # imported late: a missing or changed containers module is an error result
            fetch = importlib.import_module("runbook_lib.containers").logs
        except (ImportError, AttributeError) as exc:
            return LogRead(self.description, (), f"{unavailable}: {exc}")
        try:
            result = fetch(self.name, since=start, until=end, tail=limit + 1)
            items = list(getattr(result, "lines", None) or ())
            error = getattr(result, "error", None)
            lines = [_container_line(item) for item in items]
        except Exception as exc:  # the Docker SDK raises many types; none may escape a read
            return LogRead(self.description, (), f"{unavailable}: {_why(exc)}")
        kept = [x for x in lines if x.ts is None or start <= x.ts < end]
        truncated = len(items) > limit or len(kept) > limit
        kept = kept[-limit:] if limit > 0 else []  # docker's tail keeps the newest lines
        message = f"{self.description}: {error}" if error else None
        return LogRead(self.description, tuple(kept), message, truncated)


def _journal_line(entry: Mapping[str, Any]) -> LogLine:
    """A journald JSON entry; the MESSAGE may itself be a JSON log line from the service."""
    message = entry.get("MESSAGE") or ""
    if isinstance(message, list):  # journald sends non-UTF-8 messages as a byte array
        message = bytes(message).decode("utf-8", "replace")
    line = parse_line(str(message))
    realtime = entry.get("__REALTIME_TIMESTAMP")
    ts = _from_epoch(int(realtime) / 1e6) if str(realtime or "").isdigit() else None
    level = line.level or normalize_level(entry.get("PRIORITY"))
    extra = {k: entry[k] for k in ("_SYSTEMD_UNIT", "_PID") if k in entry}
    return replace(line, ts=ts or line.ts, level=level, fields={**line.fields, **extra})


def _journal_entries(stream: Iterable[str]) -> Iterator[LogLine]:
    for text in stream:
        entry = _json_object(text)
        if entry is not None:
            yield _journal_line(entry)


def _in_window(lines: Iterable[LogLine], start: datetime, end: datetime) -> Iterator[LogLine]:
    return (x for x in lines if x.ts is None or start <= x.ts < end)


@dataclass(frozen=True)
class JournalSource:
    """`journalctl -u UNIT` for a window, streamed, killed after `timeout` seconds."""

    unit: str
    timeout: float = 30.0
    journalctl: str = "journalctl"

    @property
    def description(self) -> str:
        return f"journal:{self.unit}"

    def command(self, start: datetime, end: datetime) -> list[str]:
        """@epoch bounds: journalctl would read plain dates in the machine's local zone."""
        since, until = math.floor(_utc(start).timestamp()), math.ceil(_utc(end).timestamp())
        return [
            self.journalctl,
            "-u",
            self.unit,
            f"--since=@{since}",
            f"--until=@{until}",
            "-o",
            "json",
            "--no-pager",
        ]

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        start, end = _utc(start), _utc(end)
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
            try:
                proc = subprocess.Popen(
                    self.command(start, end),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    errors="replace",
                )
            except FileNotFoundError:
                return LogRead(self.description, (), f"{self.description}: journalctl not found")
            except OSError as exc:
                return LogRead(self.description, (), f"{self.description}: journalctl: {_why(exc)}")
            return self._collect(proc, err, start, end, limit)

    def _collect(
        self, proc: subprocess.Popen, err: IO[str], start: datetime, end: datetime, limit: int
    ) -> LogRead:
        timed_out = threading.Event()
        timer = threading.Timer(self.timeout, lambda: (timed_out.set(), proc.kill()))
        timer.start()
        lines: list[LogLine] = []
        try:
            truncated = _take(_in_window(_journal_entries(proc.stdout), start, end), limit, lines)
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            rc = proc.wait()
        if timed_out.is_set():
            why = f"{self.description}: journalctl timed out after {self.timeout:g}s"
            return LogRead(self.description, tuple(lines), why, True)
        err.seek(0)
        said = (err.read().strip().splitlines() or [""])[0]
        if rc != 0 and not truncated:
            why = f"{self.description}: journalctl exited {rc}" + (f": {said}" if said else "")
            return LogRead(self.description, tuple(lines), why, False)
        if not lines and said:  # e.g. "No journal files were found.": say why it is empty
            return LogRead(self.description, (), f"{self.description}: {said}", False)
        return LogRead(self.description, tuple(lines), None, truncated)


def source_for(spec: str) -> FileSource | ContainerSource | JournalSource:
    """'file:/path', 'container:NAME' (or 'docker:NAME'), 'journal:UNIT', or a bare path."""
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.strip().lower()
    if sep and scheme in ("container", "docker"):
        return ContainerSource(rest)
    if sep and scheme == "journal":
        return JournalSource(rest)
    if sep and scheme == "file":
        return FileSource(Path(rest[2:] if rest.startswith("//") else rest))
    return FileSource(Path(spec))


# -- patterns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A phrase the runbook (or real services) log for one of the runbook's symptoms."""

    id: str
    regex: re.Pattern[str]
    description: str
    symptom: str  # runbook section > cause
    # Lower-case words every match contains: a cheap `in` test skips the regex on most lines
    # (matching 200k lines with 17 case-insensitive regexes alone takes ~20 s). Empty: no skip.
    keywords: tuple[str, ...] = ()

    def search(self, text: str, lowered: str | None = None) -> bool:
        if self.keywords:
            lowered = text.lower() if lowered is None else lowered
            if not any(k in lowered for k in self.keywords):
                return False
        return self.regex.search(text) is not None


def _pattern(
    id: str, keywords: tuple[str, ...], regex: str, description: str, symptom: str
) -> Pattern:
    # MULTILINE: a line's search text is the message, then one detail field per line.
    flags = re.IGNORECASE | re.MULTILINE
    return Pattern(id, re.compile(regex, flags), description, symptom, keywords)


_TIMEOUT = r"\btime(?:d[ -]?)?outs?\b"
_EVICT = r"\bcache[ _.-]?evict\w*\b(?s:.*?)\breason[=:]\s*\"?"

PATTERNS: dict[str, Pattern] = {
    p.id: p
    for p in (
        _pattern(
            "validation_error",
            ("validation", "invalid", "zoderror"),
            r"\bvalidation (?:error|failed|failure)s?\b|\bValidationError\b|\bZodError\b"
            r"|\bfailed validation\b|\bschema validation\b"
            r"|\binvalid (?:input|arguments?|param(?:eter)?s?|request|payload)\b",
            "a request was rejected because its input was invalid",
            "High Error Rate > Invalid Input Data (validation errors)",
        ),
        _pattern(
            "parse_error",
            ("pars", "syntaxerror", "malformed", "unexpected"),
            r"\bpars(?:e|ing) (?:error|failure|failed)\b|\b(?:failed|unable) to parse\b"
            r"|\bParseError\b|\bSyntaxError\b|\bmalformed (?:json|input|request|formula)\b"
            r"|\bunexpected (?:token|end of (?:input|formula|json|file|data))\b",
            "input (a formula, JSON, a file) could not be parsed",
            "High Error Rate > Invalid Input Data (parse errors)",
        ),
        _pattern(
            "connection_refused",
            ("refused",),
            r"\bECONNREFUSED\b|\bconnection (?:was )?refused\b",
            "a dependency (database, Redis, an API) refused the connection: it is down",
            "High Error Rate > Database Connection Issues; Service Down > Dependency Unavailable",
        ),
        _pattern(
            "db_timeout",
            ("time",),
            rf"\b(?:database|db|postgres(?:ql)?|pg|mysql|redis|sql|pool)\b[^\n]{{0,80}}?{_TIMEOUT}"
            r"|\bconnection (?:timeout|timed[ -]?out)\b|\b(?:statement|query|lock) timeout\b"
            r"|\btimeout (?:exceeded when trying to connect|acquiring a connection)\b",
            "a database or connection-pool call timed out",
            "High Error Rate > Database Connection Issues",
        ),
        _pattern(
            "http_5xx",
            ("5", "server error", "gateway", "unavailable"),
            r"\bHTTP(?:/\d(?:\.\d)?)?[ :]+(?:status[ :]+)?5\d\d\b"
            r"|\bstatus(?:[ _-]?code)?[\s:=]+5\d\d\b|\b(?:returned|responded with) 5\d\d\b"
            r"|\b(?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)\b",
            "an upstream HTTP call answered 5xx (500, 502, 503, 504)",
            "High Error Rate > Third-Party API Failures",
        ),
        _pattern(
            "timeout",
            ("time", "deadline"),
            rf"{_TIMEOUT}|\bE(?:SOCKET)?TIMEDOUT\b|\bTimeoutError\b|\bdeadline exceeded\b",
            "anything timed out (requests, external APIs, databases)",
            "High Error Rate > Third-Party API Failures (timeouts); High Latency",
        ),
        _pattern(
            "eaddrinuse",
            ("eaddrinuse", "already in use"),
            r"\bEADDRINUSE\b|\baddress already in use\b",
            "the service could not listen: another process holds its port",
            "Service Down > Port Already in Use",
        ),
        _pattern(
            "libreoffice_start_failed",
            ("office",),
            r"\b(?:failed to|unable to|could not|cannot) (?:start|launch|spawn)\s+"
            r"(?:LibreOffice|soffice)\b"
            r"|\b(?:LibreOffice|soffice)\b[^\n]{0,40}?\b(?:failed to start|did not start)\b",
            "a LibreOffice (soffice) worker could not be started",
            "High Error Rate > LibreOffice Process Issues",
        ),
        _pattern(
            "too_many_open_files",
            ("emfile", "enfile", "open files"),
            r"\bE[MN]FILE\b|\btoo many open files\b",
            "the process ran out of file descriptors",
            "Resource Leaks > File Descriptor Leak",
        ),
        _pattern(
            "fork_failed",
            ("eagain", "fork"),
            r"\bEAGAIN\b|\b(?:could not|cannot|unable to|failed to) fork\b"
            r"|\bfork(?:\(\))? failed\b",
            "a child process could not be created (process limit reached: leaked forks)",
            "Resource Leaks > Fork Process Leak",
        ),
        _pattern(
            "slow_query",
            ("slow", "duration"),
            r"\bslow (?:query|queries|sql|statement)\b"
            r"|\bduration:\s*\d+(?:\.\d+)?\s*ms\s+(?:statement|execute|parse|bind)\b",
            "a database query took long (app log or PostgreSQL's duration log)",
            "High Latency > Slow Database Queries",
        ),
        # "Killed" only alone on its line (the shell's report), as bash's "line 3: 1234 Killed"
        # or the kernel's "Killed process N": "skilled" or "killed 0 sessions" are not OOM.
        _pattern(
            "oom_killed",
            ("kill", "memory", "oom"),
            r"^\s*Killed\s*$|:\s*\d+\s+Killed\b|\bKilled process \d+|\bout of memory\b"
            r"|\boom[-_ ]?kill(?:er|ed|ing)?\b|(?-i:\bOOM\b)",
            "the process was killed for memory (OOM killer, heap out of memory, OOMKilled)",
            "Service Down > Out of Memory (OOM Killed)",
        ),
        _pattern(
            "fatal",
            ("fatal", "unhandled", "uncaught", "process", "panic", "segmentation"),
            r"(?<!non-)\bFATAL\b|\bunhandled (?:exception|(?:promise )?rejection|error)\b"
            r"|\bUnhandledPromiseRejection|\buncaught (?:exception|\w*error)\b"
            r"|\bprocess (?:is )?(?:exiting|will exit|crashed)\b|^panic:|\bsegmentation fault\b",
            "the process hit an unrecoverable error and is exiting",
            "Service Down > Process Crashed",
        ),
        _pattern(
            "disk_full",
            ("enospc", "space left", "disk"),
            r"\bENOSPC\b|\bno space left on device\b|\bdisk (?:is )?full\b",
            "a write failed because the disk is full",
            "Disk Space Issues",
        ),
        _pattern(
            "cache_evict_capacity",
            ("evict",),
            rf"{_EVICT}(?:capacity|size|max[_-]?size|full|lru)\b",
            "a cached workbook was dropped to make room (cache at its size limit)",
            "Cache Issues > Cache Too Small",
        ),
        _pattern(
            "cache_evict_ttl",
            ("evict",),
            rf"{_EVICT}(?:ttl|expired?|expiry|age|stale)\b",
            "a cached workbook was dropped because its time to live ran out",
            "Cache Issues > TTL Too Short",
        ),
        _pattern(
            "cache_miss",
            ("miss",),
            r"\bcache[ _.-]?miss(?:es|ed)?\b",
            "a workbook was not in the cache and had to be loaded",
            "Cache Issues > Cache Keys Not Optimal / High Request Variance",
        ),
        _pattern(
            "large_payload",
            ("payload", "body", "entity"),
            r"\blarge request (?:payload|body)\b|\bpayload too large\b"
            r"|\brequest entity too large\b|\brequest body of \d+\s*[MG]B\b",
            "a request carried an unusually large workbook or body",
            "Memory Issues > Large Request Payloads",
        ),
    )
}

# Structured loggers put the cause in fields (pino's err, a reason, an errno code): match those
# too, but not every field, or `timeout=30` in a config line would read as a timeout.
DETAIL_FIELDS = ("error", "err", "exception", "reason", "code", "detail")


def _search_text(line: LogLine) -> str:
    if not line.fields:
        return line.msg
    parts = [line.msg]
    for key in DETAIL_FIELDS:
        value = line.fields.get(key)
        if isinstance(value, Mapping):
            parts += [f"{key}.{k}={v}" for k, v in value.items() if k != "stack"]
        elif value is not None:
            parts.append(f"{key}={value}")
    return "\n".join(parts)


# -- redaction -----------------------------------------------------------------------------

_SECRET_KEY = r"[\w.-]*?(?:token|api[_-]?key|apikey|password|passwd|pwd|secret)"
_KEY_VALUE = re.compile(
    rf"(?<![\w-])(?P<key>\\?[\"']?{_SECRET_KEY}\\?[\"']?)(?P<sep>\s*[:=]\s*)(?P<val>"
    r"\\\"(?:[^\"\\]|\\[^\"])*\\\""  # \"...\" inside a JSON string
    r"|\"(?:[^\"\\]|\\.)*\""  # "..."
    r"|'[^']*'"
    r"|(?!\[REDACTED\])[^\s,;&\"'}\]\)\\]+)",
    re.I,
)
# Group 1 is kept (a user, a scheme, a token's kind); what follows it is the secret.
_SECRETS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?!\[REDACTED\])[^\s@/]+(?=@)", re.I),
    re.compile(
        r"(\bauthorization\\?[\"']?\s*[:=]\s*\\?[\"']?(?:(?:Basic|Digest|Token)\s+)?)"
        r"(?!Bearer\b)(?!\[REDACTED\])[^\s\"',;\\]+",
        re.I,
    ),
    re.compile(r"\b(Bearer\s+)(?!\[REDACTED\])[A-Za-z0-9\-._~+/]+=*", re.I),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b((?:sk|rk)_(?:live|test)_)[0-9A-Za-z]+"),
    re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{20,}"),
    re.compile(r"()\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]*"),  # a JWT outside any key
)


def _redact_value(m: re.Match[str]) -> str:
    val = m.group("val")
    quote = next((q for q in ('\\"', '"', "'") if val.startswith(q)), "")
    return f"{m.group('key')}{m.group('sep')}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """Hide secret values, keeping the key or prefix (`password=[REDACTED]`,
    `sk_live_[REDACTED]`) so a reader knows what was there without seeing it."""
    text = _KEY_VALUE.sub(_redact_value, text)
    for regex in _SECRETS:
        text = regex.sub(lambda m: m.group(1) + REDACTED, text)
    return text


# -- matching ------------------------------------------------------------------------------


def _minute(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def _per_minute(
    hits: Counter[tuple[datetime, str]], minutes: set[datetime], ids: list[str]
) -> pd.DataFrame:
    index = pd.DatetimeIndex(sorted(minutes), tz=UTC, name="minute")
    frame = pd.DataFrame(0, index=index, columns=ids, dtype="int64")
    for (minute, pid), n in hits.items():
        frame.at[minute, pid] = n
    return frame


@dataclass(frozen=True, eq=False)
class LogMatches:
    """How often each pattern appeared, when, and what it looked like (redacted)."""

    patterns: dict[str, Pattern]
    counts: dict[str, int]
    per_minute: pd.DataFrame  # index: minute (UTC); columns: pattern ids; rows: minutes with lines
    samples: dict[str, list[str]]
    total: int
    untimed: int  # lines without a timestamp (counted, but in no minute)
    levels: dict[str, int]  # lines per level
    by_level: dict[str, dict[str, int]]  # pattern id -> level -> lines

    def share(self, pattern_id: str, among: set[str] | None = None) -> float:
        """Fraction of error-level lines (or lines with a level in `among`) matching the
        pattern: "validation errors are 81% of errors". NaN when there are no such lines."""
        if pattern_id not in self.by_level:
            raise KeyError(f"unknown pattern {pattern_id!r}; known: {sorted(self.by_level)}")
        levels = ERROR_LEVELS if among is None else {normalize_level(x) for x in among}
        errors = sum(self.levels.get(lvl, 0) for lvl in levels)
        hits = sum(self.by_level[pattern_id].get(lvl, 0) for lvl in levels)
        return hits / errors if errors else math.nan

    def table(self) -> pd.DataFrame:
        """One row per pattern, most frequent first: what a notebook shows as evidence."""
        rows = [
            {
                "pattern": pid,
                "count": self.counts[pid],
                "error_share": self.share(pid),
                "symptom": p.symptom,
                "description": p.description,
                "sample": (self.samples.get(pid) or [""])[0],
            }
            for pid, p in self.patterns.items()
        ]
        frame = pd.DataFrame(rows).set_index("pattern")
        return frame.sort_values("count", ascending=False, kind="stable")


def match(
    lines: Iterable[LogLine], patterns: Mapping[str, Pattern] = PATTERNS, samples: int = 3
) -> LogMatches:
    """Count every pattern over `lines` (a line may match several), per minute and per level."""
    ids = list(patterns)
    counts: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    by_level: dict[str, Counter[str]] = {pid: Counter() for pid in ids}
    hits: Counter[tuple[datetime, str]] = Counter()
    minutes: set[datetime] = set()
    kept: dict[str, list[str]] = {pid: [] for pid in ids}
    total = untimed = 0
    for line in lines:
        total += 1
        levels[line.level] += 1
        minute = _minute(line.ts) if line.ts is not None else None
        if minute is None:
            untimed += 1
        else:
            minutes.add(minute)
        text = _search_text(line)
        lowered = text.lower()
        for pid in ids:
            if not patterns[pid].search(text, lowered):
                continue
            counts[pid] += 1
            by_level[pid][line.level] += 1
            if minute is not None:
                hits[minute, pid] += 1
            if len(kept[pid]) < samples:
                kept[pid].append(redact(line.raw or line.msg)[:SAMPLE_CHARS])
    return LogMatches(
        patterns=dict(patterns),
        counts={pid: counts[pid] for pid in ids},
        per_minute=_per_minute(hits, minutes, ids),
        samples=kept,
        total=total,
        untimed=untimed,
        levels=dict(levels),
        by_level={pid: dict(c) for pid, c in by_level.items()},
    )


# -- cache keys ----------------------------------------------------------------------------

_WORKBOOK_IN_TEXT = re.compile(r"\bworkbook(?:_id)?[=:]\s*\"?([^\s\",;]+)", re.I)
_KEY_IN_TEXT = re.compile(r"\b(?:cache_)?key[=:]\s*\"?([^\s\",;]+)", re.I)


def _id(line: LogLine, names: tuple[str, ...], regex: re.Pattern[str]) -> str | None:
    for name in names:
        if line.fields.get(name) not in (None, ""):
            return str(line.fields[name])
    found = regex.search(line.msg)
    return found.group(1) if found else None


def cache_key_stats(lines: Iterable[LogLine]) -> dict[str, float]:
    """Misses by workbook and key: one workbook under many keys means poor cache keys; many
    workbooks with one key each means high request variance (each request is new).

    `keys` counts distinct key values; `keys_per_workbook` is the mean number of distinct keys
    seen per workbook (NaN without identified misses).
    """
    miss = PATTERNS["cache_miss"]
    per_workbook: dict[str, set[str]] = defaultdict(set)
    keys: set[str] = set()
    misses = identified = 0
    for line in lines:
        if not miss.search(line.msg):
            continue
        misses += 1
        workbook = _id(line, ("workbook", "workbook_id"), _WORKBOOK_IN_TEXT)
        key = _id(line, ("key", "cache_key"), _KEY_IN_TEXT)
        if workbook is None or key is None:
            continue
        identified += 1
        per_workbook[workbook].add(key)
        keys.add(key)
    sizes = [len(k) for k in per_workbook.values()]
    return {
        "misses": misses,
        "identified": identified,  # misses naming both a workbook and a key
        "workbooks": len(per_workbook),
        "keys": len(keys),
        "keys_per_workbook": sum(sizes) / len(sizes) if sizes else math.nan,
        "max_keys_per_workbook": max(sizes, default=0),
    }
