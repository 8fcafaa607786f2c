"""The edges a review found in incidents that follow the fault: an escalation beside an
operator's re-investigation, a critical arriving while the warning's run asks Prometheus, a
slow-burn lead, a failed later run, a mitigation approved twice, resolutions out of order,
and the post-mortem form."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runbook_lib.contract.alerts import Alert
from runbook_lib.contract.config import Settings
from runbook_lib.incidents import history
from runbook_lib.incidents.actions import DoneAlready
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.jobs import current_investigation
from runbook_lib.service.holds import HoldPolicy
from runbook_lib.service.operators import Operators
from runbook_lib.service.server import create_app
from runbook_lib.service.workers import RunConfig, held, job_params
from runbook_lib.storage.outbox import Outbox
from tests.conftest import summary_of

T0 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
NOW = T0.timestamp() + 30
INSTANCE = "web-1:9464"


def alert(name: str, severity: str, after_s: float = 0, *, status: str = "firing",
          slow_burn: bool = False, ends_s: float = 0) -> Alert:  # fmt: skip
    labels = {"alertname": name, "instance": INSTANCE, "severity": severity}
    if slow_burn:
        labels["slow_burn"] = "true"
    return Alert(
        status=status, labels=labels, annotations={"summary": name},
        startsAt=T0 + timedelta(seconds=after_s),
        endsAt=T0 + timedelta(seconds=ends_s) if status == "resolved" else None,
        fingerprint=f"{name[7:]}".lower(),
    )  # fmt: skip


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "out" / "index.sqlite", correlation_window=300)


def done(index: Index, job, top: str | None = "invalid_input", status: str = "completed") -> None:
    index.finish(job.run_id, summary_of({"status": status, "top_cause": top}))


def kinds(index: Index) -> list[str]:
    return [e.kind for e in Outbox(index).events()]


def test_a_critical_beside_a_queued_re_investigation_escalates_and_loses_nothing(
    index: Index,
) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 0, NOW)
    done(index, index.claim(NOW))
    index.act(1, "reinvestigate", "alice", now=NOW + 10)  # queued, not started yet
    out = index.accept([alert("GgenMcpHighErrorRate", "critical", 60)], 0, NOW + 60)
    assert out == ["escalated"]  # not a 503 on a record name both runs took
    runs = index.incident(1).runs
    assert [(r.trigger[:9], r.alertname) for r in runs] == [
        ("", "GgenMcpElevatedErrorRate"),
        ("operator:", "GgenMcpElevatedErrorRate"),  # the operator's run is left as asked
        ("escalated", "GgenMcpHighErrorRate"),
    ]
    for _ in range(2):
        done(index, index.claim(NOW + 61))
    # both run: the critical's first (the most severe due run), then the operator's
    assert kinds(index) == ["investigation", "escalated", "reinvestigation"]


def test_a_critical_that_arrives_while_the_warning_asks_prometheus_leads_that_run(
    index: Index,
) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 0, NOW)
    job = index.claim(NOW)  # the worker asks Prometheus now (the run counts as started)
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", 5)], 0, NOW + 1) == ["escalated"]
    index.defer(job, NOW + 60, "waited for GgenMcpHighErrorRate", now=NOW + 2)  # its answer
    [run] = index.incident(1).runs  # one investigation: the escalation is undone
    assert (run.trigger, run.alertname, run.state) == (
        "", "GgenMcpHighErrorRate", "queued",
    )  # fmt: skip
    assert run.not_before == NOW + 2 and index.incident(1).escalated_at is None
    again = index.claim(NOW + 2)
    assert again.run_id == job.run_id and again.alert.severity == "critical"
    done(index, again)
    assert kinds(index) == ["investigation"]


def test_a_symptom_that_arrives_while_the_slow_burn_run_asks_prometheus_leads_that_run(
    index: Index,
) -> None:
    """The demo's order under load: the SLO alert's run is held (a symptom of its fault is
    pending); the symptom fires while the worker asks Prometheus, then the critical. One
    investigation, the critical's, and no symptom run left after it."""
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    job = index.claim(NOW)  # the worker asks Prometheus (the run counts as started)
    assert index.accept([alert("GgenMcpElevatedErrorRate", "warning", 5)], 0, NOW + 1) == [
        "correlated"
    ]
    index.defer(job, NOW + 60, "waited for GgenMcpElevatedErrorRate", now=NOW + 2)
    [run] = index.incident(1).runs  # the held run is the symptom's now, due now
    assert (run.trigger, run.alertname, run.state, run.not_before) == (
        "", "GgenMcpElevatedErrorRate", "queued", NOW + 2,
    )  # fmt: skip
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", 9)], 0, NOW + 3) == [
        "correlated"
    ]
    [run] = index.incident(1).runs
    assert (run.trigger, run.alertname) == ("", "GgenMcpHighErrorRate")
    assert index.incident(1).escalated_at is None


