"""The kernel zygote: a process that has already imported what every runbook notebook imports
(pandas, matplotlib with its inline backend, the library), drawn one chart and made the
figures of a record's charts ahead (`figures.make_spares`), and that forks a fresh Jupyter
kernel per run on request. A forked kernel starts with all of that in memory
(copy-on-write) in a fraction of a second, instead of paying 2-3 s of interpreter start-up
and imports per run; and since the zygote itself never runs notebook code, each kernel is
as clean as a new process.

Protocol (`python -m runbook_lib.execution.zygote`): one JSON request per line on stdin,
`{"connection_file": ..., "mark": ..., "cwd": ...}`, answered by `{"pid": N}` on stdout once
the child exists. The zygote exits when stdin closes or its parent dies.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.contract.environ import TEXT_SPOOL

if TYPE_CHECKING:
    from ipykernel.kernelapp import IPKernelApp

# Forking is safe only while this process has one thread: numerical libraries must not
# start thread pools at import.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's frozen-module note

MARK = "RUNBOOK_RUN_MARK"
# What a runbook's cells import: the first cell's `notebook.start` (pandas, matplotlib and
# the library: ~0.7 s of CPU a run when left to the kernel), then what the cells import on
# first use (resolution, mitigation, containers; notebook.run itself imports the
# message and the summary cells' modules).
NOTEBOOK_IMPORTS = (
    "runbook_lib.notebook.run",
    "runbook_lib.diagnosis.mitigation",
    "runbook_lib.diagnosis.resolution",
    "runbook_lib.evidence.containers",
    "pandas.io.formats.string",  # a table's text
)
# What a kernel imports as it starts (ipykernel's debugger brings debugpy, ~140 modules:
# half a kernel's start-up CPU; the shell's own, from IPython.core.completerlib on, were what
# a fork still imported in `IPKernelApp.initialize`), imported once here instead of by every fork.
KERNEL_IMPORTS = (
    "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "pdb",
    "IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect",
    "IPython.extensions.storemagic", "IPython.utils.wildcard", "faulthandler",
    "tornado.platform.asyncio",
    # and what the warm-up's `%matplotlib inline` loads (IPython 9 loads magics lazily)
    "IPython.core.magics.pylab", "IPython.core.magics.execution",
)  # fmt: skip
# Chart figures made ahead, by axes count: what one record draws (the overview, pairs of
# charts, single charts, the diagnosis' attribution); a record that draws more makes them.
SPARE_FIGURES = {4: 1, 2: 3, 1: 4}
KERNEL_ARGS = ("--HistoryManager.enabled=False",)  # no shared history.sqlite to lock


def warm() -> None:
    """Import and exercise what the notebooks use, so every fork inherits it ready."""
    import matplotlib.pyplot as plt
    import matplotlib_inline.backend_inline  # noqa: F401
    import pandas as pd
    from ipykernel.kernelapp import IPKernelApp  # noqa: F401

    from runbook_lib.evidence.panels import PANELS, PanelData
    from runbook_lib.notebook import charts, figures

    for module in (*KERNEL_IMPORTS, *NOTEBOOK_IMPORTS):  # else each run imports them anew
        importlib.import_module(module)

    # One chart end to end (lines, thresholds, the firing band, a date axis, an empty
    # panel): fonts, text layout and the PNG writer load now, not in each run.
    times = pd.date_range("2026-01-01", periods=30, freq="20s", tz="UTC")
    frame = pd.DataFrame({"timestamp": times, "series": "", "value": range(30)})
    data = PanelData(PANELS["error_rate"], frame)
    empty = PanelData(PANELS["memory"], frame.iloc[0:0], ["warm-up"])
    fig = charts.grid([data, empty], times[10], None)
    charts.png_bytes(fig)
    plt.close(fig)
    figures.make_spares(SPARE_FIGURES)


def serve(requests, replies, spool: str | None = None) -> None:
    """Fork a kernel per request; before each, take in the texts the earlier kernels drew
    (`rendering.TEXT.absorb`), so that the next one finds them ready."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernels reap themselves
    for line in requests:
        req = json.loads(line)
        if spool:
            _absorb(spool)
        pid = os.fork()
        if pid == 0:
            if spool:
                os.environ[TEXT_SPOOL] = spool  # where it hands its own (`rendering.hand_over`)
            _become_kernel(req["connection_file"], req["mark"], req.get("cwd"), os.getppid())
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()


def _absorb(spool: str) -> None:
    from runbook_lib.notebook.rendering import TEXT

    try:
        TEXT.absorb(Path(spool))
        TEXT.hand_down()
    except Exception as exc:  # a file cut short, a spool removed: the kernels draw all the same
        print(f"zygote: texts in {spool} not taken in: {exc!r}", file=sys.stderr)
    gc.freeze()  # what the next kernels inherit: out of their collections (see `main`)


def _become_kernel(connection_file: str, mark: str, cwd: str | None, zygote: int) -> None:
    """In the forked child: a kernel of its own session, dying with the zygote."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # cells wait for their children
        os.setsid()
        from runbook_lib.execution.lifetime import die_with_parent

        die_with_parent(zygote)
        os.environ[MARK] = mark  # inherited by whatever a cell starts
        if cwd:
            os.chdir(cwd)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        _kernel_app(connection_file).start()
    finally:
        os._exit(0)


def prepare_kernel_app() -> None:
    """The kernels' application with its command line and config files read, once, here:
    each fork would otherwise build traitlets' argument parser and look for config files
    anew (~12 ms of its ~60 ms start). IPython 9 reads them from the profile and the
    system's directories, not the working directory, so a fork elsewhere reads the same.
    The connection file is each fork's own (`_kernel_app`)."""
    from ipykernel.kernelapp import IPKernelApp
    from IPython.core.application import BaseIPythonApplication

    hook = sys.excepthook
    BaseIPythonApplication.initialize(IPKernelApp.instance(), list(KERNEL_ARGS))
    sys.excepthook = hook  # IPython's crash handler is for the kernels (`_kernel_app`)


def _kernel_app(connection_file: str) -> IPKernelApp:
    """The forked kernel's IPKernelApp, initialized from what `prepare_kernel_app` read
    in the zygote (`main` runs it before the first fork)."""
    from ipykernel.kernelapp import IPKernelApp
    from IPython.core.application import BaseIPythonApplication

    app = IPKernelApp.instance()
    app.connection_file = connection_file
    sys.excepthook = app.excepthook
    read = BaseIPythonApplication.initialize
    BaseIPythonApplication.initialize = lambda self, argv=None: None  # done: prepared
    try:
        app.initialize([])  # the rest: sockets, the kernel, its shell
    finally:
        BaseIPythonApplication.initialize = read
    return app


def main() -> int:
    from runbook_lib.execution.lifetime import die_with_parent

    die_with_parent(int(os.environ.get("RUNBOOK_PARENT_PID", os.getppid())))
    spool = os.environ.pop(TEXT_SPOOL, None)  # the kernels', not the warm-up's
    warm()
    prepare_kernel_app()
    from runbook_lib.notebook.rendering import TEXT

    TEXT.hand_down()
    # What the kernels inherit is never garbage: kept out of their collections, which would
    # otherwise walk (and so copy, page by page) the whole inherited heap: ~0.1 s a run.
    gc.collect()
    gc.freeze()
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to the log, not into the protocol
    sys.stdout = sys.stderr
    replies.write(json.dumps({"ready": os.getpid()}) + "\n")
    replies.flush()
    serve(sys.stdin, replies, spool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
