"""Operator actions on the incident page: who may act (operators, never viewers or the
webhook token), the CSRF token, cross-site and replayed POSTs, every refusal changing
nothing, and each action written with its actor and time, in one transaction with what it
changes and its event. The stack test with a real browser and Alertmanager is
tests/test_actions_stack.py."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runbook_lib.contract.config import Settings
from runbook_lib.incidents.actions import Closed
from runbook_lib.incidents.index import Index
from runbook_lib.lab.stack import free_port
from runbook_lib.service.operators import Operators
from runbook_lib.service.server import create_app
from runbook_lib.service.workers import RunConfig, job_params
from runbook_lib.storage.migrations import schema
from tests.conftest import summary_of
from tests.test_server import payload, post

HOOK, VIEWER = "hook-secret-1", "viewer-secret-2"
VERIFY_DELAY = 120.0
PROPOSED = {  # what a runbook's summary says of a mitigation it was not allowed to run
    "action": "restart_container",
    "done": False,
    "outcome": "not run (allow_mitigation=False); would restart container ggen-mcp-server",
}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def index(out: Path) -> Index:
    return Index(out / "index.sqlite")


@pytest.fixture
def alice(out: Path) -> str:
    return Operators(out / "operators.json").add("alice")


def app(index: Index, **kw) -> TestClient:
    kw = {"viewer_token": VIEWER, "session_secret": "s" * 32, "verify_delay": VERIFY_DELAY, **kw}
    return TestClient(
        create_app(Settings(webhook_token=HOOK, output_dir=index.path.parent, **kw), index),
        follow_redirects=False,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def firing(c: TestClient, **overrides) -> int:
    """One incident from one alert; its id."""
    assert post(c, payload(**overrides), token=HOOK).status_code == 200
    return max(i.id for i in c.app.state.index.incidents())


def investigated(index: Index, out: Path, actions: list[dict] | None = None) -> str:
    """The incident's queued investigation runs and leaves a record; its record name."""
    job = index.claim()
    summary = {"status": "completed", "top_cause": "oom_killed", "actions": actions or []}
    (out / job.record).mkdir(parents=True)
    summary_of(summary).write(out / job.record / "summary.json")
    (out / job.record / "report.html").write_text("<p>report</p>")
    index.finish(job.run_id, summary_of(summary))
    return job.record


def rows(index: Index, table: sa.Table) -> list[dict]:
    with index.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def snapshot(index: Index) -> tuple:
    """Everything an action may change."""
    return tuple(rows(index, t) for t in (schema.INCIDENTS, schema.RUNS, schema.ACTIONS,
                                          schema.EVENTS))  # fmt: skip


def sign_in(c: TestClient, token: str) -> None:
    assert c.post("/signin", data={"token": token, "next": "/incidents"}).status_code == 303


def form_of(c: TestClient, incident: int, kind: str) -> dict[str, str]:
    """The hidden fields of the action's form on the incident page, as a browser sends them."""
    page = c.get(f"/incidents/{incident}").text
    form = re.search(rf'action="/incidents/{incident}/actions/{kind}">(.*?)</form>', page, re.S)
    assert form, f"no {kind} form on the page"
    return dict(re.findall(r'name="(csrf|nonce)" value="([^"]*)"', form[1]))


SAME_SITE = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


