"""Log messages per error kind, worded as the runbook's symptoms (what it greps for)."""

from __future__ import annotations

import random

# (mode family or error_type) -> message templates; {tool}, {ms}, {n} are filled in.
ERROR_MESSAGES: dict[str, tuple[str, ...]] = {
    "invalid_input": (
        "validation error: field 'range' must be A1 notation, got 'ZZ0' ({tool})",
        "validation error: sheet name must not be empty ({tool})",
    ),
    "parse_error": ("parse error: unexpected end of formula '=SUM(A1:' ({tool})",),
    "database:io_error": (
        "database connection refused: connect ECONNREFUSED 127.0.0.1:5432 ({tool})",
    ),
    "database:timeout": ("database connection timeout after {ms}ms ({tool})",),
    "third_party:unknown": (
        "external API returned HTTP 503 Service Unavailable for "
        "https://external-api.example.com/render?api_key=sk_live_4f9a8b7c6d5e ({tool})",
        "external API returned HTTP 500 Internal Server Error ({tool})",
    ),
    "third_party:timeout": ("external API request timeout after {ms}ms ({tool})",),
    "recalc_error": ("Failed to start LibreOffice: soffice exited with code 81 ({tool})",),
    "fork_error": ("Failed to start LibreOffice: could not fork worker, EAGAIN ({tool})",),
    "timeout": ("request timeout after {ms}ms ({tool})",),
    "io_error": ("I/O error reading workbook: EIO ({tool})",),
    "emfile": ("EMFILE: Too many open files, open '/tmp/ggen-mcp-{n}.xlsx' ({tool})",),
    "not_found": ("workbook not found: wb-{n} ({tool})",),
    "unknown": ("unexpected error ({tool})",),
}


def error_message(rng: random.Random, family: str, error_type: str, tool: str, ms: int) -> str:
    """Pick the message for `error_type` as seen in mode `family` (e.g. 'database')."""
    key = f"{family}:{error_type}"
    templates = (
        ERROR_MESSAGES.get(key) or ERROR_MESSAGES.get(error_type) or ERROR_MESSAGES["unknown"]
    )
    return rng.choice(templates).format(tool=tool, ms=ms, n=rng.randrange(1000, 9999))
