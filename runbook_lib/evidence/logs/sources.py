"""Where log lines come from: a file (rotated and compressed ones too), a container, the
journal. A source never raises for a problem with itself: its `LogRead` names it."""

from __future__ import annotations

import glob
import gzip
import importlib
import math
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from runbook_lib.evidence.logs.lines import (
    DEFAULT_LIMIT,
    LogLine,
    LogRead,
    as_utc,
    from_epoch,
    json_object,
    normalize_level,
    parse_line,
    parse_ts,
    take,
    why,
    window_lines,
)

# -- sources -------------------------------------------------------------------------------


class LogSource(Protocol):
    @property
    def description(self) -> str: ...

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead: ...


@dataclass(frozen=True)
class FileSource:
    """A log file (optionally .gz), streamed line by line so a huge rotated file is fine.

    `ordered=True` stops at the first line past the window end: only safe when the file's
    timestamps never go backwards (one writer, no concatenated rotations).
    """

    path: Path
    ordered: bool = False

    @property
    def description(self) -> str:
        return f"file:{self.path}"

    def _open(self) -> IO[str]:
        path = Path(self.path).expanduser()
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace", buffering=1 << 20)

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        start, end = as_utc(start), as_utc(end)
        lines: list[LogLine] = []
        try:
            with self._open() as fh:
                truncated = take(window_lines(fh, start, end, self.ordered), limit, lines)
        except (OSError, EOFError, zlib.error) as exc:  # EOFError: a .gz cut short
            return LogRead(self.description, tuple(lines), f"{self.description}: {why(exc)}")
        return LogRead(self.description, tuple(lines), None, truncated)


def _container_item(item: Any) -> tuple[datetime | None, str, str]:
    """(ts, stream, text) from a containers.LogLine, an object with .ts/.text, or a tuple."""
    text = getattr(item, "text", None)
    if text is not None:
        ts = getattr(item, "timestamp", None) or getattr(item, "ts", None)
        return parse_ts(ts), str(getattr(item, "stream", "") or ""), str(text)
    if isinstance(item, tuple | list) and len(item) >= 2:
        stream = str(item[1]) if len(item) >= 3 else ""
        return parse_ts(item[0]), stream, str(item[-1])
    return None, "", item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)


def _container_line(item: Any) -> LogLine:
    """Docker's receive time wins: it is zone-aware and what since/until were applied to."""
    ts, stream, text = _container_item(item)
    line = parse_line(text)
    fields = {**line.fields, "stream": stream} if stream else line.fields
    return replace(line, ts=ts or line.ts, fields=fields)


@dataclass(frozen=True)
class ContainerSource:
    """`docker logs` of one container, through runbook_lib.evidence.containers."""

    name: str

    @property
    def description(self) -> str:
        return f"container:{self.name}"

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        start, end = as_utc(start), as_utc(end)
        unavailable = f"{self.description}: container logs unavailable"
        try:  # imported late: a missing or changed containers module is an error result
            fetch = importlib.import_module("runbook_lib.evidence.containers").logs
        except (ImportError, AttributeError) as exc:
            return LogRead(self.description, (), f"{unavailable}: {exc}")
        try:
            result = fetch(self.name, since=start, until=end, tail=limit + 1)
            items = list(getattr(result, "lines", None) or ())
            error = getattr(result, "error", None)
            lines = [_container_line(item) for item in items]
        except Exception as exc:  # the Docker SDK raises many types; none may escape a read
            return LogRead(self.description, (), f"{unavailable}: {why(exc)}")
        kept = [x for x in lines if x.ts is None or start <= x.ts < end]
        truncated = len(items) > limit or len(kept) > limit
        kept = kept[-limit:] if limit > 0 else []  # docker's tail keeps the newest lines
        message = f"{self.description}: {error}" if error else None
        return LogRead(self.description, tuple(kept), message, truncated)


def _journal_line(entry: Mapping[str, Any]) -> LogLine:
    """A journald JSON entry; the MESSAGE may itself be a JSON log line from the service."""
    message = entry.get("MESSAGE") or ""
    if isinstance(message, list):  # journald sends non-UTF-8 messages as a byte array
        message = bytes(message).decode("utf-8", "replace")
    line = parse_line(str(message))
    realtime = entry.get("__REALTIME_TIMESTAMP")
    ts = from_epoch(int(realtime) / 1e6) if str(realtime or "").isdigit() else None
    level = line.level or normalize_level(entry.get("PRIORITY"))
    extra = {k: entry[k] for k in ("_SYSTEMD_UNIT", "_PID") if k in entry}
    return replace(line, ts=ts or line.ts, level=level, fields={**line.fields, **extra})


def _journal_entries(stream: Iterable[str]) -> Iterator[LogLine]:
    for text in stream:
        entry = json_object(text)
        if entry is not None:
            yield _journal_line(entry)


def _in_window(lines: Iterable[LogLine], start: datetime, end: datetime) -> Iterator[LogLine]:
    return (x for x in lines if x.ts is None or start <= x.ts < end)


