"""docs/causes.md, the one list of the runbooks' causes, read for the tests.

The table is written by hand; the registry (`diagnosis.RULES`, `engine.CAUSES`) is what the
tests check against it. So adding a cause in code without its row, or a row without its
rule, fails with a message naming the cause; no test keeps a second list or a count."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CAUSES_MD = Path(__file__).resolve().parents[1] / "docs" / "causes.md"
HEADER = ("runbook", "cause", "shown as", "guarded mitigation", "on the server profile")


@dataclass(frozen=True)
class Listed:
    """One row: a cause as one runbook judges it."""

    runbook: str
    cause: str
    name: str  # how people read it (wording.cause_name)
    mitigation: str | None  # the guarded action, or None
    server_decides: bool  # the server profile's series are enough to find it


def read(path: Path = CAUSES_MD) -> list[Listed]:
    """The rows of the table whose header is `HEADER`; a malformed row names its line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if _cells(line) == list(HEADER)]
    if len(starts) != 1:
        raise ValueError(f"{path}: no single table headed | {' | '.join(HEADER)} |")
    rows = []
    for at in range(starts[0] + 2, len(lines)):
        if not lines[at].startswith("|"):
            break
        row = _row(_cells(lines[at]), f"{path.name}:{at + 1}")
        if any((r.runbook, r.cause) == (row.runbook, row.cause) for r in rows):
            raise ValueError(f"{path.name}:{at + 1}: {row.runbook} {row.cause} is listed twice")
        rows.append(row)
    return rows


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []


def _row(cells: list[str], where: str) -> Listed:
    if len(cells) != len(HEADER):
        raise ValueError(f"{where}: {len(cells)} cells, the table has {len(HEADER)}")
    runbook, cause, name, mitigation, server = cells
    if not server.startswith(("decided", "unknown")):
        raise ValueError(f"{where}: on the server profile is {server!r}: 'decided' or 'unknown'")
    return Listed(
        runbook=runbook.strip("`"),
        cause=cause.strip("`"),
        name=name,
        mitigation=None if mitigation == "-" else mitigation.strip("`"),
        server_decides=server.startswith("decided"),
    )


def by_runbook(rows: list[Listed]) -> dict[str, set[str]]:
    """runbook -> the cause ids listed for it."""
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row.runbook, set()).add(row.cause)
    return out


def differences(listed: dict[str, set[str]], judged: dict[str, set[str]]) -> list[str]:
    """What the list and the registry disagree on, one line per cause and runbook."""
    out = []
    for runbook in sorted(listed.keys() | judged.keys()):
        mine, theirs = listed.get(runbook, set()), judged.get(runbook, set())
        out += [
            f"{runbook}: {c} is judged by a rule but not listed in docs/causes.md"
            for c in sorted(theirs - mine)
        ]
        out += [
            f"{runbook}: {c} is listed in docs/causes.md but no rule judges it"
            for c in sorted(mine - theirs)
        ]
    return out
