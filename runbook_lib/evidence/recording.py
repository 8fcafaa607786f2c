"""A record keeps the data it was judged on.

`Recording` wraps the Prometheus client and saves every answer (CSV per query plus
`queries.jsonl`), and every window of log lines the run read (`logs.jsonl` and a file of
lines per read), in the record's `data/` directory, so charts can be redrawn and the
incident re-examined after Prometheus's retention has dropped the series and the logs have
rotated away. `Replay` answers the same questions from such a directory: a runbook
re-executed from a record at the same evaluation time asks exactly the questions it asked
before and gets the same answers, a Prometheus that did not answer included, and writes
nothing.
"""

from __future__ import annotations

import csv
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runbook_lib.evidence.logs import (
    DEFAULT_LIMIT,
    LogLine,
    LogRead,
    LogSource,
    parse_ts,
    source_for,
)
from runbook_lib.evidence.prom import Failure, Prom, QueryResult, ask_ranges

INDEX = "queries.jsonl"
# No answer: typed like one, so frames of answers and non-answers combine without pandas'
# warning about concatenating empty, untyped frames.
EMPTY = pd.DataFrame(
    {"timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "value": pd.Series(dtype=float)}
)
LOG_INDEX = "logs.jsonl"


def key(kind: str, query: str, *times: float | None) -> str:
    return json.dumps([kind, query, *[None if t is None else round(t, 3) for t in times]])


class Recording:
    """A Prom that also writes each answer to `directory` (made at once, so every run's
    record has a data/ to replay, even one whose Prometheus never answered)."""

    def __init__(self, prom: Prom | Replay, directory: Path) -> None:
        self.prom, self.dir = prom, Path(directory)
        self.url = prom.url
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._logs: dict[str, LogRead] = {}
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / INDEX).touch()

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

    def ranges(
        self, queries: dict[str, str], start: datetime, end: datetime, step: float | None = None
    ) -> dict[str, QueryResult]:
        """The queries asked together, each answer saved as its own (as `range` saves it):
        a replay, or a chart redrawn later, asks each query alone."""
        answers = ask_ranges(self.prom, queries, start, end, step)
        for name, query in queries.items():
            self._save(key("range", query, start.timestamp(), end.timestamp(), step), answers[name])
        return answers

    def _save(self, k: str, res: QueryResult) -> None:
        """The answer, a failure included: a replay of a run whose Prometheus did not
        answer says so again, naming the same address and reason."""
        with self._lock:
            if k in self._seen:
                return
            self._seen.add(k)
            name = f"q{len(self._seen):04d}.csv"
            _write_csv(res.frame, self.dir / name)
            entry = {
                "key": k,
                "file": name,
                "failure": res.failure.value if res.failure else None,
                "reason": res.reason,
                "step_s": res.step_s,
                "labels": list(res.labels),
            }
            _append(self.dir / INDEX, entry)

    def logs(self, spec: str) -> LogSource:
        """The log source `spec`, each window it is read for saved into the record (and
        read once: the steps and the diagnosis read the same window)."""
        return _RecordedLogs(self, log_source(self.prom, spec), spec)

    def _read_logs(self, source: LogSource, spec: str, start: datetime, end: datetime,
                   limit: int) -> LogRead:  # fmt: skip
        k = json.dumps([spec, start.timestamp(), end.timestamp(), limit])
        with self._lock:
            if k in self._logs:
                return self._logs[k]
        read = source.read(start, end, limit)
        with self._lock:
            self._logs[k] = read
            name = f"l{len(self._logs):04d}.jsonl"
            with open(self.dir / name, "w", encoding="utf-8") as fh:
                for line in read.lines:
                    fh.write(json.dumps(_line_row(line), default=str) + "\n")
            entry = {"key": [spec, start.timestamp(), end.timestamp()], "file": name,
                     "source": read.source, "error": read.error, "truncated": read.truncated}  # fmt: skip
            _append(self.dir / LOG_INDEX, entry)
        return read


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as CSV by the csv module, a column at a time: timestamps as ISO 8601 in UTC
    (`...T12:00:05.250Z`, by numpy), numbers by `repr` (they read back to the last digit),
    what is missing as an empty field, as pandas writes it; `Replay` reads it back with
    pandas. For answers of 3, 500 and 1500 rows (a record saves about 20) pandas' `to_csv`
    took 0.49-0.56, 3.5-4.3 and 11.0-11.7 ms, this 0.18-0.24, 0.9-1.3 and 2.7-4.4."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            times = column.to_numpy("datetime64[ns]")  # in UTC
            cells = np.datetime_as_string(times, unit="auto", timezone="UTC").tolist()
        elif column.dtype.kind == "f":
            cells = ["" if v != v else repr(v) for v in column.tolist()]
        else:
            cells = ["" if pd.isna(v) else str(v) for v in column.tolist()]
        columns.append(cells)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(frame.columns)
        out.writerows(zip(*columns, strict=True))


