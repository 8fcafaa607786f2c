"""Mitigations a notebook may run. Each acts only when `allow_mitigation` is true (and the
run is live), and returns what it did or would have done, for the record."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runbook_lib.contract.summary import Action
from runbook_lib.evidence import host

SOFFICE_MAX_AGE_S = 600.0
TEMP_MAX_AGE_S = 86400.0
# What a mitigation says when it was held back only because no operator allowed it: the
# runbook proposes it, and an operator may approve it from the incident page.
NOT_ALLOWED = "not run (allow_mitigation=False)"


def _skip(action: str, would: str, allowed: bool, live: bool) -> dict | None:
    if not live:
        return {
            "action": action,
            "done": False,
            "outcome": f"not run: this run replays a past incident; would {would}",
        }
    if not allowed:
        return {
            "action": action,
            "done": False,
            "outcome": f"{NOT_ALLOWED}; would {would}",
        }
    return None


def proposed(entry: Action) -> str | None:
    """What a record's action entry would do if allowed ("restart container x"), when the
    runbook proposed it and only the missing permission kept it from running; else None."""
    outcome = entry.outcome
    if entry.done or not outcome.startswith(NOT_ALLOWED):
        return None
    return outcome.removeprefix(NOT_ALLOWED).removeprefix("; ").removeprefix("would ")


def not_approved(action: str, approved: Sequence[str]) -> dict:
    """A mitigation the operator did not approve in this run: never run."""
    names = ", ".join(approved) or "none"
    return {"action": action, "done": False,
            "outcome": f"not run: the operator approved {names}, not this one"}  # fmt: skip


def restart_container(values: dict[str, Any], allowed: bool, live: bool) -> dict:
    name = values.get("container") or ""
    if not name:  # which container is the service's is the installation's to say
        return {"action": "restart_container", "done": False,
                "outcome": "no container configured (container in runbook.toml): nothing to restart"}  # fmt: skip
    skipped = _skip("restart_container", f"restart container {name}", allowed, live)
    if skipped:
        return skipped
    from runbook_lib.evidence import containers

    r = containers.restart(name)
    return {
        "action": "restart_container",
        "done": r.done,
        "outcome": r.detail if r.done else f"failed: {r.error}",
    }


def end_old_soffice(values: dict[str, Any], allowed: bool, live: bool) -> dict:
    """End the LibreOffice processes older than SOFFICE_MAX_AGE_S that the run's host
    snapshot lists (`values["processes"]`: a replay judges the incident's host, not
    today's); each is checked again before it is ended, so a reused pid is left alone."""
    pids = [
        p["pid"]
        for p in values.get("processes", [])
        if p.get("name") == "soffice"
        and p.get("status") != "zombie"
        and p.get("age_s", 0) > SOFFICE_MAX_AGE_S
    ]
    skipped = _skip(
        "end_old_soffice",
        f"end {len(pids)} soffice processes older than {SOFFICE_MAX_AGE_S:.0f}s {pids}",
        allowed,
        live,
    )
    if skipped:
        return skipped
    ended = [pid for pid in pids if _end_if_soffice(pid)]
    return {
        "action": "end_old_soffice",
        "done": True,
        "pids": ended,
        "outcome": f"ended {len(ended)} soffice processes: {ended}",
    }


def _end_if_soffice(pid: int) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.name() != "soffice" or proc.create_time() > time.time() - SOFFICE_MAX_AGE_S:
            return False  # gone, and the pid given to another process since the snapshot
        proc.kill()
    except psutil.Error:
        return False
    return True


def clean_temp_files(values: dict[str, Any], allowed: bool, live: bool) -> dict:
    directory = Path(values.get("temp_dir") or "/tmp")
    tf = host.temp_files(directory, older_than_s=TEMP_MAX_AGE_S)
    old = [f for f in tf.items if f.old]
    skipped = _skip(
        "clean_temp_files",
        f"delete {len(old)} ggen-mcp-* files older than a day in {directory}",
        allowed,
        live,
    )
    if skipped:
        return skipped
    freed = 0
    for f in old:
        try:
            if time.time() - Path(f.path).stat().st_mtime > TEMP_MAX_AGE_S:
                freed += Path(f.path).stat().st_size
                Path(f.path).unlink()
        except OSError:
            continue
    return {
        "action": "clean_temp_files",
        "done": True,
        "outcome": f"deleted {len(old)} files, freed {freed / 1e6:.1f} MB",
    }


ACTIONS: dict[str, Callable[[dict, bool, bool], dict]] = {
    "restart_container": restart_container,
    "end_old_soffice": end_old_soffice,
    "clean_temp_files": clean_temp_files,
}