PENDING_WARNING = ("waited for GgenMcpElevatedErrorRate (warning), pending since 04:00:05 UTC "
                   "with for: 10 s")  # fmt: skip


def test_a_held_run_led_by_another_alert_than_it_waited_for_names_both(index: Index) -> None:
    """The SLO alert's run waits for the pending warning; the critical fires instead
    (Alertmanager inhibits the warning once it does) and leads the run: the record and the
    page must not say only that it waited for the warning."""
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    job = index.claim(NOW)
    index.defer(job, NOW + 60, PENDING_WARNING, now=NOW + 1)
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", 9)], 0, NOW + 3) == [
        "correlated"
    ]
    [run] = index.incident(1).runs
    assert (run.alertname, run.state, run.not_before) == ("GgenMcpHighErrorRate", "queued", NOW + 3)
    assert run.hold_note == (
        "waited for GgenMcpElevatedErrorRate (warning), pending since 04:00:05 UTC with for: "
        "10 s; then GgenMcpHighErrorRate (critical) arrived and leads"
    )


def test_a_held_run_led_by_the_alert_it_waited_for_keeps_its_note(index: Index) -> None:
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    job = index.claim(NOW)
    index.defer(job, NOW + 60, PENDING_WARNING, now=NOW + 1)
    index.accept([alert("GgenMcpElevatedErrorRate", "warning", 9)], 0, NOW + 3)
    [run] = index.incident(1).runs
    assert (run.alertname, run.hold_note) == ("GgenMcpElevatedErrorRate", PENDING_WARNING)


def test_a_run_never_held_gets_no_note_when_another_alert_leads_it(index: Index) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 0, NOW)
    index.accept([alert("GgenMcpHighErrorRate", "critical", 9)], 0, NOW + 3)
    [run] = index.incident(1).runs
    assert (run.alertname, run.hold_note) == ("GgenMcpHighErrorRate", None)


def test_a_symptom_that_arrives_as_the_held_run_is_claimed_again_leads_that_run(
    index: Index,
) -> None:
    """The order a stack tier met at load 12: the SLO alert's run is held, its hold ends and
    a worker claims it again; the symptom arrives before it begins (so it gets a run of its
    own), and Prometheus no longer holds the run back. It takes the symptom's lead and runs
    once, instead of beside the symptom's run."""
    blind = HoldPolicy("", fallback_s=10)  # Prometheus cannot say: a 10 s hold from queueing
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    job = index.claim(NOW)
    assert held(index, job, blind, NOW) is not None  # held until NOW + 10
    job = index.claim(NOW + 11)  # its hold is over: claimed again
    assert job is not None and job.alert.name == "GgenMcpErrorRateSLOViolation"
    assert index.accept([alert("GgenMcpElevatedErrorRate", "warning", 5)], 0, NOW + 11.5) == [
        "correlated"
    ]
    assert held(index, job, blind, NOW + 12) is not None  # not begun: the symptom leads it
    [run] = index.incident(1).runs
    assert (run.trigger, run.alertname, run.state, run.not_before) == (
        "", "GgenMcpElevatedErrorRate", "queued", NOW + 12,
    )  # fmt: skip
    assert run.hold_note.startswith("Prometheus could not say"), run.hold_note  # kept
    again = index.claim(NOW + 12)
    assert again.alert.name == "GgenMcpElevatedErrorRate" and again.incident.trigger == ""
    assert held(index, again, blind, NOW + 12) is None  # and now it runs
    assert [r.state for r in index.incident(1).runs] == ["running"]


