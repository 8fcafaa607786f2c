"""The host as the diagnosis sees it: one plain dict, taken live with `host` (psutil) or
read back from a JSON file (a past incident, a scenario). Rules only read this dict, so a
replayed incident is judged exactly like a live one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from runbook_lib.evidence import host

WATCHED = ("soffice", "ggen-mcp-fork")


def take(
    *,
    service_port: int | None = None,
    names: Iterable[str] = WATCHED,
    dirs: Iterable[str | Path] = (),
    temp_dir: str | Path | None = None,
    since: float | None = None,
) -> dict:
    """A live snapshot: watched processes, who listens on the service port, OOM kills,
    memory, load, the size of `dirs` and the service's temp files."""
    snap: dict = {"taken_at": time.time(), "errors": []}
    if service_port is not None:
        ls = host.listeners(service_port)
        snap["listeners"] = [{"port": x.port, "pid": x.pid, "name": x.name} for x in ls]
        _note(snap, ls.error)
        snap["service_pid"] = snap["listeners"][0]["pid"] if snap["listeners"] else None
    found = host.named(names)
    _note(snap, found.error)
    snap["processes"] = [_proc(p) for p in found]
    oom = host.oom_events(since=since)
    if oom.error:
        _note(snap, oom.error)
    else:
        snap["oom_events"] = list(oom.lines)
    mem, load = host.memory(), host.load(interval_s=None)  # the load averages, no 0.2 s sample
    snap["memory"] = {"swap_percent": mem.swap_percent, "used_percent": mem.used_percent}
    snap["load"] = {"load1": load.load1, "cpu_count": load.cpu_count}
    dirs = [str(d) for d in dirs]
    if dirs:
        snap["dirs"] = {d: _du(d) for d in dirs}
    if temp_dir is not None:
        tf = host.temp_files(temp_dir)
        _note(snap, tf.error)
        snap["temp_files"] = {
            "count": tf.count,
            "old_count": tf.old_count,
            "bytes": tf.total_bytes,
            "old_bytes": tf.old_bytes,
        }
    return snap


def load(path: str | Path) -> dict:
    """A snapshot saved as JSON (scenarios, records)."""
    return json.loads(Path(path).read_text())


def _proc(p: host.ProcInfo) -> dict:
    return {
        "pid": p.pid,
        "ppid": p.ppid,
        "name": p.name,
        "status": p.status,
        "age_s": round(p.age_s, 1),
        "cpu_seconds": round(p.cpu_seconds, 3),
        "rss_bytes": p.rss_bytes,
        "cmdline": p.cmdline[:200],
    }


def _du(path: str) -> int:
    """Bytes of the regular files under `path` (its subdirectories plus its own files)."""
    scan = host.largest([path], top=100_000)
    subdirs = sum(e.size_bytes for e in scan.dirs)
    own = sum(e.size_bytes for e in scan.files if str(Path(e.path).parent) == path.rstrip("/"))
    return subdirs + own


def _note(snap: dict, error: str | None) -> None:
    if error:
        snap["errors"].append(error)
