"""The index as a queue: the order runs are claimed in, record names fixed at accept time
(and kept apart when two fingerprints share their first 12 characters), finishing,
recovery of in-flight runs, and the queue figures. Expectations are written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.incidents.index import Index
from runbook_lib.storage import retention
from tests.conftest import summary_of

T0 = 1_800_000_000.0  # a fixed "now" for accept/claim


def alert(fp: str, *, status: str = "firing", hour: int = 4, name: str = "GgenMcpHighErrorRate"):
    return Alert(
        status=status,
        labels={"alertname": name, "instance": f"h:{fp}", "severity": "critical"},
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
    claimed = [index.claim(now=T0 + 100).alert.fingerprint for _ in range(3)]
    assert claimed == ["bbbb", "aaaa", "cccc"]  # by due time, not by insertion
    assert index.claim(now=T0 + 100) is None


def warning(fp: str) -> Alert:
    return Alert(
        status="firing",
        labels={"alertname": "GgenMcpElevatedErrorRate", "instance": f"h:{fp}",
                "severity": "warning"},
        startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
        fingerprint=fp,
    )  # fmt: skip


def test_a_critical_queued_behind_ten_warnings_starts_next(index: Index) -> None:
    for i in range(10):
        index.accept([warning(f"w{i:03d}")], verify_delay=0, now=T0 + i)
    index.accept([alert("crit")], verify_delay=0, now=T0 + 20)  # queued last
    info = Alert(status="firing", labels={"alertname": "Something", "instance": "h:i",
                                          "severity": "info"},
                 startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC), fingerprint="info")  # fmt: skip
    index.accept([info], verify_delay=0, now=T0 - 5)  # queued first
    claimed = [index.claim(now=T0 + 30).alert.fingerprint for _ in range(12)]
    # the critical, then the warnings oldest first, then the info run
    assert claimed == ["crit", *(f"w{i:03d}" for i in range(10)), "info"]


def test_a_warning_due_longer_than_the_age_bound_is_not_starved(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite", age_bound=300)
    index.accept([warning("warn")], verify_delay=0, now=T0)
    index.accept([alert("crit1")], verify_delay=0, now=T0 + 100)
    index.accept([alert("crit2")], verify_delay=0, now=T0 + 250)
    assert index.claim(now=T0 + 299).alert.fingerprint == "crit1"  # 299 s: the critical first
    # due 300 s: the warning counts as critical, and it is the oldest of the two left
    assert index.claim(now=T0 + 300).alert.fingerprint == "warn"
    assert index.claim(now=T0 + 300).alert.fingerprint == "crit2"


def test_a_held_warning_waits_out_its_hold_then_queues_by_its_severity(index: Index) -> None:
    index.accept([warning("warn")], verify_delay=0, now=T0)
    held = index.claim(now=T0 + 1)
    index.defer(held, T0 + 60, "waiting for its critical twin", now=T0 + 1)
    index.accept([alert("crit1")], verify_delay=0, now=T0 + 30)
    assert index.claim(now=T0 + 59).alert.fingerprint == "crit1"
    assert index.claim(now=T0 + 59) is None  # held until T0 + 60
    index.accept([alert("crit2")], verify_delay=0, now=T0 + 61)
    # due again since T0 + 60, it is a warning once more: the critical queued later goes first
    assert index.claim(now=T0 + 62).alert.fingerprint == "crit2"
    again = index.claim(now=T0 + 62)
    assert (again.alert.fingerprint, again.queue.held_since) == ("warn", T0 + 1)


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
    ended = alert("aaaa", status="resolved")
    assert index.accept([ended], verify_delay=0, now=T0) == ["resolved"]
    assert index.accept([alert("aaaa", hour=6)], verify_delay=0, now=T0) == ["queued"]
    assert [i.starts_at for i in index.incidents()] == [
        "2026-11-28T06:00:00+00:00",
        "2026-11-28T04:00:00+00:00",
    ]


def test_claim_marks_running_and_counts_attempts_finish_files_the_outcome(index: Index) -> None:
    index.accept([alert("aaaa")], verify_delay=0, now=T0)
    job = index.claim(now=T0 + 1)
    assert (job.queue.attempts, job.runbook, job.alert.labels["instance"]) == (
        1,
        "high_error_rate",
        "h:aaaa",
    )
    [run] = index.incidents()[0].runs
    assert (run.state, run.started_at) == ("running", T0 + 1)
    index.finish(job.run_id, summary_of({"status": "completed", "top_cause": "invalid_input"}))
    [run] = index.incidents()[0].runs
    assert (run.state, run.status, run.top_cause) == ("done", "completed", "invalid_input")
    assert index.in_flight() == [] and index.claim(now=T0 + 2) is None


def test_in_flight_runs_are_found_and_requeued_with_their_attempts(index: Index) -> None:
    index.accept([alert("aaaa"), alert("bbbb")], verify_delay=0, now=T0)
    first = index.claim(now=T0 + 1)
    index.claim(now=T0 + 1)
    assert sorted(j.alert.fingerprint for j in index.in_flight()) == ["aaaa", "bbbb"]
    index.requeue(first.run_id)
    assert [j.alert.fingerprint for j in index.in_flight()] == ["bbbb"]
    again = index.claim(now=T0 + 2)
    assert (again.alert.fingerprint, again.queue.attempts) == ("aaaa", 2)


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
    assert inc.status == "resolved" and [r.kind for r in inc.runs] == [
        "investigation",
        "verification",
    ]
    assert inc.runs[1].not_before == T0 + 60


# -- distributed mode's side of the index (on SQLite here; PostgreSQL in test_distributed) --
def test_accept_runs_names_the_runs_it_created(index: Index) -> None:
    outcomes, created = index.accept_runs([alert("aaaa"), alert("aaaa")], 60, now=T0)
    assert outcomes == ["queued", "duplicate"]
    assert [(q.kind, q.not_before) for q in created] == [("investigation", T0)]
    outcomes, created = index.accept_runs([alert("aaaa", status="resolved")], 60, now=T0 + 5)
    assert outcomes == ["resolved"] and [(q.kind, q.not_before) for q in created] == [
        ("verification", T0 + 65)
    ]


def test_claim_with_a_lease_takes_a_queued_run_once_and_a_running_one_after_its_lease(
    index: Index,
) -> None:
    [q] = index.accept_runs([alert("aaaa")], 0, now=T0)[1]
    first = index.claim(lease_s=100, now=T0 + 1)
    assert first is not None and first.queue.attempts == 1 and first.alert.fingerprint == "aaaa"
    assert index.claim(lease_s=100, now=T0 + 50) is None  # leased to the first
    assert index.claim(now=T0 + 500) is None  # without a lease, running is never due again
    again = index.claim(lease_s=100, now=T0 + 102)  # its worker vanished
    assert again is not None and again.run_id == q.run_id and again.queue.attempts == 2
    index.finish(q.run_id, summary_of({"status": "completed"}), location="/shared/records/x")
    assert index.claim(lease_s=100, now=T0 + 500) is None  # done is done
    [run] = index.incidents()[0].runs
    assert (run.state, run.location) == ("done", "/shared/records/x")


def test_undispatched_finds_unsent_lost_and_abandoned_runs(index: Index) -> None:
    runs = [index.accept_runs([alert(fp)], 0, now=T0)[1][0].run_id for fp in "abcd"]
    never, sent, running, fresh = runs
    index.dispatched([sent, running], now=T0)
    index.dispatched([fresh], now=T0 + 90)
    # as severe and as old: claimed by id; the first two go back to the queue
    claimed = [index.claim(lease_s=30, now=T0 + 10).run_id for _ in range(3)]
    assert claimed == [never, sent, running]
    index.requeue(never)
    index.requeue(sent)
    found = lambda resend: sorted(  # noqa: E731
        q.run_id for q in index.undispatched(60, 30, resend_sent=resend, now=T0 + 100)
    )
    assert found(False) == [never, running]  # a queue still draining: the sent ones wait
    assert found(True) == [never, sent, running]  # an empty queue: sent and not started is lost
    assert index.undispatched(60, 30, resend_sent=True, now=T0 + 30) == []  # not due for long


def test_incidents_filter_by_alert_status_and_time(index: Index) -> None:
    index.accept([alert("aaaa", name="GgenMcpHighErrorRate")], 0, now=T0)
    index.accept([alert("bbbb", name="GgenMcpMemoryCritical")], 0, now=T0 + 100)
    index.accept([alert("bbbb", name="GgenMcpMemoryCritical", status="resolved")], 0, now=T0 + 200)
    assert [i.fingerprint for i in index.incidents(alert="Memory")] == ["bbbb"]
    assert [i.fingerprint for i in index.incidents(status="firing")] == ["aaaa"]
    assert [i.fingerprint for i in index.incidents(since=T0 + 50)] == ["bbbb"]
    assert [i.fingerprint for i in index.incidents(limit=1)] == ["bbbb"]
    assert index.incidents(alert="%") == []  # a LIKE wildcard is taken literally


def test_one_incident_its_record_and_forgetting(index: Index) -> None:
    index.accept([alert("aaaa"), alert("bbbb", hour=5)], 0, now=T0)
    inc = index.incident(1)
    assert inc.fingerprint == "aaaa" and inc.labels["instance"] == "h:aaaa"
    with pytest.raises(LookupError, match=f"no incident 9 in {index.path}"):
        index.incident(9)
    run, incident = index.run_of("20261128T040000Z-GgenMcpHighErrorRate-aaaa")
    assert run.kind == "investigation" and incident.id == 1
    assert index.run_of("no-such-record") is None
    retention.forget(index, ["20261128T040000Z-GgenMcpHighErrorRate-aaaa"])
    assert [i.fingerprint for i in index.incidents()] == ["bbbb"]


def test_an_index_written_before_the_migrations_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "index.sqlite")
    old.executescript(LEGACY_SCHEMA)
    old.execute(
        "INSERT INTO incidents VALUES (1, 'fp', '2026-11-28T04:00:00+00:00', 'A', 'triage',"
        " '', '{\"instance\": \"h:9\"}', '{}', '', 'firing', NULL, 1.0, NULL)"
    )
    old.commit()
    old.close()
    index = Index(tmp_path / "index.sqlite")
    [inc] = index.incidents()
    assert (inc.fingerprint, inc.instance) == ("fp", "h:9")  # 0004 filled the instance
    assert [(a.fingerprint, a.alertname, a.status) for a in inc.alerts] == [
        ("fp", "A", "firing")  # each old incident is an incident of its one alert
    ]
    gone = Alert(status="resolved", labels={"alertname": "A", "instance": "h:9"},
                 startsAt="2026-11-28T04:00:00Z", fingerprint="fp")  # fmt: skip
    assert index.accept([gone], 0, now=T0) == ["resolved"]  # and resolves with it
    index.accept([alert("zzzz")], 0, now=T0)
    [run] = index.incidents()[0].runs
    assert run.location is None and run.dispatched_at is None  # the new columns


def test_the_tables_the_code_queries_are_the_tables_the_migrations_make(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from runbook_lib.storage.migrations import schema

    index = Index(tmp_path / "index.sqlite")
    made = sa.inspect(index.engine)
    for table in (schema.INCIDENTS, schema.RUNS, schema.ALERTS):
        assert [c["name"] for c in made.get_columns(table.name)] == [c.name for c in table.c]
    uniques = {tuple(u["column_names"]) for u in made.get_unique_constraints("incidents")}
    assert ("fingerprint", "starts_at") in uniques
    uniques = {tuple(u["column_names"]) for u in made.get_unique_constraints("alerts")}
    assert ("fingerprint", "starts_at") in uniques


def alembic_script():
    """Alembic's own reading of the migrations, with the index's configuration."""
    from alembic.script import ScriptDirectory

    from runbook_lib.storage.migrations import schema

    return ScriptDirectory.from_config(schema.alembic_config(None))


def test_an_index_a_revision_behind_is_upgraded_and_one_up_to_date_is_opened_without_alembic(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    import sqlalchemy as sa
    from alembic import command

    from runbook_lib.storage.migrations import schema

    script = alembic_script()
    newest = script.get_current_head()
    behind = script.get_revision(newest).down_revision
    path = tmp_path / "index.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), behind)
    engine.dispose()
    index = Index(path)
    with index.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(newest,)]
    made = sa.inspect(index.engine)
    for table in (schema.INCIDENTS, schema.RUNS, schema.ALERTS):  # the newest one's columns
        assert [c["name"] for c in made.get_columns(table.name)] == [c.name for c in table.c]
    opened = (
        "import sys; from runbook_lib.incidents.index import Index; "
        f"Index({str(path)!r}); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", opened], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_head_read_from_the_migration_files_is_alembics(tmp_path: Path, monkeypatch) -> None:
    from runbook_lib.storage.migrations import schema

    assert [schema.head()] == alembic_script().get_heads()
    versions = tmp_path / "versions"
    versions.mkdir()
    for name, text in {
        "a.py": 'revision = "a"\ndown_revision = None\n',
        "b.py": 'revision: str = "b"\ndown_revision: str | None = "a"\n',
        ".#c.py": 'revision = "c"\ndown_revision = "b"\n',  # an editor's lock file
    }.items():
        (versions / name).write_text(text)
    monkeypatch.setattr(schema, "HERE", tmp_path)
    schema.head.cache_clear()
    try:
        assert schema.head() == "b"
        (versions / "d.py").write_text('revision = "d"\ndown_revision = "a"\n')  # a branch
        schema.head.cache_clear()
        assert schema.head() is None  # Alembic decides
    finally:
        schema.head.cache_clear()


LEGACY_SCHEMA = """
CREATE TABLE incidents (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL,
  starts_at TEXT NOT NULL, alertname TEXT NOT NULL, runbook TEXT NOT NULL,
  severity TEXT NOT NULL, labels TEXT NOT NULL, annotations TEXT NOT NULL,
  generator_url TEXT NOT NULL, status TEXT NOT NULL, ends_at TEXT, received_at REAL NOT NULL,
  resolved_at REAL, UNIQUE (fingerprint, starts_at));
