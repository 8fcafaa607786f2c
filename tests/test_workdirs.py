"""Kernels' and zygotes' private directories: a worker killed outright leaves its own, and
the next process to make one removes them (not a live owner's, not strangers')."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from runbook_lib.execution import workdirs

MAKE_AND_DIE = """
import os, tempfile
tempfile.tempdir = {base!r}
from runbook_lib.execution import workdirs
print(workdirs.make("kernel"), workdirs.make("text"), flush=True)
os.kill(os.getpid(), 9)
"""


def _made_by_a_killed_process(base: Path) -> list[Path]:
    done = subprocess.run([sys.executable, "-c", MAKE_AND_DIE.format(base=str(base))],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == -9, done.stderr
    made = [Path(p) for p in done.stdout.split()]
    assert len(made) == 2 and all(p.is_dir() and p.parent == base for p in made), made
    return made


def test_a_killed_owners_directories_go_and_nothing_else(tmp_path: Path) -> None:
    left = _made_by_a_killed_process(tmp_path)
    mine = tmp_path / f"rbk-{os.getpid()}-kernel-abcdefgh"  # a live owner (this test)
    stranger = tmp_path / "rbk-notes"  # not ours: never touched
    a_file = tmp_path / "rbk-1-kernel-file"  # not a directory
    old = tmp_path / "rbk-k2x_9abc"  # named before owners were: a day old goes
    old_text = tmp_path / "rbk-text-1pgcervp"
    young = tmp_path / "rbk-y7q9_ssz"  # ... a younger one stays
    for d in (mine, stranger, old, old_text, young):
        d.mkdir()
    a_file.write_text("x")
    day_ago = time.time() - workdirs.UNOWNED_AGE_S - 60
    for d in (old, old_text):
        os.utime(d, (day_ago, day_ago))
    (left[0] / "k-1").write_text("")  # a socket's name, as a kernel leaves it

    gone = workdirs.sweep(tmp_path)

    assert sorted(gone) == sorted([*left, old, old_text])
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in (mine, stranger, a_file, young))


def test_the_first_directory_a_process_makes_sweeps_once(tmp_path: Path, monkeypatch) -> None:
    left = _made_by_a_killed_process(tmp_path)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(workdirs, "_swept", set())
    made = workdirs.make("kernel")
    assert made.name.startswith(f"rbk-{os.getpid()}-kernel-") and made.is_dir()
    assert not any(p.exists() for p in left)
    again = _made_by_a_killed_process(tmp_path)
    workdirs.make("text")  # the sweep is done once a process: these stay until the next
    assert all(p.exists() for p in again)
