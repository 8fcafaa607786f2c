"""Profile: where a record's CPU goes on a warm worker, in the worker and in its kernel.

Starts the local stack (simulator, Prometheus, Alertmanager; no receiver) in a private
state directory, the simulator failing requests (`workload`: every record draws all its
charts), waits for some history, then runs the high_error_rate runbook N + 1 times
on a `service.warm_worker.Worker` (the pool's own path: a kernel forked warm from its
zygote, papermill, the export, the publish), with cProfile on in the worker process and
inside each run's kernel (enabled by a silent request before the notebook's first cell,
dumped by another after its last), timed by CPU (process) time, so waiting costs nothing.
Prints each record's CPU seconds (worker and kernel, from its timings.json) and, on each
side, the top functions by own CPU time and by CPU time with callees, summed over the
runs; the first run is left out (warm-up).

    .venv/bin/python -m benchmarks.record_profile --runs 3 [--top 10] [--no-profile]

With --no-profile nothing is profiled: the CPU seconds per record of the same runs, as the
pool pays them. The profiles are kept (kernel-N.prof, worker.prof) in the directory printed.

With --cells nothing is profiled either: the kernel's CPU seconds per cell (IPython's
pre/post_run_cell events, process time), what it spent before the first cell (its start after
the fork) and between cells (the kernel's messaging), median over the runs. cProfile slows
Python far more than the C it calls (Agg, zlib), so its shares mislead: the charts' PNGs
(`charts.png_bytes`) were 32% of a record's kernel CPU profiled, 39% timed by process time.

Figures depend on the machine and its load. cProfile slows what it profiles, so the CPU
seconds printed are the profiled runs'; `alert_to_record` gives the unprofiled figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient

from benchmarks import workload
from benchmarks.alert_to_record import phase_table
from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.execution import runner
from runbook_lib.execution.engine import RunSpec
from runbook_lib.execution.kernels import Kernel
from runbook_lib.lab import stack
from runbook_lib.service import warm_worker

KERNEL_ON = (
    "import cProfile, time; _rb_prof = cProfile.Profile(time.process_time); _rb_prof.enable()"
)
SORTS = (("tottime", "own CPU time"), ("cumulative", "CPU time with callees"))
KERNEL_OFF = "_rb_prof.disable(); _rb_prof.dump_stats({path!r})"
# Per cell: its first line and the kernel's process time it took; the kernel's start: its
# process time when this runs (a forked process starts from zero).
CELLS_ON = """
import time as _rb_t
_rb_cells, _rb_at = [], [None, ""]
def _rb_pre(info):
    _rb_at[:] = [_rb_t.process_time(), (info.raw_cell or "").strip().split("\\n")[0][:40]]
def _rb_post(result):
    _rb_cells.append((_rb_at[1], _rb_t.process_time() - _rb_at[0]))
get_ipython().events.register("pre_run_cell", _rb_pre)
get_ipython().events.register("post_run_cell", _rb_post)
_rb_start = _rb_t.process_time()
"""
CELLS_OFF = (
    "import json; json.dump({{'start': _rb_start, 'cells': _rb_cells, "
    "'window': _rb_t.process_time() - _rb_start}}, open({path!r}, 'w'))"
)


def silent(kernel: Kernel, code: str) -> None:
    """Run `code` in `kernel` without output or an execution count; wait for its reply."""
    kc = BlockingKernelClient()
    kc.load_connection_info(kernel.km.get_connection_info())
    kc.start_channels()
    try:
        msg_id = kc.execute(code, silent=True, store_history=False)
        while kc.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
            pass
    finally:
        kc.stop_channels()


def instrumented_worker(
    work: Path, kernel_prof: list[Path], on: str = KERNEL_ON, off: str = KERNEL_OFF
) -> warm_worker.Worker:
    """A warm worker whose kernels run `on` before a run and `off` after it, which writes
    into the next of `kernel_prof`'s paths (appended by the caller before each run)."""
    worker = warm_worker.Worker(f"{work}#", NOTEBOOKS, 60.0)
    acquire, execute = worker.acquire, worker.engine.run

    def acquire_profiled() -> Kernel:
        kernel = acquire()
        silent(kernel, on)
        return kernel

    def execute_then_dump(req, kernel: Kernel):
        try:
            return execute(req, kernel)
        finally:  # the worker kills the kernel next
            silent(kernel, off.format(path=str(kernel_prof[-1])))

    worker.acquire, worker.engine.run = acquire_profiled, execute_then_dump
    return worker


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="profiled runs after the warm-up run")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--no-profile", action="store_true", help="only CPU seconds per record")
    ap.add_argument("--cells", action="store_true", help="the kernel's CPU seconds per cell")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runbook-profile-"))
    info = stack.start(stack.StackOptions(state_dir=work / "state", any_free_port=True))
    try:
        workload.set_errors(info)
        time.sleep(20)  # some history for the charts, errors in it
        return profile(args, info, work)
    finally:
        stack.stop(work / "state")


