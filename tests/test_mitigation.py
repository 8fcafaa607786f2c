"""The guarded mitigations judge the run's host snapshot: a replay says what it would have
done then, not what today's host holds; a live run ends only what it listed, checked again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from runbook_lib.diagnosis import mitigation
from runbook_lib.diagnosis.mitigation import end_old_soffice

THEN = [  # the incident's snapshot: one old soffice, one young, one old zombie, one other
    {"pid": 901, "name": "soffice", "status": "sleeping", "age_s": 4000.0},
    {"pid": 902, "name": "soffice", "status": "sleeping", "age_s": 30.0},
    {"pid": 903, "name": "soffice", "status": "zombie", "age_s": 5000.0},
    {"pid": 904, "name": "ggen-mcp-fork", "status": "sleeping", "age_s": 9000.0},
]


def test_a_replay_lists_the_old_soffice_of_its_snapshot_whatever_runs_today() -> None:
    out = end_old_soffice({"processes": THEN}, allowed=True, live=False)
    assert out == {
        "action": "end_old_soffice", "done": False,
        "outcome": "not run: this run replays a past incident; would end 1 soffice processes "
                   "older than 600s [901]",
    }  # fmt: skip


@pytest.fixture
def soffice(tmp_path: Path):
    """A process named soffice (a copy of sleep), ended afterwards."""
    exe = tmp_path / "soffice"
    shutil.copy(shutil.which("sleep"), exe)
    proc = subprocess.Popen([str(exe), "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_run_ends_the_listed_soffice_and_leaves_a_reused_pid_alone(
    soffice: subprocess.Popen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mitigation, "SOFFICE_MAX_AGE_S", 0.0)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        listed = [  # the snapshot's view; `other`'s pid stands for one reused since
            {"pid": soffice.pid, "name": "soffice", "status": "sleeping", "age_s": 5.0},
            {"pid": other.pid, "name": "soffice", "status": "sleeping", "age_s": 5.0},
        ]
        out = end_old_soffice({"processes": listed}, allowed=True, live=True)
        assert out["done"] is True and out["pids"] == [soffice.pid]
        assert soffice.wait(timeout=10) == -9
        assert psutil.Process(other.pid).is_running() and other.poll() is None
    finally:
        other.kill()
        other.wait()
