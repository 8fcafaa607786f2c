"""Distributed mode with the real servers: PostgreSQL (the index), Redis (Celery's broker),
two receivers and two workers as processes with their own ports and directories, sharing
one records directory. Every accepted alert ends as exactly one incident and one record,
whatever dies: a worker mid-run, a receiver mid-storm, or Redis itself."""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nbformat
import psutil
import pytest
from celery import Celery
from nbformat.v4 import new_code_cell, new_notebook

from runbook_lib.contract.incident import IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.lab.backing import LocalCluster, Node, Postgres, Redis
from runbook_lib.lab.stack import free_port
from runbook_lib.records import record
from runbook_lib.service.distributed import TASK
from tests.polling import wait_for

pytestmark = pytest.mark.stack

STORM = 12  # alerts per storm: enough to interleave two receivers and two workers
FAST = ["--run-timeout", "20", "--lease-grace", "2", "--verify-delay", "2"]


def group(i: int, tag: str = "d") -> dict:
    alert = {
        "status": "firing",
        "labels": {"alertname": "GgenMcpHighErrorRate", "instance": f"{tag}-{i}:9464"},
        "startsAt": "2026-11-28T04:00:00Z",
        "fingerprint": f"{tag}{i:015x}",
    }
    return {"version": "4", "groupKey": f"{tag}{i}", "status": "firing", "receiver": "r",
            "alerts": [alert]}  # fmt: skip


def post(node: Node, body: dict, token: str = "cluster-token") -> int:
    """One Alertmanager delivery; 0 when the receiver does not answer at all."""
    try:
        r = httpx.post(f"{node.url}/alerts", json=body, timeout=10,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        return r.status_code
    except httpx.HTTPError:
        return 0


def settle(index: Index, expected: int, timeout: float) -> list[IncidentRun]:
    """Wait until `expected` runs are done; the runs."""

    def done() -> list[dict]:
        runs = [r for i in index.incidents(10_000) for r in i.runs]
        return runs if len(runs) >= expected and all(r.state == "done" for r in runs) else []

    def states() -> dict:
        return dict(Counter(r.state for i in index.incidents(10_000) for r in i.runs))

    return wait_for(done, timeout, f"{expected} runs done", every=0.5, detail=states)


def one_record_each(cluster: LocalCluster, runs: list[IncidentRun], tag: str) -> None:
    dirs = [d for d in cluster.records.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert sorted(d.name for d in dirs) == sorted(r.record for r in runs)  # no extra, no .tmp
    prints = Counter(record.summary(d).fingerprint for d in dirs)
    assert all(fp.startswith(tag) for fp in prints) and set(prints.values()) == {1}
    assert all(r.location == str(cluster.records / r.record) for r in runs)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Redis, Postgres]]:
    """One Redis and one PostgreSQL for the module: each test's cluster gets a Redis database
    and a PostgreSQL database of its own on them (started once, not once a test)."""
    work = tmp_path_factory.mktemp("backing")
    redis = Redis(work / "redis").start()
    try:
        postgres = Postgres(work / "postgres").start()
    except BaseException:
        redis.stop()
        raise
    yield redis, postgres
    redis.stop()
    postgres.stop()


_databases = itertools.count(1)


def _cluster(tmp_path: Path, **given) -> Iterator[LocalCluster]:
    unreachable = f"http://127.0.0.1:{free_port()}"  # runs record the gap and complete fast
    c = LocalCluster(tmp_path, run_args=["--prometheus-url", unreachable, *FAST], **given)
    yield c.start()
    c.stop()


@pytest.fixture
def cluster(tmp_path: Path, servers: tuple[Redis, Postgres]) -> Iterator[LocalCluster]:
    n = next(_databases)
    redis, postgres = servers
    yield from _cluster(tmp_path, redis=redis.share(n), postgres=postgres.share(f"test{n}"))


@pytest.fixture
def own_redis_cluster(tmp_path: Path, servers: tuple[Redis, Postgres]) -> Iterator[LocalCluster]:
    """A cluster whose Redis is its own, for a test that stops and starts it."""
    yield from _cluster(tmp_path, postgres=servers[1].share(f"test{next(_databases)}"))


