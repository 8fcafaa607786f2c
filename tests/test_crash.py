"""kill -9 of the receiver and its workers in the middle of a storm, then a restart: every
accepted alert ends with exactly one record; nothing is lost, nothing doubled, and no
process of the killed runs survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from runbook_lib.contract.incident import IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.records import record
from runbook_lib.service.workers import MARK
from tests.conftest import free_port
from tests.polling import wait_for

pytestmark = pytest.mark.stack  # real services: see tests/conftest.py

TOKEN = "crash-test-token"
ALERTS = 8


class Server:
    def __init__(self, out: Path, log: Path) -> None:
        self.out, self.log, self.port = out, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "runbook_lib.cli", "serve", "--port", str(self.port)]
        cmd += ["--output", str(self.out), "--workers", "2", "--run-timeout", "120"]
        cmd += ["--prometheus-url", f"http://127.0.0.1:{free_port()}"]
        env = {**os.environ, "RUNBOOK_WEBHOOK_TOKEN": TOKEN}
        with open(self.log, "a") as fh:
            self.proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=fh)
        wait_for(
            lambda: httpx.get(f"{self.url}/health", timeout=1).status_code == 200,
            30,
            "runbook serve to answer /health",
            detail=lambda: self.log.read_text()[-2000:],
        )

    def kill9(self) -> list[int]:
        """SIGKILL the server and every worker process it started, at once."""
        assert self.proc is not None
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        workers = [p for p in tree if "runbook_lib.service.warm_worker" in _cmdline(p)]
        for p in [psutil.Process(self.proc.pid), *workers]:
            p.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        return [p.pid for p in workers]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def _cmdline(p: psutil.Process) -> str:
    """A child's command line, or "" for one that exited (a kernel not yet reaped is a zombie)."""
    try:
        return " ".join(p.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def group(i: int) -> dict:
    alert = {
        "status": "firing",
        "labels": {"alertname": "GgenMcpHighErrorRate", "instance": f"storm-{i}:9464"},
        "annotations": {},
        "startsAt": "2026-11-28T04:00:00Z",
        "fingerprint": f"{i:016x}",
    }
    return {
        "version": "4",
        "groupKey": f"g{i}",
        "status": "firing",
        "receiver": "r",
        "alerts": [alert],
    }


def post(url: str, body: dict) -> list[str]:
    r = httpx.post(
        f"{url}/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()["outcomes"]


def runs(out: Path) -> list[IncidentRun]:
    return [r for i in Index(out / "index.sqlite").incidents(1000) for r in i.runs]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "out", tmp_path / "serve.log")
    yield s
    s.stop()


def test_kill9_mid_storm_then_restart_loses_and_doubles_nothing(server: Server) -> None:
    server.start()
    for i in range(ALERTS):
        assert post(server.url, group(i)) == ["queued"]
        assert post(server.url, group(i)) == ["duplicate"]  # Alertmanager re-sends groups
    wait_for(
        lambda: (
            sum(r.state == "done" for r in runs(server.out)) >= 1
            and any(r.state == "running" for r in runs(server.out))
        ),
        120,
        "one run done and another in flight",
    )
    killed = server.kill9()
    assert killed, "the kill must hit running workers"
    in_flight = {r.record for r in runs(server.out) if r.state == "running"}
    written = {d.name for d in server.out.iterdir()}  # a record renamed just before the kill

    server.start()
    assert [post(server.url, group(i))[0] for i in range(ALERTS)] == ["duplicate"] * ALERTS
    wait_for(lambda: all(r.state == "done" for r in runs(server.out)), 240, "every run done")

    final = runs(server.out)
    assert len(final) == ALERTS
    dirs = sorted(
        p for p in server.out.iterdir() if p.is_dir() and not p.name.startswith(".")
    )  # .runbooks: the pinned runbooks
    assert [d.name for d in dirs] == sorted(r.record for r in final)  # one each, no .tmp-*
    prints = [record.summary(d).fingerprint for d in dirs]
    assert sorted(prints) == [f"{i:016x}" for i in range(ALERTS)]
    rerun = {r.record: r for r in final if r.record in in_flight}
    assert rerun and all(r.attempts == (1 if n in written else 2) for n, r in rerun.items())
    assert any(r.attempts == 2 for r in rerun.values())  # some were really run again
    # finished, without the (unreachable) Prometheus: degraded, none failed
    assert all(r.status == "degraded" for r in final), [r.model_dump() for r in final]
    prefix = str((server.out / "index.sqlite").resolve())
    for p in psutil.process_iter():
        try:
            assert not p.environ().get(MARK, "").startswith(prefix) or p.status() == "zombie"
        except psutil.Error:
            pass