@dataclass(frozen=True)
class JournalSource:
    """`journalctl -u UNIT` for a window, streamed, killed after `timeout` seconds; from
    `directory` instead of the system journal when given (journals collected elsewhere)."""

    unit: str
    timeout: float = 30.0
    journalctl: str = "journalctl"
    directory: str = ""

    @property
    def description(self) -> str:
        return f"journal:{self.unit}" + (f"@{self.directory}" if self.directory else "")

    def command(self, start: datetime, end: datetime) -> list[str]:
        """@epoch bounds: journalctl would read plain dates in the machine's local zone."""
        since, until = math.floor(as_utc(start).timestamp()), math.ceil(as_utc(end).timestamp())
        return [
            self.journalctl,
            *(["-D", self.directory] if self.directory else []),
            "-u",
            self.unit,
            f"--since=@{since}",
            f"--until=@{until}",
            "-o",
            "json",
            "--no-pager",
        ]

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        start, end = as_utc(start), as_utc(end)
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
            try:
                proc = subprocess.Popen(
                    self.command(start, end),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    errors="replace",
                )
            except FileNotFoundError:
                return LogRead(self.description, (), f"{self.description}: journalctl not found")
            except OSError as exc:
                return LogRead(self.description, (), f"{self.description}: journalctl: {why(exc)}")
            return self._collect(proc, err, start, end, limit)

    def _collect(
        self, proc: subprocess.Popen, err: IO[str], start: datetime, end: datetime, limit: int
    ) -> LogRead:
        timed_out = threading.Event()
        timer = threading.Timer(self.timeout, lambda: (timed_out.set(), proc.kill()))
        timer.start()
        lines: list[LogLine] = []
        try:
            truncated = take(_in_window(_journal_entries(proc.stdout), start, end), limit, lines)
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            rc = proc.wait()
        if timed_out.is_set():
            why = f"{self.description}: journalctl timed out after {self.timeout:g}s"
            return LogRead(self.description, tuple(lines), why, True)
        err.seek(0)
        said = (err.read().strip().splitlines() or [""])[0]
        if rc != 0 and not truncated:
            why = f"{self.description}: journalctl exited {rc}" + (f": {said}" if said else "")
            return LogRead(self.description, tuple(lines), why, False)
        if not lines and said:  # e.g. "No journal files were found.": say why it is empty
            return LogRead(self.description, (), f"{self.description}: {said}", False)
        return LogRead(self.description, tuple(lines), None, truncated)


@dataclass(frozen=True)
class FilesSource:
    """Every file a glob matches, read together: a log and its rotations (`app.log`,
    `app.log.1`, `app.log.2.gz`), oldest file first, lines merged by time."""

    pattern: str

    @property
    def description(self) -> str:
        return f"file:{self.pattern}"

    def paths(self) -> list[Path]:
        found = [Path(p) for p in glob.glob(str(Path(self.pattern).expanduser()))]
        return sorted((p for p in found if p.is_file()), key=_mtime)

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        files = self.paths()
        if not files:
            return LogRead(self.description, (), f"{self.description}: no file matches")
        return merged(self.description, [FileSource(f) for f in files], start, end, limit)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@dataclass(frozen=True)
class Sources:
    """Several sources of one service (its files, its container, its journal), read as one."""

    parts: tuple[LogSource, ...]

    @property
    def description(self) -> str:
        return " + ".join(p.description for p in self.parts)

    def read(self, start: datetime, end: datetime, limit: int = DEFAULT_LIMIT) -> LogRead:
        return merged(self.description, list(self.parts), start, end, limit)


def merged(
    description: str, parts: list[LogSource], start: datetime, end: datetime, limit: int
) -> LogRead:
    """The lines of every part, by time (lines without one keep their place), the newest
    `limit`; an error only when no part could be read, naming each."""
    reads = [part.read(start, end, limit) for part in parts]
    good = [r for r in reads if r.error is None]
    if not good:
        return LogRead(description, (), "; ".join(str(r.error) for r in reads))
    floor = as_utc(start)
    lines = sorted((x for r in good for x in r.lines), key=lambda x: x.ts or floor)
    truncated = any(r.truncated for r in good) or len(lines) > limit
    return LogRead(description, tuple(lines[-limit:] if limit > 0 else ()), None, truncated)


def source_for(spec: str | list[str] | tuple[str, ...]) -> LogSource:
    """'file:/path', a path or a glob, 'container:NAME' (or 'docker:NAME'; NAME may be
    'label:KEY=VALUE'), 'journal:UNIT' (or 'journal:UNIT@DIRECTORY'); a list of those is
    read as one source."""
    if not isinstance(spec, str):
        parts = tuple(source_for(s) for s in spec)
        return parts[0] if len(parts) == 1 else Sources(parts)
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.strip().lower()
    if sep and scheme in ("container", "docker"):
        return ContainerSource(rest)
    if sep and scheme == "journal":
        unit, _, directory = rest.partition("@")
        return JournalSource(unit, directory=directory)
    path = spec
    if sep and scheme == "file":
        path = rest[2:] if rest.startswith("//") else rest
    return FilesSource(path) if glob.has_magic(path) else FileSource(Path(path))