def profile(args: argparse.Namespace, info: stack.StackInfo, work: Path) -> int:
    kernel_prof: list[Path] = []
    if args.cells:
        worker = instrumented_worker(work, kernel_prof, CELLS_ON, CELLS_OFF)
    elif args.no_profile:
        worker = warm_worker.Worker(f"{work}#", runner.NOTEBOOKS, 60.0)
    else:
        worker = instrumented_worker(work, kernel_prof)
    worker.warm()
    worker_prof, cpu, timings = cProfile.Profile(time.process_time), [], []
    labels = {"job": "ggen-mcp", "instance": f"127.0.0.1:{info.ports['ggen_mcp']}",
              "severity": "critical"}  # fmt: skip
    try:
        for i in range(args.runs + 1):
            params = runner.alert_params("GgenMcpHighErrorRate", labels, fp=f"prof{i:012x}",
                                         prometheus_url=info.urls["prometheus"],
                                         extra={"log_file": info.sim_log})  # fmt: skip
            spec = RunSpec(params=params, output_dir=work / "records", runbook="high_error_rate",
                           name=f"prof-{i}", cell_timeout=120, run_timeout=300)  # fmt: skip
            kernel_prof.append(work / f"kernel-{i}.prof")
            if i and not (args.no_profile or args.cells):
                worker_prof.enable()
            rec = worker.run(spec)
            worker_prof.disable()
            timings.append(json.loads((rec / "timings.json").read_text()))
            print(f"  run {i}: cpu {timings[-1]['cpu']}, {timings[-1]['phases']['total']} s, "
                  f"{workload.charts_drawn(rec)} charts", flush=True)  # fmt: skip
            if i:
                cpu.append(timings[-1]["cpu"]["worker_s"] + timings[-1]["cpu"]["kernel_s"])
            worker.prepare()
    finally:
        worker.close()
    how = "unprofiled" if args.no_profile or args.cells else "profiled"
    print(f"\nCPU per record (worker + kernel, {how}), median of {len(cpu)}: "
          f"{statistics.median(cpu):.2f} s")  # fmt: skip
    print(f"\nWhere a record's time goes ({how}; seconds, median and p95 of {len(cpu)})")
    for name, p50, p95 in phase_table(timings[1:]):
        print(f"  {name:<50} {p50:7.3f} {p95:7.3f}")
    if args.cells:
        print_cells([json.loads(p.read_text()) for p in kernel_prof[1:]], timings[1:])
    if args.no_profile or args.cells:
        return 0
    worker_prof.dump_stats(str(work / "worker.prof"))
    sides = {
        "kernel": pstats.Stats(*map(str, kernel_prof[1:])),
        "worker": pstats.Stats(worker_prof),
    }
    for (side, stats), (key, what) in itertools.product(sides.items(), SORTS):
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats(key).print_stats(args.top)
        body = buf.getvalue().split("   ncalls", 1)[-1]
        print(f"\n== {side}: top {args.top} by {what}, summed over {len(cpu)} runs ==")
        print("   ncalls" + body.rstrip())
    print(f"\nprofiles: {work}")
    return 0


def print_cells(kernels: list[dict], timings: list[dict]) -> None:
    """The kernel's CPU seconds by cell, with its start and what the cells leave over."""
    rows: dict[str, list[float]] = {}
    for k, t in zip(kernels, timings, strict=True):
        cells = sum(c for _, c in k["cells"])
        for i, (first, cpu) in enumerate(k["cells"]):
            rows.setdefault(f"code cell {i + 1:>2} {first}", []).append(cpu)
        rows.setdefault("cells, all", []).append(cells)
        rows.setdefault("start (after the fork, before the run)", []).append(k["start"])
        rows.setdefault("between cells (messaging)", []).append(k["window"] - cells)
        rows.setdefault("kernel, in all", []).append(t["cpu"]["kernel_s"])
    print(f"\nThe kernel's CPU seconds (process time, unprofiled), median of {len(kernels)}")
    for name, cpu in rows.items():
        print(f"  {name:<50} {statistics.median(cpu):7.3f}")


if __name__ == "__main__":
    sys.exit(main())