ON_ITS_WAY = ("waited for GgenMcpElevatedErrorRate (warning), firing since 04:00:05 UTC, on "
              "its way")  # fmt: skip


def _twins(index: Index, blind: HoldPolicy) -> tuple:
    """Worker A claims the SLO lead's run and asks Prometheus; the warning fires meanwhile
    (so it gets a symptom's run of its own), and worker B claims that one at once."""
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    lead = index.claim(NOW + 11)
    assert index.accept([alert("GgenMcpElevatedErrorRate", "warning", 5)], 0, NOW + 11.2) == [
        "correlated"
    ]
    symptom = index.claim(NOW + 11.5)
    assert (lead.incident.trigger, symptom.incident.trigger) == ("", "symptom:elevatederrorrate")
    return lead, symptom


def test_a_symptom_run_claimed_while_the_lead_run_is_decided_waits_then_leads_it(
    index: Index, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's race (two workers; it failed test_scripts twice): B would begin the
    symptom's run while A still asks Prometheus about the SLO lead's run, which A then
    holds: two investigations of one fault, the symptom's and later the critical's. B puts
    its run back for a second instead; A's hold hands the lead run the warning, due now."""
    blind = HoldPolicy("", fallback_s=10)
    lead, symptom = _twins(index, blind)
    with caplog.at_level(logging.INFO, logger="runbook.runs"):
        hold = held(index, symptom, blind, NOW + 25)  # no hold of its own: it would begin
    assert hold is not None and hold.until == NOW + 26, hold
    assert f"run {lead.run_id} of its incident is claimed, not begun" in hold.note
    [said] = [r for r in caplog.records if r.name == "runbook.runs"]
    assert said.outcome == "held" and said.getMessage().startswith(f"run {symptom.run_id} held")
    assert [(r.trigger[:8], r.state) for r in index.incident(1).runs] == [
        ("", "running"), ("symptom:", "queued"),
    ]  # fmt: skip
    index.defer(lead, NOW + 60, ON_ITS_WAY, now=NOW + 25.5)  # A's answer: hold it
    [run] = index.incident(1).runs
    assert (run.trigger, run.alertname, run.state, run.not_before) == (
        "", "GgenMcpElevatedErrorRate", "queued", NOW + 25.5,
    )  # fmt: skip
    index.accept([alert("GgenMcpHighErrorRate", "critical", 30)], 0, NOW + 30)
    [run] = index.incident(1).runs
    assert (run.trigger, run.alertname) == ("", "GgenMcpHighErrorRate")


def test_a_symptom_run_that_would_begin_beside_the_held_lead_run_folds_into_it(
    index: Index, caplog: pytest.LogCaptureFixture
) -> None:
    """The other order: A holds the lead run before B decides on the symptom's run, which
    has no hold of its own. It folds into the held run (due now, its note kept: it waited
    for this warning) instead of beginning beside it; the log says it went, not that it
    is held."""
    blind = HoldPolicy("", fallback_s=10)
    lead, symptom = _twins(index, blind)
    index.defer(lead, NOW + 60, ON_ITS_WAY, now=NOW + 12)
    with caplog.at_level(logging.INFO, logger="runbook.runs"):
        hold = held(index, symptom, blind, NOW + 25)
    assert hold is not None and hold.until == NOW + 25
    said = [(r.getMessage(), r.outcome) for r in caplog.records if r.name == "runbook.runs"]
    assert said == [(f"run {symptom.run_id} folded into run {lead.run_id}, its incident's "
                     "first, not begun", "folded")]  # fmt: skip
    [run] = index.incident(1).runs
    assert (run.id, run.trigger, run.alertname, run.state, run.not_before, run.hold_note) == (
        lead.run_id, "", "GgenMcpElevatedErrorRate", "queued", NOW + 25, ON_ITS_WAY,
    )  # fmt: skip
    again = index.claim(NOW + 25)
    assert again.run_id == lead.run_id and again.alert.name == "GgenMcpElevatedErrorRate"
    assert held(index, again, blind, NOW + 25) is None  # and it begins
    assert [(r.state, r.alertname) for r in index.incident(1).runs] == [
        ("running", "GgenMcpElevatedErrorRate")
    ]


def test_a_lead_run_that_would_begin_beside_the_claimed_symptom_run_waits(index: Index) -> None:
    """A decides to begin the lead run while B still decides on the symptom's run: A puts
    its run back for a second; B's run then folds into it, and one run begins."""
    blind = HoldPolicy("", fallback_s=10)
    lead, symptom = _twins(index, blind)
    hold = held(index, lead, blind, NOW + 12)  # past its 10 s: no hold of its own
    assert hold is not None and hold.until == NOW + 13
    assert f"run {symptom.run_id} of its incident is claimed, not begun" in hold.note
    assert held(index, symptom, blind, NOW + 25) is not None  # folds into the lead run
    [run] = index.incident(1).runs
    assert (run.id, run.alertname, run.state) == (lead.run_id, "GgenMcpElevatedErrorRate", "queued")


def test_a_symptom_run_folding_into_a_lead_run_the_critical_leads_leaves_it_the_critical(
    index: Index,
) -> None:
    """Found by a PostgreSQL stress run (/work/scratch/s11/pgstress.py): the critical led the
    held lead run while the symptom's worker decided; the fold then gave that run the
    warning back (and the worker that claimed it next ran the critical's investigation under
    the warning's name). A weaker symptom's run only goes."""
    blind = HoldPolicy("", fallback_s=10)
    lead, symptom = _twins(index, blind)
    index.defer(lead, NOW + 60, ON_ITS_WAY, now=NOW + 12)
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", 13)], 0, NOW + 13) == [
        "correlated"
    ]
    assert held(index, symptom, blind, NOW + 25) is not None
    [run] = index.incident(1).runs
    assert (run.id, run.alertname, run.severity, run.state) == (
        lead.run_id, "GgenMcpHighErrorRate", "critical", "queued",
    )  # fmt: skip
    assert "-GgenMcpHighErrorRate-" in run.record, run.record


