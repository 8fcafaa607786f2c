"""End to end on the real stack: simulator fault -> Prometheus alert -> Alertmanager
webhook -> queued run -> record whose top cause is the fault's cause; then the fault is
cleared -> resolved -> follow-up verification record linked to the incident."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runbook_lib.contract import incident as indexed
from runbook_lib.contract.clock import utc
from runbook_lib.incidents.index import Index
from runbook_lib.lab import demo, deploy, stack
from runbook_lib.lab.chat_sink import ChatSink
from runbook_lib.lab.sim.modes import EXPECTED_ALERT, EXPECTED_CAUSES
from runbook_lib.records import record
from tests.conftest import fault_incidents
from tests.polling import wait_for

# Starts or ends soffice processes, and test_live_run judges every soffice on the host:
# these never run beside each other (one xdist group; see tests/conftest.py).
pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("soffice")]  # real services

MODE = "soffice_leak"


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatSink]:
    """The team's channel (a loopback stand-in for Slack or a webhook endpoint)."""
    sink = ChatSink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, chat: ChatSink) -> Iterator[stack.StackInfo]:
    state = tmp_path_factory.mktemp("e2e")
    notify_yml = state / "notify.yml"
    notify_yml.write_text(
        f"targets:\n  - {{name: team, url: 'json://127.0.0.1:{chat.port}/hook'}}\n"
        "retry: {base_s: 0.5}\n"
    )
    opts = stack.StackOptions(
        state_dir=state,
        any_free_port=True,
        receiver=True,
        output_dir=state / "records",
        verify_delay=3,
        workers=2,
        notify_config=notify_yml,
    )
    info = stack.start(opts)
    try:
        yield info
    finally:
        stack.stop(state)


def incident(index: Index, alertname: str) -> indexed.Incident | None:
    """The incident `alertname` is filed in: its own, or the one of the same fault it joined."""
    found = [i for i in index.incidents() if alertname in {a.alertname for a in i.alerts}]
    return found[0] if found else None


def scraped(info: stack.StackInfo, samples: int) -> bool:
    """Prometheus holds `samples` scrapes of the simulator (its normal traffic before a fault)."""
    query = 'count_over_time(up{job="ggen-mcp"}[5m])'
    resp = httpx.get(f"{info.urls['prometheus']}/api/v1/query", params={"query": query}, timeout=5)
    result = resp.json()["data"]["result"]
    return bool(result) and float(result[0]["value"][1]) >= samples


def run_of(inc: indexed.Incident, kind: str) -> indexed.IncidentRun | None:
    return next((r for r in inc.runs if r.kind == kind and r.state == "done"), None)


@dataclass
class Incident:
    info: stack.StackInfo
    out: Path
    inc: indexed.Incident
    resolved: indexed.Incident
    investigation: indexed.IncidentRun
    verification: indexed.IncidentRun


@pytest.fixture(scope="module")
def e2e(served: stack.StackInfo) -> Incident:
    """The whole life of one incident on the real stack, driven through the simulator."""
    alertname, out = EXPECTED_ALERT[MODE], Path(served.output_dir)
    index = Index(out / "index.sqlite")
    wait_for(lambda: scraped(served, 3), 30, "3 scrapes of normal traffic first")
    stack.set_mode(served, MODE)
    inc = wait_for(lambda: incident(index, alertname), 120, f"{alertname} delivered")
    investigation = wait_for(
        lambda: run_of(incident(index, alertname), "investigation"), 240, "the record"
    )
    stack.set_mode(served, "normal")
    resolved = wait_for(
        lambda: (i := incident(index, alertname)) and i.status == "resolved" and i,
        120,
        f"{alertname} resolved",
    )
    verification = wait_for(
        lambda: run_of(incident(index, alertname), "verification"), 240, "the verification"
    )
    return Incident(served, out, inc, resolved, investigation, verification)


def test_fault_to_record_then_resolution_to_verification(e2e: Incident) -> None:
    out, inc, investigation = e2e.out, e2e.inc, e2e.investigation
    first = record.summary(out / investigation.record).as_json()
    assert first["status"] == "completed" and first["alert"] == EXPECTED_ALERT[MODE]
    verdicts = {d["cause"]: d["verdict"] for d in first["diagnosis"]}
    assert first["top_cause"] in EXPECTED_CAUSES[MODE], first["diagnosis"][:3]
    assert all(verdicts[c] == "likely" for c in EXPECTED_CAUSES[MODE]), verdicts
    assert first["incident_id"] == inc.id and first["fingerprint"] == inc.fingerprint

    follow = record.summary(out / e2e.verification.record).as_json()
    assert follow["kind"] == "verification"
    assert follow["verification_of"] == investigation.record
    assert follow["incident_id"] == inc.id
    assert utc(follow["ends_at"]) == utc(e2e.resolved.ends_at)
    checks = {c["check"]: c["holds"] for c in follow["post_checks"]}
    assert checks["10 or fewer LibreOffice processes for 15 minutes"] is False  # the leak is in
    assert e2e.verification.started_at >= e2e.resolved.resolved_at + 3  # waited the delay


