"""Every operator action through the incident page, as a real browser session (Playwright
driving Debian's Chromium) against a real `runbook serve` with workers and a real
Alertmanager, which delivers the alert and takes the silence: acknowledge, mark mitigated,
silence for a chosen duration (checked through Alertmanager's own API), re-investigate (a
new record) and the runbook's proposed mitigation (a new record that really acts, then its
verification). Each is recorded with its actor and shown on the page; a viewer sees no
buttons and is refused a forged POST; a POST without the CSRF token and a replayed form are
refused. No Prometheus: runs without one finish `degraded`, which is all this needs."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from runbook_lib.contract.incident import Incident, IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.lab import deploy, pids, stack
from runbook_lib.records import record
from runbook_lib.service import wiring
from tests.polling import wait_for
from tests.test_connect import RUNBOOK

pytestmark = pytest.mark.stack

INSTANCE = "web-1.example.internal:9464"
ALERT = "GgenMcpHighDiskUsage"  # its runbook proposes cleaning old temp files
VIEWER = "viewer-" + secrets.token_hex(8)


@dataclass
class Served:
    url: str
    alertmanager: str
    out: Path
    scratch: Path  # the runbook's temp_dir: the mitigation cleans it
    operator_token: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """Alertmanager routing GgenMcp* alerts to `runbook serve` (two warm workers, no
    Prometheus), and an operator, alice, added with `runbook operator add`."""
    state, out, scratch = tmp_path / "state", tmp_path / "out", tmp_path / "scratch"
    for d in (state, out, scratch):
        d.mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(secrets.token_urlsafe(24) + "\n")
    added = subprocess.run([str(RUNBOOK), "operator", "add", "alice", "--output", str(out)],
                           capture_output=True, text=True, check=True)  # fmt: skip
    port, am_port, nothing = stack.free_port(), stack.free_port(), stack.free_port()
    url, alertmanager = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{am_port}"
    cfg = yaml.safe_load(wiring.alertmanager_snippet(f"{url}/alerts", token_file))
    cfg = deploy.alertmanager_profile(cfg, f"{url}/alerts", token_file, fast=True)
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RUNBOOK_VIEWER_TOKEN": VIEWER}
    try:
        stack._launch(state, "runbook", [str(RUNBOOK), "serve", "--port", str(port),
                      "--output", str(out), "--token-file", str(token_file), "--workers", "2",
                      "--alertmanager-url", alertmanager, "--reconcile-every", "0",
                      "--prometheus-url", f"http://127.0.0.1:{nothing}",  # nobody listens
                      "--correlation-hold", "0", "--verify-delay", "2",
                      "--param", f"temp_dir={scratch}"], env=env)  # fmt: skip
        stack._launch(state, "alertmanager", [stack._bin("prometheus-alertmanager"),
                      f"--config.file={tmp_path / 'alertmanager.yml'}",
                      f"--storage.path={tmp_path / 'am'}",
                      f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="])  # fmt: skip
        stack._wait_ready(state, "runbook", f"{url}/health", 30)
        stack._wait_ready(state, "alertmanager", f"{alertmanager}/-/ready", 30)
        yield Served(url, alertmanager, out, scratch, added.stdout.strip())
    finally:
        pids.stop_all(state / "pids")


def fire(alertmanager: str) -> None:
    starts = datetime.now(UTC) - timedelta(seconds=10)
    alert = {"labels": {"alertname": ALERT, "instance": INSTANCE, "severity": "warning"},
             "annotations": {"summary": f"Disk / on {INSTANCE} is 91% full (> 80%)"},
             "startsAt": starts.isoformat(), "endsAt": (starts + timedelta(hours=1)).isoformat()}  # fmt: skip
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=10).status_code == 200


def incidents(out: Path) -> list[Incident]:
    index = Index(out / "index.sqlite")
    try:
        return index.incidents()
    finally:
        index.close()


def the_incident(out: Path) -> Incident:
    [inc] = incidents(out)
    return inc


def done(out: Path, trigger: str, kind: str = "investigation") -> IncidentRun | None:
    """The incident's finished run of this kind whose trigger starts so, once its record is there."""
    if not incidents(out):
        return None  # the alert has not reached the receiver yet
    for r in the_incident(out).runs:
        if r.kind == kind and r.trigger.startswith(trigger) and r.state == "done":
            return r if (out / r.record / "summary.json").exists() else None
    return None


def hidden_fields(page, kind: str) -> dict[str, str]:
    form = page.locator(f"form[action$='/actions/{kind}']")
    return {n: form.locator(f"input[name={n}]").get_attribute("value") for n in ("csrf", "nonce")}


def signed_in(browser, base: str, incident: int, token: str):
    page = browser.new_page()
    page.goto(f"{base}/incidents/{incident}")
    assert "/signin" in page.url
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/incidents/{incident}")
    return page


def click(page, button: str, base: str, incident: int) -> None:
    """Press an action's button and land back on the incident page."""
    page.click(f"#{button}")
    page.wait_for_url(f"{base}/incidents/{incident}#actions")


