"""One incident per fault, with a real Alertmanager in front of a real `runbook serve`: the
four alerts of an error-rate fault on one instance become one incident with one
investigation; it closes when Alertmanager sends their resolution; an alert Alertmanager
never held (or lost) is closed as stale by the reconciliation against its API."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from runbook_lib.lab import deploy, pids, stack
from runbook_lib.service import wiring
from tests.polling import wait_for
from tests.test_connect import RUNBOOK, incidents

pytestmark = pytest.mark.stack

INSTANCE = "web-1.example.internal:9464"
FOUR = {  # what errors:invalid_input fires for one instance
    "GgenMcpHighErrorRate": "critical",
    "GgenMcpElevatedErrorRate": "warning",
    "GgenMcpErrorRateSLOViolation": "warning",
    "GgenMcpAvailabilitySLOViolation": "warning",
}


@dataclass
class Wired:
    receiver: str
    alertmanager: str
    output: Path
    token: str


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[Wired]:
    """Alertmanager with the documented route (fast timings), and a receiver without
    workers that reconciles with it every second and calls an alert stale after 3 s."""
    state = tmp_path / "state"
    state.mkdir()
    token_file = tmp_path / "token"
    token = secrets.token_urlsafe(24)
    token_file.write_text(token + "\n")
    port, am_port = stack.free_port(), stack.free_port()
    receiver, alertmanager = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{am_port}"
    cfg = yaml.safe_load(wiring.alertmanager_snippet(f"{receiver}/alerts", token_file))
    cfg = deploy.alertmanager_profile(cfg, f"{receiver}/alerts", token_file, fast=True)
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
    try:
        stack._launch(state, "runbook", [str(RUNBOOK), "serve", "--no-workers", "--port",
                      str(port), "--output", str(tmp_path / "out"), "--token-file",
                      str(token_file), "--alertmanager-url", alertmanager, "--reconcile-every",
                      "1", "--stale-after", "3", "--correlation-hold", "0"])  # fmt: skip
        stack._wait_ready(state, "runbook", f"{receiver}/health", 30)
        stack._launch(state, "alertmanager", [stack._bin("prometheus-alertmanager"),
                      f"--config.file={tmp_path / 'alertmanager.yml'}",
                      f"--storage.path={tmp_path / 'am'}",
                      f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="])  # fmt: skip
        stack._wait_ready(state, "alertmanager", f"{alertmanager}/-/ready", 30)
        yield Wired(receiver, alertmanager, tmp_path / "out", token)
    finally:
        pids.stop_all(state / "pids")


def _at(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def post(alertmanager: str, names: dict[str, str], starts: datetime, ends: datetime) -> None:
    alerts = [
        {"labels": {"alertname": n, "instance": INSTANCE, "severity": s},
         "annotations": {"summary": f"{n} on {INSTANCE}"},
         "startsAt": _at(starts), "endsAt": _at(ends)}
        for n, s in names.items()
    ]  # fmt: skip
    resp = httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts, timeout=10)
    assert resp.status_code == 200, resp.text


def test_four_alerts_of_one_fault_are_one_incident_that_closes_when_they_resolve(
    wired: Wired,
) -> None:
    starts = datetime.now(UTC) - timedelta(seconds=30)
    post(wired.alertmanager, FOUR, starts, starts + timedelta(hours=1))

    def all_four() -> list[dict]:
        rows = incidents(wired.output)
        return rows if rows and len(rows[0]["alerts"]) == 4 else []

    rows = wait_for(all_four, 60, "Alertmanager to deliver the four alerts", 1)
    assert len(rows) == 1, [r["alertname"] for r in rows]  # one incident, not four
    [inc] = rows
    assert inc["runbook"] == "high_error_rate" and inc["instance"] == INSTANCE
    assert {a["alertname"]: a["severity"] for a in inc["alerts"]} == FOUR
    assert inc["alerts"][0]["alertname"] == "GgenMcpHighErrorRate"  # the most severe first
    assert [r["kind"] for r in inc["runs"]] == ["investigation"]  # one investigation
    assert inc["status"] == "firing"

    # Three resolve: the incident stays open. The last resolves: it closes and verifies.
    now = datetime.now(UTC)
    post(wired.alertmanager, dict(list(FOUR.items())[1:]), starts, now)
    wait_for(lambda: {a["status"] for a in incidents(wired.output)[0]["alerts"]}
             == {"firing", "resolved"}, 30, "three resolutions", 1)  # fmt: skip
    assert incidents(wired.output)[0]["status"] == "firing"
    post(wired.alertmanager, dict(list(FOUR.items())[:1]), starts, now)
    wait_for(lambda: incidents(wired.output)[0]["status"] == "resolved", 30, "the last one", 1)
    [inc] = incidents(wired.output)
    assert {a["status"] for a in inc["alerts"]} == {"resolved"}
    assert [r["kind"] for r in inc["runs"]] == ["investigation", "verification"]


def test_an_alert_alertmanager_does_not_hold_is_closed_as_stale(wired: Wired) -> None:
    """A `firing` the receiver got (here posted to it directly) whose alert Alertmanager no
    longer has, with no `resolved` ever sent; an alert Alertmanager holds stays open."""
    starts = datetime.now(UTC)
    post(
        wired.alertmanager, {"GgenMcpHighLatency": "critical"}, starts, starts + timedelta(hours=1)
    )
    lost = {
        "version": "4", "groupKey": "{}:{alertname=\"GgenMcpMemoryCritical\"}", "status": "firing",
        "receiver": "runbook",
        "alerts": [{"status": "firing", "fingerprint": "0123456789abcdef", "startsAt": _at(starts),
                    "labels": {"alertname": "GgenMcpMemoryCritical", "instance": INSTANCE,
                               "severity": "critical"}}],
    }  # fmt: skip
    resp = httpx.post(f"{wired.receiver}/alerts", json=lost, timeout=10,
                      headers={"Authorization": f"Bearer {wired.token}"})  # fmt: skip
    assert resp.json()["outcomes"] == ["queued"]

    def by_name() -> dict[str, dict]:
        return {i["alertname"]: i for i in incidents(wired.output)}

    wait_for(lambda: "GgenMcpHighLatency" in by_name(), 30, "the latency alert", 1)
    wait_for(lambda: by_name()["GgenMcpMemoryCritical"]["status"] == "stale", 30, "stale", 1)
    rows = by_name()
    stale = rows["GgenMcpMemoryCritical"]
    assert stale["resolved_at"] is not None and stale["alerts"][0]["status"] == "stale"
    assert [r["kind"] for r in stale["runs"]] == ["investigation"]  # no verification of a guess
    assert rows["GgenMcpHighLatency"]["status"] == "firing"  # Alertmanager still holds it