class _RecordedLogs:
    def __init__(self, recording: Recording, source: LogSource, spec: str) -> None:
        self.recording, self.source, self.spec = recording, source, spec

    @property
    def description(self) -> str:
        return self.source.description

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        return self.recording._read_logs(self.source, self.spec, start, end, limit)


class Replay:
    """Answers queries from a record's saved data; a query it never saw has no data."""

    def __init__(self, directory: Path, url: str = "") -> None:
        self.dir = Path(directory)
        index = self.dir / INDEX
        if not index.exists():
            raise FileNotFoundError(f"{self.dir} holds no saved queries ({INDEX} is missing)")
        self.url = url or f"record:{self.dir.resolve().parent.name}"  # for links to the original
        self._entries = {entry["key"]: entry for entry in _rows(index)}
        self._log_entries = _rows(self.dir / LOG_INDEX)

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

    def ranges(
        self, queries: dict[str, str], start: datetime, end: datetime, step: float | None = None
    ) -> dict[str, QueryResult]:
        """Each query's saved answer, as `range` finds it: a record saves them one by one."""
        return {name: self.range(query, start, end, step) for name, query in queries.items()}

    def _load(self, k: str, query: str) -> QueryResult:
        entry = self._entries.get(k)
        if entry is None:
            return QueryResult(
                query,
                EMPTY.copy(),
                Failure.NO_DATA,
                f"the record's saved data ({self.dir}) has no answer for this query",
            )
        labels = tuple(entry["labels"])
        frame = pd.read_csv(
            self.dir / entry["file"], dtype={name: str for name in labels}, keep_default_na=False
        )
        if "timestamp" in frame:
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
        if "value" in frame:
            frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
        failure = Failure(entry["failure"]) if entry["failure"] else None
        return QueryResult(query, frame, failure, entry["reason"], entry["step_s"], labels)

    def logs(self, spec: str) -> LogSource:
        """The log lines the run read from `spec`, as it read them."""
        return _SavedLogs(self, spec)

    def _read_logs(self, spec: str, start: datetime, end: datetime) -> LogRead:
        """The saved read of exactly this window; else the lines of a saved read of `spec`
        that covers it; else a read that says the record has none."""
        same = [e for e in self._log_entries if e["key"][0] == spec]
        t0, t1 = start.timestamp(), end.timestamp()
        exact = [e for e in same if e["key"][1:] == [t0, t1]]
        covering = [e for e in same if e["key"][1] <= t0 and e["key"][2] >= t1]
        entry = (exact or covering or [None])[0]
        if entry is None:
            where = same[0]["source"] if same else spec
            return LogRead(where, (), f"{where}: the record's saved data has no log lines "
                                      f"for {start:%H:%M}-{end:%H:%M} UTC")  # fmt: skip
        lines = tuple(_line(row) for row in _rows(self.dir / entry["file"]))
        if not exact:
            lines = tuple(x for x in lines if x.ts is None or start <= x.ts < end)
        return LogRead(entry["source"], lines, entry["error"], entry["truncated"])


class _SavedLogs:
    def __init__(self, replay: Replay, spec: str) -> None:
        self.replay, self.spec = replay, spec

    @property
    def description(self) -> str:
        return source_for(self.spec).description

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        return self.replay._read_logs(self.spec, start, end)


def client(prometheus_url: str, *, replay_from: str = "", snapshot_dir: str = "") -> Any:
    """What a run asks: Prometheus, or a record's saved answers (`replay_from`); saving
    what it was answered into `snapshot_dir` (a record's data/) when given, a replay's
    answers too, so every record replays."""
    asked = Replay(Path(replay_from), url=prometheus_url) if replay_from else None
    asked = asked or Prom(prometheus_url or "http://127.0.0.1:9090")
    return Recording(asked, Path(snapshot_dir)) if snapshot_dir else asked


def log_source(client: Prom | Recording | Replay, spec: str) -> LogSource:
    """The log source `spec` as a run reads it: saved into its record while recording,
    answered from the record while replaying, else read as it is."""
    if isinstance(client, Recording | Replay):
        return client.logs(spec)
    return source_for(spec)


def _line_row(line: LogLine) -> dict:
    """A line as saved in the record: its fields in `LogLine`'s order, the time as ISO text.
    Built by hand, not by `dataclasses.asdict`: its deep copy of every line's fields, only
    to be serialised at once, was a tenth of reading a record's logs (record_profile)."""
    ts = line.ts.isoformat() if line.ts else None
    return {"ts": ts, "level": line.level, "msg": line.msg, "fields": line.fields, "raw": line.raw}


def _line(row: dict) -> LogLine:
    return LogLine(parse_ts(row["ts"]) if row["ts"] else None, row["level"], row["msg"],
                   row.get("fields") or {}, row.get("raw") or "")  # fmt: skip


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(t) for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]


def _append(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
