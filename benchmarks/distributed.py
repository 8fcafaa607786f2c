"""Benchmark: the 200-alert storm in distributed mode (Celery on Redis, the index in
PostgreSQL) with 1 and with 2 worker processes, next to the embedded mode, in one run.

Starts the local stack (simulator, Prometheus) once, the simulator failing requests
(`workload`); then for each configuration a fresh
Redis and PostgreSQL (or, for the embedded mode, a fresh SQLite index), one receiver and
the workers, each a process of its own standing for a machine. For each it prints records
per second (first alert posted -> last record filed), the p50 and p95 alert -> record
(webhook accepted -> record.html), duplicates and losses (records per fingerprint); then
2 workers' records per second over 1 worker's, with the workers sharing the machine's cores
and with each on a core of its own (`RUNS`).

    .venv/bin/python -m benchmarks.distributed --storm 200 [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks import workload
from benchmarks.alert_to_record import done, group, pct
from runbook_lib.incidents.index import Index
from runbook_lib.lab import stack
from runbook_lib.lab.backing import LocalCluster, Node
from runbook_lib.lab.stack import free_port
from runbook_lib.records import record

TOKEN = "bench-token"


def storm(url: str, index: Index, records: Path, instance: str, n: int) -> dict:
    client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
    bodies = [group(i, instance, "st") for i in range(n)]
    t0, t0_wall = time.perf_counter(), time.time()

    def send(body: dict) -> float:
        t = time.perf_counter()
        client.post(f"{url}/alerts", json=body).raise_for_status()
        return time.perf_counter() - t

    with ThreadPoolExecutor(8) as pool:
        futures = []
        for i, body in enumerate(bodies):
            futures.append(pool.submit(send, body))
            time.sleep(max(0.0, t0 + 10 * (i + 1) / n - time.perf_counter()))
        webhook = [f.result() for f in futures]
    last = -1
    while True:
        finished = done(index).get("st", 0)
        if finished != last and finished % 50 == 0:
            print(f"    {finished}/{n} records after {time.perf_counter() - t0:.0f}s", flush=True)
            last = finished
        if finished >= n:
            break
        time.sleep(0.5)
    runs = [r.model_dump() | {"received_at": i.received_at} for i in index.incidents(10_000)
            for r in i.runs]  # fmt: skip
    total = max(r["finished_at"] for r in runs) - t0_wall  # not the poll's
    latency = [(records / r["record"] / "record.html").stat().st_mtime - r["received_at"]
               for r in runs]  # fmt: skip
    per_fp: dict[str, int] = {}
    for d in records.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            fp = record.summary(d).fingerprint
            per_fp[fp] = per_fp.get(fp, 0) + 1
    return {
        "records_per_s": round(n / total, 3),
        "all_records_s": round(total, 1),
        "alert_to_record_p50_s": round(statistics.median(latency), 2),
        "alert_to_record_p95_s": round(pct(latency, 95), 2),
        "webhook_p99_ms": round(pct(webhook, 99) * 1000, 1),
        "duplicates": sum(c - 1 for c in per_fp.values() if c > 1),
        "losses": n - len(per_fp),
    }


def embedded(work: Path, prometheus: str, instance: str, n: int, workers: int) -> dict:
    out = work / "records"
    port = free_port()
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook_lib.cli", "serve", "--port", str(port), "--output",
         str(out), "--workers", str(workers), "--prometheus-url", prometheus],
        env={**os.environ, "RUNBOOK_WEBHOOK_TOKEN": TOKEN}, stdout=log, stderr=log,
        start_new_session=True,
    )  # fmt: skip
    node = Node("embedded", proc, work / "serve.log", f"http://127.0.0.1:{port}")
    try:
        _up(node.url)
        time.sleep(5)  # the workers warm their kernels
        return storm(node.url, Index(out / "index.sqlite"), out, instance, n)
    finally:
        node.stop()
        log.close()


def distributed(
    work: Path, prometheus: str, instance: str, n: int, workers: int, own_core: bool = False
) -> dict:
    """`workers` worker processes; with `own_core`, each on a core of its own (worker i on
    core i), as machines would be, instead of all sharing the machine's cores."""
    cluster = LocalCluster(work, token=TOKEN, run_args=["--prometheus-url", prometheus])
    cluster.start()
    cores = sorted(os.sched_getaffinity(0))
    try:
        rx = cluster.receiver("receiver")
        for i in range(workers):
            cpus = {cores[i % len(cores)]} if own_core else None
            cluster.worker(f"worker-{i + 1}", 1, cpus=cpus)
        time.sleep(8)  # the workers warm their kernels
        return storm(rx.url, Index(url=cluster.postgres.url), cluster.records, instance, n)
    finally:
        cluster.stop()


# (name, how, workers). "1 worker" alone on a 2-core machine also borrows the other core
# (its next kernel starts beside its run), which a machine of its own would not have: the
# "a core each" pair compares workers as machines, each with its core
RUNS = [
    ("embedded, 2 workers", embedded, 2),
    ("distributed, 1 worker", distributed, 1),
    ("distributed, 2 workers", distributed, 2),
    ("1 worker, a core", functools.partial(distributed, own_core=True), 1),
    ("2 workers, a core each", functools.partial(distributed, own_core=True), 2),
]
SCALING = {
    "sharing the cores": ("distributed, 1 worker", "distributed, 2 workers"),
    "a core each": ("1 worker, a core", "2 workers, a core each"),
}


def _up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storm", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = ap.parse_args()
    workload.isolated()  # each alert a fault of its own, as above
    work = Path(tempfile.mkdtemp(prefix="runbook-bench-dist-"))
    print(f"Starting the local stack in {work} ...", flush=True)
    info = stack.start(stack.StackOptions(state_dir=work / "state", any_free_port=True,
                                          webhook_url=workload.NOWHERE))  # fmt: skip
    figures: dict[str, dict] = {}
    try:
        prometheus = info.urls["prometheus"]
        instance = f"127.0.0.1:{info.ports['ggen_mcp']}"
        workload.set_errors(info)  # every record the full one, as in alert_to_record
        time.sleep(20)  # some history for the charts, errors in it
        for i, (name, fn, workers) in enumerate(RUNS, 1):
            print(f"[{i}/{len(RUNS)}] {name}: storm of {args.storm} alerts", flush=True)
            sub = work / name.replace(", ", "-").replace(" ", "-")
            sub.mkdir()
            figures[name] = fn(sub, prometheus, instance, args.storm, workers)
    finally:
        stack.stop(work / "state")
    keys = list(next(iter(figures.values())))
    print(f"\n{'':<22}" + "".join(f"{k:>25}" for k in figures))
    for k in keys:
        print(f"{k:<22}" + "".join(f"{f[k]:>25}" for f in figures.values()))
    scaling = {
        how: round(figures[two]["records_per_s"] / figures[one]["records_per_s"], 2)
        for how, (one, two) in SCALING.items()
    }
    for how, ratio in scaling.items():
        print(f"2 workers / 1 worker, {how}: {ratio:.2f}x")
    if args.json:
        print(json.dumps({**figures, "two_workers_over_one": scaling}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
