"""The private directories of kernels (their sockets and connection file) and of zygotes
(the texts their kernels share), in the temp directory, named for the process that owns
them: `rbk-<pid>-...`. A worker killed outright (kill -9, the OOM killer) never removes its
own, so the first directory a process makes also removes those of owners that are gone:
without that, a host's /tmp gained one directory per run in flight at every crash (2207 of
them here after a few days of tests)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import psutil

PREFIX = "rbk-"
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")
# Named before they carried their owner (rbk-XXXXXXXX, rbk-text-XXXXXXXX): removed once a
# day old, longer than any run lives.
_UNOWNED = re.compile(rf"^{PREFIX}(?:text-)?[a-z0-9_]{{8}}$")
UNOWNED_AGE_S = 86400.0
_swept: set[str] = set()


def make(kind: str) -> Path:
    """A new private directory for `kind` ("kernel", "text"), owned by this process; the
    first one in a temp directory also sweeps the leftovers of owners that are gone."""
    base = tempfile.gettempdir()
    if base not in _swept:
        _swept.add(base)
        sweep(Path(base))
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{kind}-", dir=base))


def sweep(base: Path, now: float | None = None) -> list[Path]:
    """Remove the directories in `base` whose owner process is gone (and unowned ones older
    than `UNOWNED_AGE_S`); returns what was removed."""
    now = time.time() if now is None else now
    gone = []
    with os.scandir(base) as entries:
        for entry in entries:
            if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            owned = _OWNED.match(entry.name)
            if owned:
                stale = not psutil.pid_exists(int(owned.group(1)))
            else:
                stale = bool(_UNOWNED.match(entry.name)) and _age(entry, now) > UNOWNED_AGE_S
            if stale:
                shutil.rmtree(entry.path, ignore_errors=True)
                gone.append(Path(entry.path))
    return gone


def _age(entry: os.DirEntry, now: float) -> float:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0
