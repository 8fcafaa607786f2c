"""How causes and their evidence are worded for people, wherever they are shown (the
notebook's causes table, a record's answer, the pages): names instead of ids, what supports
a cause apart from what speaks against it. Nothing heavy is imported: a record's answer is
built outside the kernel."""

from __future__ import annotations

from html import escape

FOR, AGAINST, UNJUDGED = "#15803d", "#b91c1c", "#6b7280"  # the colours of evidence
# the colour of each verdict (model.VERDICTS), in the causes table and a record's answer
COLORS = {"likely": "#d62728", "possible": "#e69f00", "ruled_out": "#2ca02c", "unknown": "#7f7f7f"}
LABELS = ("for", "against", "cannot judge")

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


def evidence_html(
    evidence: list[str], missing: list[str] = (), labels: tuple[str, str, str] = LABELS
) -> str:
    """Evidence for (a green ✔), against (a red ✘, its text greyed) and what could not be
    judged (grey ?), each group under its own label so none reads as another."""
    support, against = for_and_against(evidence)
    groups = (
        ("for", "✔", FOR, "inherit", support),
        ("against", "✘", AGAINST, UNJUDGED, against),
        ("unjudged", "?", UNJUDGED, UNJUDGED, merged(list(missing))),
    )
    out = []
    for (key, mark, color, text, lines), label in zip(groups, labels, strict=True):
        if not lines:
            continue
        items = "".join(
            f"<li style='list-style:none;color:{text}'><span style='color:{color}'>{mark}</span> "
            f"{escape(x)}</li>"
            for x in lines
        )
        out.append(
            f"<div style='color:{color};font-size:85%'><b>{label}</b></div>"
            f"<ul class='evidence-{key}' style='margin:0 0 4px;padding-left:4px'>{items}</ul>"
        )
    return "".join(out)


def merged(lines: list[str]) -> list[str]:
    """Lines "<what>: <why>" sharing their why, as one: "a, b: <why>" (a run whose
    Prometheus did not answer cannot judge any series, for one reason)."""
    whats: dict[str, list[str]] = {}
    for line in lines:
        what, sep, why = line.partition(": ")
        key = why if sep and " " not in what else line
        whats.setdefault(key, []).extend([what] if key == why else [])
    return [f"{', '.join(w)}: {why}" if w else why for why, w in whats.items()]