# -- who may act ---------------------------------------------------------------------------
def test_an_operator_acknowledges_and_the_index_says_who_and_when(index: Index, alice: str) -> None:
    c = app(index)
    iid = firing(c)
    before = time.time()
    resp = c.post(f"/incidents/{iid}/actions/acknowledge", headers=bearer(alice))
    after = time.time()
    assert resp.status_code == 200, resp.text
    assert resp.json()["actor"] == "alice" and resp.json()["kind"] == "acknowledge"
    inc = index.incident(iid)
    assert inc.acknowledged_by == "alice" and before <= inc.acknowledged_at <= after
    [action] = inc.actions
    assert (action.kind, action.actor, action.at) == (
        "acknowledge",
        "alice",
        inc.acknowledged_at,
    )
    [event] = [e for e in rows(index, schema.EVENTS) if e["kind"] == "acknowledged"]
    assert event["key"] == f"acknowledged:a{action.id}" and event["incident_id"] == iid
    assert json.loads(event["detail"]) == {"actor": "alice"}

    bob = Operators(index.path.parent / "operators.json").add("bob")
    same = snapshot(index)
    again = c.post(f"/incidents/{iid}/actions/acknowledge", headers=bearer(bob))
    assert again.status_code == 409 and "acknowledged already by alice" in again.json()["detail"]
    assert snapshot(index) == same


@pytest.mark.parametrize("who", ["viewer bearer", "viewer session", "webhook token"])
def test_viewers_and_the_webhook_token_may_not_act(index: Index, alice: str, who: str) -> None:
    c = app(index, pages_accept_webhook_token=True)
    iid = firing(c)
    headers = {}
    if who == "viewer session":
        sign_in(c, VIEWER)
        headers = SAME_SITE
    else:
        headers = bearer(VIEWER if who == "viewer bearer" else HOOK)
    same = snapshot(index)
    for kind in ("acknowledge", "mitigated", "reinvestigate", "silence", "mitigation"):
        resp = c.post(f"/incidents/{iid}/actions/{kind}", headers=headers,
                      data={"duration": "1h", "nonce": f"n-{kind}"})  # fmt: skip
        assert resp.status_code == 403, (kind, resp.text)
        assert "needs an operator credential" in resp.json()["detail"]
    assert snapshot(index) == same
    assert c.get(f"/incidents/{iid}", headers=headers).status_code == 200  # they still read


def test_without_any_credential_an_action_is_401(index: Index, alice: str) -> None:
    c = app(index)
    iid = firing(c)
    same = snapshot(index)
    assert c.post(f"/incidents/{iid}/actions/acknowledge").status_code == 401
    assert c.post(f"/incidents/{iid}/actions/acknowledge",
                  headers=bearer(alice + "x")).status_code == 401  # fmt: skip
    assert snapshot(index) == same


def test_a_removed_operator_can_no_longer_act_nor_keep_a_session(index: Index, out: Path) -> None:
    ops = Operators(out / "operators.json")
    token = ops.add("carol")
    c = app(index)
    iid = firing(c)
    sign_in(c, token)
    form = form_of(c, iid, "acknowledge")
    ops.remove("carol")
    same = snapshot(index)
    resp = c.post(f"/incidents/{iid}/actions/acknowledge", data=form, headers=SAME_SITE)
    assert resp.status_code == 401
    assert c.post(f"/incidents/{iid}/actions/acknowledge", headers=bearer(token)).status_code == 401
    assert snapshot(index) == same


# -- the browser's form: CSRF, origin, replay ------------------------------------------------
def test_an_operators_form_acts_once_and_its_replay_is_refused(index: Index, alice: str) -> None:
    c = app(index)
    iid = firing(c)
    investigated(index, index.path.parent)
    sign_in(c, alice)
    form = form_of(c, iid, "reinvestigate")
    resp = c.post(f"/incidents/{iid}/actions/reinvestigate", data=form, headers=SAME_SITE)
    assert resp.status_code == 303 and resp.headers["location"] == f"/incidents/{iid}#actions"
    same = snapshot(index)
    replay = c.post(f"/incidents/{iid}/actions/reinvestigate", data=form, headers=SAME_SITE)
    assert replay.status_code == 409 and "submitted already" in replay.text
    assert snapshot(index) == same
    assert len([r for r in index.incident(iid).runs if r.kind == "investigation"]) == 2

    fresh = form_of(c, iid, "reinvestigate")  # a new form is a new request: it acts
    assert fresh["nonce"] != form["nonce"]
    assert c.post(f"/incidents/{iid}/actions/reinvestigate", data=fresh,
                  headers=SAME_SITE).status_code == 303  # fmt: skip
    assert len([r for r in index.incident(iid).runs if r.kind == "investigation"]) == 3


