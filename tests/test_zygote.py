"""The kernel zygote: a kernel forked from it starts with what it needs already imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runbook_lib.execution.kernels import WARM_UP

# In a process of its own (a fork of a pytest worker would inherit its threads): the zygote's
# warm-up and its reading of the kernels' command line, then a fork that becomes a kernel as
# `zygote._become_kernel` does (in another directory when given one), up to the start of its
# loop, runs the warm-up code the engine sends every kernel first (`kernels.WARM_UP`), and
# reports the modules it had to import and what its application was configured with.
FORK_AND_INITIALIZE = """
import json, os, sys
from jupyter_client.connect import write_connection_file
from runbook_lib.execution import zygote
zygote.warm()
zygote.prepare_kernel_app()
work, report, warm_up, cwd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
connection, _ = write_connection_file(os.path.join(work, "k.json"), transport="ipc",
                                      ip=os.path.join(work, "k"))
before = set(sys.modules)
pid = os.fork()
if pid == 0:
    if cwd:
        os.chdir(cwd)
    app = zygote._kernel_app(connection)
    app.shell.run_cell(warm_up, silent=True, store_history=False).raise_error()
    with open(report, "w") as f:
        json.dump({"imported": sorted(set(sys.modules) - before),
                   "connection_file": app.connection_file,
                   "history": app.shell.history_manager.enabled,
                   "banner2": app.shell.banner2}, f)
    os._exit(0)
os.waitpid(pid, 0)
"""


def _fork(tmp_path: Path, cwd: str = "") -> dict:
    """The report of FORK_AND_INITIALIZE, with IPython's profile in tmp_path/ipython (not
    the user's ~/.ipython)."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-c", FORK_AND_INITIALIZE, str(tmp_path), str(report), WARM_UP, cwd],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(report.read_text())


def test_a_forked_kernel_imports_nothing_as_it_starts(tmp_path: Path) -> None:
    """Each module a fork imports is paid by every run (the shell's completer, debugger and
    inspector, tornado's asyncio platform were: 0.062-0.066 CPU-s and 7,250-7,340 page faults
    to initialize a fork with them, 0.051-0.060 and 6,650-6,675 without; the magics modules
    the warm-up's `%matplotlib` loads: 9-15 ms of CPU with them, 3-5 without)."""
    assert _fork(tmp_path)["imported"] == []


def test_a_fork_takes_the_command_line_the_zygote_read_and_its_own_connection(
    tmp_path: Path,
) -> None:
    """The zygote reads the kernels' command line once (~12 ms of each fork's start); each
    fork still listens where its connection file says, with KERNEL_ARGS in effect."""
    got = _fork(tmp_path)
    assert got["connection_file"] == str(tmp_path / "k.json")
    assert got["history"] is False  # --HistoryManager.enabled=False


def test_a_fork_elsewhere_has_the_profiles_config_and_not_the_directorys(tmp_path: Path) -> None:
    """What the zygote read includes the IPython profile's ipython_kernel_config.py, and a
    fork asked to start in another directory has just that: IPython 9 reads no config file
    from the working directory, the zygote's or the fork's."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text("c.InteractiveShell.banner2 = 'profile'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for here in (tmp_path, elsewhere):
        (here / "ipython_kernel_config.py").write_text("c.InteractiveShell.banner2 = 'cwd'\n")
    got = _fork(tmp_path, str(elsewhere))
    assert got["banner2"] == "profile" and got["history"] is False
    assert got["connection_file"] == str(tmp_path / "k.json")


def test_a_runbooks_first_cell_leaves_the_engine_to_the_engine() -> None:
    """A kernel not forked from the zygote (JupyterLab's, nbval's, `runbook run`'s) pays for
    every module the first cell imports: papermill, nbformat and jsonschema, which only the
    engine and `runbook lint` use, cost ~0.3 CPU-s of a fresh kernel's start."""
    probe = ("import sys; import runbook_lib.notebook.run; "
             "print(sorted(m for m in ('papermill', 'nbformat', 'jsonschema', 'nbclient')"
             " if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