def test_twins_do_not_wait_on_a_worker_gone_or_a_run_begun(index: Index) -> None:
    """A symptom's run waits neither for a lead run claimed 30 s ago and never decided (its
    worker is gone), nor for one that began: it begins."""
    blind = HoldPolicy("", fallback_s=10)
    lead, symptom = _twins(index, blind)
    assert held(index, symptom, blind, NOW + 11 + 31) is None
    states = [r.state for r in index.incident(1).runs]
    assert states == ["running", "running"]
    fresh = Index(index.path.parent / "other.sqlite", correlation_window=300)
    lead, symptom = _twins(fresh, blind)
    assert held(fresh, lead, blind, NOW + 11) is not None  # its own 10 s hold (from NOW)
    lead = fresh.claim(NOW + 12)  # the lead run (due first: the oldest) ...
    assert held(fresh, lead, blind, NOW + 12) is not None  # ... waits for B, claimed at 11.5
    assert held(fresh, symptom, blind, NOW + 22) is not None  # which folds into it
    lead = fresh.claim(NOW + 22)
    assert held(fresh, lead, blind, NOW + 22) is None  # one run begins
    assert [(r.state, r.alertname) for r in fresh.incident(1).runs] == [
        ("running", "GgenMcpElevatedErrorRate")
    ]


def test_a_run_that_began_keeps_a_symptom_that_arrives_later_apart(index: Index) -> None:
    """Past its hold, the slow-burn lead's run begins; a symptom arriving after that gets
    its own investigation, as before."""
    blind = HoldPolicy("", fallback_s=10)
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    job = index.claim(NOW + 11)
    assert held(index, job, blind, NOW + 11) is None  # begins
    index.accept([alert("GgenMcpElevatedErrorRate", "warning", 5)], 0, NOW + 12)
    runs = [(r.trigger, r.alertname, r.state) for r in index.incident(1).runs]
    assert runs == [("", "GgenMcpErrorRateSLOViolation", "running"),
                    ("symptom:elevatederrorrate", "GgenMcpElevatedErrorRate", "queued")]  # fmt: skip


