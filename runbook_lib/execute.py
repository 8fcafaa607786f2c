"""One queued run, in its own process: `python -m runbook_lib.execute` reads the run's
spec (JSON) on stdin and writes its record with the runner.

A process per run is what lets the pool bound a run's whole wall time and kill it with
everything it started: the worker pool sets RUNBOOK_RUN_MARK in this process's
environment, the Jupyter kernel inherits it, and the pool kills whatever carries the mark
when the run ends. This process also dies with the server (PR_SET_PDEATHSIG), and the
kernel's parent poller ends the kernel when this process dies.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the pool's sweep on restart still cleans up
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def main() -> int:
    spec = json.load(sys.stdin)
    die_with_parent(int(spec["parent_pid"]))
    from runbook_lib import runner

    rec = runner.run(
        spec["params"],
        Path(spec["output_dir"]),
        runbook=spec["runbook"],
        name=spec["record"],
        timeout=spec["cell_timeout"],
        start_timeout=spec["start_timeout"],
        extra=spec["extra"],
    )
    print(rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
