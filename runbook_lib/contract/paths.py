"""Directories the commands write to, judged before anything is written: an operator who
gives a path under a file, or one this user may not write, gets one line naming the path
and why, and nothing is left behind (a directory made on the way is removed again)."""

from __future__ import annotations

import os
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def first_missing(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (None: all of it does)."""
    path = Path(path).expanduser().absolute()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    return missing[-1] if missing else None


def unwritable_dir(path: Path) -> str:
    """Why `path` cannot hold files written by this user ("" when it can, or can be made):
    found from the file system without creating anything."""
    path = Path(path).expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            return f"{path} is a file, not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable by this user"
        return ""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        return f"{path} lies under {base}, which is a file, not a directory"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {base} is not writable by this user"
    return ""


def create_dir(path: Path) -> str:
    """Make `path` (and its parents); "" on success, else why not, with every directory
    made on the way removed again. Some file systems refuse what access(2) allows (root
    under /sys or /proc), so the check that counts is making it."""
    path = Path(path).expanduser().absolute()
    problem = unwritable_dir(path)
    if problem:
        return problem
    made: list[Path] = []
    for part in reversed([path, *path.parents]):
        if part.exists():
            continue
        try:
            part.mkdir()
        except OSError as exc:
            for done in reversed(made):
                done.rmdir()
            return f"cannot create {part}: {exc.strerror}"
        made.append(part)
    return ""
