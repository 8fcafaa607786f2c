"""A record keeps the data it was judged on.

`Recording` wraps the Prometheus client and saves every answer (CSV per query plus
`queries.jsonl`) in the record's `data/` directory, so charts can be redrawn and the
incident re-examined after Prometheus's retention has dropped the series. `Replay` answers
the same queries from such a directory: a runbook re-executed with `--from-record` at the
same evaluation time asks exactly the questions it asked before and gets the same answers.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pandas as pd

from runbook_lib.evidence.prom import Failure, Prom, QueryResult

INDEX = "queries.jsonl"


def key(kind: str, query: str, *times: float | None) -> str:
    return json.dumps([kind, query, *[None if t is None else round(t, 3) for t in times]])


class Recording:
    """A Prom that also writes each answer to `directory`."""

    def __init__(self, prom: Prom, directory: Path) -> None:
        self.prom, self.dir = prom, Path(directory)
        self.url = prom.url
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def instant(self, query: str, at: datetime) -> QueryResult:
        res = self.prom.instant(query, at)
        self._save(key("instant", query, at.timestamp()), res)
        return res

    def range(
        self, query: str, start: datetime, end: datetime, step: float | None = None
    ) -> QueryResult:
        res = self.prom.range(query, start, end, step)
        self._save(key("range", query, start.timestamp(), end.timestamp(), step), res)
        return res

    def _save(self, k: str, res: QueryResult) -> None:
        if res.failure == Failure.UNREACHABLE:
            return  # nothing was answered; a replay should say the data is missing
        with self._lock:
            if k in self._seen:
                return
            self._seen.add(k)
            self.dir.mkdir(parents=True, exist_ok=True)
            name = f"q{len(self._seen):04d}.csv"
            res.frame.to_csv(self.dir / name, index=False)
            entry = {
                "key": k,
                "file": name,
                "failure": res.failure.value if res.failure else None,
                "reason": res.reason,
                "step_s": res.step_s,
                "labels": list(res.labels),
            }
            with open(self.dir / INDEX, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")


class Replay:
    """Answers queries from a record's saved data; a query it never saw has no data."""

    def __init__(self, directory: Path, url: str = "") -> None:
        self.dir = Path(directory)
        index = self.dir / INDEX
        if not index.exists():
            raise FileNotFoundError(f"{self.dir} holds no saved queries ({INDEX} is missing)")
        self.url = url or f"record:{self.dir.parent.name}"  # for links to the original
        self._entries = {}
        for line in index.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                self._entries[entry["key"]] = entry

    def instant(self, query: str, at: datetime) -> QueryResult:
        return self._load(key("instant", query, at.timestamp()), query)

    def range(
        self, query: str, start: datetime, end: datetime, step: float | None = None
    ) -> QueryResult:
        """The saved answer for exactly this window; else (redrawing a chart later) the
        widest saved window of the same query."""
        exact = key("range", query, start.timestamp(), end.timestamp(), step)
        if exact in self._entries:
            return self._load(exact, query)
        same = [k for k in self._entries if json.loads(k)[:2] == ["range", query]]
        if not same:
            return self._load(exact, query)
        return self._load(max(same, key=lambda k: json.loads(k)[3] - json.loads(k)[2]), query)

    def _load(self, k: str, query: str) -> QueryResult:
        entry = self._entries.get(k)
        if entry is None:
            return QueryResult(
                query,
                pd.DataFrame(columns=["timestamp", "value"]),
                Failure.NO_DATA,
                f"the record's saved data ({self.dir}) has no answer for this query",
            )
        labels = tuple(entry["labels"])
        frame = pd.read_csv(
            self.dir / entry["file"], dtype={name: str for name in labels}, keep_default_na=False
        )
        if "timestamp" in frame and len(frame):
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        if "value" in frame:
            frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
        failure = Failure(entry["failure"]) if entry["failure"] else None
        return QueryResult(query, frame, failure, entry["reason"], entry["step_s"], labels)
