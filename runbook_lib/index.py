"""The incident index, which is also the durable run queue (SQLite).

An alert is accepted in one transaction that records the incident and enqueues its runs,
so "persisted" and "queued" are the same commit: the receiver answers 2xx only after it.
Incidents are keyed by Alertmanager's `fingerprint` + `startsAt`; each incident has at most
one run of each kind (`investigation`, `verification`), which is what makes re-sent groups
harmless. A run's record directory name is fixed when the run is enqueued, so a run done
again after a crash finds its record instead of writing a second one.

The queue interface is `accept` / `claim` / `finish` / `recover`; a site that outgrows one
machine can put the same calls in front of Huey on Redis or Celery.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_lib import record
from runbook_lib.alerts import Alert, route

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    alertname TEXT NOT NULL,
    runbook TEXT NOT NULL,
    severity TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    status TEXT NOT NULL,
    ends_at TEXT,
    received_at REAL NOT NULL,
    resolved_at REAL,
    UNIQUE (fingerprint, starts_at)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    record TEXT NOT NULL UNIQUE,
    not_before REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT,
    top_cause TEXT,
    error TEXT,
    UNIQUE (incident_id, kind)
);
CREATE INDEX IF NOT EXISTS runs_queued ON runs (state, not_before);
"""

KINDS = ("investigation", "verification")


@dataclass(frozen=True)
class Job:
    """A claimed run with what its notebook needs."""

    run_id: int
    kind: str
    record: str
    attempts: int
    incident_id: int
    alertname: str
    runbook: str
    fingerprint: str
    starts_at: str
    ends_at: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    verification_of: str | None  # the investigation's record, for a verification
    waited_s: float = 0.0  # from due to claimed: time spent in the queue


