"""End to end on the real stack: simulator fault -> Prometheus alert -> Alertmanager
webhook -> queued run -> record whose top cause is the fault's cause; then the fault is
cleared -> resolved -> follow-up verification record linked to the incident."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_lib import record, stack
from runbook_lib.index import Index
from runbook_lib.prom import utc
from runbook_lib.sim.modes import EXPECTED_ALERT, EXPECTED_CAUSES

MODE = "soffice_leak"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackInfo]:
    state = tmp_path_factory.mktemp("e2e")
    opts = stack.StackOptions(
        state_dir=state,
        any_free_port=True,
        receiver=True,
        output_dir=state / "records",
        verify_delay=3,
        workers=2,
    )
    info = stack.start(opts)
    try:
        yield info
    finally:
        stack.stop(state)


def incident(index: Index, alertname: str) -> dict | None:
    found = [i for i in index.incidents() if i["alertname"] == alertname]
    return found[0] if found else None


def wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_of(inc: dict, kind: str) -> dict | None:
    return next((r for r in inc["runs"] if r["kind"] == kind and r["state"] == "done"), None)


def test_fault_to_record_then_resolution_to_verification(served: stack.StackInfo) -> None:
    alertname, out = EXPECTED_ALERT[MODE], Path(served.output_dir)
    index = Index(out / "index.sqlite")
    time.sleep(3)  # a few scrapes of normal traffic first
    stack.set_mode(served, MODE)
    inc = wait(lambda: incident(index, alertname), 120, f"{alertname} delivered")
    investigation = wait(
        lambda: run_of(incident(index, alertname), "investigation"), 240, "the record"
    )
    first = record.summary(out / investigation["record"])
    assert first["status"] == "completed" and first["alert"] == alertname
    verdicts = {d["cause"]: d["verdict"] for d in first["diagnosis"]}
    assert first["top_cause"] in EXPECTED_CAUSES[MODE], first["diagnosis"][:3]
    assert all(verdicts[c] == "likely" for c in EXPECTED_CAUSES[MODE]), verdicts
    assert first["incident_id"] == inc["id"] and first["fingerprint"] == inc["fingerprint"]

    stack.set_mode(served, "normal")
    resolved = wait(
        lambda: (i := incident(index, alertname)) and i["status"] == "resolved" and i,
        120,
        f"{alertname} resolved",
    )
    verification = wait(
        lambda: run_of(incident(index, alertname), "verification"), 240, "the verification"
    )
    follow = record.summary(out / verification["record"])
    assert follow["kind"] == "verification"
    assert follow["verification_of"] == investigation["record"]
    assert follow["incident_id"] == inc["id"]
    assert utc(follow["ends_at"]) == utc(resolved["ends_at"])
    checks = {c["check"]: c["holds"] for c in follow["post_checks"]}
    assert checks["10 or fewer LibreOffice processes for 15 minutes"] is False  # the leak is in
    assert verification["started_at"] >= resolved["resolved_at"] + 3  # waited the delay
