"""Retention: records older than N days are removed, so `outputs/` cannot fill the disk
that the runbook's own disk alert watches. Records a post-mortem links to are kept (a
post-mortem directory lists its sources in `postmortem.json`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from runbook_lib.records import record
from runbook_lib.storage.database import Database
from runbook_lib.storage.migrations import schema

POSTMORTEM_MANIFEST = "postmortem.json"


@dataclass
class Pruned:
    removed: list[str] = field(default_factory=list)
    kept_linked: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def linked(output_dir: Path) -> set[str]:
    """Record names that some post-mortem under `output_dir` was written from."""
    names: set[str] = set()
    for manifest in sorted(output_dir.glob(f"*/{POSTMORTEM_MANIFEST}")):
        try:
            names |= {Path(r).name for r in json.loads(manifest.read_text())["records"]}
        except (ValueError, KeyError, OSError):
            continue
    return names


def prune(
    output_dir: Path,
    days: float,
    *,
    now: float | None = None,
    dry_run: bool = False,
    index: Database | None = None,
) -> Pruned:
    """Remove record directories whose last change is older than `days`, and their runs
    from `index` (default: the SQLite index beside the records, if there is one)."""
    if days <= 0:
        raise ValueError(f"retention must be a positive number of days, not {days}")
    output_dir = Path(output_dir)
    cutoff = (time.time() if now is None else now) - days * 86400
    keep = linked(output_dir)
    out = Pruned()
    for rec in sorted(p for p in output_dir.iterdir() if _is_record(p)):
        if rec.stat().st_mtime >= cutoff:
            continue
        if rec.name in keep:
            out.kept_linked.append(rec.name)
            continue
        out.freed_bytes += sum(f.stat().st_size for f in rec.rglob("*") if f.is_file())
        out.removed.append(rec.name)
        if not dry_run:
            record.remove(rec)
    if out.removed and not dry_run:
        if index is None and (output_dir / "index.sqlite").exists():
            index = Database(output_dir / "index.sqlite")
        if index is not None:
            forget(index, out.removed)
    return out


def _is_record(path: Path) -> bool:
    return (
        path.is_dir()
        and not path.name.startswith(".")
        and ((path / "summary.json").exists() or (path / "record.ipynb").exists())
    )


def forget(index: Database, records: list[str]) -> None:
    """Drop these records' runs, and incidents left with no run (retention)."""
    if not records:
        return
    with index.tx() as conn:
        conn.execute(sa.delete(schema.RUNS).where(schema.RUNS.c.record.in_(records)))
        orphans = sa.select(schema.INCIDENTS.c.id).where(
            ~schema.INCIDENTS.c.id.in_(sa.select(schema.RUNS.c.incident_id).distinct())
        )
        events = sa.select(schema.EVENTS.c.id).where(schema.EVENTS.c.incident_id.in_(orphans))
        conn.execute(sa.delete(schema.DELIVERIES).where(schema.DELIVERIES.c.event_id.in_(events)))
        conn.execute(sa.delete(schema.EVENTS).where(schema.EVENTS.c.incident_id.in_(orphans)))
        for table in (schema.THREADS, schema.ACTIONS):
            conn.execute(sa.delete(table).where(table.c.incident_id.in_(orphans)))
        conn.execute(sa.delete(schema.ALERTS).where(schema.ALERTS.c.incident_id.in_(orphans)))
        conn.execute(sa.delete(schema.INCIDENTS).where(schema.INCIDENTS.c.id.in_(orphans)))