def test_the_finding_reaches_the_team_with_a_link_that_opens_the_record(
    e2e: Incident, chat: ChatSink
) -> None:
    top = record.summary(e2e.out / e2e.investigation.record).top_cause
    first = wait_for(
        lambda: next(
            (
                r.json()
                for r in chat.delivered
                if r.json()["title"].startswith(f"🚨 {EXPECTED_ALERT[MODE]} · ")
            ),
            None,
        ),
        30,
        "the investigation's message",
    )
    assert first["title"].startswith(f"🚨 {EXPECTED_ALERT[MODE]} · ")
    assert f"Top cause: **{top}**" in first["message"]
    assert first["attachments"] and first["attachments"][0]["filename"].endswith(".png")
    link = next(w for w in first["message"].split() if "/incidents/" in w)
    viewer = (e2e.out / ".viewer-token").read_text().strip()
    with httpx.Client(follow_redirects=True, timeout=10, headers={"accept": "text/html"}) as c:
        assert "/signin" in str(c.get(link).url)  # no token in the link: sign in first
        c.post(link.split("/incidents/")[0] + "/signin", data={"token": viewer, "next": "/"})
        page = c.get(link)
        assert page.status_code == 200 and e2e.investigation.record in page.text
        # the alert as Alertmanager delivered it carries runbook_url: the same record
        runbook_url = e2e.inc.annotations["runbook_url"]
        assert "/incidents/latest?alertname=" in runbook_url
        via_rule = c.get(runbook_url)
        assert str(via_rule.url).endswith(f"/incidents/{e2e.inc.id}")
        assert e2e.investigation.record in via_rule.text
    titles = [r.json()["title"] for r in chat.delivered]
    assert len(titles) == len(set(titles)), titles  # each event once
    assert any(t.startswith("✅ Resolved: ") for t in titles)


