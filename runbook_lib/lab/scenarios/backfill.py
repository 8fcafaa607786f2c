"""Scenarios into a private Prometheus: OpenMetrics with explicit timestamps, then
`promtool tsdb create-blocks-from openmetrics`, then Prometheus on that data dir with a long
retention (retention counts back from the newest block, not from now)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np

from runbook_lib.contract.names import NAMES
from runbook_lib.lab import stack
from runbook_lib.lab.scenarios.build import Scenario
from runbook_lib.lab.scenarios.model import families


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_openmetrics(scenarios: list[Scenario], path: Path) -> Path:
    """One OpenMetrics file with every scenario's series; families are not interleaved."""
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
    stamp_text: dict[int, list[str]] = {}
    with open(path, "w", encoding="utf-8") as fh:
        for name in order:
            kind, samples = grouped[name]
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
                        stamps = stamp_text[id(times)] = [f"{t:.3f}" for t in times]
                    fh.writelines(
                        f"{series} {v:.10g} {t}\n"
                        for v, t in zip(values.tolist(), stamps, strict=True)
                        if v == v  # not NaN: the target was down
                    )
        fh.write("# EOF\n")
    return path


def backfill(scenarios: list[Scenario], data_dir: Path, work_dir: Path) -> Path:
    """Write the scenarios' history into TSDB blocks under `data_dir`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise stack.StackError("promtool is not installed: run `make setup`")
    work_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    om = write_openmetrics(scenarios, work_dir / "scenarios.om.txt")
    proc = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise stack.StackError(f"promtool backfill failed:\n{proc.stderr[-2000:]}")
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
