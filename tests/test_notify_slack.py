"""Slack with a bot token: one thread per incident whose first message's status line follows
the incident, and Slack's ways of failing. Slack cannot run here: these talk real HTTP to
the loopback stand-in `runbook_lib/lab/slack_standin.py`, through the real outbox."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from runbook_lib import cli
from runbook_lib.lab.slack_standin import SlackStandIn
from runbook_lib.service import notify
from runbook_lib.storage.migrations.schema import THREADS
from runbook_lib.storage.outbox import Outbox
from tests.incident_story import T0, Story, critical_joins, resolve, warning_investigated

HEAD = "GgenMcpHighErrorRate · critical · web-1:9464"


@pytest.fixture
def standin():
    s = SlackStandIn(token="xoxb-test")
    yield s
    s.close()


def slack_yml(tmp_path: Path, standin: SlackStandIn, channel: str = "#incidents",
              **filters) -> Path:  # fmt: skip
    """notify.yml with one Slack bot target whose token is in a file beside it."""
    (tmp_path / "slack-token").write_text("xoxb-test\n")
    extra = "".join(f"    {k}: {v}\n" for k, v in filters.items())
    path = tmp_path / "notify.yml"
    path.write_text(
        "base_url: https://runbooks.example\n"
        "retry: {base_s: 2, max_s: 60, max_attempts: 5}\n"
        "targets:\n"
        "  - name: slack\n"
        f"    slack: {{token_file: slack-token, channel: '{channel}', api_url: {standin.api_url}}}\n"
        + extra
    )
    return path


def sender(story: Story, path: Path, **kw) -> notify.Sender:
    return story.sender(notify.NotifyConfig.load(path), **kw)


def posts(standin: SlackStandIn) -> list[dict]:
    return [c.args for c in standin.calls_of("chat.postMessage") if c.answer["ok"]]


def test_follow_ups_reply_in_the_first_messages_thread_whose_status_line_follows(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    story = Story(tmp_path)
    send = sender(story, slack_yml(tmp_path, standin))
    incident = warning_investigated(story)
    send.step()
    critical_joins(story)
    send.step()
    story.act(incident, "acknowledged", "alice", T0 + timedelta(minutes=12))
    send.step()
    story.ask(incident, "mitigation", "dave")
    story.run({"status": "completed", "actions": [
        {"action": "restart_container", "done": True, "outcome": "restarted ggen-mcp-server"}]})  # fmt: skip
    send.step()
    resolve(story)
    send.step()
    root, *replies = posts(standin)
    [first] = [m for m in standin.messages.values() if m.thread_ts is None]
    assert "thread_ts" not in root and root["channel"] == "#incidents"
    assert [r["thread_ts"] for r in replies] == [first.ts] * 5
    assert [r["channel"] for r in replies] == ["C0INCIDENTS"] * 5  # the id Slack answered
    assert [r["text"].splitlines()[0] for r in replies] == [
        f"*⬆️ Escalated: {HEAD}*", f"*👀 Acknowledged: {HEAD}*", f"*🛠️ Mitigation: {HEAD}*",
        f"*✅ Resolved: {HEAD}*", f"*✅ Verification: {HEAD}: the fix held*",
    ]  # fmt: skip
    assert not any("Follow-up to" in r["text"] for r in replies)  # the thread says it
    assert root["text"].splitlines()[:2] == [
        "Status: firing",
        "*🚨 GgenMcpElevatedErrorRate · warning · web-1:9464*",
    ]
    assert "Top cause: *invalid_input*" in root["text"]  # Slack's bold
    # before each reply, the first message was brought up to date
    assert [m.splitlines()[0] for m in first.edits] == [
        "Status: escalated",
        "Status: escalated · acknowledged by alice",
        "Status: mitigated · acknowledged by alice",
        "Status: resolved · acknowledged by alice",
        "Status: resolved · acknowledged by alice",
    ]
    now = first.text.splitlines()
    assert now[1] == f"*🚨 {HEAD}*" and "Severity: Critical" in now  # critical everywhere
    assert [c.method for c in standin.calls] == ["chat.postMessage"] + [
        "chat.update", "chat.postMessage"] * 5  # fmt: skip
    assert {c.headers["Authorization"] for c in standin.calls} == {"Bearer xoxb-test"}
    with story.index.read() as conn:
        rows = conn.execute(sa.select(THREADS.c.incident_id, THREADS.c.target,
                                      THREADS.c.channel, THREADS.c.ts)).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(incident, "slack", "C0INCIDENTS", first.ts)]


def test_a_critical_only_channel_starts_its_thread_with_the_escalation(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    story = Story(tmp_path)
    send = sender(story, slack_yml(tmp_path, standin, severities="[critical]"))
    warning_investigated(story)
    send.step()
    assert standin.calls == []  # a warning: not for this channel
    critical_joins(story)
    send.step()
    resolve(story)
    send.step()
    root, *replies = posts(standin)
    assert root["text"].splitlines()[:4] == [
        "Status: escalated",
        f"*⬆️ Escalated: {HEAD}*",
        "Follow-up to “🚨 GgenMcpElevatedErrorRate · warning · web-1:9464” "
        "(started 2026-11-28 04:00 UTC)",  # on its own in this channel: it says what it follows
        "⬆️ Escalated from warning to critical by GgenMcpHighErrorRate",
    ]
    assert [r["text"].splitlines()[0] for r in replies] == [
        f"*✅ Resolved: {HEAD}*",
        f"*✅ Verification: {HEAD}: the fix held*",
    ]
    [first] = [m for m in standin.messages.values() if m.thread_ts is None]
    assert first.text.splitlines()[:2] == ["Status: resolved", f"*⬆️ Escalated: {HEAD}*"]


def test_slack_errors_are_retried_with_slacks_text_and_its_retry_after(
    tmp_path: Path, standin: SlackStandIn, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="runbook.notify")
    story = Story(tmp_path)
    outcomes: list[tuple[str, str]] = []
    send = sender(story, slack_yml(tmp_path, standin),
                  on_delivery=lambda t, o: outcomes.append((t, o)))  # fmt: skip
    warning_investigated(story)
    t0 = time.time()
    standin.fail_next("internal_error")  # HTTP 200, ok: false
    send.step(now=t0)
    [row] = Outbox(story.index).deliveries()
    assert (row["state"], row["last_error"], row["next_at"]) == (
        "pending", "Slack: internal_error", t0 + 2)  # fmt: skip
    standin.fail_next("ratelimited", status=429, retry_after=30)
    send.step(now=t0 + 2)
    [row] = Outbox(story.index).deliveries()
    assert row["last_error"] == "Slack: ratelimited (HTTP 429)"
    assert row["next_at"] == t0 + 2 + 30  # Slack's 30 s, not the backoff's 4
    assert send.step(now=t0 + 31) == 0  # not before
    assert send.step(now=t0 + 32) == 1
    assert len(standin.messages) == 1 and posts(standin)[0]["text"].startswith("Status: firing")
    assert outcomes == [("slack", "retried"), ("slack", "retried"), ("slack", "sent")]
    assert "attempt 2 failed (Slack: ratelimited (HTTP 429)); next at" in caplog.text


def test_a_follow_up_whose_status_update_fails_is_replied_once_when_retried(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    story = Story(tmp_path)
    send = sender(story, slack_yml(tmp_path, standin))
    warning_investigated(story)
    t0 = time.time()
    send.step(now=t0)
    critical_joins(story)
    standin.fail_next("ratelimited", status=429, retry_after=5)
    send.step(now=t0)
    assert len(posts(standin)) == 1  # no reply while the first message is not up to date
    assert send.step(now=t0 + 5) == 1
    assert len(posts(standin)) == 2
    [first] = [m for m in standin.messages.values() if m.thread_ts is None]
    assert [e.splitlines()[0] for e in first.edits] == ["Status: escalated"]


@pytest.mark.parametrize(
    ("error", "token", "channel"),
    [
        ("invalid_auth", "xoxb-revoked", "#incidents"),
        ("channel_not_found", "xoxb-test", "#nowhere"),
        ("not_in_channel", "xoxb-test", "#incidents"),
    ],
)
def test_a_bad_token_or_channel_is_given_up_at_once(
    tmp_path: Path, error: str, token: str, channel: str, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="runbook.notify")
    standin = SlackStandIn(token=token)
    try:
        if error == "not_in_channel":
            standin.fail_next(error)
        story = Story(tmp_path)
        path = slack_yml(tmp_path, standin, channel=channel)  # the file's token: xoxb-test
        outcomes: list[str] = []
        send = sender(story, path, on_delivery=lambda t, o: outcomes.append(o))
        warning_investigated(story)
        critical_joins(story)
        send.step()
        rows = Outbox(story.index).deliveries()
        assert [(r["state"], r["attempts"], r["last_error"]) for r in rows] == [
            ("failed", 1, f"Slack: {error}")
        ] * 2  # the follow-up behind it too: the same channel would refuse it
        assert outcomes == ["given_up", "given_up"]
        assert f"investigation of incident 1 to slack: given up: Slack: {error}" in caplog.text
        assert len(standin.calls) == 1
    finally:
        standin.close()


def test_a_slack_target_needs_one_readable_token_and_no_url(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    path = tmp_path / "notify.yml"
    path.write_text("targets:\n  - name: s\n    slack: {token_file: gone, channel: '#x'}\n")
    with pytest.raises(ValueError) as exc:
        notify.NotifyConfig.load(path)
    assert str(exc.value).startswith(
        f"{path}: targets.0.slack: cannot read the Slack token file {tmp_path / 'gone'}: "
    )
    path.write_text("targets:\n  - name: s\n    slack: {channel: '#x'}\n")
    with pytest.raises(ValueError, match="targets.0.slack: .*either token or token_file"):
        notify.NotifyConfig.load(path)
    path.write_text(
        "targets:\n  - name: s\n    url: json://x\n    slack: {token: t, channel: '#x'}\n"
    )
    with pytest.raises(ValueError, match=r"targets.0: .*either url \(Apprise\) or slack"):
        notify.NotifyConfig.load(path)
    path.write_text("targets:\n  - name: s\n    slack: {token: xoxb-inline, channel: '#x'}\n")
    cfg = notify.NotifyConfig.load(path)
    assert cfg.targets[0].slack.bearer() == "xoxb-inline"
    assert "xoxb-inline" not in repr(cfg)  # a logged config does not give the token away


def test_runbook_notify_test_posts_to_the_slack_channel(
    tmp_path: Path, standin: SlackStandIn, capsys
) -> None:
    path = slack_yml(tmp_path, standin)
    assert cli.main(["notify", "test", "--config", str(path)]) == 0
    assert "  answered  slack" in capsys.readouterr().out
    [msg] = standin.messages.values()
    assert msg.text.startswith("*🚨 runbook notify test*")


def test_the_standin_speaks_slack_form_bodies_and_refuses_a_wrong_token(
    standin: SlackStandIn,
) -> None:
    url = f"{standin.api_url}/chat.postMessage"
    ok = httpx.post(url, data={"token": "xoxb-test", "channel": "#incidents", "text": "hi"})
    assert ok.json() == {"ok": True, "channel": "C0INCIDENTS", "ts": "1700000000.000001"}
    refused = httpx.post(url, json={"channel": "#incidents", "text": "hi"},
                         headers={"Authorization": "Bearer nope"})  # fmt: skip
    assert (refused.status_code, refused.json()) == (200, {"ok": False, "error": "invalid_auth"})
    update = httpx.post(f"{standin.api_url}/chat.update",
                        data={"token": "xoxb-test", "channel": "C0INCIDENTS",
                              "ts": "1700000000.000001", "text": "edited"})  # fmt: skip
    assert update.json()["ok"] is True
    assert standin.messages["1700000000.000001"].text == "edited"