def test_postmortem_from_the_records_after_prometheus_is_gone(e2e: Incident) -> None:
    stack.stop(Path(e2e.info.state_dir))  # Prometheus and all: only the records remain
    records = [e2e.out / e2e.investigation.record, e2e.out / e2e.verification.record]
    runbook = str(Path(sys.executable).with_name("runbook"))
    done = subprocess.run(
        [runbook, "postmortem", *map(str, records)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pm = e2e.out / f"postmortem-{records[0].name}"
    md = (pm / "postmortem.md").read_text()
    first = record.summary(records[0]).as_json()
    top = next(d for d in first["diagnosis"] if d["cause"] == first["top_cause"])
    root = md.split("## Root cause", 1)[1].split("## Key charts", 1)[0]
    assert f"**{first['top_cause']}** (likely" in root and top["evidence"][0] in root
    timeline = md.split("## Timeline", 1)[1].split("## Root cause", 1)[0]
    assert f"likely cause {first['top_cause']} ({records[0].name})" in timeline
    assert "| incident resolved |" in timeline and f"({records[1].name})" in timeline
    assert f"| {first['alert']} ({first['severity']}) fired (received " in timeline
    assert "| 10 or fewer LibreOffice processes for 15 minutes | ✘ not yet |" in md
    pngs = sorted((pm / "charts").glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 20_000 for p in pngs)
    assert all(f"]({p.relative_to(pm)})" in md for p in pngs)
    html = (pm / "postmortem.html").read_text()
    assert html.count("data:image/png;base64") >= 2 and "(no saved data)" not in md
    assert json.loads((pm / "postmortem.json").read_text())["records"] == [
        str(r.resolve()) for r in records
    ]


# No soffice leak: a group of its own (xdist joins both names) beside soffice, as the demo of
# test_scripts.
@pytest.mark.xdist_group("stack-test_e2e-demo")
def test_demo_uses_the_prometheus_it_is_given(tmp_path: Path) -> None:
    """RUNBOOK_PROMETHEUS_URL: the demo starts no Prometheus of its own, leaves that one
    running, and still gets from the fault to a record through it."""
    ports = stack.choose_ports(any_free=True)
    profile = deploy.write_profile(
        tmp_path / "theirs",
        stack.targets(ports),
        webhook_url="http://unused/",
        token_file=tmp_path / "unused-token",
    )
    url = f"http://{stack.HOST}:{ports['prometheus']}"
    theirs = subprocess.Popen(
        [
            shutil.which("prometheus"),
            f"--config.file={profile.prometheus_config}",
            f"--storage.tsdb.path={tmp_path / 'theirs-data'}",
            f"--web.listen-address={stack.HOST}:{ports['prometheus']}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines: list[str] = []
    try:
        code = demo.run(
            tmp_path / "state",
            output_dir=tmp_path / "out",
            prometheus_url=url,
            ports=ports,
            say=lines.append,
        )
        assert code == 0
        assert theirs.poll() is None, "the demo must not stop a Prometheus it did not start"
    finally:
        theirs.terminate()
        theirs.wait(30)
    text = "\n".join(lines)
    assert "Prometheus from RUNBOOK_PROMETHEUS_URL" in text
    assert "Stopped 4 processes." in text  # simulator, node exporter, Alertmanager, receiver
    # the incident HighErrorRate joined, and the critical's investigation is its last: the one
    # investigation, or the escalation after a warning's that had started before the critical
    # was pending (as in test_scripts' demo)
    from runbook_lib.incidents.index import Index

    [inc] = fault_incidents(Index(tmp_path / "out" / "index.sqlite").incidents())
    assert "GgenMcpHighErrorRate" in {a.alertname for a in inc.alerts}
    *before, run = inc.runs
    assert run.kind == "investigation" and run.alertname == "GgenMcpHighErrorRate"
    assert run.trigger == "" or run.trigger.startswith("escalated:"), run.trigger
    assert [(r.kind, r.alertname) for r in before] in (
        [],
        [("investigation", "GgenMcpElevatedErrorRate")],
    )
    assert record.summary(tmp_path / "out" / run.record).top_cause == "invalid_input"


@pytest.fixture(scope="module")  # its tests only read: one server for them all
def pages(e2e: Incident, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`runbook serve` over the end-to-end incident's records (pages only, no workers)."""
    tmp_path = tmp_path_factory.mktemp("pages")
    port = stack.free_port()
    env = {**os.environ, "RUNBOOK_WEBHOOK_TOKEN": "hook-token", "RUNBOOK_VIEWER_TOKEN": "viewer"}
    cmd = [str(Path(sys.executable).with_name("runbook")), "serve", "--port", str(port)]
    cmd += ["--output", str(e2e.out), "--no-workers"]
    proc = subprocess.Popen(cmd, env=env, stderr=open(tmp_path / "serve.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        # its imports take seconds of CPU: in a loaded stack tier, 30 s were too short once
        wait_for(lambda: _answers(f"{url}/health"), 90, "runbook serve")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_incident_pages_in_a_browser(e2e: Incident, pages: str) -> None:
    from playwright.sync_api import sync_playwright

    alertname = EXPECTED_ALERT[MODE]
    top = record.summary(e2e.out / e2e.investigation.record).top_cause
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{pages}/incidents")  # no session: the sign-in form first
            assert "/signin" in page.url
            page.fill("input[name=token]", "viewer")
            page.click("button[type=submit]")
            page.wait_for_url(f"{pages}/incidents")
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
            assert "runbook_session" in cookies and "viewer" not in cookies["runbook_session"]
            row = page.locator("#incidents tr", has_text=alertname)
            assert row.count() == 1 and "resolved" in row.inner_text()
            assert top in row.inner_text()
            row.locator("a.incident").click()
            page.wait_for_url(f"**/incidents/{e2e.inc.id}")
            assert page.inner_text("#top-cause") == top
            assert page.locator("a.followup", has_text="verification").count() == 1
            frame = page.frame_locator("#record")
            frame.locator("img").first.wait_for(timeout=30_000)
            sizes = frame.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert len(sizes) >= 3 and all(w > 200 for w in sizes)  # charts rendered
            nb = page.request.get(pages + page.locator("a[download]").get_attribute("href"))
            assert nb.ok and json.loads(nb.body())["cells"]
        finally:
            browser.close()


@pytest.mark.parametrize(
    "path",
    [
        "/records/..%2F..%2Fetc%2Fpasswd",
        "/records/%2e%2e/%2e%2e/etc/passwd",
        "/records/index.sqlite",
        "/records/..%2Fserve.log",
        "/records/%2Fetc%2Fpasswd",
    ],
)
def test_incident_pages_refuse_paths_outside_the_records(pages: str, path: str) -> None:
    with httpx.Client(base_url=pages, headers={"Authorization": "Bearer viewer"}) as c:
        resp = c.get(path)
        assert resp.status_code == 404 and "root:" not in resp.text
        assert c.get("/incidents").status_code == 200  # the token itself was fine


def test_the_viewer_token_cannot_post_alerts(pages: str) -> None:
    resp = httpx.post(f"{pages}/alerts", json={}, headers={"Authorization": "Bearer viewer"})
    assert resp.status_code == 401