class Index:
    """The incident index at `path` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)  # idempotent; commits itself
        finally:
            db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, durable (fsync) when the block ends without error."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- the receiver's side ---------------------------------------------------------------
    def accept(
        self, alerts: list[Alert], verify_delay: float, now: float | None = None
    ) -> list[str]:
        """Record the alerts and enqueue their runs in one transaction; one outcome each:
        `queued`, `duplicate`, `resolved` or `resolved-duplicate`."""
        now = time.time() if now is None else now
        with self._tx() as db:
            return [self._accept_one(db, a, verify_delay, now) for a in alerts]

    def _accept_one(self, db: sqlite3.Connection, a: Alert, delay: float, now: float) -> str:
        starts = a.startsAt.isoformat()
        row = db.execute(
            "SELECT id, status FROM incidents WHERE fingerprint = ? AND starts_at = ?",
            (a.fingerprint, starts),
        ).fetchone()
        if row is None:
            cur = db.execute(
                "INSERT INTO incidents (fingerprint, starts_at, alertname, runbook, severity,"
                " labels, annotations, generator_url, status, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'firing', ?)",
                (
                    a.fingerprint,
                    starts,
                    a.name,
                    route(a.name),
                    a.labels.get("severity", ""),
                    json.dumps(a.labels),
                    json.dumps(a.annotations),
                    a.generatorURL,
                    now,
                ),
            )
            incident, status = cur.lastrowid, "firing"
        else:
            incident, status = row["id"], row["status"]
        # A resolved alert never seen firing still gets its investigation: none is lost.
        new = self._enqueue(db, incident, a, "investigation", now)
        if a.status == "firing":
            return "queued" if new else "duplicate"
        if status == "resolved":
            return "resolved-duplicate"
        ends = a.endsAt.isoformat() if a.endsAt else None
        db.execute(
            "UPDATE incidents SET status = 'resolved', ends_at = ?, resolved_at = ? WHERE id = ?",
            (ends, now, incident),
        )
        self._enqueue(db, incident, a, "verification", now + delay)
        return "resolved"

    def _enqueue(
        self, db: sqlite3.Connection, incident: int, a: Alert, kind: str, not_before: float
    ) -> bool:
        if db.execute(
            "SELECT 1 FROM runs WHERE incident_id = ? AND kind = ?", (incident, kind)
        ).fetchone():
            return False
        name = record.record_name(a.startsAt, a.name, a.fingerprint)
        if kind == "verification":
            name += "-verify"
        if db.execute("SELECT 1 FROM runs WHERE record = ?", (name,)).fetchone():
            name += f"-i{incident}"
        db.execute(
            "INSERT INTO runs (incident_id, kind, state, record, not_before, enqueued_at)"
            " VALUES (?, ?, 'queued', ?, ?, ?)",
            (incident, kind, name, not_before, time.time()),
        )
        return True

    # -- the workers' side -----------------------------------------------------------------
    def claim(self, now: float | None = None) -> Job | None:
        """Take the oldest due queued run, marking it running; None when nothing is due."""
        now = time.time() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM runs WHERE state = 'queued' AND not_before <= ?"
                " ORDER BY not_before, id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE runs SET state = 'running', started_at = ?, attempts = attempts + 1"
                " WHERE id = ?",
                (now, row["id"]),
            )
            return self._job(db, row["id"])

    def _job(self, db: sqlite3.Connection, run_id: int) -> Job:
        r = db.execute(
            "SELECT r.*, i.alertname, i.runbook, i.fingerprint, i.starts_at, i.ends_at,"
            " i.labels, i.annotations FROM runs r JOIN incidents i ON i.id = r.incident_id"
            " WHERE r.id = ?",
            (run_id,),
        ).fetchone()
        first = db.execute(
            "SELECT record FROM runs WHERE incident_id = ? AND kind = 'investigation'",
            (r["incident_id"],),
        ).fetchone()
        return Job(
            run_id=r["id"],
            kind=r["kind"],
            record=r["record"],
            attempts=r["attempts"],
            incident_id=r["incident_id"],
            alertname=r["alertname"],
            runbook=r["runbook"],
            fingerprint=r["fingerprint"],
            starts_at=r["starts_at"],
            ends_at=r["ends_at"],
            labels=json.loads(r["labels"]),
            annotations=json.loads(r["annotations"]),
            verification_of=first["record"] if r["kind"] == "verification" and first else None,
            waited_s=max(0.0, (r["started_at"] or r["not_before"]) - r["not_before"]),
        )

    def finish(self, run_id: int, summary: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = 'done', finished_at = ?, status = ?, top_cause = ?,"
                " error = ? WHERE id = ?",
                (
                    time.time(),
                    summary.get("status"),
                    summary.get("top_cause"),
                    summary.get("error"),
                    run_id,
                ),
            )

    def in_flight(self) -> list[Job]:
        """Runs marked running: after a crash, the ones no worker will finish."""
        with self._tx() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM runs WHERE state = 'running'")]
            return [self._job(db, i) for i in ids]

    def requeue(self, run_id: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = 'queued' WHERE id = ? AND state = 'running'", (run_id,)
            )

    # -- reading -----------------------------------------------------------------------------
    def queue_stats(self, now: float | None = None) -> tuple[int, float]:
        """(queued runs that are due, age in seconds of the oldest of them)."""
        now = time.time() if now is None else now
        db = sqlite3.connect(self.path, timeout=30)
        try:
            n, oldest = db.execute(
                "SELECT count(*), min(not_before) FROM runs WHERE state = 'queued'"
                " AND not_before <= ?",
                (now,),
            ).fetchone()
        finally:
            db.close()
        return n, (now - oldest) if oldest is not None else 0.0

    def incidents(self, limit: int = 100) -> list[dict[str, Any]]:
        """Incidents newest first, each with its runs."""
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(
                "SELECT * FROM incidents ORDER BY received_at DESC, id DESC LIMIT ?", (limit,)
            ).fetchall()
            out = []
            for row in rows:
                inc = dict(row)
                inc["labels"] = json.loads(inc["labels"])
                inc["annotations"] = json.loads(inc["annotations"])
                inc["runs"] = [
                    dict(r)
                    for r in db.execute(
                        "SELECT * FROM runs WHERE incident_id = ? ORDER BY id", (row["id"],)
                    )
                ]
                out.append(inc)
            return out
        finally:
            db.close()