def test_every_operator_action_through_the_page_in_a_browser(served: Served) -> None:
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    old = served.scratch / "ggen-mcp-upload-1.xlsx"  # what the runbook's cleanup removes
    old.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    fire(served.alertmanager)
    first = wait_for(lambda: done(served.out, ""), 45, "the first investigation's record", 0.5)
    proposed = record.summary(served.out / first.record).actions
    assert [a.action for a in proposed if not a.done] == ["clean_temp_files"]
    iid, base = the_incident(served.out).id, served.url

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = signed_in(browser, base, iid, served.operator_token)
            assert "signed in as alice (operator)" in " ".join(page.inner_text("#who").split())

            click(page, "do-acknowledge", base, iid)
            assert "Acknowledged by alice" in page.inner_text("#taken")
            assert page.locator("#do-acknowledge").count() == 0

            click(page, "do-mitigated", base, iid)
            assert "said by alice" in page.inner_text("#taken")

            page.select_option("#silence-duration", "4h")
            before = datetime.now(UTC)
            click(page, "do-silence", base, iid)
            row = page.locator("#actions tr.action-silence")
            assert "alice" in row.inner_text() and "(4h)" in row.inner_text()

            form = hidden_fields(page, "reinvestigate")
            click(page, "do-reinvestigate", base, iid)
            assert page.locator("#runs tr", has_text="re-investigation asked by alice").count() == 1
            replay = page.request.post(f"{base}/incidents/{iid}/actions/reinvestigate", form=form)
            assert replay.status == 409 and "submitted already" in replay.text()
            no_csrf = page.request.post(f"{base}/incidents/{iid}/actions/reinvestigate",
                                        form={"nonce": "fresh-" + secrets.token_hex(4)})  # fmt: skip
            assert no_csrf.status == 403 and "CSRF token" in no_csrf.text()
            rerun = wait_for(lambda: done(served.out, "operator:"), 45, "the re-investigation", 0.5)

            page.reload()
            assert "clean_temp_files" in page.inner_text("#do-mitigation")
            click(page, "do-mitigation", base, iid)
            mitigation = wait_for(lambda: done(served.out, "mitigation:", "mitigation"), 45,
                                  "the mitigation's record", 0.5)  # fmt: skip
            verified = wait_for(lambda: done(served.out, "mitigation:", "verification"), 45,
                                "the verification after the mitigation", 0.5)  # fmt: skip

            viewer = signed_in(browser, base, iid, VIEWER)
            assert viewer.locator("button[id^=do-]").count() == 0
            assert viewer.locator("form[action*='/actions/']").count() == 0
            history = viewer.inner_text("#actions")
            forged = viewer.request.post(f"{base}/incidents/{iid}/actions/acknowledge",
                                         form={"nonce": "n-" + secrets.token_hex(4)})  # fmt: skip
            assert forged.status == 403 and "operator credential" in forged.text()
        finally:
            browser.close()

    # The index: each action with its actor, in order, and what it made.
    inc = the_incident(served.out)
    acts = inc.actions
    assert [(a.kind, a.actor) for a in acts] == [
        ("acknowledge", "alice"), ("mitigated", "alice"), ("silence", "alice"),
        ("reinvestigate", "alice"), ("mitigation", "alice"),
    ]  # fmt: skip
    assert all(a.at >= acts[i - 1].at for i, a in enumerate(acts) if i)
    assert inc.acknowledged_by == "alice" and inc.mitigated_by == "alice"
    assert rerun.record == f"{first.record}-r{acts[3].id}" and rerun.requested_by == "alice"
    assert mitigation.trigger == verified.trigger == f"mitigation:{acts[4].id}"
    assert verified.started_at >= mitigation.finished_at + 2  # the verify delay, after it
    did = record.summary(served.out / mitigation.record).actions
    assert [(a.action, a.done) for a in did] == [("clean_temp_files", True)]
    assert not old.exists()  # the approved mitigation really acted
    assert [r.kind for r in inc.runs] == [
        "investigation",
        "investigation",
        "mitigation",
        "verification",
    ]  # the replayed form and the one without a CSRF token added nothing

    # The silence, as Alertmanager has it, and the alert it now silences.
    silence_id = acts[2].detail["silence_id"]
    s = httpx.get(f"{served.alertmanager}/api/v2/silence/{silence_id}", timeout=5).json()
    assert s["createdBy"] == "alice" and s["status"]["state"] == "active"
    assert f"#{iid}" in s["comment"] and f"{base}/incidents/{iid}" in s["comment"]
    assert {(m["name"], m["value"]) for m in s["matchers"]} == {
        ("alertname", ALERT), ("instance", INSTANCE)
    }  # fmt: skip
    ends = datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00"))
    assert before + timedelta(hours=4) - timedelta(seconds=5) <= ends
    assert ends <= datetime.now(UTC) + timedelta(hours=4)
    assert acts[2].detail["ends_at"][:19] == ends.isoformat()[:19]

    def silenced() -> bool:
        alerts = httpx.get(f"{served.alertmanager}/api/v2/alerts", timeout=5).json()
        return any(silence_id in a["status"]["silencedBy"] for a in alerts
                   if a["labels"]["alertname"] == ALERT)  # fmt: skip

    wait_for(silenced, 10, "Alertmanager to silence the incident's alert")

    # The viewer read the same history the index holds, without any button.
    for line in ("acknowledged", "marked mitigated", "silenced the alerts",
                 "asked for a new investigation", "approved the runbook's mitigation"):  # fmt: skip
        assert re.search(rf"alice\s+{re.escape(line)}", history), line
    assert time.monotonic() - started < 60, "the stack test should stay under a minute"
