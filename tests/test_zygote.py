"""The kernel zygote: a kernel forked from it starts with what it needs already imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runbook_lib.execution.kernels import WARM_UP

# In a process of its own (a fork of a pytest worker would inherit its threads): the zygote's
# warm-up, then a fork that becomes a kernel as `zygote._become_kernel` does, up to the start
# of its loop, runs the warm-up code the engine sends every kernel first (`kernels.WARM_UP`),
# and reports the modules it had to import.
FORK_AND_INITIALIZE = """
import json, os, sys
from jupyter_client.connect import write_connection_file
from runbook_lib.execution import zygote
zygote.warm()
work, report, warm_up = sys.argv[1], sys.argv[2], sys.argv[3]
connection, _ = write_connection_file(os.path.join(work, "k.json"), transport="ipc",
                                      ip=os.path.join(work, "k"))
before = set(sys.modules)
pid = os.fork()
if pid == 0:
    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(["-f", connection, *zygote.KERNEL_ARGS])
    app.shell.run_cell(warm_up, silent=True, store_history=False).raise_error()
    with open(report, "w") as f:
        json.dump(sorted(set(sys.modules) - before), f)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_forked_kernel_imports_nothing_as_it_starts(tmp_path: Path) -> None:
    """Each module a fork imports is paid by every run (the shell's completer, debugger and
    inspector, tornado's asyncio platform were: 0.062-0.066 CPU-s and 7,250-7,340 page faults
    to initialize a fork with them, 0.051-0.060 and 6,650-6,675 without; the magics modules
    the warm-up's `%matplotlib` loads: 9-15 ms of CPU with them, 3-5 without)."""
    report = tmp_path / "imported.json"
    done = subprocess.run(
        [sys.executable, "-c", FORK_AND_INITIALIZE, str(tmp_path), str(report), WARM_UP],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(report.read_text()) == []


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
