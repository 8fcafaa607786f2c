"""The incident's communication message as its state moves on, `runbook incidents`, and
the retention policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.execution import runner
from runbook_lib.incidents.index import Index
from runbook_lib.service.incident_view import incident_message
from runbook_lib.storage import retention
from tests.conftest import summary_of

NOW = datetime(2026, 11, 28, 4, 20, tzinfo=UTC)


def alert(
    status: str = "firing", severity: str = "critical", fingerprint_suffix: str = "", **kw
) -> Alert:
    return Alert(
        status=status,
        labels={
            "alertname": "GgenMcpHighErrorRate",
            "severity": severity,
            "instance": f"h:1{fingerprint_suffix}",
        },
        annotations={"summary": "Error rate 7.4% (> 5%)", "impact": "Users see failed requests"},
        startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
        fingerprint="f1" + fingerprint_suffix,
        **kw,
    )


def test_the_message_follows_investigating_mitigating_resolved(tmp_path: Path) -> None:
    """Investigating until a mitigation is recorded, Mitigating until the alerts end."""
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert()], verify_delay=300)
    msg = incident_message(index, 1, NOW)
    assert msg.splitlines()[0] == "🚨 INCIDENT: Error rate 7.4% (> 5%)"
    assert "Status: Investigating" in msg and "Next Update: 04:50 UTC" in msg  # critical: 30 min
    assert "Start Time: 2026-11-28 04:00 UTC" in msg
    assert "Impact: Users see failed requests" in msg

    job = index.claim()
    index.finish(job.run_id, summary_of({"status": "completed", "top_cause": "invalid_input"}))
    msg = incident_message(index, 1, NOW)
    assert "(likely cause: invalid input)" in msg.splitlines()[0]
    assert "Status: Investigating" in msg  # a diagnosis is not a mitigation
    assert index.mark_mitigated(1, NOW.timestamp()) and not index.mark_mitigated(1)
    assert "Status: Mitigating" in incident_message(index, 1, NOW)

    index.accept([alert("resolved", endsAt=datetime(2026, 11, 28, 4, 12, tzinfo=UTC))], 300)
    msg = incident_message(index, 1, NOW)
    assert "Status: Resolved" in msg and "Resolved: 2026-11-28 04:12 UTC" in msg
    assert "Next Update" not in msg


def test_a_warning_is_updated_hourly_and_unknown_ids_are_named(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert(severity="warning")], verify_delay=300)
    assert "Next Update: 05:20 UTC" in incident_message(index, 1, NOW)
    with pytest.raises(LookupError, match="no incident 7"):
        incident_message(index, 7, NOW)


def test_runbook_incidents_lists_and_prints_the_message(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert()], verify_delay=300)
    runbook = [sys.executable, "-m", "runbook_lib.cli", "incidents", "--output", str(tmp_path)]
    listed = subprocess.run(runbook, capture_output=True, text=True, check=True).stdout
    assert "#1" in listed and "GgenMcpHighErrorRate" in listed and "investigation queued" in listed
    rows = json.loads(subprocess.run([*runbook, "--json"], capture_output=True, text=True).stdout)
    assert rows[0]["runs"][0]["state"] == "queued"
    msg = subprocess.run([*runbook, "--message", "1"], capture_output=True, text=True)
    assert msg.returncode == 0 and "Status: Investigating" in msg.stdout
    record = rows[0]["runs"][0]["record"]
    assert msg.stdout.splitlines()[-1] == f"Record: {tmp_path / record / 'report.html'}"
    by_fp = subprocess.run([*runbook, "--message", "f1"], capture_output=True, text=True)

    def same(text: str) -> list[str]:  # the next update's time moves with the clock
        return [ln for ln in text.splitlines() if not ln.startswith("Next Update")]

    assert same(by_fp.stdout) == same(msg.stdout)  # the fingerprint finds the same incident
    missing = subprocess.run([*runbook, "--message", "9"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no incident 9" in missing.stderr
    assert "Traceback" not in missing.stderr
    said = subprocess.run([*runbook, "--mitigated", "#1"], capture_output=True, text=True)
    assert said.returncode == 0 and "mitigation recorded" in said.stdout
    msg = subprocess.run([*runbook, "--message", "1"], capture_output=True, text=True).stdout
    assert "Status: Mitigating" in msg
    env = {**os.environ, "RUNBOOK_EXTERNAL_URL": "https://runbook.example.org/"}
    linked = subprocess.run([*runbook, "--message", "1"], capture_output=True, text=True, env=env)
    assert linked.stdout.splitlines()[-1] == "Record: https://runbook.example.org/incidents/1"
    nowhere = [
        sys.executable,
        "-m",
        "runbook_lib.cli",
        "incidents",
        "--output",
        str(tmp_path / "x"),
    ]
    gone = subprocess.run([*nowhere, "--message", "1"], capture_output=True, text=True)
    assert gone.returncode == 2 and "does not exist" in gone.stderr and "--output" in gone.stderr


def make_record(out: Path, name: str, age_days: float) -> Path:
    params = runner.alert_params("GgenMcpHighErrorRate", {"instance": "h:1"})
    rec = runner.failure_record(
        params, out, runbook="high_error_rate", name=name, status="failed", error="x"
    )
    old = time.time() - age_days * 86400
    os.utime(rec, (old, old))
    return rec


def test_retention_removes_old_records_but_keeps_those_a_postmortem_links(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert()], verify_delay=0)
    job = index.claim()
    old = make_record(tmp_path, job.record, 40)
    linked = make_record(tmp_path, "linked-record", 40)
    fresh = make_record(tmp_path, "fresh-record", 1)
    pm = tmp_path / "postmortem-linked-record"
    pm.mkdir()
    (pm / retention.POSTMORTEM_MANIFEST).write_text(json.dumps({"records": [str(linked)]}))

    dry = retention.prune(tmp_path, 30, dry_run=True)
    assert dry.removed == [old.name] and old.exists()
    done = retention.prune(tmp_path, 30)
    assert done.removed == [old.name] and done.kept_linked == ["linked-record"]
    assert done.freed_bytes > 1000
    assert not old.exists() and linked.exists() and fresh.exists() and pm.exists()
    assert index.incidents() == []  # its only run's record is gone
    with pytest.raises(ValueError, match="positive number of days"):
        retention.prune(tmp_path, 0)


def test_retention_counts_days_not_hours(tmp_path: Path) -> None:
    two_days = make_record(tmp_path, "two-days-old", 2)
    four_days = make_record(tmp_path, "four-days-old", 4)
    assert retention.prune(tmp_path, 3).removed == ["four-days-old"]
    assert two_days.exists() and not four_days.exists()
    assert retention.prune(tmp_path, 1.5).removed == ["two-days-old"]


def test_what_counts_as_a_record_and_what_a_broken_manifest_does(tmp_path: Path) -> None:
    make_record(tmp_path, "real", 10)
    (tmp_path / "empty-dir").mkdir()
    hidden = tmp_path / ".tmp-real-0001"
    hidden.mkdir()
    (hidden / "summary.json").write_text("{}")
    (tmp_path / "a-file").write_text("x")
    for name in ("empty-dir", ".tmp-real-0001"):
        os.utime(tmp_path / name, (0, 0))
    broken = tmp_path / "postmortem-broken"
    broken.mkdir()
    (broken / retention.POSTMORTEM_MANIFEST).write_text("{not json")
    other = tmp_path / "postmortem-other"
    other.mkdir()
    (other / retention.POSTMORTEM_MANIFEST).write_text(json.dumps({"no": "records"}))
    assert retention.linked(tmp_path) == set()
    done = retention.prune(tmp_path, 1)
    assert done.removed == ["real"] and done.kept_linked == []
    assert (tmp_path / "empty-dir").exists() and hidden.exists() and (tmp_path / "a-file").exists()


def test_freed_bytes_are_the_record_files_and_the_index_keeps_other_incidents(
    tmp_path: Path,
) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert(), alert(fingerprint_suffix="2")], verify_delay=0)
    first, second = index.claim(), index.claim()
    old = make_record(tmp_path, first.record, 9)
    size = sum(f.stat().st_size for f in old.rglob("*") if f.is_file())
    make_record(tmp_path, second.record, 1)
    done = retention.prune(tmp_path, 5)
    assert done.freed_bytes == size
    assert [i.fingerprint for i in index.incidents()] == ["f12"]


def test_a_record_is_a_directory_with_a_summary_or_a_notebook(tmp_path: Path) -> None:
    now = time.time()
    for name, files in (("summary-only", ["summary.json"]), ("notebook-only", ["record.ipynb"])):
        d = tmp_path / name
        d.mkdir()
        for f in files:
            (d / f).write_text("{}")
        os.utime(d, (now - 5 * 86400, now - 5 * 86400))
    assert sorted(retention.prune(tmp_path, 1, dry_run=True).removed) == [
        "notebook-only",
        "summary-only",
    ]


def test_linked_reads_every_manifest_past_a_broken_one(tmp_path: Path) -> None:
    for name, body in (("a", "{broken"), ("b", json.dumps({"records": ["/x/r1"]})),
                       ("c", json.dumps({"records": ["/x/r2", "/x/r3"]}))):  # fmt: skip
        (tmp_path / f"postmortem-{name}").mkdir()
        (tmp_path / f"postmortem-{name}" / retention.POSTMORTEM_MANIFEST).write_text(body)
    assert retention.linked(tmp_path) == {"r1", "r2", "r3"}


def test_the_cutoff_is_measured_from_the_given_now_and_is_inclusive(tmp_path: Path) -> None:
    a = make_record(tmp_path, "a", 0)
    b = make_record(tmp_path, "b", 0)
    at = a.stat().st_mtime
    os.utime(b, (at - 10, at - 10))
    size = sum(f.stat().st_size for d in (a, b) for f in d.rglob("*") if f.is_file())
    kept = retention.prune(tmp_path, 1, now=at + 86400, dry_run=True)
    assert kept.removed == ["b"]  # a is exactly one day old at `now`: kept
    both = retention.prune(tmp_path, 1, now=at + 86400 + 1)
    assert both.removed == ["a", "b"] and both.freed_bytes == size


def test_a_fresh_record_does_not_stop_the_scan_and_the_given_index_is_the_one_updated(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    local = Index(out / "index.sqlite")  # an index beside the records ...
    shared = Index(tmp_path / "shared" / "index.sqlite")  # ... and the one in use
    for index in (local, shared):
        index.accept([alert()], verify_delay=0)
    job = shared.claim()
    make_record(out, "a-fresh", 0)
    make_record(out, job.record, 10)  # sorts after the fresh one
    done = retention.prune(out, 5, index=shared)
    assert done.removed == [job.record]
    assert shared.incidents() == [] and len(local.incidents()) == 1


def test_a_mitigation_the_run_did_makes_the_incident_mitigating(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.accept([alert()], verify_delay=300)
    job = index.claim()
    skipped = {"action": "clear_cache", "done": False, "outcome": "skipped: allow_mitigation"}
    index.finish(job.run_id, summary_of({"status": "completed", "actions": [skipped]}))
    assert "Status: Investigating" in incident_message(index, 1, NOW)
    index.accept([alert(fingerprint_suffix="2")], verify_delay=300)
    job2 = index.claim()
    index.finish(
        job2.run_id,
        summary_of({"status": "completed", "actions": [skipped, {**skipped, "done": True}]}),
    )
    assert "Status: Mitigating" in incident_message(index, job2.incident.id, NOW)
    assert "Status: Investigating" in incident_message(index, 1, NOW)
