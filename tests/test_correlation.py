"""One incident per fault: alerts of one instance and runbook family that start within the
correlation window join one incident with one investigation, led by the most severe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.incidents.index import Index
from runbook_lib.service.holds import HoldPolicy
from runbook_lib.service.incident_view import incident_message
from runbook_lib.service.workers import held
from tests.conftest import summary_of

T0 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
NOW = T0.timestamp() + 30


def alert(name: str, severity: str, *, instance: str = "web-1:9464", after_s: float = 0,
          status: str = "firing", fp: str = "") -> Alert:  # fmt: skip
    return Alert(
        status=status,
        labels={"alertname": name, "instance": instance, "severity": severity},
        annotations={"summary": f"{name} on {instance}"},
        startsAt=T0 + timedelta(seconds=after_s),
        endsAt=T0 + timedelta(minutes=20) if status == "resolved" else None,
        fingerprint=fp or f"{name[7:15].lower()}{instance[:5]}{int(after_s)}",
    )


# The four alerts that `errors:invalid_input` fires for one instance (see the issue).
FOUR = [
    ("GgenMcpHighErrorRate", "critical", 0),
    ("GgenMcpElevatedErrorRate", "warning", 5),
    ("GgenMcpErrorRateSLOViolation", "warning", 60),
    ("GgenMcpAvailabilitySLOViolation", "warning", 240),
]


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index.sqlite", correlation_window=300)


def test_the_four_alerts_of_one_fault_are_one_incident_with_one_investigation(index) -> None:
    outcomes = [index.accept([alert(n, s, after_s=t)], 300, NOW + t)[0] for n, s, t in FOUR]
    assert outcomes == ["queued", "correlated", "correlated", "correlated"]
    [inc] = index.incidents()
    assert inc.alertname == "GgenMcpHighErrorRate" and inc.runbook == "high_error_rate"
    assert [a.alertname for a in inc.alerts] == [
        "GgenMcpHighErrorRate",  # the most severe first, then by start
        "GgenMcpElevatedErrorRate",
        "GgenMcpErrorRateSLOViolation",
        "GgenMcpAvailabilitySLOViolation",
    ]
    assert [r.kind for r in inc.runs] == ["investigation"]
    assert index.claim(NOW + 300).alert.name == "GgenMcpHighErrorRate"
    assert index.claim(NOW + 300) is None


# Prometheus cannot say what is pending (no URL): the fixed hold of 10 s applies.
BLIND = HoldPolicy("", fallback_s=10)


def claim(index: Index, now: float, policy: HoldPolicy = BLIND):
    """What a pool slot does: claim the due run, put it back if it should wait."""
    job = index.claim(now)
    if job is not None and held(index, job, policy, now):
        return None
    return job


def test_a_critical_twin_arriving_while_the_warning_waits_leads_the_investigation(
    index,
) -> None:
    assert index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW) == ["queued"]
    assert claim(index, NOW + 5) is None  # a warning's investigation waits for a twin
    assert index.accept([alert("GgenMcpHighErrorRate", "critical", after_s=2)], 300, NOW + 6) == [
        "correlated"
    ]
    job = claim(index, NOW + 6)  # the critical one does not wait
    assert job is not None and job.alert.name == "GgenMcpHighErrorRate"
    assert job.alert.labels["severity"] == "critical" and "GgenMcpHighErrorRate" in job.record
    [inc] = index.incidents()
    assert inc.severity == "critical" and len(inc.alerts) == 2
    assert [r.kind for r in inc.runs] == ["investigation"]


def test_a_critical_alone_is_not_held_and_a_warning_alone_runs_after_the_hold(index) -> None:
    index.accept([alert("GgenMcpHighLatency", "critical")], 300, NOW)
    assert claim(index, NOW).alert.name == "GgenMcpHighLatency"
    index.accept([alert("GgenMcpLowCacheHitRate", "warning")], 300, NOW)
    assert claim(index, NOW + 9.9) is None
    assert claim(index, NOW + 10).alert.name == "GgenMcpLowCacheHitRate"


def test_a_warning_over_an_info_alert_keeps_waiting_for_a_critical(index) -> None:
    index.accept([alert("GgenMcpIncreasingHeapUsage", "info")], 300, NOW)
    index.accept([alert("GgenMcpElevatedMemoryUsage", "warning", after_s=2)], 300, NOW + 2)
    assert claim(index, NOW + 3) is None  # the warning leads now, and still waits
    index.accept([alert("GgenMcpMemoryCritical", "critical", after_s=5)], 300, NOW + 5)
    assert claim(index, NOW + 5).alert.name == "GgenMcpMemoryCritical"


def test_a_more_severe_alert_after_the_investigation_started_escalates_the_incident(
    index,
) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW)
    first = index.claim(NOW)
    out = index.accept([alert("GgenMcpHighErrorRate", "critical", after_s=60)], 300, NOW + 60)
    assert out == ["escalated"]
    [inc] = index.incidents()
    assert inc.alertname == "GgenMcpHighErrorRate" and inc.severity == "critical"
    assert inc.escalated_at == NOW + 60
    assert [a.alertname for a in inc.alerts] == [
        "GgenMcpHighErrorRate",
        "GgenMcpElevatedErrorRate",
    ]
    second = index.claim(NOW + 60)  # a new investigation, led by the critical, at once
    assert second.alert.name == "GgenMcpHighErrorRate" and second.alert.severity == "critical"
    assert second.record == "20261128T040100Z-GgenMcpHighErrorRate-higherroweb-"
    assert second.record != first.record
    assert [(e.record, e.severity) for e in second.incident.earlier] == [(first.record, "warning")]
    # the same critical sent again (Alertmanager repeats) escalates nothing more
    again = index.accept([alert("GgenMcpHighErrorRate", "critical", after_s=60)], 300, NOW + 90)
    assert again == ["duplicate"]
    assert len(index.incidents()[0].runs) == 2


def test_an_equal_or_slow_burn_alert_after_the_start_is_only_listed(index) -> None:
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW)
    index.claim(NOW)
    slo = alert("GgenMcpErrorRateSLOViolation", "critical", after_s=30)
    slo.labels["slow_burn"] = "true"  # a critical SLO burn: context, never the lead
    twin = alert("GgenMcpElevatedErrorRate", "warning", after_s=40, fp="twin")
    assert index.accept([slo, twin], 300, NOW + 40) == ["correlated", "correlated"]
    [inc] = index.incidents()
    assert inc.severity == "warning" and inc.alertname == "GgenMcpElevatedErrorRate"
    assert [r.kind for r in inc.runs] == ["investigation"]


@pytest.mark.parametrize(
    ("other", "why"),
    [
        (alert("GgenMcpElevatedErrorRate", "warning", instance="web-2:9464"), "another instance"),
        (alert("GgenMcpHighLatency", "critical", after_s=5), "another runbook family"),
        (alert("SomethingUnknown", "warning", after_s=5), "unknown alerts are not a family"),
    ],
)
def test_alerts_that_are_not_the_same_fault_are_separate_incidents(index, other, why) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 300, NOW)
    if other.name == "SomethingUnknown":  # two unknown alerts: still two incidents
        index.accept([alert("SomethingUnknown", "critical", fp="unknown0")], 300, NOW)
    assert index.accept([other], 300, NOW + 5) == ["queued"], why


def test_a_firing_incident_takes_its_family_s_alerts_whenever_they_start(index) -> None:
    """Two alerts of one family firing on one instance are one fault: a critical six
    minutes after its warning (its `for:` and a slow climb) escalates the warning's
    incident. Once the incident resolved, the next alert is a new incident."""
    index.accept([alert("GgenMcpElevatedErrorRate", "warning")], 300, NOW)
    index.claim(NOW)
    late = alert("GgenMcpHighErrorRate", "critical", after_s=360)
    assert index.accept([late], 300, NOW + 360) == ["escalated"]
    [inc] = index.incidents()
    ended = [
        alert("GgenMcpElevatedErrorRate", "warning", status="resolved"),
        alert("GgenMcpHighErrorRate", "critical", after_s=360, status="resolved"),
    ]
    assert index.accept(ended, 300, NOW + 1200) == ["alert-resolved", "resolved"]
    again = alert("GgenMcpElevatedErrorRate", "warning", after_s=1300)
    assert index.accept([again], 300, NOW + 1300) == ["queued"]
    assert [i.status for i in index.incidents()] == ["firing", "resolved"]


def test_a_zero_window_turns_correlation_off(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite", correlation_window=0)
    for n, s, t in FOUR:
        index.accept([alert(n, s, after_s=t)], 300, NOW + t)
    assert len(index.incidents()) == 4


def test_the_incident_resolves_with_its_last_alert_and_verifies_once(index) -> None:
    for n, s, t in FOUR:
        index.accept([alert(n, s, after_s=t)], 300, NOW + t)
    resolved = [
        index.accept([alert(n, s, after_s=t, status="resolved")], 300, NOW + 1200)[0]
        for n, s, t in FOUR
    ]
    assert resolved == ["alert-resolved", "alert-resolved", "alert-resolved", "resolved"]
    [inc] = index.incidents()
    assert inc.status == "resolved" and inc.resolved_at == NOW + 1200
    assert [r.kind for r in inc.runs] == ["investigation", "verification"]
    again = index.accept([alert(*FOUR[0][:2], status="resolved")], 300, NOW + 1300)
    assert again == ["resolved-duplicate"]
    # a new firing of the same family after the incident closed is a new incident
    assert index.accept([alert(*FOUR[1][:2], after_s=1500)], 300, NOW + 1500) == ["queued"]


def test_alerts_alertmanager_stops_listing_close_as_stale_after_the_grace(index) -> None:
    for n, s, t in FOUR[:2]:
        index.accept([alert(n, s, after_s=t)], 300, NOW + t)
    index.accept([alert("GgenMcpHighLatency", "critical", fp="latency1")], 300, NOW)
    assert sum(a.status == "firing" for i in index.incidents() for a in i.alerts) == 3
    # Alertmanager lists the latency alert only: the error alerts are missing from now on
    assert index.close_stale({"latency1"}, grace_s=900, now=NOW + 100) == []
    assert index.close_stale({"latency1"}, grace_s=900, now=NOW + 999) == []  # 899 s missing
    [closed] = index.close_stale({"latency1"}, grace_s=900, now=NOW + 1000)
    inc = index.incident(closed)
    assert inc.alertname == "GgenMcpHighErrorRate"
    assert inc.status == "stale" and inc.resolved_at == NOW + 1000
    assert {a.status for a in inc.alerts} == {"stale"}
    assert [r.kind for r in inc.runs] == ["investigation"]  # no verification of a guess
    assert "Closed as stale" in incident_message(index, closed, T0 + timedelta(hours=1))
    assert index.incident(index.by_fingerprint("latency1")).status == "firing"


def test_an_alertmanager_restart_within_the_grace_closes_nothing(index) -> None:
    """Restarted, Alertmanager lists nothing until Prometheus re-sends (about a minute)."""
    index.accept([alert("GgenMcpHighErrorRate", "critical", fp="err1")], 300, NOW)
    assert index.close_stale(set(), grace_s=900, now=NOW + 60) == []  # the empty answer
    assert index.close_stale({"err1"}, grace_s=900, now=NOW + 120) == []  # re-sent: listed
    assert index.close_stale(set(), grace_s=900, now=NOW + 960) == []  # missing 0 s again
    assert index.incidents()[0].status == "firing"


def test_a_late_resolution_turns_a_stale_incident_into_a_resolved_one(index) -> None:
    """Alertmanager drops a resolved alert from its list before it sends the `resolved`."""
    a = alert("GgenMcpHighErrorRate", "critical", fp="err1")
    index.accept([a], 300, NOW)
    index.close_stale(set(), grace_s=60, now=NOW + 10)
    [iid] = index.close_stale(set(), grace_s=60, now=NOW + 100)
    assert index.incident(iid).status == "stale"
    done = alert("GgenMcpHighErrorRate", "critical", fp="err1", status="resolved")
    assert index.accept([done], 300, NOW + 200) == ["resolved"]
    inc = index.incident(iid)
    assert inc.status == "resolved" and inc.alerts[0].status == "resolved"
    assert [r.kind for r in inc.runs] == ["investigation", "verification"]
    assert index.accept([done], 300, NOW + 210) == ["resolved-duplicate"]


def test_a_stale_alert_that_fires_again_reopens_its_incident(index) -> None:
    a = alert("GgenMcpHighErrorRate", "critical", fp="err1")
    index.accept([a], 300, NOW)
    index.close_stale(set(), grace_s=60, now=NOW + 10)
    [iid] = index.close_stale(set(), grace_s=60, now=NOW + 100)
    assert index.accept([a], 300, NOW + 150) == ["reopened"]
    inc = index.incident(iid)
    assert inc.status == "firing" and inc.resolved_at is None
    assert inc.alerts[0].status == "firing" and len(index.incidents()) == 1
    assert [r.kind for r in inc.runs] == ["investigation"]  # not investigated twice


def test_an_incident_is_found_by_any_of_its_alerts_fingerprints(index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical", fp="0a1b2c3d4e5f6071")], 300, NOW)
    index.accept(
        [alert("GgenMcpElevatedErrorRate", "warning", fp="ffee00112233", after_s=5)], 300, NOW
    )
    assert index.by_fingerprint("ffee00112233") == index.by_fingerprint("0a1b2c") == 1
    with pytest.raises(LookupError, match="no incident has an alert with fingerprint 'dead'"):
        index.by_fingerprint("dead")


def test_a_manual_run_is_an_incident_of_kind_manual(index) -> None:
    index.accept([alert("GgenMcpHighErrorRate", "critical")], 300, NOW)
    iid = index.add_manual(
        "GgenMcpHighLatency", {"instance": "web-1:9464"}, "20261128T040500Z-GgenMcpHighLatency-manual",
        summary_of({"status": "completed", "top_cause": "slow_database"}), now=NOW + 300,
    )  # fmt: skip
    newest = index.incidents()[0]
    assert newest.id == iid and newest.status == "manual"
    assert [(r.kind, r.state, r.top_cause) for r in newest.runs] == [
        ("manual", "done", "slow_database")
    ]
    assert index.claim(NOW + 400).alert.name == "GgenMcpHighErrorRate"  # never queued
    assert index.claim(NOW + 400) is None


def test_the_investigation_is_told_the_other_alerts_and_its_header_lists_them(index) -> None:
    from runbook_lib.notebook.display import related_md
    from runbook_lib.notebook.parameters import Params
    from runbook_lib.service.workers import RunConfig, job_params

    for n, s, t in FOUR[:2]:
        index.accept([alert(n, s, after_s=t)], 300, NOW + t)
    job = index.claim(NOW + 60)
    assert [(r.alertname, r.severity) for r in job.related] == [
        ("GgenMcpElevatedErrorRate", "warning")
    ]
    params = job_params(job, RunConfig(output_dir=Path("/tmp")))
    assert params["alert_name"] == "GgenMcpHighErrorRate"
    assert params["related_alerts"][0]["starts_at"] == "2026-11-28T04:00:05+00:00"
    shown = params["related_alerts"] + [{"alertname": "A_*b*", "status": "stale"}]
    text = related_md(Params.model_validate({"related_alerts": shown}).related_alerts)
    assert "- GgenMcpElevatedErrorRate · warning · since 2026-11-28 04:00:05 UTC" in text
    assert "- A&#95;&#42;b&#42; · unknown" in text and text.endswith(", stale")


def test_the_pages_show_the_incident_with_its_alerts_and_a_manual_run(index) -> None:
    import re

    from tests.test_pages_access import app, signed_in

    for n, s, t in FOUR:
        index.accept([alert(n, s, after_s=t)], 300, NOW + t)
    index.add_manual(
        "GgenMcpHighLatency", {}, "20261128T050000Z-manual", summary_of({"status": "completed"})
    )
    (index.path.parent / "20261128T050000Z-manual").mkdir()  # its record
    c = app(index)
    signed_in(c)
    listing = c.get("/incidents").text
    assert 'GgenMcpHighErrorRate</a> <span class="more">+3 alerts</span>' in listing
    page = c.get("/incidents/1").text
    rows = re.findall(r"<tr><td>(GgenMcp\w+)</td><td class=\"sev-(\w+)\">", page)
    assert rows == [("GgenMcpHighErrorRate", "critical"), ("GgenMcpElevatedErrorRate", "warning"),
                    ("GgenMcpErrorRateSLOViolation", "warning"),
                    ("GgenMcpAvailabilitySLOViolation", "warning")]  # fmt: skip
    manual = c.get("/incidents/2").text
    assert "/records/20261128T050000Z-manual/report.html" in manual and 'id="alerts"' not in manual
    assert "GgenMcpHighLatency" in c.get("/incidents?status=manual").text


def test_alerts_at_the_ends_of_time_are_filed_and_grouped(index) -> None:
    """An alert may say year 1 or 9999 (the fuzz test sent both): each is filed, and those
    of one family firing on one instance are one incident whatever their starts."""

    def at(text: str) -> Alert:
        return Alert(status="firing", labels={"alertname": "GgenMcpHighErrorRate"},
                     startsAt=text, fingerprint=f"fp{text}")  # fmt: skip

    assert index.accept([at("0001-01-01T00:00:00Z"), at("0001-01-01T00:03:00Z")], 0) == [
        "queued",
        "correlated",
    ]
    assert index.accept([at("9999-12-31T23:59:59Z"), at("9999-12-31T23:58:00Z")], 0) == [
        "correlated",
        "correlated",
    ]
    assert len(index.incidents()) == 1


def test_a_runbook_link_of_an_alert_that_joined_leads_to_its_incident(index) -> None:
    """The rules' runbook_url is /incidents/latest?alertname=...&instance=...: an alert that
    joined another's incident must find that one, not wait for an investigation of its own."""
    for n, s, t in FOUR[:2]:
        index.accept([alert(n, s, after_s=t)], 300, NOW + t)
    assert index.latest("GgenMcpElevatedErrorRate", "web-1:9464") == 1
    assert index.latest("GgenMcpElevatedErrorRate") == 1
    assert index.latest("GgenMcpElevatedErrorRate", "web-2:9464") is None
    assert index.latest("GgenMcpHighLatency") is None
