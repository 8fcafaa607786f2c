"""Scenarios into a private Prometheus: OpenMetrics with explicit timestamps, then
`promtool tsdb create-blocks-from openmetrics`, then Prometheus on that data dir with a long
retention (retention counts back from the newest block, not from now)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from runbook_lib.contract.names import NAMES
from runbook_lib.lab import stack
from runbook_lib.lab.scenarios.build import Scenario
from runbook_lib.lab.scenarios.model import families


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# promtool's block range: it reads its whole input once to find the first and last sample,
# then once more for each two-hour block it writes (`create-blocks-from openmetrics`).
BLOCK_S = 2 * 3600


def write_openmetrics(scenarios: list[Scenario], path: Path) -> Path:
    """One OpenMetrics file with every scenario's series; families are not interleaved."""
    _write(scenarios, {path: (-math.inf, math.inf)})
    return path


def write_blocks(scenarios: list[Scenario], work_dir: Path) -> list[Path]:
    """The scenarios' series as one OpenMetrics file per promtool block (`BLOCK_S`, from a
    multiple of it, as promtool aligns them), written in one pass: promtool reads each file
    twice (its first and last sample, then its one block) instead of reading the whole input
    once more per block (the scenario set spans five: 31 s of CPU on one file, measured)."""
    times = [t for sc in scenarios for t in (sc.timeline.times[0], sc.timeline.times[-1])]
    first = math.floor(min(times) / BLOCK_S) * BLOCK_S
    starts = range(int(first), int(max(times)) + 1, BLOCK_S)
    outs = {work_dir / f"block-{start}.om.txt": (start, start + BLOCK_S) for start in starts}
    _write(scenarios, outs)
    return list(outs)


def _write(scenarios: list[Scenario], outs: dict[Path, tuple[float, float]]) -> None:
    """Each file of `outs` gets every family's samples in its [from, to) seconds."""
    grouped: dict[str, tuple[str, list]] = {}
    order: list[str] = []
    for sc in scenarios:
        times = sc.timeline.times
        for fam in families(sc.timeline, {"instance": sc.instance}):
            if fam.name not in grouped:
                grouped[fam.name] = (fam.kind, [])
                order.append(fam.name)
            grouped[fam.name][1].extend((s, lab, vals, times) for s, lab, vals in fam.samples)
    errors = NAMES.errors.removesuffix("_total")
    # per timeline: its times formatted once, and where each file's window starts and ends
    stamp_text: dict[int, tuple[list[str], list[tuple[int, int]]]] = {}
    handles = [(open(path, "w", encoding="utf-8"), window) for path, window in outs.items()]
    try:
        for name in order:
            kind, samples = grouped[name]
            for fh, _ in handles:
                fh.write(f"# TYPE {name} {kind}\n")
            by_series: dict[str, list] = defaultdict(list)
            for sample, labels, values, times in samples:
                lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
                by_series[f"{sample}{{{lab}}}"].append((values, times))
            for series, chunks in by_series.items():
                for values, times in chunks:
                    if name == errors and not np.nanmax(values, initial=0.0):
                        continue  # an error type a tool never had: a quarter of all series
                    stamps = stamp_text.get(id(times))
                    if stamps is None:  # one timeline per scenario: format its times once
                        cuts = [tuple(np.searchsorted(times, w, side="left")) for _, w in handles]
                        stamps = stamp_text[id(times)] = ([f"{t:.3f}" for t in times], cuts)
                    text, cuts = stamps
                    vals = values.tolist()
                    for (fh, _), (lo, hi) in zip(handles, cuts, strict=True):
                        fh.writelines(
                            f"{series} {v:.10g} {t}\n"
                            for v, t in zip(vals[lo:hi], text[lo:hi], strict=True)
                            if v == v  # not NaN: the target was down
                        )
        for fh, _ in handles:
            fh.write("# EOF\n")
    finally:
        for fh, _ in handles:
            fh.close()


def backfill(scenarios: list[Scenario], data_dir: Path, work_dir: Path) -> Path:
    """Write the scenarios' history into TSDB blocks under `data_dir`: a promtool per block,
    as many at once as there are cores. The intermediate files are removed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise stack.StackError("promtool is not installed: run `make setup`")
    work_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    files = write_blocks(scenarios, work_dir)

    def create(om: Path) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data_dir)],
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            om.unlink()

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = list(pool.map(create, files))
    for om, proc in zip(files, done, strict=True):
        if proc.returncode != 0:
            raise stack.StackError(f"promtool backfill of {om.name} failed:\n{proc.stderr[-2000:]}")
    return data_dir


class ScenarioPrometheus:
    """A Prometheus serving backfilled scenario data on a free loopback port."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir, self.log_path = data_dir, log_path
        self.port = stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ScenarioPrometheus:
        config = self.data_dir.parent / "scenario-prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\n")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise stack.StackError(f"Prometheus exited: see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise stack.StackError(f"Prometheus on {self.data_dir} not ready in {timeout:.0f}s")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> ScenarioPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
