"""The index as a queue: the order runs are claimed in, record names fixed at accept time
(and kept apart when two fingerprints share their first 12 characters), finishing,
recovery of in-flight runs, and the queue figures. Expectations are written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook_lib.alerts import Alert
from runbook_lib.index import Index

T0 = 1_800_000_000.0  # a fixed "now" for accept/claim


def alert(fp: str, *, status: str = "firing", hour: int = 4, name: str = "GgenMcpHighErrorRate"):
    return Alert(
        status=status,
        labels={"alertname": name, "instance": "h:1", "severity": "critical"},
        startsAt=datetime(2026, 11, 28, hour, tzinfo=UTC),
        fingerprint=fp,
    )


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index.sqlite")


def test_runs_are_claimed_oldest_due_first(index: Index) -> None:
    index.accept([alert("aaaa")], verify_delay=0, now=T0 + 20)
    index.accept([alert("bbbb")], verify_delay=0, now=T0 + 10)  # accepted earlier in time
    index.accept([alert("cccc")], verify_delay=0, now=T0 + 30)
    claimed = [index.claim(now=T0 + 100).fingerprint for _ in range(3)]
    assert claimed == ["bbbb", "aaaa", "cccc"]  # by due time, not by insertion
    assert index.claim(now=T0 + 100) is None


def test_a_run_not_yet_due_is_not_claimed(index: Index) -> None:
    index.accept([alert("aaaa")], verify_delay=0, now=T0)
    index.accept([alert("aaaa", status="resolved")], verify_delay=300, now=T0 + 5)
    first = index.claim(now=T0 + 10)
    assert (first.kind, first.record) == (
        "investigation",
        "20261128T040000Z-GgenMcpHighErrorRate-aaaa",
    )
    assert index.claim(now=T0 + 10) is None  # the verification is due at T0 + 305
    assert index.queue_stats(now=T0 + 10) == (0, 0.0)
    later = index.claim(now=T0 + 306)
    assert later.kind == "verification"
    assert later.record == "20261128T040000Z-GgenMcpHighErrorRate-aaaa-verify"
    assert later.verification_of == first.record


def test_fingerprints_sharing_twelve_characters_get_distinct_records(index: Index) -> None:
    outcomes = index.accept(
        [alert("0123456789abXXXX"), alert("0123456789abYYYY")], verify_delay=0, now=T0
    )
    assert outcomes == ["queued", "queued"]
    records = [index.claim(now=T0 + 1).record for _ in range(2)]
    assert records == [
        "20261128T040000Z-GgenMcpHighErrorRate-0123456789ab",
        "20261128T040000Z-GgenMcpHighErrorRate-0123456789ab-i2",
    ]


def test_the_same_alert_twice_is_one_incident_a_new_start_another(index: Index) -> None:
    assert index.accept([alert("aaaa"), alert("aaaa")], verify_delay=0, now=T0) == [
        "queued",
        "duplicate",
    ]
    assert index.accept([alert("aaaa", hour=6)], verify_delay=0, now=T0) == ["queued"]
    assert [i["starts_at"] for i in index.incidents()] == [
        "2026-11-28T06:00:00+00:00",
        "2026-11-28T04:00:00+00:00",
    ]


def test_claim_marks_running_and_counts_attempts_finish_files_the_outcome(index: Index) -> None:
    index.accept([alert("aaaa")], verify_delay=0, now=T0)
    job = index.claim(now=T0 + 1)
    assert (job.attempts, job.runbook, job.labels["instance"]) == (1, "high_error_rate", "h:1")
    [run] = index.incidents()[0]["runs"]
    assert (run["state"], run["started_at"]) == ("running", T0 + 1)
    index.finish(job.run_id, {"status": "completed", "top_cause": "invalid_input"})
    [run] = index.incidents()[0]["runs"]
    assert (run["state"], run["status"], run["top_cause"]) == ("done", "completed", "invalid_input")
    assert index.in_flight() == [] and index.claim(now=T0 + 2) is None


def test_in_flight_runs_are_found_and_requeued_with_their_attempts(index: Index) -> None:
    index.accept([alert("aaaa"), alert("bbbb")], verify_delay=0, now=T0)
    first = index.claim(now=T0 + 1)
    index.claim(now=T0 + 1)
    assert sorted(j.fingerprint for j in index.in_flight()) == ["aaaa", "bbbb"]
    index.requeue(first.run_id)
    assert [j.fingerprint for j in index.in_flight()] == ["bbbb"]
    again = index.claim(now=T0 + 2)
    assert (again.fingerprint, again.attempts) == ("aaaa", 2)


def test_queue_stats_counts_due_runs_and_the_oldest_wait(index: Index) -> None:
    index.accept([alert("aaaa")], verify_delay=0, now=T0)
    index.accept([alert("bbbb")], verify_delay=0, now=T0 + 40)
    assert index.queue_stats(now=T0 + 100) == (2, 100.0)
    assert index.queue_stats(now=T0 + 20) == (1, 20.0)
    index.claim(now=T0 + 100)
    assert index.queue_stats(now=T0 + 100) == (1, 60.0)


def test_resolved_outcomes(index: Index) -> None:
    assert index.accept([alert("aaaa")], verify_delay=60, now=T0) == ["queued"]
    assert index.accept([alert("aaaa", status="resolved")], verify_delay=60, now=T0) == ["resolved"]
    assert index.accept([alert("aaaa", status="resolved")], verify_delay=60, now=T0) == [
        "resolved-duplicate"
    ]
    [inc] = index.incidents()
    assert inc["status"] == "resolved" and [r["kind"] for r in inc["runs"]] == [
        "investigation",
        "verification",
    ]
    assert inc["runs"][1]["not_before"] == T0 + 60
