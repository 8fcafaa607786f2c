"""Benchmark: how fast an alert becomes an incident record, alone and in a storm.

Starts the local stack (simulator, Prometheus, Alertmanager, receiver with its workers) in
a private state directory, then:

1. latency: N alerts posted one after another, each waiting for its record; webhook
   accepted -> record.html written (the receiver's own timestamps), median and p95, next
   to a plain `papermill` CLI run of the same notebook against the same Prometheus;
2. storm: M distinct alerts posted within 10 s from 8 threads; time until every record
   exists, records per second, receiver peak RSS, webhook p99 response time, duplicates
   and losses.

Prints figures; asserts nothing about time. `make bench` runs it with the issue's sizes:
    .venv/bin/python -m benchmarks.alert_to_record --alerts 20 --storm 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from runbook_lib import pids, record, stack
from runbook_lib.config import ROOT
from runbook_lib.index import Index


def group(i: int, instance: str, tag: str) -> dict:
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "GgenMcpHighErrorRate",
            "severity": "critical",
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
        self.token = Path(info.token_file).read_text().strip()
        self.index = Index(Path(info.output_dir) / "index.sqlite")
        [rec] = [r for r in pids.records(Path(info.state_dir) / "pids") if r.name == "runbook"]
        self.proc = psutil.Process(rec.pid)
        self.client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.token}"})

    def post(self, body: dict) -> float:
        t = time.perf_counter()
        r = self.client.post(f"{self.url}/alerts", json=body)
        r.raise_for_status()
        return time.perf_counter() - t

    def runs(self) -> list[dict]:
        return [r | {"received_at": i["received_at"], "fp": i["fingerprint"]}
                for i in self.index.incidents(100_000) for r in i["runs"]]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency(rx: Receiver, instance: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        rx.post(group(i, instance, "lat"))
        while True:
            done = [r for r in rx.runs() if r["fp"].startswith("lat") and r["state"] == "done"]
            if len(done) > i:
                break
            time.sleep(0.1)
        run = max(done, key=lambda r: r["finished_at"])
        html = Path(rx.index.path.parent) / run["record"] / "record.html"
        out.append(html.stat().st_mtime - run["received_at"])
        print(
            f"  alert {i + 1:>3}/{n}: webhook accepted -> record.html {out[-1]:5.1f}s", flush=True
        )
    return out


def papermill_cli(info: stack.StackInfo, instance: str, work: Path) -> float:
    cmd = [str(Path(sys.executable).with_name("papermill")), str(ROOT / "notebooks/high_error_rate.ipynb"),
           str(work / "plain.ipynb"), "-k", "python3", "--no-progress-bar",
           "-p", "prometheus_url", info.urls["prometheus"], "-p", "alert_name", "GgenMcpHighErrorRate",
           "-y", f'labels: {{alertname: GgenMcpHighErrorRate, job: ggen-mcp, instance: "{instance}"}}',
           "-p", "log_file", info.sim_log]  # fmt: skip
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def storm(rx: Receiver, instance: str, n: int) -> dict:
    peak = [rx.proc.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak.append(rx.proc.memory_info().rss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    bodies = [group(i, instance, "st") for i in range(n)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:  # spread over 10 s, like Alertmanager flushing groups
        futures = []
        for i, body in enumerate(bodies):
            futures.append(pool.submit(rx.post, body))
            time.sleep(max(0.0, t0 + 10 * (i + 1) / n - time.perf_counter()))
        responses = [f.result() for f in futures]
    posted = time.perf_counter() - t0
    print(f"  {n} alerts posted in {posted:.1f}s; waiting for the records ...", flush=True)
    last = -1
    while True:
        runs = [r for r in rx.runs() if r["fp"].startswith("st")]
        done = sum(r["state"] == "done" for r in runs)
        if done != last and done % 20 == 0:
            print(f"  {done}/{n} records after {time.perf_counter() - t0:.0f}s", flush=True)
            last = done
        if done >= n:
            break
        time.sleep(0.5)
    total = time.perf_counter() - t0
    stop.set()
    sampler.join()
    out_dir = rx.index.path.parent
    per_fp: dict[str, int] = {}
    for d in out_dir.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            fp = record.summary(d).get("fingerprint", "")
            if fp.startswith("st"):
                per_fp[fp] = per_fp.get(fp, 0) + 1
    return {
        "posted_s": posted,
        "all_records_s": total,
        "records_per_s": n / total,
        "peak_rss_mb": max(peak) / 2**20,
        "webhook_p99_ms": pct(responses, 99) * 1000,
        "webhook_max_ms": max(responses) * 1000,
        "duplicates": sum(c - 1 for c in per_fp.values() if c > 1),
        "losses": n - len(per_fp),
        "statuses": {s: sum(r["status"] == s for r in runs) for s in {r["status"] for r in runs}},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=20, help="sequential alerts for latency")
    ap.add_argument("--storm", type=int, default=200, help="alerts in the storm (0: skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    print(f"Starting the local stack in {work} ({args.workers} workers) ...", flush=True)
    info = stack.start(stack.StackOptions(state_dir=work / "state", any_free_port=True,
                                          receiver=True, output_dir=work / "records",
                                          workers=args.workers))  # fmt: skip
    try:
        rx = Receiver(info)
        instance = f"127.0.0.1:{info.ports['ggen_mcp']}"
        time.sleep(20)  # some history for the charts
        print(f"[1/2] Latency over {args.alerts} alerts, one at a time", flush=True)
        lat = latency(rx, instance, args.alerts)
        plain = [papermill_cli(info, instance, work) for _ in range(3)]
        figures = {
            "alert->record median s": statistics.median(lat),
            "alert->record p95 s": pct(lat, 95),
            "plain papermill CLI median s (3 runs)": statistics.median(plain),
        }
        if args.storm:
            print(f"[2/2] Storm of {args.storm} distinct alerts within 10 s", flush=True)
            figures |= {f"storm {k}": v for k, v in storm(rx, instance, args.storm).items()}
    finally:
        stack.stop(work / "state")
    print("\nFigures")
    for k, v in figures.items():
        print(f"  {k:<40} {v:.2f}" if isinstance(v, float) else f"  {k:<40} {v}")
    print(f"records and index: {work / 'records'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
