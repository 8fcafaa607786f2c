"""Read GGEN MCP logs in a time window and map them to the runbook's symptoms.

A source (file, container, journal) never raises for a problem with the source itself: a read
returns a `LogRead` whose `error` names the source and why, so a notebook cell can show it and
carry on with the evidence it has. Times are UTC; naive datetimes are read as UTC."""

from runbook_lib.evidence.logs.lines import (
    DEFAULT_LIMIT,
    ERROR_LEVELS,
    REDACTED,
    LogLine,
    LogRead,
    normalize_level,
    parse_line,
    parse_ts,
)
from runbook_lib.evidence.logs.patterns import (
    PATTERNS,
    LogMatches,
    Pattern,
    cache_key_stats,
    match,
)
from runbook_lib.evidence.logs.redaction import redact
from runbook_lib.evidence.logs.sources import (
    ContainerSource,
    FileSource,
    FilesSource,
    JournalSource,
    LogSource,
    Sources,
    source_for,
)

__all__ = [
    "ContainerSource",
    "DEFAULT_LIMIT",
    "ERROR_LEVELS",
    "FileSource",
    "FilesSource",
    "JournalSource",
    "LogLine",
    "LogMatches",
    "LogRead",
    "LogSource",
    "PATTERNS",
    "Pattern",
    "REDACTED",
    "Sources",
    "cache_key_stats",
    "match",
    "normalize_level",
    "parse_line",
    "parse_ts",
    "redact",
    "source_for",
]
