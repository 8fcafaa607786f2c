"""Who may view the incident pages: the viewer token (never the webhook token unless told),
a signed session after /signin (the cookie never holds a token), a tampered cookie refused,
and `/incidents/latest`, where the alert rules' `runbook_url` leads."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runbook_lib.contract.config import Settings
from runbook_lib.incidents.index import Index
from runbook_lib.service.server import create_app
from tests.test_server import payload, post

HOOK, VIEWER = "hook-secret-1", "viewer-secret-2"
HTML = {"accept": "text/html"}


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index.sqlite")


def app(index: Index, **kw) -> TestClient:
    return TestClient(
        create_app(
            Settings(
                webhook_token=HOOK,
                output_dir=index.path.parent,
                viewer_token=VIEWER,
                session_secret="s" * 32,
                **kw,
            ),
            index,
        ),
        follow_redirects=False,
    )


def signed_in(c: TestClient, nxt: str = "/incidents") -> None:
    resp = c.post("/signin", data={"token": VIEWER, "next": nxt})
    assert resp.status_code == 303 and resp.headers["location"] == nxt


def test_the_webhook_token_does_not_open_the_pages_by_default(index: Index) -> None:
    c = app(index)
    assert c.get("/incidents", headers={"Authorization": f"Bearer {HOOK}"}).status_code == 401
    assert c.post("/signin", data={"token": HOOK}).status_code == 401
    told = app(index, pages_accept_webhook_token=True)
    assert told.get("/incidents", headers={"Authorization": f"Bearer {HOOK}"}).status_code == 200


def test_a_browser_is_sent_to_sign_in_and_back_and_the_cookie_holds_no_token(index: Index) -> None:
    c = app(index)
    resp = c.get("/incidents?alert=Mem", headers=HTML)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/signin?next=/incidents%3Falert%3DMem"
    form = c.get(resp.headers["location"])
    assert 'name="next" value="/incidents?alert=Mem"' in form.text
    wrong = c.post("/signin", data={"token": "guess", "next": "/incidents"})
    assert wrong.status_code == 401 and "neither the viewer token nor an operator" in wrong.text
    signed_in(c, "/incidents?alert=Mem")
    cookie = c.cookies.get("runbook_session")
    assert cookie and VIEWER not in cookie and HOOK not in cookie
    assert c.get("/incidents", headers=HTML).status_code == 200


def test_a_tampered_session_cookie_is_refused(index: Index) -> None:
    c = app(index)
    signed_in(c)
    good = c.cookies.get("runbook_session")
    payload_part, rest = good.split(".", 1)
    forged = payload_part[:-2] + ("AA" if payload_part[-2:] != "AA" else "BB") + "." + rest
    c.cookies.clear()
    c.cookies.set("runbook_session", forged)
    assert c.get("/incidents").status_code == 401
    c.cookies.clear()
    c.cookies.set("runbook_session", good)
    assert c.get("/incidents").status_code == 200
    other_c = TestClient(  # another secret: its sessions do not open these pages
        create_app(
            Settings(
                webhook_token=HOOK,
                output_dir=index.path.parent,
                viewer_token=VIEWER,
                session_secret="t" * 32,
            ),
            index,
        ),
        follow_redirects=False,
    )
    other_c.cookies.set("runbook_session", good)
    assert other_c.get("/incidents").status_code == 401


def test_a_viewer_session_cannot_post_alerts(index: Index) -> None:
    c = app(index)
    signed_in(c)
    assert c.post("/alerts", json=payload()).status_code == 401
    assert post(c, payload(), token=VIEWER).status_code == 401
    assert index.incidents() == []


def test_sign_in_only_redirects_within_this_server(index: Index) -> None:
    c = app(index)
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = c.post("/signin", data={"token": VIEWER, "next": evil})
        assert resp.headers["location"] == "/incidents", evil


def test_latest_leads_to_the_newest_investigation_of_that_alert_and_instance(
    index: Index,
) -> None:
    c = app(index)
    for fp, hour, inst, status in (
        ("a1", "04", "h:9464", "firing"),
        ("a1", "04", "h:9464", "resolved"),
        ("a2", "05", "h:9464", "firing"),
        ("b1", "06", "g:1", "firing"),
    ):
        body = payload(fingerprint=fp, startsAt=f"2026-11-28T{hour}:00:00Z", status=status,
                       labels={"alertname": "GgenMcpHighErrorRate", "instance": inst,
                               "severity": "critical"})  # fmt: skip
        assert post(c, body, token=HOOK).status_code == 200  # a1 ends before a2 begins
    ids = {i.fingerprint: i.id for i in index.incidents()}
    signed_in(c)
    resp = c.get("/incidents/latest?alertname=GgenMcpHighErrorRate&instance=h%3A9464")
    assert resp.status_code == 303 and resp.headers["location"] == f"/incidents/{ids['a2']}"
    resp = c.get("/incidents/latest?alertname=GgenMcpHighErrorRate")
    assert resp.headers["location"] == f"/incidents/{ids['b1']}"
    detail = c.get(f"/incidents/{ids['a2']}")
    assert '<meta http-equiv="refresh" content="10">' in detail.text  # still running
    waiting = c.get("/incidents/latest?alertname=GgenMcpMemoryCritical&instance=h%3A9464")
    assert waiting.status_code == 200
    assert "No investigation of GgenMcpMemoryCritical on h:9464 yet" in waiting.text
    assert '<meta http-equiv="refresh" content="10">' in waiting.text


def test_latest_without_a_session_goes_through_sign_in(index: Index) -> None:
    c = app(index)
    resp = c.get("/incidents/latest?alertname=X&instance=y", headers=HTML)
    assert (
        resp.headers["location"] == "/signin?next=/incidents/latest%3Falertname%3DX%26instance%3Dy"
    )


def test_notify_yml_and_other_top_level_files_are_not_served(index: Index, tmp_path: Path) -> None:
    (tmp_path / "notify.yml").write_text("targets: [{name: s, url: 'slack://secret'}]\n")
    rec = tmp_path / "20260115-GgenMcpX-abc"
    rec.mkdir()
    (rec / "report.html").write_text("<p>report</p>")
    c = app(index)
    signed_in(c)
    assert c.get("/records/notify.yml").status_code == 404
    assert c.get("/records/index.sqlite").status_code == 404
    assert c.get(f"/records/{rec.name}/report.html").text == "<p>report</p>"


def test_a_new_viewer_token_ends_the_sessions_of_the_old_one(index: Index) -> None:
    c = app(index)
    signed_in(c)
    cookie = c.cookies.get("runbook_session")
    rotated = TestClient(
        create_app(
            Settings(
                webhook_token=HOOK,
                output_dir=index.path.parent,
                viewer_token="rotated-3",
                session_secret="s" * 32,
            ),
            index,
        ),
        follow_redirects=False,
    )
    rotated.cookies.set("runbook_session", cookie)
    assert rotated.get("/incidents").status_code == 401


def test_an_oversized_sign_in_form_is_refused(index: Index) -> None:
    c = app(index)
    resp = c.post("/signin", content=b"token=" + b"x" * 10_000,
                  headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert resp.status_code == 413
