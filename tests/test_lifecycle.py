"""Incidents that follow the fault, in the index and the runs it hands out: escalation,
holds bounded by what Prometheus has pending, slow-burn alerts that never hold an incident
open, and the memory of past incidents a record, page and message recall."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.incidents import actions
from runbook_lib.incidents.index import Index
from runbook_lib.notebook import recurrence
from runbook_lib.records.lead import lead_html
from runbook_lib.service import holds
from runbook_lib.service.workers import RunConfig, job_params
from runbook_lib.storage import retention
from tests.conftest import summary_of

T0 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
NOW = T0.timestamp() + 30
INSTANCE = "web-1:9464"


def alert(name: str, severity: str, after_s: float = 0, *, status: str = "firing",
          slow_burn: bool = False, instance: str = INSTANCE, ends_s: float = 0) -> Alert:  # fmt: skip
    labels = {"alertname": name, "instance": instance, "severity": severity}
    if slow_burn:
        labels["slow_burn"] = "true"
    return Alert(
        status=status,
        labels=labels,
        annotations={"summary": name},
        startsAt=T0 + timedelta(seconds=after_s),
        endsAt=T0 + timedelta(seconds=ends_s) if status == "resolved" else None,
        fingerprint=f"{name[7:]}-{instance[:5]}".lower(),
    )


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index.sqlite", correlation_window=300)


def finish(index: Index, job, top: str | None = None, checks: list | None = None) -> None:
    index.finish(
        job.run_id,
        summary_of({"status": "completed", "top_cause": top, "post_checks": checks or []}),
    )


# -- escalation ----------------------------------------------------------------------------
def test_an_escalation_runs_a_second_investigation_that_names_the_first(
    index: Index, tmp_path: Path
) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW)
    first = index.claim(NOW)
    finish(index, first, "invalid_input")
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", 60)], 300, NOW + 60) == [
        "escalated"
    ]
    second = index.claim(NOW + 60)
    params = job_params(second, RunConfig(output_dir=tmp_path))
    assert params["alert_name"] == "GgenMcpHighErrorRate" and params["severity"] == "critical"
    assert params["incident"]["trigger"] == "escalated:higherrorrate-web-1"
    assert params["incident"]["earlier"] == [
        {"record": "20261128T040000Z-GgenMcpElevatedErrorRate-elevatederro",
         "kind": "investigation", "alertname": "GgenMcpElevatedErrorRate", "severity": "warning",
         "status": "completed", "top_cause": "invalid_input"}
    ]  # fmt: skip
    links = second.summary_fields()
    assert links["earlier_records"] == ["20261128T040000Z-GgenMcpElevatedErrorRate-elevatederro"]
    finish(index, second, "invalid_input")
    kinds = [e.kind for e in _events(index)]
    assert kinds == ["investigation", "escalated"]  # the critical's finding is the escalation


def test_the_escalation_lead_says_from_what_to_what() -> None:
    html = lead_html(
        summary_of({"alert": "GgenMcpHighErrorRate", "severity": "critical", "runbook": "high_error_rate",
         "starts_at": "2026-11-28T04:01:00+00:00", "diagnosis": [], "top_cause": None,
         "escalated_from": {"record": "R1", "alertname": "GgenMcpElevatedErrorRate",
                            "severity": "warning"}})
    )  # fmt: skip
    assert "Escalated from warning to critical</b> by GgenMcpHighErrorRate" in html
    assert "led by GgenMcpElevatedErrorRate" in html and "/records/R1/report.html" in html


# -- holds ---------------------------------------------------------------------------------
def test_a_hold_waits_for_the_pending_alert_plus_the_margin_and_never_past_the_cap(
    index: Index,
) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW)
    job = index.claim(NOW)
    active = datetime(2026, 11, 28, 4, 0, 10, tzinfo=UTC)  # the critical went pending here
    pending = [holds.Pending("GgenMcpHighErrorRate", "critical", active, for_s=300)]
    policy = holds.HoldPolicy("http://unused", cap_s=600, margin_s=45)
    hold = holds.wait_for(pending, job, policy, NOW)
    assert hold.until == active.timestamp() + 345  # 04:05:55: its for: plus the margin
    assert "GgenMcpHighErrorRate (critical), pending since 04:00:10 UTC" in hold.note
    short = holds.HoldPolicy("http://unused", cap_s=120, margin_s=45)
    assert holds.wait_for(pending, job, short, NOW).until == NOW + 120  # the cap
    index.defer(job, NOW + 120, "n", now=NOW)
    again = index.claim(NOW + 120)
    assert again.queue.held_since == NOW  # the first hold's time is kept: the cap holds across
    assert holds.wait_for(pending, again, short, NOW + 120) is None  # waited enough
    assert holds.wait_for([], job, policy, NOW) is None  # nothing pending: start now
    fired = [holds.Pending("GgenMcpHighErrorRate", "critical", active, 300, firing=True)]
    on_its_way = holds.wait_for(fired, again, policy, NOW + 10)
    assert on_its_way.until == NOW + 45  # firing already: the margin from the first wait
    assert holds.wait_for(fired, again, policy, NOW + 45) is None  # it did not come: go
    assert "firing since 04:05:10 UTC, on its way" in on_its_way.note


def test_critical_runs_and_operator_requests_are_never_held(index: Index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 300, NOW)
    job = index.claim(NOW)
    blind = holds.HoldPolicy("", fallback_s=10)
    assert holds.decide(job, blind, NOW) is None


def test_a_hold_when_prometheus_does_not_answer_falls_back_to_the_fixed_wait(
    index: Index,
) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW)
    job = index.claim(NOW + 1)
    closed = holds.HoldPolicy("http://127.0.0.1:9", fallback_s=10, timeout_s=1)
    hold = holds.decide(job, closed, NOW + 1)
    assert hold.until == NOW + 10 and "Prometheus could not say" in hold.note
    assert holds.decide(job, closed, NOW + 10) is None


# -- slow-burn alerts ----------------------------------------------------------------------
def test_a_slow_burn_alert_never_holds_the_incident_open(index: Index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 300, NOW)
    slo = alert("GgenMcpErrorRateSLOViolation", "warning", 40, slow_burn=True)
    assert index.accept([slo], 300, NOW + 40) == ["correlated"]
    index.claim(NOW + 40)
    done = alert("GgenMcpHighErrorRate", "critical", status="resolved", ends_s=600)
    assert index.accept([done], 300, NOW + 600) == ["resolved"]  # the SLO still fires
    [inc] = index.incidents()
    assert inc.status == "resolved"
    assert {a.alertname: a.status for a in inc.alerts} == {
        "GgenMcpHighErrorRate": "resolved",
        "GgenMcpErrorRateSLOViolation": "firing",
    }
    assert [r.kind for r in inc.runs] == ["investigation", "verification"]
    # A slow-burn alert firing after the symptom resolved is context of that fault.
    late = alert("GgenMcpAvailabilitySLOViolation", "warning", 650, slow_burn=True)
    assert index.accept([late], 300, NOW + 650) == ["correlated"]
    [inc] = index.incidents()
    assert inc.status == "resolved" and len(inc.alerts) == 3


def test_an_incident_of_slow_burn_alerts_only_closes_with_them(index: Index) -> None:
    slo = alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)
    index.accept([slo], 300, NOW)
    [inc] = index.incidents()
    assert inc.status == "firing"
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", status="resolved",
                        slow_burn=True, ends_s=900)], 300, NOW + 900)  # fmt: skip
    assert index.incidents()[0].status == "resolved"


# -- memory of past incidents ---------------------------------------------------------------
DAY = 86400.0


def test_the_summary_of_the_past_counts_this_cause_here_and_on_the_fleet() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    past = [
        {"id": 7, "instance": "web-1", "starts_at": "2026-11-26T12:00:00+00:00",
         "top_cause": "cache_too_small", "fix": "marked mitigated by alice", "held": True},
        {"id": 5, "instance": "web-2", "starts_at": "2026-11-08T12:00:00+00:00",
         "top_cause": "cache_too_small", "fix": "", "held": None},
        {"id": 4, "instance": "web-1", "starts_at": "2026-10-01T12:00:00+00:00",
         "top_cause": "cache_too_small", "fix": "", "held": False},
        {"id": 3, "instance": "web-1", "starts_at": "2026-11-27T12:00:00+00:00",
         "top_cause": "ttl_too_short", "fix": "", "held": None},
    ]  # fmt: skip
    h = recurrence.summarize(past, "cache_too_small", "web-1", now)
    assert (h["on_instance"], h["on_fleet"], h["last"]["id"]) == (2, 3, 7)
    assert h["recurrence"] is True and h["last_age_days"] == 2.0
    assert recurrence.headline(h) == (
        "Recurrence: cache too small again on web-1, 2 days after #7 (2 earlier incidents "
        "of cache too small on web-1, 3 on the fleet in 90 days); the last, #7 at "
        "2026-11-26 12:00 UTC: marked mitigated by alice, the fix held."
    )
    old = recurrence.summarize(past, "cache_too_small", "web-1", now + timedelta(days=10))
    assert old["recurrence"] is False  # 12 days: no call-out, still counted
    assert recurrence.headline(recurrence.summarize(past, "fd_leak", "web-1", now)) == (
        "First incident of fd leak in 90 days, here and on the fleet."
    )
    assert recurrence.summarize(past, None, "web-1", now) is None


def test_past_incidents_come_from_the_index_with_their_fix_and_verification(
    index: Index, tmp_path: Path
) -> None:
    def incident(name: str, at: float, top: str, *, held: bool | None, instance=INSTANCE) -> int:
        a = Alert(status="firing", labels={"alertname": name, "instance": instance,
                  "severity": "critical"}, startsAt=datetime.fromtimestamp(at, UTC),
                  fingerprint=f"{name}-{at}")  # fmt: skip
        index.accept([a], 0, at)
        finish(index, index.claim(at), top)
        index.accept([a.model_copy(update={"status": "resolved"})], 0, at + 60)
        checks = [] if held is None else [{"check": "c", "status": "x", "holds": held}]
        finish(index, index.claim(at + 60), checks=checks)
        return index.incidents(1)[0].id

    old = incident("GgenMcpLowCacheHitRate", NOW - 100 * DAY, "cache_too_small", held=True)
    one = incident("GgenMcpLowCacheHitRate", NOW - 3 * DAY, "cache_too_small", held=False)
    two = incident("GgenMcpCacheEvictionRateIncreased", NOW - 2 * DAY, "ttl_too_short",
                   held=None, instance="web-2:9464")  # fmt: skip
    with index.tx() as conn:
        actions.record(conn, one, "mitigated", "alice", NOW - 3 * DAY + 30)
    index.accept([alert("GgenMcpLowCacheHitRate", "warning")], 0, NOW)
    job = index.claim(NOW)
    assert [p["id"] for p in job.incident.past] == [two, one]  # 90 days, newest first; not itself
    assert job.incident.past[1] == {
        "id": one, "instance": INSTANCE,
        "starts_at": datetime.fromtimestamp(NOW - 3 * DAY, UTC).isoformat(),
        "top_cause": "cache_too_small", "fix": "marked mitigated by alice", "held": False,
        "status": "resolved",
    }  # fmt: skip
    assert (
        job.incident.past[0]["held"] is None
        and job.incident.past[0]["fix"] == "resolved with no recorded fix"
    )
    assert old not in [p["id"] for p in job.incident.past]
    assert job_params(job, RunConfig(output_dir=tmp_path))["incident"]["past"] == list(
        job.incident.past
    )


def test_a_recurrence_is_called_out_first_in_the_record() -> None:
    h = {"days": 90, "cause": "cache_too_small", "instance": "web-1", "on_instance": 1,
         "on_fleet": 1, "recurrence": True, "last_age_days": 1.5,
         "last": {"id": 9, "instance": "web-1", "starts_at": "2026-11-27T00:00:00+00:00",
                  "fix": "", "held": False}}  # fmt: skip
    html = lead_html(summary_of({"alert": "A", "diagnosis": [], "top_cause": None, "history": h}))
    assert html.index("Recurrence: cache too small again on web-1, 1.5 days after #9") < html.index(
        "No cause is likely"
    )
    assert "the fix did NOT hold" in html
    h["recurrence"] = False
    assert "Recurrence" not in lead_html(summary_of({"alert": "A", "diagnosis": [], "history": h}))


def test_a_verification_files_whether_the_fix_held(index: Index) -> None:
    index.accept([alert("GgenMcpHighLatency", "critical")], 0, NOW)
    finish(index, index.claim(NOW))
    index.accept([alert("GgenMcpHighLatency", "critical", status="resolved", ends_s=90)], 0, NOW)
    verification = index.claim(NOW + 1)
    finish(
        index,
        verification,
        checks=[
            {"check": "a", "holds": True},
            {"check": "b", "holds": None},
            {"check": "c", "holds": False},
        ],
    )
    [inc] = index.incidents()
    assert [r.verified for r in inc.runs] == [None, False]  # one check failed


def _events(index: Index):
    from runbook_lib.storage.outbox import Outbox

    return Outbox(index).events()


def test_the_page_and_the_message_recall_the_same_cause_before(
    index: Index, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from runbook_lib.contract.config import Settings
    from runbook_lib.service import incident_view
    from runbook_lib.service.server import create_app

    def incident(at: float, *, resolve: bool) -> int:
        a = Alert(status="firing", labels={"alertname": "GgenMcpLowCacheHitRate",
                  "instance": INSTANCE, "severity": "warning"},
                  startsAt=datetime.fromtimestamp(at, UTC), fingerprint=f"f{at}")  # fmt: skip
        index.accept([a], 0, at)
        finish(index, index.claim(at), "cache_too_small")
        if resolve:
            index.accept([a.model_copy(update={"status": "resolved"})], 0, at + 60)
            finish(index, index.claim(at + 60))
        return index.incidents(1)[0].id

    before = incident(NOW - 2 * DAY, resolve=True)
    now = incident(NOW, resolve=False)
    inc = incident_view.load(index, now)
    assert incident_view.recall(index, inc).startswith(
        f"Seen before: Recurrence: cache too small again on {INSTANCE}, 2 days after #{before} "
        f"(1 earlier incident of cache too small on {INSTANCE}, 1 on the fleet in 90 days)"
    )
    c = TestClient(
        create_app(Settings(webhook_token="hook", viewer_token="v", output_dir=tmp_path), index)
    )
    page = c.get(f"/incidents/{now}", headers={"authorization": "Bearer v"}).text
    assert 'id="seen-before"' in page and f'href="/incidents/{before}"' in page
    assert "⟳ Seen before:" in page  # within a week: called out


def test_forgetting_an_incident_forgets_what_people_did_on_it(index: Index) -> None:
    import sqlalchemy as sa

    from runbook_lib.storage.migrations import schema

    index.accept([alert("GgenMcpHighLatency", "critical")], 0, NOW)
    job = index.claim(NOW)
    finish(index, job)
    with index.tx() as conn:
        actions.record(conn, job.incident.id, "acknowledge", "alice", NOW)
    retention.forget(index, [job.record])
    with index.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.ACTIONS)).scalar() == 0
    assert index.incidents() == []


def test_an_incident_s_messages_wait_until_each_target_took_them(index: Index, tmp_path) -> None:
    from runbook_lib.lab.chat_sink import ChatSink
    from runbook_lib.service.notify import NotifyConfig, Sender
    from runbook_lib.storage.outbox import Outbox

    sink = ChatSink(fail_first=1)
    try:
        cfg = NotifyConfig.model_validate(
            {"targets": [{"name": "t", "url": f"json://127.0.0.1:{sink.port}/x"}],
             "retry": {"base_s": 0.01}}
        )  # fmt: skip
        index.accept([alert("GgenMcpHighLatency", "critical")], 0, NOW)
        job = index.claim(NOW)
        finish(index, job)
        box, sender = Outbox(index), Sender(index, cfg, tmp_path)
        assert box.waiting(job.incident.id) == 1  # the finding's event, not yet expanded
        sender.step()  # expanded; the target fails once
        assert box.waiting(job.incident.id) == 1  # its delivery waits for the retry
        sender.step(now=time.time() + 5)  # past the retry's backoff
        assert box.waiting(job.incident.id) == 0 and len(sink.delivered) == 1
        assert box.waiting(job.incident.id + 1) == 0
    finally:
        sink.close()


def test_an_escalated_incident_started_with_its_first_symptom(index: Index) -> None:
    from runbook_lib.service.incident_view import incident_message, load

    slo = alert("GgenMcpErrorRateSLOViolation", "warning", -600, slow_burn=True)
    index.accept([slo, alert("GgenMcpElevatedErrorRate", "warning", 5)], 300, NOW)
    finish(index, index.claim(NOW))
    index.accept([alert("GgenMcpHighErrorRate", "critical", 120)], 300, NOW + 120)
    inc = load(index, 1)
    assert inc.starts_at == "2026-11-28T04:02:00+00:00"  # the lead: the critical
    # the fault began with the warning (the SLO alert measures an hour: it is context)
    assert inc.fault_starts_at == "2026-11-28T04:00:05+00:00"
    text = incident_message(index, 1, now=T0 + timedelta(minutes=3))
    assert "Start Time: 2026-11-28 04:00 UTC" in text and "Severity: Critical" in text
