"""The host's files: the largest directories and files under a path (what fills a disk),
and temp files by name and age (what a cleanup would delete)."""

from __future__ import annotations

import fnmatch
import heapq
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from runbook_lib.evidence.host.common import frame, join_errors, why

# --- largest directories and files ----------------------------------------------------------


@dataclass(frozen=True)
class SizeEntry:
    """A directory (bytes of the regular files under it) or one regular file."""

    path: str
    kind: str  # "dir" or "file"
    size_bytes: int
    files: int


@dataclass(frozen=True)
class LargestResult:
    """Largest immediate subdirectories and largest files, like `du -d 1` plus `find -size`.

    When `truncated`, the scan stopped at max_entries and sizes are lower bounds."""

    dirs: tuple[SizeEntry, ...]
    files: tuple[SizeEntry, ...]
    scanned: int
    truncated: bool
    skipped: tuple[str, ...]
    error: str | None = None

    def to_frame(self) -> pd.DataFrame:
        return frame(self.dirs + self.files, SizeEntry)


class _Scan:
    """A bounded walk that never follows symlinks and keeps only the `top` largest files."""

    def __init__(self, top: int, min_file_bytes: int, max_entries: int, dev: int | None):
        self.top, self.min_file, self.budget, self.dev = top, min_file_bytes, max_entries, dev
        self.scanned, self.truncated = 0, False
        self.skipped: list[str] = []
        self.files: list[tuple[int, str]] = []  # a min-heap of (size, path)

    def entries(self, directory: str) -> list[os.DirEntry]:
        try:
            with os.scandir(directory) as it:
                return list(it)
        except OSError as exc:
            self.skipped.append(f"{directory}: {why(exc)}")
            return []

    def visit(self, entry: os.DirEntry) -> tuple[str, int]:
        """("dir" | "file" | "", size) of one entry; counts it against the budget."""
        if self.scanned >= self.budget:
            self.truncated = True
            return "", 0
        self.scanned += 1
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self.skipped.append(f"{entry.path}: {why(exc)}")
            return "", 0
        if stat.S_ISREG(st.st_mode):
            self.add_file(entry.path, st.st_size)
            return "file", st.st_size
        if stat.S_ISDIR(st.st_mode) and (self.dev is None or st.st_dev == self.dev):
            return "dir", 0
        return "", 0

    def add_file(self, path: str, size: int) -> None:
        if size < self.min_file or self.top <= 0:
            return
        item = (size, path)
        if len(self.files) < self.top:
            heapq.heappush(self.files, item)
        elif item > self.files[0]:
            heapq.heapreplace(self.files, item)

    def tree(self, directory: str) -> tuple[int, int]:
        """(bytes, regular files) under `directory`."""
        total = count = 0
        stack = [directory]
        while stack and not self.truncated:
            for entry in self.entries(stack.pop()):
                kind, size = self.visit(entry)
                if kind == "file":
                    total, count = total + size, count + 1
                elif kind == "dir":
                    stack.append(entry.path)
        return total, count


def largest(
    paths: Sequence[str | Path],
    *,
    top: int = 10,
    min_file_bytes: int = 0,
    max_entries: int = 200_000,
    same_filesystem: bool = True,
) -> LargestResult:
    """Where the space went under `paths`: the `top` largest immediate subdirectories (recursive
    size of their regular files, apparent size) and the `top` largest files at any depth.

    Symlinks are never followed; with `same_filesystem` (like `du -x`), mounts below a path
    are not entered, so scanning "/" skips /proc and other disks. Unreadable paths are
    listed in `skipped` and `error`; the scan stops after `max_entries` entries."""
    dirs: list[SizeEntry] = []
    scan = _Scan(top, min_file_bytes, max_entries, None)
    for raw in paths:
        root = os.fspath(raw)
        try:
            st = os.lstat(root)
        except OSError as exc:
            scan.skipped.append(f"{root}: {why(exc)}")
            continue
        if stat.S_ISREG(st.st_mode):
            scan.scanned += 1
            scan.add_file(root, st.st_size)
            continue
        if not stat.S_ISDIR(st.st_mode):
            scan.skipped.append(f"{root}: not a directory or regular file")
            continue
        scan.dev = st.st_dev if same_filesystem else None
        for entry in scan.entries(root):
            kind, size = scan.visit(entry)
            if kind == "dir":
                total, count = scan.tree(entry.path)
                dirs.append(SizeEntry(entry.path, "dir", total, count))
            if scan.truncated:
                break
    dirs.sort(key=lambda d: (-d.size_bytes, d.path))
    files = [SizeEntry(p, "file", s, 1) for s, p in sorted(scan.files, key=lambda f: (-f[0], f[1]))]
    return LargestResult(
        dirs=tuple(dirs[: max(top, 0)]),
        files=tuple(files),
        scanned=scan.scanned,
        truncated=scan.truncated,
        skipped=tuple(scan.skipped),
        error=_skipped_error(scan.skipped),
    )


def _skipped_error(skipped: Sequence[str], show: int = 5) -> str | None:
    if not skipped:
        return None
    more = f" (+{len(skipped) - show} more)" if len(skipped) > show else ""
    return f"unreadable: {'; '.join(skipped[:show])}{more}"


# --- temp files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TempFile:
    path: str
    size_bytes: int
    mtime: float
    age_s: float
    old: bool


@dataclass(frozen=True)
class TempFiles:
    """Regular files directly in `directory` named like `pattern`, oldest first; `old` ones
    are what `find DIR -maxdepth 1 -name PATTERN -mmin +older_than_s/60` would delete."""

    directory: str
    pattern: str
    older_than_s: float
    items: tuple[TempFile, ...]
    error: str | None = None

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.items)

    @property
    def old_count(self) -> int:
        return sum(f.old for f in self.items)

    @property
    def old_bytes(self) -> int:
        return sum(f.size_bytes for f in self.items if f.old)

    def to_frame(self) -> pd.DataFrame:
        return frame(self.items, TempFile)


def temp_files(
    directory: str | Path,
    pattern: str = "ggen-mcp-*",
    older_than_s: float = 86400,
    now: float | None = None,
) -> TempFiles:
    """The service's leftover temp files and how many are older than `older_than_s` (by mtime,
    as `find -mtime` judges). Only the top level of `directory` is read: that is where the
    service writes them, and /tmp can be deep."""
    now = time.time() if now is None else now
    found: list[TempFile] = []
    errors: list[str] = []
    try:
        with os.scandir(directory) as it:
            entries = [e for e in it if fnmatch.fnmatchcase(e.name, pattern)]
    except OSError as exc:
        entries, errors = [], [f"{directory}: {why(exc)}"]
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            errors.append(f"{entry.path}: {why(exc)}")
            continue
        if stat.S_ISREG(st.st_mode):
            age = now - st.st_mtime
            found.append(TempFile(entry.path, st.st_size, st.st_mtime, age, age > older_than_s))
    found.sort(key=lambda f: (f.mtime, f.path))
    return TempFiles(str(directory), pattern, older_than_s, tuple(found), join_errors(errors))