def test_a_critical_that_arrives_while_the_symptom_run_asks_prometheus_escalates_that_run(
    index: Index,
) -> None:
    """The slow-burn lead's run is done; the symptom's own run is held for the critical,
    which fires meanwhile: the held run becomes the critical's escalation, not a second run."""
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    done(index, index.claim(NOW))
    index.accept([alert("GgenMcpElevatedErrorRate", "warning", 400)], 0, NOW + 400)
    job = index.claim(NOW + 400)
    assert job.incident.trigger == "symptom:elevatederrorrate"
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", 405)], 0, NOW + 401) == [
        "escalated"
    ]
    index.defer(job, NOW + 460, "waited for GgenMcpHighErrorRate", now=NOW + 402)
    runs = [(r.trigger, r.alertname, r.state) for r in index.incident(1).runs]
    assert runs == [
        ("", "GgenMcpErrorRateSLOViolation", "done"),
        ("escalated:highErrorRate".lower(), "GgenMcpHighErrorRate", "queued"),
    ]
    assert index.incident(1).escalated_at == NOW + 401  # its message says `escalated`


def test_a_symptom_after_a_slow_burn_lead_started_gets_its_own_investigation(
    index: Index,
) -> None:
    slo = alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)
    index.accept([slo], 0, NOW)
    done(index, index.claim(NOW))
    assert index.accept([alert("GgenMcpElevatedErrorRate", "warning", 400)], 0, NOW + 400) == [
        "correlated"
    ]
    inc = index.incident(1)
    assert inc.alertname == "GgenMcpElevatedErrorRate" and not inc.escalated_at
    second = index.claim(NOW + 400)
    assert second.alert.name == "GgenMcpElevatedErrorRate"
    assert second.incident.trigger == "symptom:elevatederrorrate"


def test_a_late_slow_burn_alert_joins_the_fault_it_measured(index: Index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 0, NOW)
    done(index, index.claim(NOW))
    index.accept([alert("GgenMcpHighErrorRate", "critical", status="resolved", ends_s=300)], 0,
                 NOW + 300)  # fmt: skip
    late = alert("GgenMcpAvailabilitySLOViolation", "warning", 550, slow_burn=True)
    assert index.accept([late], 0, NOW + 550) == ["correlated"]  # 250 s after: context
    assert len(index.incidents()) == 1 and index.incident(1).status == "resolved"


def test_a_failed_re_investigation_does_not_hide_the_finding(index: Index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 0, NOW)
    done(index, index.claim(NOW), "invalid_input")
    index.act(1, "reinvestigate", "bob", now=NOW + 10)
    done(index, index.claim(NOW + 11), None, status="timed_out")
    shown = current_investigation(index.incident(1).runs)
    assert (shown.trigger, shown.top_cause) == ("", "invalid_input")


def test_a_mitigation_is_approved_once_and_runs_only_what_was_approved(
    index: Index, tmp_path: Path
) -> None:
    index.accept([alert("GgenMcpHighLibreOfficeProcessCount", "critical")], 0, NOW)
    done(index, index.claim(NOW))
    detail = {"mitigations": ["end_old_soffice"]}
    index.act(1, "mitigation", "alice", detail=detail, now=NOW + 5)
    with pytest.raises(DoneAlready, match="approved for incident 1 has not finished"):
        index.act(1, "mitigation", "bob", detail=detail, now=NOW + 6)
    job = index.claim(NOW + 7)
    assert job.kind == "mitigation" and job.incident.approved == ("end_old_soffice",)
    params = job_params(job, RunConfig(output_dir=tmp_path))
    assert params["allow_mitigation"] is True
    assert params["incident"]["approved_mitigations"] == ["end_old_soffice"]
    done(index, job)
    resolved = index.incident(1).model_copy(update={"mitigated_at": None, "status": "resolved"})
    past = history.fix_of(resolved, resolved.actions)
    assert past == "end_old_soffice approved by alice"