CREATE TABLE runs (id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL REFERENCES incidents (id),
  kind TEXT NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL UNIQUE, not_before REAL NOT NULL,
  enqueued_at REAL NOT NULL, started_at REAL, finished_at REAL,
  attempts INTEGER NOT NULL DEFAULT 0, status TEXT, top_cause TEXT, error TEXT,
  UNIQUE (incident_id, kind));
CREATE INDEX runs_queued ON runs (state, not_before);
"""


# -- boundaries and fields, by hand ----------------------------------------------------------
def test_a_run_is_due_at_its_not_before_and_ties_go_by_arrival(index: Index) -> None:
    index.accept([alert("bbbb"), alert("aaaa")], 0, now=T0)  # one instant, bbbb first
    assert index.queue_stats(now=T0) == (2, 0.0)
    assert [index.claim(now=T0).alert.fingerprint for _ in range(2)] == ["bbbb", "aaaa"]


def test_a_job_carries_the_alert_fields_and_its_wait(index: Index) -> None:
    index.accept([alert("aaaa", hour=3)], 0, now=T0)
    index.accept([alert("bbbb", status="resolved")], 60, now=T0)
    job = index.claim(now=T0 + 7.5)
    assert (job.alert.starts_at, job.alert.ends_at, job.queue.waited_s) == (
        "2026-11-28T03:00:00+00:00",
        None,
        7.5,
    )
    assert (
        job.alert.annotations == {} and job.verification_of is None and job.kind == "investigation"
    )
    index.claim(now=T0 + 8)  # bbbb's investigation
    verification = index.claim(now=T0 + 70)
    assert verification.verification_of == "20261128T040000Z-GgenMcpHighErrorRate-bbbb"
    assert verification.alert.ends_at is None and verification.queue.waited_s == 10.0
    assert index.request(job.run_id) == job


def test_finish_records_when_and_keeps_a_known_location(index: Index) -> None:
    import time

    [q] = index.accept_runs([alert("aaaa")], 0, now=T0)[1]
    index.claim(now=T0)
    before = time.time()
    index.finish(q.run_id, summary_of({"status": "failed", "error": "boom"}), location="/r/a")
    index.finish(q.run_id, summary_of({"status": "completed"}))  # refiled without a location
    [run] = index.incidents()[0].runs
    assert run.location == "/r/a" and run.status == "completed" and run.error is None
    assert before <= run.finished_at <= time.time()  # the clock at filing


def test_lease_and_sweep_boundaries(index: Index) -> None:
    [q] = index.accept_runs([alert("aaaa")], 0, now=T0)[1]
    index.claim(lease_s=30, now=T0)
    assert index.claim(lease_s=30, now=T0 + 30) is None  # exactly at the lease: still held
    assert index.undispatched(10, 30, resend_sent=True, now=T0 + 30) == []
    assert [x.run_id for x in index.undispatched(10, 30, resend_sent=True, now=T0 + 31)] == [
        q.run_id
    ]
    [r] = index.accept_runs([alert("bbbb")], 0, now=T0)[1]
    index.dispatched([r.run_id], now=T0)
    found = index.undispatched(10, 1000, resend_sent=True, now=T0 + 10)
    assert found == []  # sent exactly grace ago: not yet
    assert index.undispatched(10, 1000, resend_sent=True, now=T0 + 10.5) == [
        type(r)(r.run_id, "investigation", T0)
    ]


def test_incidents_are_newest_received_first_and_100_by_default(index: Index) -> None:
    index.accept([alert("late")], 0, now=T0 + 50)
    index.accept([alert("early")], 0, now=T0)  # inserted later, received earlier
    assert [i.fingerprint for i in index.incidents()] == ["late", "early"]
    assert [i.fingerprint for i in index.incidents(since=T0)] == ["late", "early"]
    index.accept([alert(f"f{i:03d}") for i in range(100)], 0, now=T0 + 100)
    many = index.incidents()
    assert len(many) == 100 and many[0].annotations == {} and many[-1].runs
    assert index.incident(1).annotations == {}


def test_an_index_at_a_sqlite_url_knows_its_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "index.sqlite"
    index = Index(url=f"sqlite:///{path}")
    assert index.path == path and index.url == f"sqlite:///{path}" and not index.postgres
    assert index.where == str(path)
    nested = Index(tmp_path / "a" / "b" / "index.sqlite")  # parents are made
    assert nested.path.parent.is_dir()


def test_accept_keeps_severity_and_a_resolved_then_refired_alert_is_a_duplicate(
    index: Index,
) -> None:
    plain = Alert(status="firing", labels={"alertname": "X"}, fingerprint="p",
                  startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC))  # fmt: skip
    index.accept([plain, alert("aaaa")], 0, now=T0)
    severities = {i.fingerprint: i.severity for i in index.incidents()}
    assert severities == {"p": "", "aaaa": "critical"}
    index.accept([alert("aaaa", status="resolved")], 0, now=T0)
    assert index.accept([alert("aaaa", status="resolved")], 0, now=T0) == ["resolved-duplicate"]
    assert index.accept([alert("aaaa")], 0, now=T0) == ["duplicate"]
    assert index.incidents()[0].status == "resolved"  # a late firing copy changes nothing


def test_without_a_time_the_clock_is_used(index: Index) -> None:
    import time

    [q] = index.accept_runs([alert("aaaa")], 0)[1]
    before = time.time()
    index.dispatched([q.run_id])
    assert index.undispatched(0, 30, resend_sent=False) == []  # sent: not lost
    job = index.claim(lease_s=60)
    [run] = index.incidents()[0].runs
    assert job is not None and before <= run.dispatched_at <= run.started_at <= time.time()
    assert index.undispatched(0, 30, resend_sent=True) == []  # leased right now


def test_the_index_answers_with_the_queue_and_the_repository(index: Index) -> None:
    """One object for callers, two owners behind it: a run accepted through the index is in
    the queue the index holds, and the incident it opened is in the repository it holds."""
    index.accept([alert("a1")], verify_delay=60, now=T0)
    job = index.queue.claim(now=T0)
    assert job is not None and job.kind == "investigation"
    assert index.repository.incident(job.incident.id).alertname == "GgenMcpHighErrorRate"
    assert index.claim(now=T0) is None  # the same queue: the one run is taken
    assert index.queue_stats(now=T0) == (0, 0.0)
    assert index.claim.__doc__ == index.queue.claim.__doc__  # its docs, not a wrapper's
