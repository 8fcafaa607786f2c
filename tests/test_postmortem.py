"""The post-mortem's story of an incident, from the index: every alert, the escalation, the
runs and what they found, the operators' actions, and how long people took."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from runbook_lib import cli
from runbook_lib.contract.alerts import Alert
from runbook_lib.incidents import actions, timeline
from runbook_lib.incidents.index import Index
from runbook_lib.incidents.postmortem import IncidentRecords
from tests.conftest import empty_config, summary_of

T0 = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
T = T0.timestamp()
W, C, S = "w" * 16, "c" * 16, "5" * 16  # the warning, the critical, the slow-burn alert
WARN_RECORD = "20261201T213000Z-GgenMcpElevatedErrorRate-wwwwwwwwwwww"
CRIT_RECORD = "20261201T213100Z-GgenMcpHighErrorRate-cccccccccccc"


def alert(name: str, severity: str, fp: str, after_s: float, *, ended_s: float | None = None,
          **labels: str) -> Alert:  # fmt: skip
    return Alert(
        status="resolved" if ended_s is not None else "firing",
        labels={"alertname": name, "instance": "web-1:9464", "severity": severity, **labels},
        annotations={"impact": "Users see failed spreadsheet operations."},
        startsAt=T0 + timedelta(seconds=after_s),
        endsAt=T0 + timedelta(seconds=ended_s) if ended_s is not None else None,
        fingerprint=fp,
    )


@pytest.fixture
def incident(tmp_path: Path) -> tuple[Index, int]:
    """A warning at 21:30:00, investigated; its critical twin at 21:31:00 escalates it; the
    SLO's slow burn joins at 21:31:30; alice acknowledges, bob marks it mitigated; both
    symptoms resolve by 21:36:10 and the verification at 21:41:40 finds the fix held."""
    index = Index(tmp_path / "index.sqlite", correlation_window=300)
    warning = alert("GgenMcpElevatedErrorRate", "warning", W, 0)
    critical = alert("GgenMcpHighErrorRate", "critical", C, 60)
    slow = alert("GgenMcpErrorRateSLOViolation", "warning", S, 90, slow_burn="true")
    assert index.accept([warning], 300, now=T + 30) == ["queued"]
    first = index.claim(now=T + 31)
    index.finish(
        first.run_id, summary_of({"status": "completed", "top_cause": "invalid_input"}), now=T + 45
    )
    assert index.accept([critical], 300, now=T + 90) == ["escalated"]
    assert index.accept([slow], 300, now=T + 100) == ["correlated"]
    second = index.claim(now=T + 91)
    index.finish(
        second.run_id,
        summary_of({"status": "completed", "top_cause": "invalid_input"}),
        now=T + 110,
    )
    with index.tx() as conn:
        actions.record(conn, first.incident.id, "acknowledge", "alice", T + 120, nonce="a1")
        actions.record(conn, first.incident.id, "mitigated", "bob", T + 300, nonce="b1")
    index.accept([alert("GgenMcpElevatedErrorRate", "warning", W, 0, ended_s=360)], 300, T + 370)
    index.accept([alert("GgenMcpHighErrorRate", "critical", C, 60, ended_s=370)], 300, T + 380)
    check = index.claim(now=T + 680)
    assert check.kind == "verification"
    held = {"status": "completed", "post_checks": [{"check": "error rate below 1%", "holds": True}]}
    index.finish(check.run_id, summary_of(held), now=T + 700)
    return index, first.incident.id


def test_the_timeline_holds_every_alert_escalation_run_and_action(incident) -> None:
    index, incident_id = incident
    snap = timeline.snapshot(index, incident_id)  # no Prometheus: no pending times
    rows = [(f"{r.at:%H:%M:%S}", r.event) for r in timeline.rows(snap)]
    assert rows == [
        ("21:30:00", "GgenMcpElevatedErrorRate (warning) fired (received 30 s later)"),
        ("21:30:45", f"investigation completed: likely cause invalid_input ({WARN_RECORD})"),
        ("21:31:00", "GgenMcpHighErrorRate (critical) fired (received 30 s later)"),
        (
            "21:31:30",
            "GgenMcpErrorRateSLOViolation (warning, slow-burn: context) fired "
            "(received 10 s later)",
        ),  # fmt: skip
        ("21:31:30", "escalated from warning to critical by GgenMcpHighErrorRate"),
        (
            "21:31:50",
            f"escalated investigation completed: likely cause invalid_input ({CRIT_RECORD})",
        ),  # fmt: skip
        ("21:32:00", "alice acknowledged"),
        ("21:35:00", "bob marked mitigated"),
        ("21:36:00", "GgenMcpElevatedErrorRate resolved"),
        ("21:36:10", "GgenMcpHighErrorRate resolved"),
        ("21:36:20", "incident resolved"),
        ("21:41:40", f"verification completed: the fix held ({CRIT_RECORD}-verify)"),
    ]
    assert snap["pending_note"] == "Pending times: no Prometheus URL was given (--prometheus-url)."
    json.dumps(snap)  # kept as incident.json beside the draft


def fake_record(directory: Path, name: str, kind: str, at_s: float, **summary: object) -> Path:
    """A record as the engine leaves it, reduced to what a post-mortem reads."""
    rec = directory / name
    rec.mkdir()
    body = {"alert": "GgenMcpHighErrorRate", "runbook": "high_error_rate", "kind": kind,
            "status": "completed", "severity": "critical", "fingerprint": C,
            "starts_at": "2026-12-01T21:31:00+00:00",
            "evaluated_at": (T0 + timedelta(seconds=at_s)).isoformat(), "diagnosis": [],
            "top_cause": None, **summary}  # fmt: skip
    summary_of(body).write(rec / "summary.json")
    nbformat.write(nbformat.v4.new_notebook(), rec / "record.ipynb")
    return rec


def test_the_summary_says_when_it_started_escalated_and_people_acted(incident, tmp_path) -> None:
    index, incident_id = incident
    verdict = {"cause": "invalid_input", "verdict": "likely", "score": 0.9, "evidence": ["✔ e"]}
    recs = [
        fake_record(
            tmp_path,
            WARN_RECORD,
            "investigation",
            45,
            top_cause="invalid_input",
            diagnosis=[verdict],
            fingerprint=W,
        ),  # fmt: skip
        fake_record(
            tmp_path,
            CRIT_RECORD,
            "investigation",
            110,
            top_cause="invalid_input",
            diagnosis=[verdict],
        ),  # fmt: skip
        fake_record(
            tmp_path,
            f"{CRIT_RECORD}-verify",
            "verification",
            700,
            post_checks=[{"check": "error rate below 1%", "holds": True, "status": "✔"}],
        ),  # fmt: skip
    ]
    md = IncidentRecords(recs, timeline.snapshot(index, incident_id)).markdown()
    summary = md.split("## Summary\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert summary == [
        "- **What**: GgenMcpHighErrorRate (critical, escalated at 21:31:30 UTC), runbook "
        "`high_error_rate`",
        "- **When**: 2026-12-01 21:30:00 UTC (GgenMcpElevatedErrorRate fired)",
        "- **Duration**: 6 min",
        "- **Acknowledged**: after 2 min, by alice",
        "- **Mitigated**: after 5 min, by bob",
        "- **Impact**: Users see failed spreadsheet operations.",
        "- **Likely cause**: invalid_input",
    ]
    verification = md.split("## Verification\n\n", 1)[1].split("\n\n", 1)[0]
    assert verification == (
        f"| record | check | status |\n|---|---|---|\n| {CRIT_RECORD}-verify | error rate below "
        "1% | ✔ |"
    )
    with pytest.raises(ValueError, match="different incidents"):  # no index to say otherwise
        IncidentRecords(recs)


def test_records_alone_still_make_a_timeline(tmp_path: Path) -> None:
    """Records copied away from their index: the alert and the runs as the records say."""
    inv = fake_record(tmp_path, CRIT_RECORD, "investigation", 110, top_cause="invalid_input")
    check = fake_record(tmp_path, f"{CRIT_RECORD}-verify", "verification", 700,
                        ends_at="2026-12-01T21:36:10+00:00",
                        post_checks=[{"check": "c", "holds": False, "status": "✘"}])  # fmt: skip
    rows = [(f"{r.at:%H:%M:%S}", r.event) for r in IncidentRecords([check, inv]).timeline()]
    assert rows == [
        ("21:31:00", "GgenMcpHighErrorRate (critical) fired"),
        ("21:31:50", f"investigation completed: likely cause invalid_input ({CRIT_RECORD})"),
        ("21:36:10", "GgenMcpHighErrorRate resolved"),
        ("21:36:10", "incident resolved"),
        ("21:41:40", f"verification completed: the fix did NOT hold ({CRIT_RECORD}-verify)"),
    ]


def at(s: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-01T{s}+00:00")


def test_the_pending_episode_is_the_one_that_ended_in_the_firing() -> None:
    every_15s = [at("21:29:00") + timedelta(seconds=15 * i) for i in range(5)]  # to 21:30:00
    earlier = [at("21:20:00"), at("21:20:15")]  # pending, then the condition cleared
    assert timeline.episode_start(earlier + every_15s, at("21:30:00")) == at("21:29:00")
    assert timeline.episode_start([at("21:29:59")], at("21:30:00")) == at("21:29:59")
    assert timeline.episode_start(earlier, at("21:30:00")) is None  # that episode never fired
    assert timeline.episode_start([], at("21:30:00")) is None


def test_postmortem_names_an_unknown_incident_and_a_missing_index(
    incident, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("RUNBOOK_CONFIG", str(empty_config(tmp_path)))
    monkeypatch.delenv("RUNBOOK_DATABASE_URL", raising=False)
    assert cli.main(["postmortem", "#99", "--records-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"runbook postmortem: no incident 99 in {tmp_path / 'index.sqlite'}: `runbook incidents` "
        "lists them\n"
    )
    empty = tmp_path / "elsewhere"
    assert cli.main(["postmortem", "1", "--records-dir", str(empty)]) == 2
    assert capsys.readouterr().err == (
        f"runbook postmortem: no index at {empty / 'index.sqlite'}: give --records-dir DIR "
        "(RUNBOOK_OUTPUT_DIR) or --database URL\n"
    )
    assert cli.main(["postmortem", "1", "--records-dir", str(tmp_path)]) == 2  # no record dirs
    assert capsys.readouterr().err.startswith(
        f"runbook postmortem: incident 1 has no finished record in {tmp_path} yet: "
    )
    assert not list(tmp_path.glob("*postmortem*"))
