"""The worker pool with real notebook runs in real processes: one record per run, hostile
labels kept as data, hanging Prometheus and overrunning runs end as `timed_out` with no
kernel left, and recovery after a crash keeps finished records and re-runs the rest."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from runbook_lib import record, runner
from runbook_lib.alerts import Alert
from runbook_lib.index import Index
from runbook_lib.workers import MARK, Pool, RunConfig

from .conftest import free_port


def alert(**labels: str) -> Alert:
    labels = {"alertname": "GgenMcpHighErrorRate", "severity": "critical", **labels}
    return Alert(
        status="firing",
        labels=labels,
        annotations={"summary": "error rate 7%"},
        startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
        fingerprint=f"fp{abs(hash(tuple(sorted(labels.items())))):x}"[:16],
    )


def marked(prefix: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK, "").startswith(prefix) and p.status() != "zombie":
                found.append(p)
        except psutil.Error:
            pass
    return found


def drain(pool: Pool, index: Index, runs: int, timeout: float) -> list[dict]:
    pool.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [r for i in index.incidents() for r in i["runs"] if r["state"] == "done"]
            if len(done) >= runs:
                return done
            time.sleep(0.3)
        raise AssertionError(f"{runs} runs not done in {timeout}s: {index.incidents()}")
    finally:
        pool.stop()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A 'Prometheus' that accepts connections and never answers: a hung server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_hostile_labels_reach_the_record_as_data(tmp_path: Path) -> None:
    hostile = {
        "instance": "a\"b'c\\d\n$(id)`id`;|&>../../x",
        "job": "../../etc",
        "team": "ünïcødé ✓ 火 \u2028" + "y" * 300,
    }
    index = Index(tmp_path / "out" / "index.sqlite")
    index.accept([alert(**hostile)], verify_delay=0)
    cfg = RunConfig(
        output_dir=tmp_path / "out", workers=1, prometheus_url=f"http://127.0.0.1:{free_port()}"
    )
    [run] = drain(Pool(index, cfg), index, 1, 120)
    rec = tmp_path / "out" / run["record"]
    assert rec.parent == tmp_path / "out" and (rec / "record.html").exists()
    summ = record.summary(rec)
    assert summ["status"] == "completed" and run["status"] == "completed"
    assert {k: summ["labels"][k] for k in hostile} == hostile
    assert summ["kind"] == "investigation" and summ["run_id"] == run["id"]
    assert "unreachable" in " ".join(summ["data_gaps"]).lower()
    assert not list((tmp_path / "out").glob(".tmp-*"))
    assert not marked(str(index.path.resolve()))


def test_a_hanging_prometheus_ends_as_timed_out_with_no_kernel_left(
    tmp_path: Path, blackhole: str
) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert(instance="h:1")], verify_delay=0)
    cfg = RunConfig(output_dir=tmp_path, workers=1, prometheus_url=blackhole, cell_timeout=3)
    [run] = drain(Pool(index, cfg), index, 1, 120)
    summ = record.summary(tmp_path / run["record"])
    assert run["status"] == "timed_out" == summ["status"]
    assert "Timeout" in summ["error"] or "timed out" in summ["error"].lower()
    html = (tmp_path / run["record"] / "record.html").read_text()
    assert "Run timed_out" in html
    assert not marked(str(index.path.resolve()))


def test_a_run_over_its_wall_limit_is_killed_and_recorded(tmp_path: Path, blackhole: str) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert(instance="h:2")], verify_delay=0)
    cfg = RunConfig(output_dir=tmp_path, workers=1, prometheus_url=blackhole, run_timeout=6)
    [run] = drain(Pool(index, cfg), index, 1, 120)
    summ = record.summary(tmp_path / run["record"])
    assert summ["status"] == "timed_out" and "6s limit" in summ["error"]
    assert summ["alert"] == "GgenMcpHighErrorRate" and summ["labels"]["instance"] == "h:2"
    assert not marked(str(index.path.resolve()))


def test_recovery_keeps_finished_records_reruns_the_rest_and_kills_leftovers(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    index = Index(out / "index.sqlite")
    index.accept([alert(instance="done:1"), alert(instance="lost:1")], verify_delay=0)
    first, second = index.claim(), index.claim()
    assert first and second and index.claim() is None
    params = runner.alert_params(first.alertname, first.labels, fp=first.fingerprint)
    runner.failure_record(
        params, out, runbook=first.runbook, name=first.record, status="failed", error="kept"
    )
    (out / f".tmp-{second.record}-dead").mkdir()
    prefix = f"{index.path.resolve()}#"
    leftover = subprocess.Popen(
        ["sleep", "300"], env={**os.environ, MARK: f"{prefix}{second.run_id}"}
    )
    pool = Pool(index, RunConfig(output_dir=out, workers=1))
    assert pool.recover() == 1
    assert pool.leftovers_killed == [leftover.pid]
    leftover.wait(5)  # returns at once: the sweep killed (and reaped) it
    assert not list(out.glob(".tmp-*"))
    runs = {r["record"]: r for i in index.incidents() for r in i["runs"]}
    assert runs[first.record]["state"] == "done" and runs[first.record]["error"] == "kept"
    assert runs[second.record]["state"] == "queued"
    assert index.claim().run_id == second.run_id  # and it is claimed again, with attempt 2