def test_two_receivers_get_every_alert_and_make_one_incident_and_one_record(cluster) -> None:
    a = cluster.receiver("receiver-a")
    b = cluster.receiver("receiver-b")
    # each worker on a core of its own, as the benchmark's "a core each" pair runs them
    first, last = min(os.sched_getaffinity(0)), max(os.sched_getaffinity(0))
    workers = [cluster.worker(f"worker-{i}", 1, "--log-format", "json", cpus={core})
               for i, core in ((1, first), (2, last))]  # fmt: skip
    bodies = [group(i) for i in range(STORM)]
    with ThreadPoolExecutor(8) as pool:  # Alertmanager delivers each alert to both
        codes = list(pool.map(lambda x: post(*x), [(n, body) for body in bodies for n in (a, b)]))
    assert codes == [200] * (2 * STORM)
    index = Index(url=cluster.postgres.url)
    runs = settle(index, STORM, 180)
    assert len(index.incidents(1000)) == STORM and len(runs) == STORM
    assert Counter(r.status for r in runs) == {"degraded": STORM}  # Prometheus unreachable
    one_record_each(cluster, runs, "d")
    # the runs finished in the workers, yet each receiver counts them all, from the index
    degraded = (
        'runbook_runs_total{kind="investigation",runbook="high_error_rate",status="degraded"}'
    )
    for node in (a, b):
        text = httpx.get(f"{node.url}/metrics", timeout=10).text
        assert f"{degraded} {float(STORM)}" in text.splitlines(), node.name
    # and each run is started and finished in the log of the worker that ran it, once
    lines = [json.loads(line) for w in workers for line in w.log.read_text().splitlines()
             if line.startswith("{")]  # fmt: skip
    said = Counter((r["run_id"], r["outcome"]) for r in lines if r.get("event") == "run")
    once = {(r.id, o): 1 for r in runs for o in ("started", "finished")}
    assert {k: n for k, n in said.items() if k[1] != "held"} == once  # held: see holds.py
    finished = [r for r in lines if r.get("outcome") == "finished"]
    assert {r["status"] for r in finished} == {"degraded"}
    assert all(r["logger"] == "runbook.runs" and r["duration_s"] > 0 for r in finished)
    # a worker's pool process, its zygote and its warm kernel kept the worker's core
    for worker, core in zip(workers, (first, last), strict=True):
        family = psutil.Process(worker.proc.pid).children(recursive=True)
        assert len(family) >= 3, worker.name  # the pool process, the zygote, a kernel
        assert {p.pid: p.cpu_affinity() for p in family} == {p.pid: [core] for p in family}


SLOW = """import time
from IPython.display import display
time.sleep({sleep_s})
display({"application/json": {"alert": alert_name, "runbook": "high_error_rate", "fingerprint": fingerprint,
         "status": "completed", "top_cause": None}}, raw=True,
        metadata={"runbook_summary": True})
"""


def slow_notebooks(tmp_path: Path, sleep_s: float = 6) -> Path:
    nb = new_notebook(
        cells=[new_code_cell('alert_name = "x"', metadata={"tags": ["parameters"]}),
               new_code_cell(SLOW.replace("{sleep_s}", str(sleep_s)))],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )  # fmt: skip
    d = tmp_path / "slow-notebooks"
    d.mkdir()
    nbformat.write(nb, d / "high_error_rate.ipynb")
    return d


