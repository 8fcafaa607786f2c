"""The webhook receiver: auth, size limit, field-naming validation, persisting each alert
once in the index with its runs queued, resolution and hostile labels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runbook_lib.contract.config import Settings
from runbook_lib.incidents.index import Index
from runbook_lib.service.server import MAX_BODY_BYTES, create_app
from runbook_lib.storage import retention
from runbook_lib.storage.migrations import schema
from tests.conftest import summary_of

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
def client(tmp_path: Path) -> tuple[TestClient, Index]:
    index = Index(tmp_path / "index.sqlite")
    return TestClient(
        create_app(
            Settings(webhook_token=TOKEN, output_dir=index.path.parent, verify_delay=300), index
        )
    ), index


def post(client: TestClient, body: object, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/alerts", content=data, headers=headers)


def test_accepts_and_persists_a_v4_payload(client) -> None:
    c, index = client
    resp = post(c, payload())
    assert resp.status_code == 200 and resp.json() == {"accepted": 1, "outcomes": ["queued"]}
    [inc] = index.incidents()
    assert inc.fingerprint == "4991cd65c78f4760" and inc.runbook == "high_error_rate"
    assert inc.alertname == "GgenMcpHighErrorRate" and inc.status == "firing"
    [run] = inc.runs
    assert run.kind == "investigation" and run.state == "queued"
    assert run.record == "20261128T040000Z-GgenMcpHighErrorRate-4991cd65c78f"
    assert index.queue_stats()[0] == 1


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x"])
def test_refuses_without_the_right_token(client, token) -> None:
    c, index = client
    assert post(c, payload(), token=token).status_code == 401
    assert index.incidents() == []


def test_the_viewer_token_opens_pages_but_cannot_post_alerts(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    c = TestClient(
        create_app(
            Settings(webhook_token=TOKEN, output_dir=index.path.parent, viewer_token="viewer-only"),
            index,
        )
    )
    assert post(c, payload(), token="viewer-only").status_code == 401
    assert index.incidents() == []
    page = c.get("/incidents", headers={"Authorization": "Bearer viewer-only"})
    assert page.status_code == 200 and "No incidents match." in page.text
    assert c.get("/incidents", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_non_utf8_and_out_of_range_times_are_422_not_500(client) -> None:
    c, index = client
    assert post(c, b"\xff\xfe").status_code == 422
    for starts in ("0001-01-01T00:00:00+05:00", "0", "yesterday"):
        resp = post(c, payload(startsAt=starts))
        assert resp.status_code == 422, starts
        assert [d["field"] for d in resp.json()["detail"]] == ["alerts.0.startsAt"]
    assert index.incidents() == []
    resp = post(c, payload(startsAt="2026-11-28T09:30:00+05:30"))
    assert resp.status_code == 200
    assert index.incidents()[0].starts_at == "2026-11-28T04:00:00+00:00"  # kept in UTC


def test_refuses_oversize_bodies(client) -> None:
    c, index = client
    big = payload(annotations={"summary": "x" * (MAX_BODY_BYTES + 10)})
    assert post(c, big).status_code == 413
    assert index.incidents() == []


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
    c, index = client
    body = payload()
    mutate(body)
    resp = post(c, body)
    assert resp.status_code == 422
    assert field in [d["field"] for d in resp.json()["detail"]]
    assert index.incidents() == []


def test_a_streamed_oversize_body_without_length_is_refused(client) -> None:
    c, index = client

    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert c.post("/alerts", content=chunks(), headers=headers).status_code == 413
    assert index.incidents() == []


def test_the_same_group_posted_five_times_queues_one_run(client) -> None:
    c, index = client
    group = payload()
    group["alerts"].append(
        {
            **group["alerts"][0],
            "fingerprint": "aaaa000011112222",
            "labels": {**group["alerts"][0]["labels"], "instance": "other:9464"},
        }
    )
    outcomes = [post(c, group).json()["outcomes"] for _ in range(5)]
    assert outcomes[0] == ["queued", "queued"]
    assert all(o == ["duplicate", "duplicate"] for o in outcomes[1:])
    incidents = index.incidents()
    assert len(incidents) == 2 and all(len(i.runs) == 1 for i in incidents)
    assert "runbook_alerts_duplicate_total 8.0" in c.get("/metrics").text


def test_a_new_start_of_the_same_alert_is_a_new_incident(client) -> None:
    c, index = client
    post(c, payload())
    post(c, payload(status="resolved", endsAt="2026-11-28T04:20:00Z"))  # over, then again:
    assert post(c, payload(startsAt="2026-11-28T06:00:00Z")).json()["outcomes"] == ["queued"]
    assert len(index.incidents()) == 2


def test_resolved_marks_the_incident_and_schedules_verification(client) -> None:
    c, index = client
    post(c, payload())
    resolved = payload(status="resolved", endsAt="2026-11-28T04:20:00Z")
    assert post(c, resolved).json()["outcomes"] == ["resolved"]
    assert post(c, resolved).json()["outcomes"] == ["resolved-duplicate"]
    [inc] = index.incidents()
    assert inc.status == "resolved" and inc.ends_at.startswith("2026-11-28T04:20:00")
    investigation, verification = inc.runs
    assert verification.kind == "verification" and verification.state == "queued"
    assert verification.record == investigation.record + "-verify"
    assert verification.not_before == pytest.approx(inc.resolved_at + 300)
    assert index.queue_stats()[0] == 1  # the verification is not due yet


def test_a_resolved_alert_never_seen_firing_is_still_investigated(client) -> None:
    c, index = client
    assert post(c, payload(status="resolved")).json()["outcomes"] == ["resolved"]
    [inc] = index.incidents()
    assert [r.kind for r in inc.runs] == ["investigation", "verification"]


HOSTILE = [
    "quote\"s and 'single' and \\ backslash",
    "../../etc/passwd",
    "line1\nline2\r\n",
    "$(rm -rf /); `id` | & ; > /tmp/x",
    "x" * 5000,
    "ünïcødé ✓ 火 \u2028",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_label_values_stay_data(client, value: str) -> None:
    c, index = client
    alert = payload(
        labels={"alertname": value, "instance": value, "severity": "critical"},
        fingerprint=value[:40],
    )
    assert post(c, alert).status_code == 200
    [inc] = index.incidents()
    assert inc.labels["instance"] == value and inc.runbook == "triage"
    name = inc.runs[0].record
    assert "/" not in name and "\n" not in name and not name.startswith(".")
    assert len(name) < 120 and re.fullmatch(r"[A-Za-z0-9_.-]+", name)


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


def test_health_and_metrics_report_the_queue(client) -> None:
    c, _ = client
    post(c, payload())
    assert c.get("/health").json()["queue_depth"] == 1
    text = c.get("/metrics").text
    assert "runbook_queue_depth 1.0" in text
    assert re.search(r"runbook_queue_oldest_age_seconds \d", text)


def test_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        create_app(Settings(webhook_token="", output_dir=tmp_path), Index(tmp_path / "i.sqlite"))


def test_an_index_that_cannot_be_written_is_a_503_naming_it(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    c = TestClient(create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index))
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    resp = post(c, payload())
    assert resp.status_code == 503  # Alertmanager keeps the alert and retries
    assert resp.json()["detail"].startswith(f"could not persist the alerts in {index.path}")


def test_a_declared_oversize_body_is_refused_before_it_is_read(client) -> None:
    c, index = client
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Length": str(MAX_BODY_BYTES + 1)}
    resp = c.post("/alerts", content=b"{}", headers=headers)
    assert resp.status_code == 413
    assert resp.json()["detail"] == f"body of {MAX_BODY_BYTES + 1} bytes exceeds {MAX_BODY_BYTES}"
    at_limit = payload(annotations={"summary": "x" * (MAX_BODY_BYTES - 1000)})
    assert post(c, at_limit).status_code == 200


def test_the_token_must_be_exactly_a_bearer_header(client) -> None:
    c, _ = client
    for header in (f"bearer {TOKEN}", f"Bearer  {TOKEN}", TOKEN, f"Basic {TOKEN}"):
        resp = c.post("/alerts", content=json.dumps(payload()), headers={"Authorization": header})
        assert resp.status_code == 401, header
        assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_the_home_page_leads_to_the_incidents(client) -> None:
    c, _ = client
    resp = c.get("/", follow_redirects=False)
    assert resp.status_code == 307 and resp.headers["location"] == "/incidents"


def _samples(c: TestClient, name: str) -> dict[str, float]:
    """The samples of one metric on /metrics, by their label text."""
    out = {}
    for line in c.get("/metrics").text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, value = line.rsplit(" ", 1)
            out[key[len(name) :]] = float(value)
    return out


def test_runs_are_counted_from_the_index_once_each_whoever_filed_them(tmp_path: Path) -> None:
    """Runs filed by another process (a Celery worker) count as well as the pool's; each once,
    however often /metrics is scraped; retention removing a counted run takes nothing back;
    a run filed late (its commit came after a newer one's) still counts; and runs filed
    before the receiver started are not counted by it."""
    index = Index(tmp_path / "index.sqlite")
    app = create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index)
    c = TestClient(app)
    post(c, payload())
    mem = {"alertname": "GgenMcpMemoryCritical", "instance": "h:9464", "severity": "critical"}
    post(c, payload(labels=mem, fingerprint="00000000000000aa"))
    post(c, payload(labels={**mem, "instance": "g:9464"}, fingerprint="00000000000000bb"))
    first, second, third = (index.claim() for _ in range(3))
    assert _samples(c, "runbook_runs_total") == {}
    index.finish(first.run_id, summary_of({"status": "completed", "top_cause": "invalid_input"}))
    index.finish(second.run_id, summary_of({"status": "failed", "error": "no kernel"}))
    counted = {
        '{kind="investigation",runbook="high_error_rate",status="completed"}': 1.0,
        '{kind="investigation",runbook="memory",status="failed"}': 1.0,
    }
    assert _samples(c, "runbook_runs_total") == counted
    assert _samples(c, "runbook_runs_total") == counted  # scraped again: not counted again
    retention.forget(index, [first.record])  # retention
    assert _samples(c, "runbook_runs_total") == counted
    index.finish(third.run_id, summary_of({"status": "completed"}))
    started = app.state.metrics.runs.since
    with index.tx() as conn:  # filed after the start, before the newest run counted
        filed = conn.execute(sa.select(schema.RUNS.c.finished_at).where(
            schema.RUNS.c.id == second.run_id)).scalar()  # fmt: skip
        conn.execute(
            sa.update(schema.RUNS).where(schema.RUNS.c.id == third.run_id)
            .values(finished_at=(started + filed) / 2)
        )  # fmt: skip
    counted['{kind="investigation",runbook="memory",status="completed"}'] = 1.0
    assert _samples(c, "runbook_runs_total") == counted
    durations = _samples(c, "runbook_run_duration_seconds_count")
    assert durations == {'{runbook="high_error_rate"}': 1.0, '{runbook="memory"}': 2.0}
    restarted = TestClient(
        create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index)
    )
    assert _samples(restarted, "runbook_runs_total") == {}


def test_refusals_and_deliveries_start_at_zero_and_metrics_answer_without_the_index(
    tmp_path: Path,
) -> None:
    from runbook_lib.service.notify import NotifyConfig

    index = Index(tmp_path / "index.sqlite")
    notify = NotifyConfig(targets=[{"name": "chat", "url": "json://127.0.0.1:9/"}])
    app = create_app(
        Settings(webhook_token=TOKEN, output_dir=index.path.parent), index, notify=notify
    )
    c = TestClient(app)
    assert _samples(c, "runbook_webhooks_refused_total") == {
        '{reason="token"}': 0.0,
        '{reason="too_large"}': 0.0,
        '{reason="invalid"}': 0.0,
        '{reason="unavailable"}': 0.0,
    }
    assert _samples(c, "runbook_deliveries_total") == {
        '{outcome="sent",target="chat"}': 0.0,
        '{outcome="retried",target="chat"}': 0.0,
        '{outcome="given_up",target="chat"}': 0.0,
    }
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    assert post(c, payload()).status_code == 503
    assert _samples(c, "runbook_webhooks_refused_total")['{reason="unavailable"}'] == 1.0
    assert math.isnan(_samples(c, "runbook_queue_depth")[""])  # unknown, not 0


def test_explain_names_each_field_without_the_input() -> None:
    from pydantic import ValidationError

    from runbook_lib.contract.alerts import WebhookPayload
    from runbook_lib.service.server import _explain

    with pytest.raises(ValidationError) as caught:
        WebhookPayload.model_validate_json(b'{"version": "3", "alerts": [{"status": 1}]}')
    problems = {p["field"]: p["problem"] for p in _explain(caught.value)}
    assert problems["version"] == "Input should be '4'"
    assert problems["alerts.0.status"] == "Input should be 'firing' or 'resolved'"
    assert problems["groupKey"] == "Field required"
    with pytest.raises(ValidationError) as caught:
        WebhookPayload.model_validate_json(b"\xff")
    [only] = _explain(caught.value)
    assert only["field"] == "(body)" and "JSON" in only["problem"]


def test_the_size_limit_is_inclusive_for_declared_and_streamed_bodies(client) -> None:
    c, _ = client
    headers = {"Authorization": f"Bearer {TOKEN}"}
    exactly = b" " * MAX_BODY_BYTES  # not JSON, but not too big either
    resp = c.post("/alerts", content=exactly, headers=headers)
    assert resp.status_code == 422

    def streamed():
        yield b" " * MAX_BODY_BYTES

    assert c.post("/alerts", content=streamed(), headers=headers).status_code == 422

    def over():
        yield b" " * (MAX_BODY_BYTES // 2)
        yield b" " * (MAX_BODY_BYTES // 2 + 1)

    resp = c.post("/alerts", content=over(), headers=headers)
    assert resp.status_code == 413
    assert resp.json()["detail"] == f"body exceeds {MAX_BODY_BYTES} bytes"


def test_an_app_with_a_run_config_has_its_pool_and_the_default_verify_delay(tmp_path: Path) -> None:
    from runbook_lib.service.workers import Pool, RunConfig

    index = Index(tmp_path / "index.sqlite")
    app = create_app(
        Settings(webhook_token=TOKEN, output_dir=index.path.parent),
        index,
        run_config=RunConfig(output_dir=tmp_path, workers=1),
    )
    assert isinstance(app.state.pool, Pool) and app.state.pool.index is index
    assert app.state.pool.config.workers == 1
    assert (
        create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index).state.pool
        is None
    )
    c = TestClient(create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index))
    post(c, payload(status="resolved"))
    [inc] = index.incidents()
    assert inc.runs[1].not_before - inc.resolved_at == pytest.approx(300, abs=1e-3)


def test_bad_times_are_explained_in_words() -> None:
    from pydantic import ValidationError

    from runbook_lib.contract.alerts import Alert

    with pytest.raises(
        ValidationError, match="expected an RFC 3339 time such as 2026-01-15T10:02:00Z"
    ):
        Alert.model_validate(
            {"status": "firing", "labels": {}, "startsAt": "soon", "fingerprint": "a"}
        )
    with pytest.raises(ValidationError, match="time out of range once converted to UTC"):
        Alert.model_validate(
            {
                "status": "firing",
                "labels": {},
                "startsAt": "0001-01-01T00:00:00+05:00",
                "fingerprint": "a",
            }
        )
    naive = Alert.model_validate(
        {"status": "firing", "labels": {}, "startsAt": "2026-01-15T10:02:00", "fingerprint": "a"}
    )
    assert naive.startsAt.isoformat() == "2026-01-15T10:02:00+00:00"  # taken as UTC


def test_the_503_names_the_database_error(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    c = TestClient(create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index))
    (tmp_path / "index.sqlite").write_bytes(b"x" * 4096)
    detail = post(c, payload()).json()["detail"]
    assert detail == f"could not persist the alerts in {index.path}: file is not a database"


def test_retention_runs_while_serving_and_is_off_by_default(tmp_path: Path) -> None:
    import os
    import time as clock

    from runbook_lib.execution import runner

    index = Index(tmp_path / "index.sqlite")

    def old_record(name: str) -> Path:
        params = runner.alert_params("GgenMcpHighErrorRate", {"instance": "h:1"})
        rec = runner.failure_record(params, tmp_path, runbook="high_error_rate", name=name,
                                    status="failed", error="x")  # fmt: skip
        then = clock.time() - 3 * 86400
        os.utime(rec, (then, then))
        return rec

    kept = old_record("kept-by-default")
    with TestClient(
        create_app(Settings(webhook_token=TOKEN, output_dir=index.path.parent), index)
    ):  # lifespan runs: no retention configured
        pass
    assert kept.exists()
    gone = old_record("older-than-two-days")
    with TestClient(
        create_app(
            Settings(webhook_token=TOKEN, output_dir=index.path.parent, retention_days=2), index
        )
    ):
        deadline = clock.monotonic() + 10
        while gone.exists() and clock.monotonic() < deadline:
            clock.sleep(0.05)
    assert not gone.exists() and not kept.exists()


class RecordingDispatcher:
    """A stand-in for the Celery dispatcher (tested with Redis in test_distributed):
    records what the receiver hands it."""

    sweep_every_s = 0.01

    def __init__(self) -> None:
        self.sent: list[list] = []
        self.sweeps = 0

    def send(self, runs) -> None:
        self.sent.append(runs)

    def sweep(self) -> int:
        self.sweeps += 1
        return 0


def test_accepted_runs_go_to_the_dispatcher_and_it_is_swept(tmp_path: Path) -> None:
    import time as clock

    index = Index(tmp_path / "index.sqlite")
    dispatcher = RecordingDispatcher()
    with TestClient(
        create_app(
            Settings(webhook_token=TOKEN, output_dir=index.path.parent),
            index,
            dispatcher=dispatcher,
        )
    ) as c:
        post(c, payload())
        post(c, payload())  # a duplicate creates no run: nothing to send
        deadline = clock.monotonic() + 5
        while dispatcher.sweeps < 3 and clock.monotonic() < deadline:
            clock.sleep(0.02)
    assert [[q.kind for q in runs] for runs in dispatcher.sent] == [["investigation"]]
    assert dispatcher.sweeps >= 3


def test_records_are_served_from_the_records_directory(tmp_path: Path) -> None:
    index = Index(tmp_path / "db" / "index.sqlite")
    shared = tmp_path / "shared"
    (shared / "some-record").mkdir(parents=True)
    (shared / "some-record" / "report.html").write_text("<p>the record</p>")
    c = TestClient(
        create_app(Settings(webhook_token=TOKEN, output_dir=shared, viewer_token="v"), index)
    )
    resp = c.get("/records/some-record/report.html", headers={"Authorization": "Bearer v"})
    assert resp.status_code == 200 and resp.text == "<p>the record</p>"


def test_times_are_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock

    from runbook_lib.contract.alerts import Alert

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    clock.tzset()
    try:
        naive = Alert.model_validate(
            {
                "status": "firing",
                "labels": {},
                "startsAt": "2026-01-15T10:02:00",
                "fingerprint": "a",
            }
        )
        aware = Alert.model_validate(
            {
                "status": "firing",
                "labels": {},
                "startsAt": "2026-01-15T10:02:00Z",
                "fingerprint": "a",
            }
        )
        assert (
            naive.startsAt.isoformat()
            == aware.startsAt.isoformat()
            == ("2026-01-15T10:02:00+00:00")
        )
    finally:
        monkeypatch.delenv("TZ")
        clock.tzset()


def test_messages_and_the_api_title_are_exact(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from runbook_lib.contract.alerts import Alert

    with pytest.raises(ValueError) as caught:
        create_app(Settings(webhook_token="", output_dir=tmp_path), Index(tmp_path / "i.sqlite"))
    assert str(caught.value) == (
        "the webhook needs a token: set RUNBOOK_WEBHOOK_TOKEN or a token file"
    )
    with pytest.raises(ValidationError) as bad:
        Alert.model_validate(
            {"status": "firing", "labels": {}, "startsAt": "x", "fingerprint": "a"}
        )
    assert bad.value.errors()[0]["msg"] == (
        "Value error, expected an RFC 3339 time such as 2026-01-15T10:02:00Z"
    )
    with pytest.raises(ValidationError) as far:
        Alert.model_validate(
            {"status": "firing", "labels": {}, "startsAt": "0001-01-01T00:00:00+01:00",
             "fingerprint": "a"}
        )  # fmt: skip
    assert far.value.errors()[0]["msg"] == "Value error, time out of range once converted to UTC"
    c = TestClient(
        create_app(Settings(webhook_token=TOKEN, output_dir=tmp_path), Index(tmp_path / "i.sqlite"))
    )
    assert c.get("/openapi.json").json()["info"]["title"] == "runbook server"


def test_the_doctors_token_probe_is_answered_but_not_counted_as_a_refusal(client) -> None:
    """`runbook doctor` POSTs {} with the token: 422 as before, but the refusals counter
    (which RunbookWebhooksRefused fires on) stays where it was; {"alerts": []} still counts."""
    c, _ = client

    def refused_invalid() -> float:
        line = [x for x in c.get("/metrics").text.splitlines()
                if x.startswith('runbook_webhooks_refused_total{reason="invalid"}')]  # fmt: skip
        return float(line[0].split()[-1]) if line else 0.0

    before = refused_invalid()
    probe = c.post("/alerts", content=b"{}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert probe.status_code == 422 and refused_invalid() == before
    bad = c.post("/alerts", content=b'{"alerts": []}', headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 422 and refused_invalid() == before + 1
