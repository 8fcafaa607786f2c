"""Production runs a pinned copy of the runbooks, never a working copy.

`runbook serve` and `runbook worker` copy the notebooks of `runbooks_dir` (default: the
installed package's) into the output directory at start-up, under the content hash of the
whole set (`<output>/.runbooks/<hash>/`), and run those. A save in JupyterLab changes the
working copy, not the copy runs use; deploying is copying the new notebooks to
`runbooks_dir` (or installing the package) and sending SIGHUP, which takes a new snapshot.
The hash goes into every record's summary (`runbooks_hash`), so a record says which
runbooks made it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

STORE = ".runbooks"  # under the output directory; dot-named: no record, retention skips it
log = logging.getLogger("runbook.runbooks")


@dataclass(frozen=True)
class Snapshot:
    """One pinned set of runbooks: where runs read them, and its content hash."""

    dir: Path
    hash: str
    source: Path


def content_hash(source: Path) -> str:
    """The hash of every notebook of `source` (names and bytes), 12 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(source.glob("*.ipynb")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def take(source: Path, output_dir: Path) -> Snapshot:
    """Copy `source`'s notebooks under their hash (once: an existing copy is the same);
    ValueError naming the directory when it holds no notebook."""
    source = Path(source).resolve()
    if not any(source.glob("*.ipynb")):
        raise ValueError(f"the runbooks directory {source} holds no notebook (.ipynb): set "
                         "runbooks_dir (RUNBOOK_RUNBOOKS_DIR, --runbooks-dir) to the "
                         "directory of the runbooks")  # fmt: skip
    store = Path(output_dir) / STORE
    store.mkdir(parents=True, exist_ok=True)
    staging = store / f".tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    for path in source.glob("*.ipynb"):
        shutil.copyfile(path, staging / path.name)
    digest = content_hash(staging)  # of what was copied, should a save land mid-copy
    final = store / digest
    try:
        staging.rename(final)
    except OSError:  # taken before (by this process, or another receiver or worker)
        shutil.rmtree(staging, ignore_errors=True)
    for path in final.glob("*.ipynb"):
        path.chmod(0o444)
    return Snapshot(final, digest, source)


class Runbooks:
    """The runbooks runs use now: a snapshot taken at start-up, and again by `reload()`
    (SIGHUP). Runs read `current` once, when they start."""

    def __init__(self, source: Path, output_dir: Path) -> None:
        self.source, self.output_dir = Path(source), Path(output_dir)
        self._lock = threading.Lock()
        self.current = take(self.source, self.output_dir)

    def reload(self) -> Snapshot:
        """A new snapshot of the source; the old one stays for runs that started on it. A
        source that cannot be read keeps the runbooks as they were, and says why."""
        with self._lock:
            before = self.current
            try:
                self.current = take(self.source, self.output_dir)
            except (OSError, ValueError) as exc:
                log.error("runbooks not reloaded, still %s: %s", before.hash, exc)
                return before
        if self.current.hash == before.hash:
            log.info("runbooks reloaded from %s: unchanged, %s", self.source, before.hash)
        else:
            log.info("runbooks reloaded from %s: %s -> %s", self.source, before.hash,
                     self.current.hash)  # fmt: skip
        return self.current