@pytest.mark.parametrize(
    "change, headers",
    [
        ({"csrf": None}, SAME_SITE),  # no CSRF token
        ({"csrf": "forged-token"}, SAME_SITE),
        ({}, {"Origin": "https://evil.example"}),
        ({}, {"Origin": "null"}),
        ({}, {"Referer": "https://evil.example/page"}),
        ({}, {"Sec-Fetch-Site": "cross-site"}),
    ],
)
def test_a_forged_or_cross_site_form_is_403_and_changes_nothing(
    index: Index, alice: str, change: dict, headers: dict
) -> None:
    c = app(index)
    iid = firing(c)
    sign_in(c, alice)
    form = {**form_of(c, iid, "acknowledge"), **change}
    form = {k: v for k, v in form.items() if v is not None}
    same = snapshot(index)
    resp = c.post(f"/incidents/{iid}/actions/acknowledge", data=form, headers=headers)
    assert resp.status_code == 403, resp.text
    assert ("CSRF token" in resp.text) if change else ("cross-site" in resp.text)
    assert snapshot(index) == same


def test_a_form_without_a_nonce_is_refused(index: Index, alice: str) -> None:
    c = app(index)
    iid = firing(c)
    sign_in(c, alice)
    form = form_of(c, iid, "acknowledge")
    same = snapshot(index)
    resp = c.post(f"/incidents/{iid}/actions/acknowledge", data={"csrf": form["csrf"]},
                  headers=SAME_SITE)  # fmt: skip
    assert resp.status_code == 422 and "no nonce" in resp.text
    assert snapshot(index) == same


# -- bad input -------------------------------------------------------------------------------
def test_unknown_incident_closed_incident_and_unknown_action(index: Index, alice: str) -> None:
    c = app(index)
    iid = firing(c)
    same = snapshot(index)
    h = bearer(alice)
    resp = c.post("/incidents/99/actions/acknowledge", headers=h)
    assert resp.status_code == 404 and "no incident 99" in resp.json()["detail"]
    assert c.post(f"/incidents/{2**63}/actions/acknowledge", headers=h).status_code == 422
    resp = c.post(f"/incidents/{iid}/actions/reboot", headers=h)
    assert resp.status_code == 404 and "no action 'reboot'" in resp.json()["detail"]
    assert snapshot(index) == same

    resolved = payload(status="resolved", endsAt="2026-11-28T04:30:00Z")
    assert post(c, resolved, token=HOOK).status_code == 200
    same = snapshot(index)
    for kind in ("acknowledge", "mitigated", "reinvestigate", "silence", "mitigation"):
        resp = c.post(f"/incidents/{iid}/actions/{kind}", headers=h, data={"duration": "1h"})
        assert resp.status_code == 409, kind
        assert resp.json()["detail"] == (
            f"incident {iid} is closed (resolved): actions are for open incidents"
        )
    with pytest.raises(Closed, match="is closed"):  # `runbook incidents --mitigated` too
        index.mark_mitigated(iid, actor="root (command line)")
    assert snapshot(index) == same


@pytest.mark.parametrize("duration", ["10m", "14m", "8d", "169h", "1w", "abc", "", "1.5h", "-1h"])
def test_a_silence_outside_15m_to_7d_is_422(index: Index, alice: str, duration: str) -> None:
    c = app(index, alertmanager_url=f"http://127.0.0.1:{free_port()}")
    iid = firing(c)
    same = snapshot(index)
    resp = c.post(f"/incidents/{iid}/actions/silence", headers=bearer(alice),
                  data={"duration": duration})  # fmt: skip
    assert resp.status_code == 422 and "from 15m to 7d" in resp.json()["detail"]
    assert snapshot(index) == same


