"""How causes and their evidence are worded for people, wherever they are shown (the
notebook's tables, a record's answer, the pages): names instead of ids, what supports a
cause apart from what speaks against it. No imports: the receiver's pages use it too."""

from __future__ import annotations

FOR, AGAINST, UNJUDGED = "#15803d", "#b91c1c", "#6b7280"  # the colours of evidence

# Words of cause ids that are names or abbreviations, as people write them.
WORDS = {"cpu": "CPU", "libreoffice": "LibreOffice", "ttl": "TTL", "fd": "file descriptor",
         "oom": "OOM", "api": "API", "io": "I/O", "db": "database"}  # fmt: skip


def cause_name(cause: str) -> str:
    """A cause id as a reader names it: `cpu_saturation` -> 'CPU saturation',
    `libreoffice_bottleneck` -> 'LibreOffice bottleneck', `fd_leak` -> 'File descriptor leak'."""
    text = " ".join(WORDS.get(w, w) for w in cause.split("_") if w)
    return text[:1].upper() + text[1:]


def for_and_against(evidence: list[str]) -> tuple[list[str], list[str]]:
    """A verdict's evidence lines split into what supports the cause (✔) and what speaks
    against it (✘), without their marks."""
    support, against = [], []
    for line in evidence:
        (against if line.startswith("✘") else support).append(line.lstrip("✔✘ "))
    return support, against
