"""The runbook's Common Commands as shipped: start, load-test, stop; and `runbook demo`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from runbook_lib.contract.settings import ROOT
from runbook_lib.lab import pids
from tests.conftest import fault_incidents, named
from tests.polling import wait_for

pytestmark = pytest.mark.stack
SCRIPTS = ROOT / "scripts"


def run(cmd: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def alive(state: Path) -> list[pids.PidRecord]:
    recs = pids.records(state / "pids") + pids.records(state / "sim" / "pids")
    return [r for r in recs if (p := r.process()) is not None and p.status() != "zombie"]


@pytest.mark.xdist_group("soffice")  # see tests/test_live_run.py
def test_scripts_soffice_leak_then_stop_leaves_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "RUNBOOK_STATE_DIR": str(tmp_path)}
    out = run([str(SCRIPTS / "start-monitoring.sh"), "--any-free-port"], env)
    assert out.returncode == 0, out.stderr
    assert "prometheus" in out.stdout and "http://127.0.0.1:" in out.stdout
    out = run([str(SCRIPTS / "load-test.sh"), "soffice_leak"], env)
    assert out.returncode == 0 and "normal -> soffice_leak" in out.stdout

    wait_for(lambda: len(named("soffice")) > 5, 20, "soffice processes")
    started = alive(tmp_path)
    assert {"prometheus", "alertmanager", "node-exporter", "ggen-mcp"} <= {r.name for r in started}
    out = run([str(SCRIPTS / "stop-monitoring.sh")], env)
    assert out.returncode == 0, out.stderr
    assert alive(tmp_path) == []
    for rec in started:
        assert rec.process() is None or rec.process().status() == psutil.STATUS_ZOMBIE


def test_load_test_refuses_unknown_mode(tmp_path: Path) -> None:
    env = {**os.environ, "RUNBOOK_STATE_DIR": str(tmp_path)}
    out = run([str(SCRIPTS / "load-test.sh"), "errors"], env)
    assert out.returncode == 1 and "no stack is running" in out.stderr


ERROR_RATE_ALERTS = {  # what errors:invalid_input fires, written here by hand
    "GgenMcpHighErrorRate",
    "GgenMcpElevatedErrorRate",
    "GgenMcpErrorRateSLOViolation",
    "GgenMcpAvailabilitySLOViolation",
}


def test_demo_fires_delivers_and_cleans_up(tmp_path: Path) -> None:
    runbook = shutil.which("runbook") or str(ROOT / ".venv" / "bin" / "runbook")
    out = run(
        [runbook, "demo", "--state-dir", str(tmp_path), "--output", str(tmp_path / "out")],
        {k: v for k, v in os.environ.items() if k != "RUNBOOK_PROMETHEUS_URL"},  # its own
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # the incident HighErrorRate joined: led by it, or escalated by it (the error ratio of
    # the local stack climbs over 5 minutes: its warning fires about 2 minutes earlier)
    [led_by] = re.findall(r"ALERT     (GgenMcp\w+)  severity=critical", out.stdout)
    assert led_by == "GgenMcpHighErrorRate"
    assert "accepted with the bearer token and queued as incident" in out.stdout
    assert "✔ matches the injected fault (errors:invalid_input" in out.stdout
    [report] = re.findall(r"RECORD +(\S+)/report.html", out.stdout)
    assert Path(report).parent == tmp_path / "out" and (Path(report) / "record.html").exists()
    assert json.loads((Path(report) / "summary.json").read_text())["top_cause"] == "invalid_input"
    assert "[7/7] The finding goes to the team's channel" in out.stdout
    assert "MESSAGE   posted to http://127.0.0.1:" in out.stdout
    assert re.search(rf"(🚨|⬆️ Escalated:) {led_by} · critical", out.stdout)  # its finding
    assert "Top cause: **invalid_input**" in out.stdout
    assert "Stopped 5 processes." in out.stdout
    assert alive(tmp_path) == []
    # the fault's alerts are one incident: the critical's investigation, after the warning's
    # when the warning's had started before the critical was pending
    from runbook_lib.incidents.index import Index

    [inc] = fault_incidents(Index(tmp_path / "out" / "index.sqlite").incidents())
    names = {a.alertname for a in inc.alerts}
    assert inc.alertname == led_by and names <= ERROR_RATE_ALERTS
    # the warning twin joins when it reached the receiver before Alertmanager inhibited it
    # (the stack's 5m windows hold seconds of data: both may cross at once), else it is absent
    assert "GgenMcpHighErrorRate" in names, names
    runs = [(r.kind, r.alertname, r.trigger[:10]) for r in inc.runs]
    assert runs[-1] in (("investigation", led_by, ""), ("investigation", led_by, "escalated:"))
    assert len(runs) == 1 or runs[0][:2] == ("investigation", "GgenMcpElevatedErrorRate"), runs
    assert f"INCIDENT  #{inc.id}: {len(names)} alerts of one fault" in out.stdout


def test_install_system_as_non_root_names_the_packages(tmp_path: Path) -> None:
    """With the binaries missing and no root, the script says what to install and fails."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    out = subprocess.run(
        [
            shutil.which("setpriv"),
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            shutil.which("bash"),
            str(SCRIPTS / "install-system.sh"),
        ],
        env={"PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert (
        "apt-get install -y docker.io prometheus prometheus-alertmanager prometheus-node-exporter"
    ) in out.stderr
