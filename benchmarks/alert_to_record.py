"""Benchmark: how fast an alert becomes an incident record, alone and in a storm, and where
the time goes.

Starts the local stack (simulator, Prometheus, Alertmanager, receiver with its warm workers)
in a private state directory, the simulator failing requests so that every record is the
full one people get when errors are present (`workload`: all its charts; the figures say
how many each record drew), then:

1. latency: N alerts posted one after another, each waiting for its record; webhook
   accepted -> record.html written (the receiver's own timestamps), median and p95, with
   each phase of the run (queue wait, hand-over to a worker, kernel acquisition,
   parameterize, every cell of the notebook, export, publish) from the records' timings.json; next to a plain `papermill`
   CLI run of the same notebook against the same Prometheus, in the same run;
2. storm: M distinct warning alerts posted within 10 s from 8 threads, and one critical
   alert posted in their middle; time until every record exists, records per second,
   webhook p99, duplicates and losses, the critical's time to its record (does it wait
   behind the warnings queued before it?), the peak memory of the receiver with all
   its workers, zygotes and kernels (RSS summed, and PSS, which counts pages shared
   copy-on-write once), and the CPU seconds per record of each part (`StormCpu`): the
   runs' kernels and workers, the receiver, Prometheus, the simulator ..., and the machine;
3. kernels: Jupyter kernels on the machine before the stack starts and after it stops.

CPU per record: the worker's process time from taking the kernel to publishing the record,
plus the kernel's CPU (its process and the children it waited for, its warm-up included),
from the single alerts' timings.json; the receiver's own CPU is not in it.

Prints figures; asserts nothing about time. `make bench` runs it with the issue's sizes:
    .venv/bin/python -m benchmarks.alert_to_record --alerts 20 --storm 200 [--json]
With --json the last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from benchmarks import workload
from runbook_lib.contract.settings import ROOT
from runbook_lib.incidents.index import Index
from runbook_lib.lab import pids, stack
from runbook_lib.records import record
from runbook_lib.storage.migrations.schema import INCIDENTS, RUNS

PHASES = ("queue", "handoff", "kernel", "parameterize", "execute", "export", "publish")


def group(i: int, instance: str, tag: str, warning: bool = False) -> dict:
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "GgenMcpElevatedErrorRate" if warning else "GgenMcpHighErrorRate",
            "severity": "warning" if warning else "critical",
            "job": "ggen-mcp",
            "instance": instance,
            "bench": f"{tag}-{i}",
        },
        "annotations": {"summary": "benchmark alert"},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fingerprint": f"{tag}{i:012x}"[-16:],
    }
    return {"version": "4", "groupKey": f"{tag}{i}", "status": "firing", "receiver": "bench",
            "alerts": [alert]}  # fmt: skip


class Receiver:
    def __init__(self, info: stack.StackInfo) -> None:
        self.url = info.urls["runbook"]
        self.state_dir = Path(info.state_dir)
        self.token = Path(info.token_file).read_text().strip()
        self.index = Index(Path(info.output_dir) / "index.sqlite")
        [rec] = [r for r in pids.records(self.state_dir / "pids") if r.name == "runbook"]
        self.proc = psutil.Process(rec.pid)
        self.client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.token}"})

    def post(self, body: dict) -> float:
        t = time.perf_counter()
        r = self.client.post(f"{self.url}/alerts", json=body)
        r.raise_for_status()
        return time.perf_counter() - t

    def time_to_record(self, run: dict) -> float:
        """Webhook accepted -> record.html written, by the receiver's own timestamps."""
        rec = Path(self.index.path.parent) / run["record"]
        return (rec / "record.html").stat().st_mtime - run["received_at"]

    def runs(self) -> list[dict]:
        return [r.model_dump() | {"received_at": i.received_at, "fp": i.fingerprint}
                for i in self.index.incidents(100_000) for r in i.runs]  # fmt: skip

    def family(self) -> list[psutil.Process]:
        """The receiver and everything under it: workers, zygotes, kernels."""
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return []