def test_a_silence_without_alertmanager_is_409_and_one_it_cannot_reach_502(
    index: Index, alice: str
) -> None:
    c = app(index)
    iid = firing(c)
    same = snapshot(index)
    resp = c.post(
        f"/incidents/{iid}/actions/silence", headers=bearer(alice), data={"duration": "1h"}
    )
    assert resp.status_code == 409 and "no Alertmanager is configured" in resp.json()["detail"]
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    c = app(index, alertmanager_url=down)
    resp = c.post(
        f"/incidents/{iid}/actions/silence", headers=bearer(alice), data={"duration": "7d"}
    )
    assert resp.status_code == 502 and f"could not reach Alertmanager at {down}" in resp.text
    assert snapshot(index) == same


# -- what each action changes ----------------------------------------------------------------
def test_mark_mitigated_from_the_page_and_the_command_line_is_one_action(
    index: Index, alice: str
) -> None:
    c = app(index)
    iid = firing(c)
    assert c.post(f"/incidents/{iid}/actions/mitigated", headers=bearer(alice)).status_code == 200
    inc = index.incident(iid)
    assert inc.mitigated_by == "alice" and inc.mitigated_at is not None
    [event] = [e for e in rows(index, schema.EVENTS) if e["kind"] == "mitigated"]
    assert json.loads(event["detail"]) == {"actor": "alice"}
    same = snapshot(index)
    assert index.mark_mitigated(iid, actor="root (command line)") is False  # recorded already
    again = c.post(f"/incidents/{iid}/actions/mitigated", headers=bearer(alice))
    assert again.status_code == 409 and "marked mitigated already by alice" in again.text
    assert snapshot(index) == same
    sign_in(c, alice)
    assert "communication status: mitigating" in c.get(f"/incidents/{iid}").text.lower()


def test_reinvestigate_queues_a_new_investigation_now_named_for_the_action(
    index: Index, alice: str
) -> None:
    c = app(index)
    iid = firing(c)
    first = investigated(index, index.path.parent)
    before = time.time()
    resp = c.post(f"/incidents/{iid}/actions/reinvestigate", headers=bearer(alice))
    assert resp.status_code == 200
    aid, run_id = resp.json()["action"], resp.json()["run_id"]
    run = next(r for r in index.incident(iid).runs if r.id == run_id)
    assert run.kind == "investigation" and run.trigger == f"operator:{aid}"
    assert run.record == f"{first}-r{aid}" and run.requested_by == "alice"
    assert run.state == "queued" and before <= run.not_before <= time.time()
    assert not [e for e in rows(index, schema.EVENTS) if e["key"].endswith(f":a{aid}")]
    job = index.claim()  # the next run a worker takes is this one
    assert job.run_id == run_id and job.incident.requested_by == "alice"


