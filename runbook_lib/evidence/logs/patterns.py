"""The runbook's symptoms as patterns, lines matched per minute (their samples redacted by
`redaction`), and what the cache keys in the lines say."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from runbook_lib.evidence.logs.lines import (
    ERROR_LEVELS,
    SAMPLE_CHARS,
    LogLine,
    normalize_level,
)
from runbook_lib.evidence.logs.redaction import redact

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
