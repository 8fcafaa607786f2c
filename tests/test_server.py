"""The webhook receiver: auth, size limit, field-naming validation, durable inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runbook_lib.server import MAX_BODY_BYTES, Inbox, create_app

TOKEN = "s3cret-token"


def payload(**alert_overrides: object) -> dict:
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "GgenMcpHighErrorRate",
            "instance": "h:9464",
            "severity": "critical",
        },
        "annotations": {"summary": "GGEN MCP error rate is 7.4% (> 5%)"},
        "startsAt": "2026-11-28T04:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom/graph",
        "fingerprint": "4991cd65c78f4760",
        **alert_overrides,
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="GgenMcpHighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "runbook",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [alert],
        "someFutureField": {"x": 1},
    }


@pytest.fixture
def client(tmp_path: Path) -> tuple[TestClient, Inbox]:
    inbox = Inbox(tmp_path / "inbox.jsonl")
    return TestClient(create_app(inbox, TOKEN)), inbox


def post(client: TestClient, body: object, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/alerts", content=data, headers=headers)


def test_accepts_and_persists_a_v4_payload(client) -> None:
    c, inbox = client
    resp = post(c, payload())
    assert resp.status_code == 200 and resp.json() == {"accepted": 1}
    [stored] = inbox.read()
    assert stored.alerts[0].fingerprint == "4991cd65c78f4760"
    assert stored.alerts[0].name == "GgenMcpHighErrorRate"


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_refuses_without_the_right_token(client, token) -> None:
    c, inbox = client
    assert post(c, payload(), token=token).status_code == 401
    assert inbox.read() == []


def test_refuses_oversize_bodies(client) -> None:
    c, inbox = client
    big = payload(annotations={"summary": "x" * (MAX_BODY_BYTES + 10)})
    assert post(c, big).status_code == 413
    assert inbox.read() == []


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda p: p["alerts"][0].pop("fingerprint"), "alerts.0.fingerprint"),
        (lambda p: p.update(version="3"), "version"),
        (lambda p: p["alerts"][0].update(status="maybe"), "alerts.0.status"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda p: p.update(alerts=[]), "alerts"),
    ],
)
def test_malformed_payload_names_the_field(client, mutate, field) -> None:
    c, inbox = client
    body = payload()
    mutate(body)
    resp = post(c, body)
    assert resp.status_code == 422
    assert field in [d["field"] for d in resp.json()["detail"]]
    assert inbox.read() == []


def test_not_json_is_a_clear_422(client) -> None:
    c, _ = client
    resp = post(c, b"{not json")
    assert resp.status_code == 422 and "JSON" in json.dumps(resp.json())


def test_metrics_count_received_alerts(client) -> None:
    c, _ = client
    post(c, payload())
    post(c, payload(status="resolved"))
    text = c.get("/metrics").text
    assert 'runbook_alerts_received_total{status="firing"} 1.0' in text
    assert 'runbook_alerts_received_total{status="resolved"} 1.0' in text


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        create_app(Inbox(tmp_path / "i.jsonl"), "")
