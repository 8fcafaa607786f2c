"""Every event of an incident has its message, and follow-ups reach the channels that had the
first: an escalation, operators' actions and runs, the resolve and the verification, through
the real outbox and Apprise posting to a loopback stand-in for the chat service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from runbook_lib import cli
from runbook_lib.lab.chat_sink import ChatSink
from runbook_lib.service import notify
from tests.incident_story import (
    T0,
    Story,
    critical_joins,
    finding,
    resolve,
    warning_investigated,
)

HEAD = "GgenMcpHighErrorRate · critical · web-1:9464"  # the incident's head after escalating


@pytest.fixture
def sinks():
    made: dict[str, ChatSink] = {}

    def sink(name: str) -> ChatSink:
        made[name] = ChatSink()
        return made[name]

    yield sink
    for s in made.values():
        s.close()


def target(name: str, sink: ChatSink, **filters) -> dict:
    return {"name": name, "url": f"json://127.0.0.1:{sink.port}/", **filters}


def config(*targets: dict) -> notify.NotifyConfig:
    return notify.NotifyConfig.model_validate(
        {"base_url": "https://runbooks.example", "targets": list(targets),
         "retry": {"base_s": 0.05, "max_s": 1.0}}
    )  # fmt: skip


def titles(sink: ChatSink) -> list[str]:
    return [r.json()["title"] for r in sink.delivered]


def test_an_escalation_reaches_a_critical_only_target_once_and_follow_ups_reach_the_first_ones(
    tmp_path: Path, sinks
) -> None:
    story = Story(tmp_path)
    pager, team, firsts = sinks("pager"), sinks("team"), sinks("firsts")
    cfg = config(
        target("pager", pager, severities=["critical"]),
        target("team", team, severities=["warning"]),
        target("firsts", firsts, severities=["warning"], events=["investigation"]),
    )
    sender = story.sender(cfg)
    warning_investigated(story)
    sender.step()  # the warning's finding goes out while the incident is a warning
    critical_joins(story)
    sender.step()
    resolve(story)
    sender.step()
    assert sender.step() == 0  # nothing twice
    after = [f"⬆️ Escalated: {HEAD}", f"✅ Resolved: {HEAD}",
             f"✅ Verification: {HEAD}: the fix held"]  # fmt: skip
    assert titles(pager) == after  # the critical-only target: from the escalation on
    # the warning target had the first message: it gets every follow-up, critical or not
    assert titles(team) == ["🚨 GgenMcpElevatedErrorRate · warning · web-1:9464", *after]
    # ... unless its events filter says otherwise
    assert titles(firsts) == ["🚨 GgenMcpElevatedErrorRate · warning · web-1:9464"]
    # Apprise's type follows the severity now: warning first, failure once critical
    assert [r.json()["type"] for r in team.delivered] == ["warning"] + ["failure"] * 3


def test_the_escalated_message_says_from_what_to_what_and_carries_the_new_finding(
    tmp_path: Path, sinks
) -> None:
    story = Story(tmp_path)
    hook = sinks("hook")
    sender = story.sender(config(target("hook", hook)))
    incident = warning_investigated(story)
    critical_joins(story)
    sender.step()
    first, escalation = [r.json()["message"] for r in hook.delivered]
    assert escalation.splitlines()[:3] == [
        "Follow-up to “🚨 GgenMcpElevatedErrorRate · warning · web-1:9464” "
        "(started 2026-11-28 04:00 UTC)",
        "⬆️ Escalated from warning to critical by GgenMcpHighErrorRate",
        "Top cause: **database_connection** — likely (0.90, explains 80% of the symptom)",
    ]
    assert "- ✔ db timeouts are 70% of errors" in escalation
    assert "First step: `psql -c 'select 1'`" in escalation
    assert f"Investigation: https://runbooks.example/incidents/{incident}" in escalation
    # the message to paste now says critical, with the critical's finding
    assert "🚨 INCIDENT: errors at 7% (likely cause: database connection)" in escalation
    assert "Severity: Critical" in escalation and "invalid_input" not in escalation
    assert "Top cause: **invalid_input**" in first and "Follow-up" not in first


def test_operators_actions_and_runs_each_say_who_and_what(tmp_path: Path, sinks) -> None:
    story = Story(tmp_path)
    hook = sinks("hook")
    incident = warning_investigated(story)
    critical_joins(story)
    story.act(incident, "acknowledged", "alice", T0 + timedelta(minutes=12))
    story.act(incident, "silenced", "bob", T0 + timedelta(minutes=13),
              ends_at="2026-11-28T06:13:00Z")  # fmt: skip
    story.ask(incident, "reinvestigate", "carol")
    story.run(finding("third_party_api", "✔ the payment API answers 503"))
    story.ask(incident, "mitigation", "dave")
    story.run({"status": "completed", "actions": [
        {"action": "restart_container", "done": True, "outcome": "restarted ggen-mcp-server"},
        {"action": "end_old_soffice", "done": False,
         "outcome": "not run (allow_mitigation=False); would end 2 soffice processes"},
    ]})  # fmt: skip
    story.act(incident, "mitigated", "erin", T0 + timedelta(minutes=30))
    story.sender(config(target("hook", hook))).step()
    said = {r.json()["title"]: r.json()["message"].splitlines() for r in hook.delivered}
    assert list(said)[2:] == [
        f"👀 Acknowledged: {HEAD}", f"🔕 Silenced: {HEAD}", f"🔁 Re-investigated: {HEAD}",
        f"🛠️ Mitigation: {HEAD}", f"🩹 Mitigated: {HEAD}",
    ]  # fmt: skip
    assert (
        said[f"👀 Acknowledged: {HEAD}"][1] == "👀 Acknowledged by alice at 2026-11-28 04:12 UTC."
    )
    assert said[f"🔕 Silenced: {HEAD}"][1] == (
        "🔕 Silenced in Alertmanager by bob at 2026-11-28 04:13 UTC until 2026-11-28 06:13 UTC."
    )
    reinvestigated = said[f"🔁 Re-investigated: {HEAD}"]
    assert reinvestigated[1:3] == [
        "🔁 Re-investigation requested by carol",
        "Top cause: **third_party_api** — likely (0.90, explains 80% of the symptom)",
    ]
    assert said[f"🛠️ Mitigation: {HEAD}"][1:4] == [
        "🛠️ The mitigation approved by dave ran:",
        "- ✔ restart_container: restarted ggen-mcp-server",
        "- ✘ end_old_soffice: not run (allow_mitigation=False); would end 2 soffice processes",
    ]
    assert "Status: Mitigating" in said[f"🛠️ Mitigation: {HEAD}"]  # a mitigation was done
    assert (
        said[f"🩹 Mitigated: {HEAD}"][1] == "🩹 Marked mitigated by erin at 2026-11-28 04:30 UTC."
    )
    for lines in list(said.values())[1:]:  # each names the first message, as it was sent
        assert lines[0].startswith("Follow-up to “🚨 GgenMcpElevatedErrorRate · warning")


def test_the_line_the_index_recalls_goes_under_each_finding_only(tmp_path: Path, sinks) -> None:
    story = Story(tmp_path)
    hook = sinks("hook")
    incident = warning_investigated(story)
    critical_joins(story)
    resolve(story)
    seen: list[int] = []

    def recall(index, inc) -> str:
        seen.append(inc.id)
        return "3rd incident of this cause on web-1 in 90 days; the last fix held"

    story.sender(config(target("hook", hook)), recall=recall).step()
    bodies = {r.json()["title"].split(":")[0]: r.json()["message"] for r in hook.delivered}
    line = "3rd incident of this cause on web-1 in 90 days; the last fix held"
    # sent after the escalation: the first message's title says critical too
    assert [k for k, body in bodies.items() if line in body] == [
        "🚨 GgenMcpHighErrorRate · critical · web-1",
        "⬆️ Escalated",
    ]
    assert seen == [incident, incident]
    # under the finding, before the first step
    assert f"- ✔ db timeouts are 70% of errors\n{line}\nFirst step:" in bodies["⬆️ Escalated"]


def test_notify_status_lists_each_delivery_by_kind_and_incident(
    tmp_path: Path, sinks, capsys
) -> None:
    story = Story(tmp_path)
    hook = sinks("hook")
    warning_investigated(story)
    critical_joins(story)
    story.act(1, "acknowledged", "alice", T0)
    story.sender(config(target("hook", hook))).step()
    assert cli.main(["notify", "status", "--output", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "  sent     investigation   incident 1     -> hook  attempts 1",
        "  sent     escalated       incident 1     -> hook  attempts 1",
        "  sent     acknowledged    incident 1     -> hook  attempts 1",
    ]


def test_a_failing_recall_costs_its_line_not_the_message(tmp_path: Path, sinks, caplog) -> None:
    story = Story(tmp_path)
    hook = sinks("hook")
    warning_investigated(story)

    def recall(index, inc) -> str:
        raise LookupError("no such table: memory")

    story.sender(config(target("hook", hook)), recall=recall).step()
    [msg] = [r.json()["message"] for r in hook.delivered]
    assert msg.startswith("Top cause: **invalid_input**")
    assert "recall for incident 1 failed" in caplog.text
