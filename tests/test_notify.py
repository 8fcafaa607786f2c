"""Notifications over real HTTP: Apprise posting to a loopback stand-in for the chat service
(`runbook_lib/lab/chat_sink.py`), through the index's outbox, with retries, restarts, two senders
and routing; `notify.yml` parsing; `runbook notify test`."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook_lib.contract.alerts import Alert
from runbook_lib.incidents.index import Index
from runbook_lib.lab.chat_sink import ChatSink
from runbook_lib.service import notify
from runbook_lib.storage.outbox import Outbox
from tests.conftest import summary_of

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def sink():
    s = ChatSink()
    yield s
    s.close()


def alert(fp: str, *, status: str = "firing", name: str = "GgenMcpMemoryCritical",
          severity: str = "critical") -> Alert:  # fmt: skip
    return Alert(
        status=status,
        labels={
            "alertname": name,
            "instance": "web-1:9464" if fp == "f1" else f"web-{fp}:9464",
            "severity": severity,
        },
        annotations={"summary": "memory at 93%"},
        startsAt=datetime(2026, 11, 28, 4, tzinfo=UTC),
        endsAt=datetime(2026, 11, 28, 4, 40, tzinfo=UTC) if status == "resolved" else None,
        fingerprint=fp,
    )


SUMMARY = {
    "status": "completed",
    "top_cause": "cache_too_large",
    "top_causes": [
        {"cause": "cache_too_large", "explained_share": 0.56, "score": 1.0},
        {"cause": "memory_leak", "explained_share": 0.44, "score": 0.85},
    ],
    "diagnosis": [
        {
            "cause": "cache_too_large",
            "verdict": "likely",
            "score": 1.0,
            "explained_share": 0.56,
            "evidence": ["✔ 2646 workbooks are cached", "✔ the cache holds 42% of memory"],
            "strongest": ["✔ the cache holds 42% of memory", "✔ the cache's growth explains 1.1"],
            "missing": [],
        }
    ],
    "first_command": "curl -s http://localhost:9464/metrics | grep cache_size",
}


def investigated(index: Index, out: Path, fp: str = "f1", **kw) -> int:
    """An accepted alert whose investigation finished with SUMMARY and an overview chart."""
    index.accept([alert(fp, **kw)], verify_delay=0)
    job = index.claim()
    rec = out / job.record
    rec.mkdir(parents=True)
    summary_of(SUMMARY).write(rec / "summary.json")
    cell = {"cell_type": "code", "source": ["run.assess()"],
            "outputs": [{"data": {"image/png": base64.b64encode(PNG).decode()}}]}  # fmt: skip
    (rec / "record.ipynb").write_text(json.dumps({"cells": [cell]}))
    index.finish(job.run_id, summary_of(SUMMARY))
    return job.incident.id


def config(*targets: dict, base_s: float = 0.05, max_s: float = 1.0) -> notify.NotifyConfig:
    return notify.NotifyConfig.model_validate(
        {
            "base_url": "https://runbooks.example",
            "targets": list(targets),
            "retry": {"base_s": base_s, "max_s": max_s, "max_attempts": 10},
        }
    )


def drain(sender: notify.Sender, until, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the outbox did not drain"
        sender.step()
        time.sleep(0.02)


def test_the_investigation_reaches_the_channel_with_the_finding_and_the_link(
    tmp_path: Path, sink: ChatSink
) -> None:
    index = Index(tmp_path / "index.sqlite")
    incident = investigated(index, tmp_path)
    cfg = config({"name": "hook", "url": f"json://127.0.0.1:{sink.port}/hook"})
    sender = notify.Sender(index, cfg, tmp_path)
    assert sender.step() == 1
    [msg] = [r.json() for r in sink.delivered]
    assert msg["title"] == "🚨 GgenMcpMemoryCritical · critical · web-1:9464"
    body = msg["message"]
    assert "Top cause: **cache_too_large** — likely (1.00, explains 56% of the symptom)" in body
    assert "Contributing as well: memory_leak (44%)" in body
    # the two strongest evidence lines, not the first two
    assert "- ✔ the cache holds 42% of memory\n- ✔ the cache's growth explains 1.1" in body
    assert "First step: `curl -s http://localhost:9464/metrics | grep cache_size`" in body
    assert f"Investigation: https://runbooks.example/incidents/{incident}" in body
    assert "🚨 INCIDENT: memory at 93% (likely cause: cache too large)" in body  # to paste
    assert "Status: Investigating" in body  # until a mitigation is recorded
    [att] = msg["attachments"]
    assert base64.b64decode(att["base64"]) == PNG
    assert sender.step() == 0  # nothing twice


def test_a_target_that_fails_three_times_gets_the_message_once_and_delays_no_other(
    tmp_path: Path, sink: ChatSink
) -> None:
    down = ChatSink(fail_first=3)
    try:
        index = Index(tmp_path / "index.sqlite")
        investigated(index, tmp_path)
        cfg = config(
            {"name": "flaky", "url": f"json://127.0.0.1:{down.port}/hook"},
            {"name": "fine", "url": f"json://127.0.0.1:{sink.port}/hook"},
        )
        sender = notify.Sender(index, cfg, tmp_path)
        sender.step()
        assert len(sink.delivered) == 1  # the healthy target did not wait
        assert [r.status for r in down.requests] == [500]
        drain(sender, lambda: len(down.delivered) == 1)
        time.sleep(0.3)
        sender.step()
        assert [r.status for r in down.requests] == [500, 500, 500, 200]
        assert len(sink.delivered) == 1
        rows = {r["target"]: r for r in Outbox(index).deliveries()}
        assert (rows["flaky"]["state"], rows["flaky"]["attempts"]) == ("sent", 4)
        assert (rows["fine"]["state"], rows["fine"]["attempts"]) == ("sent", 1)
    finally:
        down.close()


def test_backoff_doubles_and_a_restarted_sender_resumes(tmp_path: Path) -> None:
    down = ChatSink(fail_first=10**6)
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path)
    cfg = config({"name": "t", "url": f"json://127.0.0.1:{down.port}/hook"}, base_s=2, max_s=60)
    first = notify.Sender(index, cfg, tmp_path)
    t0 = time.time()
    first.step(now=t0)
    [row] = Outbox(index).deliveries()
    assert (row["state"], row["next_at"] - t0) == ("pending", 2.0)  # 2 s after try 1
    first.step(now=row["next_at"] + 0.5)
    [row2] = Outbox(index).deliveries()
    assert row2["next_at"] - row["next_at"] == 4.5  # then 4 s after try 2
    assert "500" in row2["last_error"]
    down.close()
    up = ChatSink()
    try:
        cfg = config({"name": "t", "url": f"json://127.0.0.1:{up.port}/hook"})
        again = notify.Sender(Index(tmp_path / "index.sqlite"), cfg, tmp_path)  # a new process
        assert again.step(now=row2["next_at"] + 0.01) == 1
        assert again.step(now=row2["next_at"] + 100) == 0
        assert len(up.delivered) == 1
    finally:
        up.close()


def test_two_senders_on_one_index_send_each_message_once(tmp_path: Path, sink: ChatSink) -> None:
    index = Index(tmp_path / "index.sqlite")
    for i in range(6):
        investigated(index, tmp_path, fp=f"fp{i}")
    cfg = config({"name": "hook", "url": f"json://127.0.0.1:{sink.port}/hook"})
    senders = [notify.Sender(Index(tmp_path / "index.sqlite"), cfg, tmp_path) for _ in range(2)]
    threads = [threading.Thread(target=lambda s=s: [s.step() for _ in range(5)]) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sink.delivered) == 6


def test_resolve_and_verification_follow_up_naming_the_first_message(
    tmp_path: Path, sink: ChatSink
) -> None:
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path)
    index.accept([alert("f1", status="resolved")], verify_delay=0)
    job = index.claim()
    assert job.kind == "verification"
    rec = tmp_path / job.record
    rec.mkdir()
    held = {
        "status": "completed",
        "post_checks": [
            {"check": "error rate under 1% for 15 minutes", "holds": True, "status": "✔ holds"},
            {"check": "users confirm", "holds": None, "status": "for a person"},
        ],
    }
    summary_of(held).write(rec / "summary.json")
    index.finish(job.run_id, summary_of(held))
    cfg = config({"name": "hook", "url": f"json://127.0.0.1:{sink.port}/hook"})
    notify.Sender(index, cfg, tmp_path).step()
    titles = [r.json()["title"] for r in sink.delivered]
    assert titles == [
        "🚨 GgenMcpMemoryCritical · critical · web-1:9464",
        "✅ Resolved: GgenMcpMemoryCritical · critical · web-1:9464",
        "✅ Verification: GgenMcpMemoryCritical · critical · web-1:9464: the fix held",
    ]
    resolved = sink.delivered[1].json()["message"]
    assert "Follow-up to “🚨 GgenMcpMemoryCritical · critical · web-1:9464”" in resolved
    assert "Resolved after 40 min." in resolved and "Status: Resolved" in resolved


def test_routing_by_severity_runbook_and_event(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path, fp="mem")  # critical, memory
    investigated(index, tmp_path, fp="err", name="GgenMcpElevatedErrorRate", severity="warning")
    sinks = {n: ChatSink() for n in ("critical", "memory", "warnings", "resolves")}
    try:
        cfg = config(
            {"name": "critical", "url": f"json://127.0.0.1:{sinks['critical'].port}/",
             "severities": ["critical"]},
            {"name": "memory", "url": f"json://127.0.0.1:{sinks['memory'].port}/",
             "runbooks": ["memory"]},
            {"name": "warnings", "url": f"json://127.0.0.1:{sinks['warnings'].port}/",
             "severities": ["warning"]},
            {"name": "resolves", "url": f"json://127.0.0.1:{sinks['resolves'].port}/",
             "events": ["resolved"]},
        )  # fmt: skip
        notify.Sender(index, cfg, tmp_path).step()
        alerts = {
            n: [r.json()["title"].split(" · ")[0] for r in s.delivered] for n, s in sinks.items()
        }
        assert alerts == {
            "critical": ["🚨 GgenMcpMemoryCritical"],
            "memory": ["🚨 GgenMcpMemoryCritical"],
            "warnings": ["🚨 GgenMcpElevatedErrorRate"],
            "resolves": [],
        }
    finally:
        for s in sinks.values():
            s.close()


def test_mattermost_gets_a_slack_compatible_payload(tmp_path: Path, sink: ChatSink) -> None:
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path)
    cfg = config({"name": "mm", "url": f"mmost://127.0.0.1:{sink.port}/hooktoken"})
    notify.Sender(index, cfg, tmp_path).step()
    [got] = sink.delivered
    assert got.path == "/hooks/hooktoken"
    text = got.json()["text"]
    assert text.startswith("🚨 GgenMcpMemoryCritical · critical · web-1:9464")
    assert "cache_too_large" in text and "https://runbooks.example/incidents/1" in text


# ---------------------------------------------------------------------- configuration
def test_quiet_hours_hold_warnings_until_they_end_but_not_critical() -> None:
    q = notify.QuietHours.model_validate({"start": "22:00", "end": "07:00"})
    late = datetime(2026, 11, 28, 23, 30, tzinfo=UTC).timestamp()
    morning = datetime(2026, 11, 29, 7, 0, tzinfo=UTC).timestamp()
    assert q.resume_at(late, "warning") == morning
    assert q.resume_at(late, "critical") == late
    noon = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()
    assert q.resume_at(noon, "warning") == noon
    berlin = notify.QuietHours.model_validate(
        {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}
    )
    # 21:30 UTC is 22:30 in Berlin (winter): quiet until 07:00 Berlin, 06:00 UTC
    at = datetime(2026, 11, 28, 21, 30, tzinfo=UTC).timestamp()
    assert berlin.resume_at(at, "warning") == datetime(2026, 11, 29, 6, 0, tzinfo=UTC).timestamp()


def test_a_bad_notify_yml_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "notify.yml"
    path.write_text(
        "targets:\n  - name: a\n    url: json://x\n    events: [investigation, paged]\n"
    )
    with pytest.raises(
        ValueError, match=r"notify.yml: targets.0.events: .*unknown events \['paged'\]"
    ):
        notify.NotifyConfig.load(path)
    path.write_text("targets:\n  - {name: a, url: 'json://x'}\n  - {name: a, url: 'json://y'}\n")
    with pytest.raises(ValueError, match="target names must be unique"):
        notify.NotifyConfig.load(path)
    path.write_text("quiet_hours: {start: '22:00', end: '07:00', timezone: Mars/Olympus}\n")
    with pytest.raises(ValueError, match="quiet_hours.timezone"):
        notify.NotifyConfig.load(path)
    assert (
        notify.NotifyConfig.load(_write(tmp_path / "ok.yml", "targets: []\n")).quiet_hours is None
    )


def test_a_targets_events_filter_takes_every_kind_of_event(tmp_path: Path) -> None:
    every = ["investigation", "escalated", "reinvestigation", "mitigation", "acknowledged",
             "mitigated", "silenced", "resolved", "verification"]  # fmt: skip
    path = _write(tmp_path / "notify.yml", f"targets:\n  - {{name: a, url: 'json://x', "
                                           f"events: [{', '.join(every)}]}}\n")  # fmt: skip
    [target] = notify.NotifyConfig.load(path).targets
    assert [k for k in every if target.takes(k)] == every
    assert not target.model_copy(update={"events": ["resolved"]}).takes("escalated")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_runbook_notify_test_says_which_targets_answered(
    tmp_path: Path, sink: ChatSink, capsys
) -> None:
    from runbook_lib import cli

    closed = ChatSink()
    closed.close()  # a port nobody listens on any more
    cfg = _write(
        tmp_path / "notify.yml",
        f"targets:\n  - {{name: team, url: 'json://127.0.0.1:{sink.port}/'}}\n"
        f"  - {{name: gone, url: 'json://127.0.0.1:{closed.port}/'}}\n",
    )
    assert cli.main(["notify", "test", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "  answered  team" in out and "  FAILED    gone: " in out
    assert "1 of 2 targets answered" in out
    assert sink.delivered[0].json()["title"] == "🚨 runbook notify test"


# ---------------------------------------------------------------------- failure modes
def test_a_sender_whose_lease_ran_out_cannot_undo_the_one_that_took_over(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path)
    box = Outbox(index)
    box.expand(lambda ev: [("t", 0.0)], now=100.0)
    [stale] = box.claim(now=100.0, lease_s=10)
    [fresh] = box.claim(now=111.0, lease_s=10)  # the first lease ran out: taken over
    assert (stale.attempts, fresh.attempts) == (1, 2)
    assert box.renew(stale, 112.0) is False  # so the stale sender does not send
    assert box.sent(fresh) is True
    assert box.failed(stale, "late", 113.0, 1, 10, 5) is not None  # its write changes nothing
    [row] = box.deliveries()
    assert (row["state"], row["attempts"]) == ("sent", 2)


def test_notifications_turned_on_later_do_not_post_the_backlog(
    tmp_path: Path, sink: ChatSink
) -> None:
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path, fp="old")
    investigated(index, tmp_path, fp="older")
    cfg = config({"name": "hook", "url": f"json://127.0.0.1:{sink.port}/hook"})
    sender = notify.Sender(index, cfg, tmp_path)
    sender.started_at += 2 * 3600  # started two hours after those investigations
    investigated(index, tmp_path, fp="new")
    with index.tx() as conn:  # the new one happened after the start
        from runbook_lib.storage.migrations.schema import EVENTS

        conn.execute(EVENTS.update().where(EVENTS.c.key == "investigation:3")
                     .values(created_at=sender.started_at + 1))  # fmt: skip
    assert sender.step() == 1
    assert [r["key"] for r in Outbox(index).deliveries()] == ["investigation:3"]
    investigated(index, tmp_path, fp="newer")
    investigated(index, tmp_path, fp="late")  # written after it, about a long-past run
    with index.tx() as conn:
        conn.execute(EVENTS.update().where(EVENTS.c.key == "investigation:4")
                     .values(created_at=sender.started_at + 2))  # fmt: skip
        conn.execute(EVENTS.update().where(EVENTS.c.key == "investigation:5")
                     .values(created_at=sender.started_at - 2 * 3600))  # fmt: skip
    assert sender.step() == 1  # expanded in one pass: the backlog rule holds for both
    assert [r["key"] for r in Outbox(index).deliveries()] == ["investigation:3", "investigation:4"]


def test_an_unknown_url_scheme_is_given_up_at_once(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    investigated(index, tmp_path)
    cfg = config({"name": "typo", "url": "slak://T000/B000/XXX"})
    notify.Sender(index, cfg, tmp_path).step()
    [row] = Outbox(index).deliveries()
    assert row["state"] == "failed" and "check the scheme" in row["last_error"]


def test_a_slow_target_does_not_hold_up_another(tmp_path: Path, sink: ChatSink) -> None:
    slow = ChatSink(delay_s=3.0)
    try:
        index = Index(tmp_path / "index.sqlite")
        investigated(index, tmp_path)
        cfg = config(
            {"name": "slow", "url": f"json://127.0.0.1:{slow.port}/hook"},
            {"name": "fast", "url": f"json://127.0.0.1:{sink.port}/hook"},
        )
        sender = notify.Sender(index, cfg, tmp_path, poll_s=0.1).start()
        try:
            t0 = time.monotonic()
            while not sink.delivered and time.monotonic() - t0 < 5:
                time.sleep(0.05)
            assert sink.delivered and time.monotonic() - t0 < 2.0
            assert not slow.delivered  # still answering
            while not slow.delivered and time.monotonic() - t0 < 10:
                time.sleep(0.1)
            assert len(slow.delivered) == 1
        finally:
            sender.stop()
    finally:
        slow.close()


# ---------------------------------------------------------------------- deliveries seen
def test_the_apprise_notify_type_follows_the_incidents_severity(
    tmp_path: Path, sink: ChatSink
) -> None:
    from tests.incident_story import Story, alert, finding

    story = Story(tmp_path)
    for severity, host in (("critical", "a"), ("warning", "b"), ("info", "c"), ("", "d")):
        story.fire(alert("GgenMcpHighErrorRate", severity, host, instance=f"web-{host}:9464"))
        story.run(finding("invalid_input", "✔ validation errors are 81% of errors"))
    cfg = config({"name": "hook", "url": f"json://127.0.0.1:{sink.port}/hook"})
    notify.Sender(story.index, cfg, tmp_path).step()
    assert {r.json()["title"]: r.json()["type"] for r in sink.delivered} == {
        "🚨 GgenMcpHighErrorRate · critical · web-a:9464": "failure",
        "🚨 GgenMcpHighErrorRate · warning · web-b:9464": "warning",
        "🚨 GgenMcpHighErrorRate · info · web-c:9464": "info",
        "🚨 GgenMcpHighErrorRate · no severity · web-d:9464": "info",
    }


def test_each_delivery_says_how_it_went_in_one_log_line_and_to_the_callback(
    tmp_path: Path, sink: ChatSink, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="runbook.notify")
    flaky, down = ChatSink(fail_first=1), ChatSink(fail_first=10**6)
    try:
        index = Index(tmp_path / "index.sqlite")
        investigated(index, tmp_path)
        cfg = notify.NotifyConfig.model_validate({"targets": [
            {"name": "flaky", "url": f"json://127.0.0.1:{flaky.port}/"},
            {"name": "down", "url": f"json://127.0.0.1:{down.port}/"},
            {"name": "typo", "url": "slak://T000/B000/XXX"},
        ], "retry": {"base_s": 2, "max_s": 60, "max_attempts": 2}})  # fmt: skip
        told: list[tuple[str, str]] = []
        sender = notify.Sender(index, cfg, tmp_path, on_delivery=lambda *o: told.append(o))
        t0 = datetime(2026, 12, 1, 4, 0, tzinfo=UTC).timestamp()
        sender.started_at = t0
        sender.step(now=t0)
        sender.step(now=t0 + 2)
        assert sender.step(now=t0 + 100) == 0  # all settled
        assert sorted(told) == sorted([
            ("typo", "given_up"), ("flaky", "retried"), ("down", "retried"),
            ("flaky", "sent"), ("down", "given_up"),
        ])  # fmt: skip
        lines = sorted((r.getMessage(), r.levelname) for r in caplog.records
                       if r.name == "runbook.notify")  # fmt: skip
        on, http500 = "investigation of incident 1 to", "Internal server error., error=500."
        assert [(m.replace(http500, "HTTP 500"), level) for m, level in lines] == [
            (
                f"{on} down: attempt 1 failed (Failed to send JSON POST notification: HTTP 500); "
                "next at 04:00:02 UTC",
                "WARNING",
            ),
            (
                f"{on} down: given up after 2 attempts: Failed to send JSON POST notification: "
                "HTTP 500",
                "ERROR",
            ),
            (
                f"{on} flaky: attempt 1 failed (Failed to send JSON POST notification: HTTP 500); "
                "next at 04:00:02 UTC",
                "WARNING",
            ),
            (f"{on} flaky: sent (attempt 2)", "INFO"),
            (
                f"{on} typo: given up: not a URL Apprise knows (check the scheme in notify.yml)",
                "ERROR",
            ),
        ]  # one line per delivery attempt's outcome, nothing else
    finally:
        flaky.close()
        down.close()
