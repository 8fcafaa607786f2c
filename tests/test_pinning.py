"""Production runs a pinned copy: `runbook serve` runs the runbooks it copied at start-up,
a save in the working copy changes nothing until SIGHUP, and each record names (and its page
shows) the content hash of the runbooks that made it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import pytest

from runbook_lib.contract.settings import NOTEBOOKS
from runbook_lib.execution import pinning
from tests.polling import wait_for

from .conftest import free_port


def _working_copy(tmp: Path) -> Path:
    work = tmp / "working"
    shutil.copytree(NOTEBOOKS, work)
    return work


def _save(work: Path, old: str, new: str) -> None:
    """What a save from JupyterLab does to the working copy: the cell changed, in place."""
    path = work / "high_error_rate.ipynb"
    nb = nbformat.read(path, as_version=4)
    [cell] = [c for c in nb.cells if old in c.source]
    cell.source = cell.source.replace(old, new)
    nbformat.write(nb, path)


def test_a_snapshot_is_the_content_of_the_runbooks(tmp_path: Path) -> None:
    work = _working_copy(tmp_path)
    first = pinning.take(work, tmp_path / "out")
    assert first.dir == tmp_path / "out" / ".runbooks" / first.hash and len(first.hash) == 12
    assert sorted(p.name for p in first.dir.iterdir()) == sorted(p.name for p in work.iterdir())
    assert (first.dir / "memory.ipynb").read_bytes() == (work / "memory.ipynb").read_bytes()
    assert oct((first.dir / "memory.ipynb").stat().st_mode & 0o777) == "0o444"
    assert pinning.take(work, tmp_path / "out") == first  # the same content: the same copy
    _save(work, "lookback_minutes: int = 15", "lookback_minutes: int = 5")
    second = pinning.take(work, tmp_path / "out")
    assert second.hash != first.hash and first.dir.exists()  # runs on the first keep it
    assert "lookback_minutes: int = 5" in (second.dir / "high_error_rate.ipynb").read_text()
    assert "lookback_minutes: int = 15" in (first.dir / "high_error_rate.ipynb").read_text()


def test_a_directory_without_runbooks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no notebook .*: set runbooks_dir"):
        pinning.take(tmp_path, tmp_path / "out")
    runbooks = pinning.Runbooks(_working_copy(tmp_path), tmp_path / "out")
    before = runbooks.current
    shutil.rmtree(runbooks.source)
    assert runbooks.reload() == before  # a deploy gone wrong keeps what runs


TOKEN, VIEWER = "pin-test-token", "pin-test-viewer"


def _alert(fingerprint: str, instance: str) -> dict:
    return {"version": "4", "groupKey": fingerprint, "status": "firing", "receiver": "runbook",
            "alerts": [{"status": "firing", "startsAt": "2026-12-01T21:30:00Z",
                        "fingerprint": fingerprint, "annotations": {},
                        "labels": {"alertname": "GgenMcpHighErrorRate", "severity": "critical",
                                   "instance": instance}}]}  # fmt: skip


@pytest.mark.stack  # the receiver with a warm worker and its kernels
def test_a_save_changes_what_serve_runs_only_after_sighup(tmp_path: Path) -> None:
    work, out, log = _working_copy(tmp_path), tmp_path / "out", tmp_path / "serve.log"
    h1 = pinning.content_hash(work)
    port = free_port()
    cmd = [sys.executable, "-m", "runbook_lib.cli", "serve", "--port", str(port), "--output",
           str(out), "--workers", "1", "--runbooks-dir", str(work),
           "--prometheus-url", f"http://127.0.0.1:{free_port()}", "--reconcile-every", "0"]  # fmt: skip
    env = {**os.environ, "RUNBOOK_WEBHOOK_TOKEN": TOKEN, "RUNBOOK_VIEWER_TOKEN": VIEWER}
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=fh)
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, 90, "serve")

        def run(fingerprint: str, instance: str) -> tuple[dict, str]:
            body = json.dumps(_alert(fingerprint, instance))
            answer = httpx.post(f"{url}/alerts", content=body, timeout=30,
                                headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            found = wait_for(lambda: list(out.glob(f"*-{fingerprint[:12]}/summary.json")), 240,
                             f"the record of {instance}")  # fmt: skip
            record = nbformat.read(found[0].parent / "record.ipynb", as_version=4)
            [params] = [c.source for c in record.cells
                        if "parameters" in c.metadata.get("tags", [])]  # fmt: skip
            return json.loads(found[0].read_text()), params

        first, cell = run("a" * 16, "a:1")
        assert first["runbooks_hash"] == h1 and "lookback_minutes: int = 15" in cell
        assert f"runbooks {h1} from {work.resolve()}" in log.read_text()

        _save(work, "lookback_minutes: int = 15", "lookback_minutes: int = 5")
        h2 = pinning.content_hash(work)
        assert h2 != h1
        second, cell = run("b" * 16, "b:1")
        assert second["runbooks_hash"] == h1 and "lookback_minutes: int = 15" in cell

        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: f"{h1} -> {h2}" in log.read_text(), 60, "the reload's log line")
        third, cell = run("c" * 16, "c:1")
        assert third["runbooks_hash"] == h2 and "lookback_minutes: int = 5" in cell

        page = httpx.get(f"{url}/incidents/{third['incident_id']}", timeout=30,
                         headers={"Authorization": f"Bearer {VIEWER}"})  # fmt: skip
        assert '<span class="runbooks"' in page.text and f"runbooks {h2}</span>" in page.text
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.stack  # PostgreSQL, Redis, a receiver and a Celery worker
def test_a_worker_runs_its_pinned_runbooks_until_sighup(tmp_path: Path) -> None:
    from runbook_lib.incidents.index import Index
    from runbook_lib.lab.backing import LocalCluster

    from .test_distributed import FAST, group, post, settle

    work = _working_copy(tmp_path)
    h1 = pinning.content_hash(work)
    unreachable = f"http://127.0.0.1:{free_port()}"
    cluster = LocalCluster(tmp_path / "cluster",
                           run_args=["--prometheus-url", unreachable, *FAST]).start()  # fmt: skip
    try:
        receiver = cluster.receiver("receiver")
        worker = cluster.worker("worker", 1, "--runbooks-dir", str(work))
        index = Index(url=cluster.postgres.url)

        def hash_of_run(i: int) -> str:
            assert post(receiver, group(i, "p")) == 200
            latest = max(settle(index, i + 1, 180), key=lambda r: r.id)
            return record_hash(cluster.records / latest.record)

        assert hash_of_run(0) == h1
        _save(work, "lookback_minutes: int = 15", "lookback_minutes: int = 5")
        h2 = pinning.content_hash(work)
        assert hash_of_run(1) == h1  # the save is not deployed to the running worker
        worker.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: f"runbooks {h2} from" in worker.log.read_text(), 120,
                 "the restarted worker's pinning")  # fmt: skip
        assert hash_of_run(2) == h2
    finally:
        cluster.stop()


def record_hash(rec: Path) -> str:
    return json.loads((rec / "summary.json").read_text())["runbooks_hash"]
