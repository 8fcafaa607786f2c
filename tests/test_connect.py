"""The README's "Connect your Prometheus and Alertmanager", done for real: a real
Alertmanager whose whole configuration is the snippet printed in the README (only the
receiver's URL and the token file replaced by real ones) delivers a GGEN MCP alert to a real
`runbook serve`, which files the incident; an alert of another name never reaches it."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from runbook_lib.lab import pids, stack
from runbook_lib.service import wiring
from tests.polling import wait_for
from tests.test_docs import EXAMPLE_RECEIVER, EXAMPLE_TOKEN_FILE, readme_snippet

pytestmark = pytest.mark.stack

RUNBOOK = Path(sys.executable).with_name("runbook")
INSTANCE = "ggen-mcp.example.internal:9464"
DELIVERY_S = 60.0  # Alertmanager's default group_wait is 30 s


@dataclass
class Wired:
    receiver: str  # the receiver's base URL
    alertmanager: str
    output: Path
    config: str  # what Alertmanager was given


def readme_config(receiver_url: str, token_file: Path) -> str:
    """The README's snippet with only the receiver's URL and the token file replaced."""
    text = readme_snippet()
    assert text.count(EXAMPLE_RECEIVER) == 1 and text.count(EXAMPLE_TOKEN_FILE) == 1
    return text.replace(EXAMPLE_RECEIVER, receiver_url).replace(EXAMPLE_TOKEN_FILE, str(token_file))


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    """`runbook serve --no-workers` and an Alertmanager configured by the README, both
    started (and stopped) as recorded processes under tmp_path."""
    state = tmp_path / "state"
    state.mkdir()
    token = tmp_path / "token"
    token.touch(mode=0o600)
    token.write_text(secrets.token_urlsafe(24) + "\n")
    output = tmp_path / "out"
    port, am_port = stack.free_port(), stack.free_port()
    receiver = f"http://127.0.0.1:{port}"
    alertmanager = f"http://127.0.0.1:{am_port}"
    config = readme_config(f"{receiver}/alerts", token)
    (tmp_path / "alertmanager.yml").write_text(config)
    try:
        stack._launch(state, "runbook", [str(RUNBOOK), "serve", "--no-workers",
                      "--host", "127.0.0.1", "--port", str(port), "--output", str(output),
                      "--token-file", str(token)])  # fmt: skip
        stack._wait_ready(state, "runbook", f"{receiver}/health", 30)
        stack._launch(
            state,
            "alertmanager",
            [
                stack._bin("prometheus-alertmanager"),
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
        )
        stack._wait_ready(state, "alertmanager", f"{alertmanager}/-/ready", 30)
        yield Wired(receiver, alertmanager, output, config)
    finally:
        pids.stop_all(state / "pids")


def post_alert(alertmanager: str, alertname: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    alert = {
        "labels": {"alertname": alertname, "instance": INSTANCE, "severity": "critical"},
        "annotations": {"summary": f"{alertname} from test_connect"},
        "startsAt": now,
    }
    resp = httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=10)
    assert resp.status_code == 200, resp.text


def incidents(output: Path) -> list[dict]:
    """What `runbook incidents --json` lists for the receiver's output directory."""
    done = subprocess.run(
        [str(RUNBOOK), "incidents", "--output", str(output), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def receivers_of(alertmanager: str) -> dict[str, list[str]]:
    """Alert name -> the receivers Alertmanager routes it to (its own API says)."""
    alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=10).json()
    return {a["labels"]["alertname"]: sorted(r["name"] for r in a["receivers"]) for a in alerts}


def received(receiver: str) -> float:
    """The receiver's runbook_alerts_received_total, over all statuses."""
    text = httpx.get(f"{receiver}/metrics", timeout=10).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("runbook_alerts_received_total")
    )


def test_alertmanager_configured_by_the_readme_delivers_ggen_mcp_alerts_only(
    wired: Wired, tmp_path: Path
) -> None:
    real_url = f"{wired.receiver}/alerts"
    assert wired.config == wiring.alertmanager_snippet(real_url, tmp_path / "token")

    post_alert(wired.alertmanager, "GgenMcpHighErrorRate")
    post_alert(wired.alertmanager, "SomethingElse")
    routes = receivers_of(wired.alertmanager)
    assert routes["SomethingElse"] == ["default"]
    assert "runbook" in routes["GgenMcpHighErrorRate"]

    def filed() -> list[dict]:
        return [
            i
            for i in incidents(wired.output)
            if i["alertname"] == "GgenMcpHighErrorRate" and i["labels"].get("instance") == INSTANCE
        ]

    [incident] = wait_for(filed, DELIVERY_S, "Alertmanager to deliver GgenMcpHighErrorRate", 2)
    assert incident["severity"] == "critical"
    assert incident["runbook"] == "high_error_rate"
    assert [r["kind"] for r in incident["runs"]] == ["investigation"]

    # Both alerts were posted together and wait the same group_wait, so the other one is
    # dispatched within moments of this one (had the route matched it, it would be here a
    # few seconds later at most). It went to `default` only: the receiver got one alert.
    time.sleep(3)
    assert "SomethingElse" in receivers_of(wired.alertmanager)
    assert [i["alertname"] for i in incidents(wired.output)] == ["GgenMcpHighErrorRate"]
    assert received(wired.receiver) == 1