def done(index: Index) -> dict[str, int]:
    """Runs done so far by their fingerprint's first two characters (the storm's tags, "st"
    and "cr"): one counting query for a storm's poll (reading every run took the benchmark
    ~25 ms a poll at the end of a storm: CPU taken from the machine it measures)."""
    tag = sa.func.substr(INCIDENTS.c.fingerprint, 1, 2)
    query = (sa.select(tag, sa.func.count()).select_from(RUNS.join(INCIDENTS))
             .where(RUNS.c.state == "done").group_by(tag))  # fmt: skip
    with index.read() as conn:
        return dict(conn.execute(query).all())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def kernels() -> int:
    """Jupyter kernels on this machine: started ones and ones forked from a zygote."""
    n = 0
    for p in psutil.process_iter(["cmdline", "ppid"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "ipykernel" in cmd:
            n += 1
        elif "runbook_lib.execution.zygote" in cmd:
            try:
                parent = " ".join(psutil.Process(p.info["ppid"]).cmdline())
            except psutil.Error:
                continue
            n += "runbook_lib.execution.zygote" in parent  # a fork of the zygote is a kernel
    return n


def latency(rx: Receiver, instance: str, n: int) -> tuple[list[float], list[dict], list[Path]]:
    out, timings, records = [], [], []
    for i in range(n):
        rx.post(group(i, instance, "lat"))
        while True:
            done = [r for r in rx.runs() if r["fp"].startswith("lat") and r["state"] == "done"]
            if len(done) > i:
                break
            time.sleep(0.1)  # the figure comes from the run's own times, not this poll
        run = max(done, key=lambda r: r["finished_at"])
        rec = Path(rx.index.path.parent) / run["record"]
        out.append(rx.time_to_record(run))
        records.append(rec)
        if (rec / "timings.json").exists():
            timings.append(json.loads((rec / "timings.json").read_text()))
        print(f"  alert {i + 1:>3}/{n}: webhook accepted -> record.html {out[-1]:5.2f}s",
              flush=True)  # fmt: skip
    return out, timings, records


def phase_table(timings: list[dict]) -> list[tuple[str, float, float]]:
    """(phase or cell, median s, p95 s) over the runs."""
    by: dict[str, list[float]] = defaultdict(list)
    for t in timings:
        for phase in PHASES:
            if phase in t["phases"]:
                by[phase].append(t["phases"][phase])
        for cell in t["cells"]:
            by[f"  cell {cell['cell']:>2} {cell['source'][:40]}"].append(cell["seconds"])
    order = ["queue", "handoff", "kernel", "parameterize", "execute"]
    order += sorted(k for k in by if k.startswith("  cell"))
    order += ["export", "publish"]
    return [(k, statistics.median(by[k]), pct(by[k], 95)) for k in order if by.get(k)]


def papermill_cli(info: stack.StackInfo, instance: str, work: Path) -> float:
    cmd = [str(Path(sys.executable).with_name("papermill")), str(ROOT / "notebooks/high_error_rate.ipynb"),
           str(work / "plain.ipynb"), "-k", "python3", "--no-progress-bar",
           "-p", "prometheus_url", info.urls["prometheus"], "-p", "alert_name", "GgenMcpHighErrorRate",
           "-y", f'labels: {{alertname: GgenMcpHighErrorRate, job: ggen-mcp, instance: "{instance}"}}',
           "-p", "log_file", info.sim_log]  # fmt: skip
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


class MemorySampler:
    """Peak RSS (summed) and PSS of the receiver's whole process family, sampled: RSS every
    0.25 s, PSS every 2 s. PSS walks every process's page tables (~5 ms a process here):
    sampled as often as RSS, the sampler itself took 0.23 CPU-s per storm record, an eighth
    of the machine the storm is measured on."""

    RSS_EVERY_S, PSS_EVERY = 0.25, 8  # PSS on every 8th sample

    def __init__(self, rx: Receiver) -> None:
        self.rx, self.rss, self.pss = rx, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for n in itertools.count():
            family = self.rx.family()
            self.rss = max(self.rss, sum(_mem(p, "memory_info", "rss") for p in family))
            if n % self.PSS_EVERY == 0:
                self.pss = max(self.pss, sum(_mem(p, "memory_full_info", "pss") for p in family))
            if self._stop.wait(self.RSS_EVERY_S):
                return

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class StormCpu:
    """Where the storm's CPU goes, per record: the runs' kernels (from their timings.json)
    and each long-lived process of the stack (its CPU time before and after: the workers,
    the receiver, Prometheus ..., and this benchmark posting and waiting), next to the
    whole machine's busy time (other work on it included)."""

    def __init__(self, rx: Receiver) -> None:
        self.procs = {"receiver": [rx.proc], "benchmark": [psutil.Process()]}
        state = rx.state_dir
        for rec in pids.records(state / "pids") + pids.records(state / "sim" / "pids"):
            if rec.name != "runbook":
                self.procs.setdefault(rec.name, []).append(psutil.Process(rec.pid))
        for child in rx.proc.children(recursive=True):
            cmd = " ".join(child.cmdline())
            if "warm_worker" in cmd:
                self.procs.setdefault("workers", []).append(child)  # their runs' share too
            elif "execution.zygote" in cmd and "zygote" not in " ".join(child.parent().cmdline()):
                self.procs.setdefault("zygotes (forks)", []).append(child)  # not its kernels
        self.before = self._sample()

    def _sample(self) -> dict[str, float]:
        out = {part: sum(map(_cpu, procs)) for part, procs in self.procs.items()}
        times = psutil.cpu_times()
        out["machine busy"] = sum(times) - times.idle - times.iowait
        return out

    def per_record(self, records: list[Path]) -> dict[str, float]:
        after, n = self._sample(), len(records)
        runs = [json.loads((d / "timings.json").read_text())["cpu"] for d in records
                if (d / "timings.json").exists()]  # fmt: skip
        out = {"kernels": sum(c["kernel_s"] for c in runs) / n}
        for part in self.before:
            out[part] = (after[part] - self.before[part]) / n
        return {k: round(v, 3) for k, v in out.items()}


def _mem(p: psutil.Process, how: str, field: str) -> int:
    try:
        return getattr(getattr(p, how)(), field)
    except psutil.Error:
        return 0


def _cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def cpu_per_record(timings: list[dict]) -> list[float]:
    """CPU seconds of each record: its worker's and its kernel's (see timings.json)."""
    return [t["cpu"]["worker_s"] + t["cpu"]["kernel_s"] for t in timings if "cpu" in t]


def storm(rx: Receiver, instance: str, n: int) -> dict:
    bodies = [group(i, instance, "st", warning=True) for i in range(n)]
    bodies.insert(n // 2, group(0, instance, "cr"))  # one critical in the middle
    cpu = StormCpu(rx)
    with MemorySampler(rx) as mem:
        t0, t0_wall = time.perf_counter(), time.time()
        with ThreadPoolExecutor(8) as pool:  # spread over 10 s, like Alertmanager flushing
            futures = []
            for i, body in enumerate(bodies):
                futures.append(pool.submit(rx.post, body))
                time.sleep(max(0.0, t0 + 10 * (i + 1) / n - time.perf_counter()))
            responses = [f.result() for f in futures]
        posted = time.perf_counter() - t0
        print(f"  {n} warnings and 1 critical posted in {posted:.1f}s; waiting for the "
              "records ...", flush=True)  # fmt: skip
        last, critical = -1, []
        while True:
            counts = done(rx.index)
            finished = counts.get("st", 0)
            if finished != last and finished % 20 == 0:
                print(f"  {finished}/{n} records after {time.perf_counter() - t0:.0f}s", flush=True)
                last = finished
            if not critical and counts.get("cr"):
                critical = [
                    r for r in rx.runs() if r["fp"].startswith("cr") and r["state"] == "done"
                ]
                print(f"  the critical alert's record: {rx.time_to_record(critical[0]):.1f}s "
                      f"after it was accepted ({finished}/{n} warnings' records done by then)",
                      flush=True)  # fmt: skip
            if finished >= n and critical:
                break
            time.sleep(0.5)
        runs = [r for r in rx.runs() if r["fp"].startswith("st")]
        total = max(r["finished_at"] for r in [*runs, *critical]) - t0_wall  # not the poll's
    per_fp: dict[str, int] = {}
    records = []
    for d in rx.index.path.parent.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            fp = record.summary(d).fingerprint
            if fp.startswith("st"):
                per_fp[fp] = per_fp.get(fp, 0) + 1
                records.append(d)
    return {
        "storm_alerts": n,
        "storm_posted_s": posted,
        "storm_all_records_s": total,
        "storm_records_per_s": (n + 1) / total,
        "critical_under_storm_s": rx.time_to_record(critical[0]),
        "webhook_p99_ms": pct(responses, 99) * 1000,
        "webhook_max_ms": max(responses) * 1000,
        "storm_duplicates": sum(c - 1 for c in per_fp.values() if c > 1),
        "storm_losses": n - len(per_fp),
        "storm_statuses": {s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}},
        "storm_charts_per_record": workload.chart_counts(records),
        "storm_cpu_s_per_record": cpu.per_record(records),
        "peak_rss_mb": mem.rss / 2**20,
        "peak_pss_mb": mem.pss / 2**20,
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=20, help="sequential alerts for latency")
    ap.add_argument("--storm", type=int, default=200, help="warnings in the storm (0: skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--plain-runs", type=int, default=3, help="plain papermill CLI runs")
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    # Each benchmark alert stands for a fault of its own (on the one simulator instance the
    # notebooks can query): not joined into one incident, nor held for a real alert.
    workload.isolated()
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    kernels_before = kernels()
    print(f"Starting the local stack in {work} ({args.workers} workers) ...", flush=True)
    info = stack.start(stack.StackOptions(state_dir=work / "state", any_free_port=True,
                                          webhook_url=workload.NOWHERE,
                                          receiver=True, output_dir=work / "records",
                                          workers=args.workers))  # fmt: skip
    figures: dict = {}
    try:
        rx = Receiver(info)
        instance = f"127.0.0.1:{info.ports['ggen_mcp']}"
        workload.set_errors(info)
        time.sleep(20)  # some history for the charts, errors in it, and the workers warm
        print(f"[1/3] Latency over {args.alerts} alerts, one at a time", flush=True)
        lat, timings, records = latency(rx, instance, args.alerts)
        print(f"[2/3] Plain papermill CLI, {args.plain_runs} runs of the same notebook", flush=True)
        plain = [papermill_cli(info, instance, work) for _ in range(args.plain_runs)]
        figures |= {
            "alert_to_record_p50_s": statistics.median(lat),
            "alert_to_record_p95_s": pct(lat, 95),
            "papermill_cli_p50_s": statistics.median(plain),
            "charts_per_record": workload.chart_counts(records),
        }
        figures["ratio_to_papermill_cli"] = figures["alert_to_record_p50_s"] / statistics.median(
            plain
        )
        if cpu := cpu_per_record(timings):
            figures["cpu_s_per_record_p50"] = statistics.median(cpu)
        table = phase_table(timings)
        if args.storm:
            print(f"[3/3] Storm of {args.storm} distinct warnings within 10 s, one critical "
                  "in their middle", flush=True)  # fmt: skip
            figures |= storm(rx, instance, args.storm)
    finally:
        stack.stop(work / "state")
    time.sleep(1)
    figures |= {"kernels_before": kernels_before, "kernels_left": kernels()}
    print("\nWhere an alert's time goes (single alerts; seconds)")
    print(f"  {'phase':<50} {'p50':>7} {'p95':>7}")
    for name, p50, p95 in table:
        print(f"  {name:<50} {p50:7.3f} {p95:7.3f}")
    print("\nFigures")
    for k, v in figures.items():
        print(f"  {k:<40} {v:.2f}" if isinstance(v, float) else f"  {k:<40} {v}")
    print(f"records and index: {work / 'records'}")
    if args.json:
        figures["phases"] = {name.strip(): [p50, p95] for name, p50, p95 in table}
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