def test_the_mitigation_runs_only_when_proposed_then_allowed_then_verified(
    index: Index, alice: str
) -> None:
    c = app(index)
    iid = firing(c)
    investigated(index, index.path.parent, actions=[{**PROPOSED, "outcome": "not run: this "
                 "run replays a past incident; would restart container x"}])  # fmt: skip
    same = snapshot(index)
    resp = c.post(f"/incidents/{iid}/actions/mitigation", headers=bearer(alice))
    assert resp.status_code == 409 and "proposed no mitigation" in resp.json()["detail"]
    assert snapshot(index) == same

    rerun = c.post(f"/incidents/{iid}/actions/reinvestigate", headers=bearer(alice))
    assert rerun.status_code == 200
    investigated(index, index.path.parent, actions=[PROPOSED])  # the newest one proposes
    resp = c.post(f"/incidents/{iid}/actions/mitigation", headers=bearer(alice))
    assert resp.status_code == 200, resp.text
    aid = resp.json()["action"]
    assert resp.json()["detail"] == {"mitigations": ["restart_container"]}
    runs = {r.kind: r for r in index.incident(iid).runs if r.trigger == f"mitigation:{aid}"}
    assert runs["mitigation"].state == "queued" and runs["mitigation"].requested_by == "alice"
    assert runs["mitigation"].record.endswith(f"-m{aid}")
    assert runs["verification"].state == "waiting"  # not before the mitigation ends

    job = index.claim()
    assert job.kind == "mitigation" and index.claim() is None  # the verification waits
    config = RunConfig(output_dir=index.path.parent, params={"allow_mitigation": False})
    assert job_params(job, config)["allow_mitigation"] is True
    ended = time.time()
    index.finish(
        job.run_id, summary_of({"status": "completed", "actions": [{**PROPOSED, "done": True}]})
    )
    verify = next(r for r in index.incident(iid).runs if r.id == runs["verification"].id)
    assert verify.state == "queued"
    assert ended + VERIFY_DELAY <= verify.not_before <= time.time() + VERIFY_DELAY
    assert index.incident(iid).mitigated_at is not None  # the run did it
    assert index.claim(now=verify.not_before).run_id == verify.id


# -- the page --------------------------------------------------------------------------------
def test_viewers_see_the_history_but_no_buttons(index: Index, alice: str) -> None:
    c = app(index)
    iid = firing(c)
    investigated(index, index.path.parent, actions=[PROPOSED])
    assert c.post(f"/incidents/{iid}/actions/acknowledge", headers=bearer(alice)).status_code == 200
    sign_in(c, VIEWER)
    page = c.get(f"/incidents/{iid}").text
    assert "Acknowledged by <b>alice</b>" in page
    assert re.search(r'class="actor">alice</td>\s*<td>acknowledged</td>', page)
    assert "/actions/" not in page and "<button" in page  # sign-out and post-mortem only
    assert 'id="do-' not in page

    sign_in(c, alice)
    page = c.get(f"/incidents/{iid}").text
    for button in ("do-mitigated", "do-reinvestigate", "do-mitigation"):
        assert f'id="{button}"' in page
    assert 'id="do-acknowledge"' not in page  # acknowledged already
    assert "Run the runbook's mitigation: restart_container (would restart container " \
           "ggen-mcp-server)" in page  # fmt: skip
    assert 'id="do-silence"' not in page and "--alertmanager-url" in page  # none configured
    assert "signed in as\nalice (operator)" in page


def test_an_escalation_shows_both_investigations_and_a_banner(index: Index, alice: str) -> None:
    c = app(index)
    warn = {"alertname": "GgenMcpElevatedErrorRate", "instance": "h:9464", "severity": "warning"}
    iid = firing(c, labels=warn, fingerprint="aaaa1111bbbb2222")
    investigated(index, index.path.parent)
    crit = {**warn, "alertname": "GgenMcpHighErrorRate", "severity": "critical"}
    assert post(c, payload(labels=crit, startsAt="2026-11-28T04:01:00Z"), token=HOOK).json()[
        "outcomes"
    ] == ["escalated"]
    sign_in(c, VIEWER)
    page = c.get(f"/incidents/{iid}").text
    assert (
        '<p class="banner" id="banner">a new investigation led by GgenMcpHighErrorRate (critical)'
        " is queued; the record below is the earlier one (warning)</p>"
    ) in page
    runs = re.findall(r'<tr class="run-investigation"><td>investigation</td><td>([^<]*)</td>\s*'
                      r"<td>(\w+) <span[^>]*>\((\w+)\)</span></td>\s*<td>(\w+)</td>", page)  # fmt: skip
    assert runs == [
        ("first", "GgenMcpElevatedErrorRate", "warning", "completed"),
        ("escalation", "GgenMcpHighErrorRate", "critical", "queued"),
    ]
    assert '<meta http-equiv="refresh" content="10">' in page  # it follows the new one
