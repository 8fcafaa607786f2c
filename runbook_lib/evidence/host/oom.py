"""The kernel's OOM kills, from dmesg, /dev/kmsg or kern.log, whichever can be read."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import psutil

from runbook_lib.evidence.host.common import (
    KERN_LOG,
    KERN_LOG_TAIL_BYTES,
    OOM_RE,
    OOM_SOURCES,
    frame,
    join_errors,
    why,
)

# --- kernel log: OOM kills ------------------------------------------------------------------


@dataclass(frozen=True)
class OomLine:
    time: float | None  # epoch seconds; None when the source line carries no readable time
    text: str
    source: str


@dataclass(frozen=True)
class OomEvidence:
    """OOM lines from the first kernel log source that could be read.

    `scanned` counts all kernel log lines read (0 with an error); `tried` says why earlier
    sources failed; `error` is set only when no source could be read."""

    events: tuple[OomLine, ...]
    source: str | None
    scanned: int
    tried: tuple[str, ...]
    error: str | None = None

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(e.text for e in self.events)

    def to_frame(self) -> pd.DataFrame:
        return frame(self.events, OomLine)


class _Unreadable(Exception):
    pass


def _iso_time(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace(",", ".")).timestamp()
    except ValueError:
        return None


def _read_dmesg(timeout_s: float) -> list[tuple[float | None, str]]:
    try:
        done = subprocess.run(
            ["dmesg", "--time-format", "iso"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Unreadable(why(exc)) from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip() or "no message"
        raise _Unreadable(f"exit {done.returncode}: {err}")
    out = []
    for line in done.stdout.decode(errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        when = _iso_time(stamp)
        out.append((when, text) if when is not None else (None, line))
    return out


def _read_kmsg(timeout_s: float, path: str = "/dev/kmsg") -> list[tuple[float | None, str]]:
    """Records of /dev/kmsg ("prio,seq,usec,flags;text"), read without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unreadable(why(exc)) from exc
    try:
        boot = psutil.boot_time()
        out: list[tuple[float | None, str]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                record = os.read(fd, 16384)
            except BlockingIOError:
                break  # the end of the buffer
            except BrokenPipeError:
                continue  # records were overwritten while reading; go on with the next
            except OSError as exc:
                raise _Unreadable(why(exc)) from exc
            if not record:
                break
            head, _, text = record.decode(errors="replace").partition(";")
            parts = head.split(",")
            when = boot + int(parts[2]) / 1e6 if len(parts) > 2 and parts[2].isdigit() else None
            out.append((when, text.split("\n", 1)[0]))
        return out
    finally:
        os.close(fd)


_SYSLOG_RE = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (.*)$")


def _syslog_time(stamp: str) -> float | None:
    """A traditional syslog stamp has no year: take this year, or last year if that is ahead."""
    now = datetime.now()
    try:
        when = datetime.strptime(f"{now.year} {stamp}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None
    if when.timestamp() > now.timestamp() + 86400:
        when = when.replace(year=now.year - 1)
    return when.timestamp()


def _read_kern_log(path: Path) -> list[tuple[float | None, str]]:
    """The last KERN_LOG_TAIL_BYTES of a syslog file; refuses non-regular files (a FIFO
    would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unreadable(f"{path}: {why(exc)}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unreadable(f"{path}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            fh.seek(max(0, st.st_size - KERN_LOG_TAIL_BYTES))
            data = fh.read(KERN_LOG_TAIL_BYTES)
    except OSError as exc:
        raise _Unreadable(f"{path}: {why(exc)}") from exc
    finally:
        os.close(fd)
    out = []
    for line in data.decode(errors="replace").splitlines():
        stamp, _, rest = line.partition(" ")
        when = _iso_time(stamp)
        if when is None and (m := _SYSLOG_RE.match(line)):
            when, rest = _syslog_time(m.group(1)), m.group(2)
        out.append((when, rest if when is not None else line))
    return out


def oom_events(
    since: float | None = None,
    *,
    sources: Sequence[str] = OOM_SOURCES,
    kern_log: str | Path = KERN_LOG,
    timeout_s: float = 5.0,
) -> OomEvidence:
    """Kernel OOM lines (/out of memory|oom-kill|Killed process/i) at or after `since` (epoch
    seconds; lines without a readable time are then left out).

    Sources are tried in order until one reads: `dmesg --time-format iso`, /dev/kmsg (read
    non-blocking) and `kern_log`. dmesg is bounded by `timeout_s`; nothing blocks."""
    readers: dict[str, Callable[[], list[tuple[float | None, str]]]] = {
        "dmesg": lambda: _read_dmesg(timeout_s),
        "kmsg": lambda: _read_kmsg(timeout_s),
        "kern.log": lambda: _read_kern_log(Path(kern_log)),
    }
    tried: list[str] = []
    for source in sources:
        reader = readers.get(source)
        if reader is None:
            tried.append(f"{source}: unknown source (known: {', '.join(readers)})")
            continue
        try:
            lines = reader()
        except _Unreadable as exc:
            tried.append(f"{source}: {exc}")
            continue
        events = tuple(
            OomLine(when, text.strip(), source)
            for when, text in lines
            if OOM_RE.search(text) and (since is None or (when is not None and when >= since))
        )
        return OomEvidence(events, source, len(lines), tuple(tried), None)
    return OomEvidence((), None, 0, tuple(tried), f"kernel log not readable: {join_errors(tried)}")