def test_a_worker_killed_mid_run_hands_the_run_to_the_other(cluster, tmp_path) -> None:
    notebooks = slow_notebooks(tmp_path)
    a = cluster.receiver("receiver-a", "--notebooks", str(notebooks))
    first = cluster.worker("worker-1", 1, "--notebooks", str(notebooks))
    index = Index(url=cluster.postgres.url)
    assert post(a, group(0, "k")) == 200

    def started() -> bool:
        """Its notebook runs: the worker said so. Not the hold's question before it (with
        Prometheus unreachable, a 10 s hold from the alert's arrival, or none at all when
        the worker took longer than that to start: `held_since` cannot tell)."""
        runs = [r for i in index.incidents() for r in i.runs]
        return (bool(runs) and runs[0].state == "running"
                and f"run {runs[0].id} started:" in first.log.read_text())  # fmt: skip

    wait_for(started, 60, "worker-1 to start the run")
    first.kill9()
    cluster.worker("worker-2", 1, "--notebooks", str(notebooks))
    [run] = settle(index, 1, 120)
    assert run.status == "completed" and run.attempts == 2  # delivered again, run once
    one_record_each(cluster, [run], "k")


def test_a_receiver_killed_mid_storm_loses_nothing(cluster) -> None:
    a = cluster.receiver("receiver-a")
    b = cluster.receiver("receiver-b")
    cluster.worker("worker-1")
    codes = {a.name: [], b.name: []}
    for i in range(STORM):
        if i == STORM // 2:
            a.kill9()
        for node in (a, b):  # each alert to both, as Alertmanager's two webhook_configs do
            codes[node.name].append(post(node, group(i, "r")))
    half = STORM // 2
    assert codes["receiver-a"][:half] == [200] * half and set(codes["receiver-a"][half:]) == {0}
    assert codes["receiver-b"] == [200] * STORM
    index = Index(url=cluster.postgres.url)
    runs = settle(index, STORM, 180)
    assert len(index.incidents(1000)) == STORM
    one_record_each(cluster, runs, "r")


def test_a_redis_restart_mid_storm_loses_no_accepted_alert(own_redis_cluster) -> None:
    cluster = own_redis_cluster
    a = cluster.receiver("receiver-a", "--sweep-every", "1", "--dispatch-grace", "3")
    half = STORM // 2
    for i in range(half):
        assert post(a, group(i, "s")) == 200
    cluster.redis.stop()  # queued tasks gone with it (no persistence)
    for i in range(half, STORM):
        assert post(a, group(i, "s")) == 200  # the index still accepts: the alert is safe
    cluster.redis.start()
    cluster.worker("worker-1")
    index = Index(url=cluster.postgres.url)
    runs = settle(index, STORM, 180)  # the sweeper sent again what Redis lost or never got
    assert Counter(r.status for r in runs) == {"degraded": STORM}  # Prometheus unreachable
    one_record_each(cluster, runs, "s")


def severe_group(i: int, tag: str, severity: str) -> dict:
    body = group(i, tag)
    body["alerts"][0]["labels"]["severity"] = severity
    return body


def test_a_critical_queued_behind_warnings_is_served_first_and_a_task_twice_runs_once(
    cluster, tmp_path
) -> None:
    notebooks = slow_notebooks(tmp_path, sleep_s=0)
    no_hold = ["--notebooks", str(notebooks), "--correlation-hold", "0"]  # warnings run at once
    a = cluster.receiver("receiver-a", *no_hold)
    for i in range(5):  # five warnings, then a critical: the broker holds their tasks so
        assert post(a, severe_group(i, "w", "warning")) == 200
    assert post(a, severe_group(0, "c", "critical")) == 200
    index = Index(url=cluster.postgres.url)
    first_warning = min(r.id for i in index.incidents() for r in i.runs)
    broker = Celery(broker=cluster.redis.url)
    for _ in range(2):  # the first warning's task delivered twice more
        broker.send_task(TASK, args=[first_warning])
    cluster.worker("worker-1", 1, *no_hold)  # one process: it starts the runs one by one
    settle(index, 6, 180)
    fp_runs = [(i.fingerprint, r) for i in index.incidents() for r in i.runs]
    started = [fp for fp, r in sorted(fp_runs, key=lambda p: p[1].started_at)]
    # the critical first, then the warnings oldest first
    assert started == ["c000000000000000", *(f"w{i:015x}" for i in range(5))]
    runs = [r for _, r in fp_runs]
    assert [r.attempts for r in runs] == [1] * 6  # eight deliveries, each run run once
    one_record_each(cluster, runs, "")