def test_an_incident_ends_when_its_last_symptom_ended_whatever_order_they_come_in(
    index: Index,
) -> None:
    index.accept([alert("GgenMcpHighLatency", "critical"), alert("GgenMcpHighCPUUsage", "warning")],
                 0, NOW)  # fmt: skip
    index.accept([alert("GgenMcpHighLatency", "critical", status="resolved", ends_s=900)], 0,
                 NOW + 900)  # fmt: skip
    index.accept(
        [alert("GgenMcpHighCPUUsage", "warning", status="resolved", ends_s=600)], 0, NOW + 960
    )  # fmt: skip  (its group was sent later)
    assert index.incident(1).ends_at == "2026-11-28T04:15:00+00:00"


def test_only_incidents_that_ended_are_the_past(index: Index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 0, NOW - 3600)
    done(index, index.claim(NOW - 3600))  # still firing on another instance? no: this one
    other = Alert(status="firing", labels={"alertname": "GgenMcpHighErrorRate",
                  "instance": "web-2:9464", "severity": "critical"}, startsAt=T0,
                  fingerprint="other")  # fmt: skip
    index.accept([other], 0, NOW)
    job = index.claim(NOW)
    assert job.incident.past == ()  # incident 1 is still open: not a recurrence


def test_the_post_mortem_form_needs_this_site_and_its_csrf_token(
    index: Index, tmp_path: Path
) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 0, NOW)
    token = Operators(tmp_path / "out" / "operators.json").add("alice")
    c = TestClient(create_app(Settings(webhook_token="hook", output_dir=index.path.parent, viewer_token="v", session_secret="s" * 32), index),
                   follow_redirects=False)  # fmt: skip
    assert c.post("/signin", data={"token": token, "next": "/incidents"}).status_code == 303
    page = c.get("/incidents/1").text  # the session's CSRF token is in every form
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]
    cross = c.post("/incidents/1/postmortem", data={"csrf": csrf},
                   headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert cross.status_code == 403
    assert c.post("/incidents/1/postmortem", data={"csrf": "x"}).status_code == 403
    ok = c.post("/incidents/1/postmortem", data={"csrf": csrf},
                headers={"Origin": "http://testserver"})  # fmt: skip
    assert ok.status_code == 409  # past the checks: no finished record to write from yet


def test_a_script_s_retry_with_the_same_idempotency_key_acts_once(
    index: Index, tmp_path: Path
) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 0, NOW)
    token = Operators(tmp_path / "out" / "operators.json").add("alice")
    c = TestClient(
        create_app(
            Settings(webhook_token="hook", output_dir=index.path.parent, viewer_token="v"), index
        )
    )
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "retry-1"}
    assert c.post("/incidents/1/actions/reinvestigate", headers=headers).status_code == 200
    again = c.post("/incidents/1/actions/reinvestigate", headers=headers)
    assert again.status_code == 409 and "submitted already" in again.text
    assert [r.trigger[:9] for r in index.incident(1).runs] == ["", "operator:"]


def test_a_symptom_run_held_beside_the_held_slow_burn_run_folds_into_it(index: Index) -> None:
    """make test's order (two workers): the SLO lead's run and the symptom's run are claimed
    at once and both held, so neither saw the other queued. The symptom's hold folds its run
    into the lead's held run; the critical then leads that one run: no symptom run after it."""
    index.accept([alert("GgenMcpErrorRateSLOViolation", "warning", slow_burn=True)], 0, NOW)
    lead = index.claim(NOW)
    index.accept([alert("GgenMcpElevatedErrorRate", "warning", 5)], 0, NOW + 1)
    symptom = index.claim(NOW + 1)  # the second worker
    assert symptom.incident.trigger == "symptom:elevatederrorrate"
    index.defer(lead, NOW + 45, "waited for GgenMcpElevatedErrorRate", now=NOW + 2)
    index.defer(symptom, NOW + 50, "waited for GgenMcpHighErrorRate", now=NOW + 2)
    [run] = index.incident(1).runs
    assert (run.trigger, run.alertname, run.state, run.not_before, run.hold_note) == (
        "", "GgenMcpElevatedErrorRate", "queued", NOW + 50, "waited for GgenMcpHighErrorRate",
    )  # fmt: skip
    index.accept([alert("GgenMcpHighErrorRate", "critical", 9)], 0, NOW + 3)
    [run] = index.incident(1).runs
    assert (run.trigger, run.alertname) == ("", "GgenMcpHighErrorRate")
