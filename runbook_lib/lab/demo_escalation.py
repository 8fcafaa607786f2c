"""`runbook demo --escalate`: an incident that changes under its investigation, told step
by step. The error rate sits at a warning's level, then rises a minute after the warning
fired: the warning is investigated at once, the critical escalates the incident, and every
place a person looks (the record's lead, the incident page, the messages, `runbook
incidents --message`) says critical. Two stand-in channels show the routing: `team` gets
every message, `oncall` only critical ones.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from runbook_lib.contract.config import Settings
from runbook_lib.contract.incident import Incident, IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.lab import escalation, stack
from runbook_lib.lab.chat_sink import ChatSink
from runbook_lib.lab.demo import Say, _raise_interrupt, wait_scraped
from runbook_lib.lab.escalation import CRITICAL, WARNING
from runbook_lib.records import record
from runbook_lib.storage.outbox import Outbox


def run(
    state_dir: Path, gap_s: float = 60.0, keep: bool = False, say: Say = print,
    output_dir: Path | None = None,
) -> int:  # fmt: skip
    signal.signal(signal.SIGTERM, _raise_interrupt)
    team, oncall = ChatSink(), ChatSink()
    notify = Path(state_dir) / "notify.yml"
    notify.parent.mkdir(parents=True, exist_ok=True)
    notify.write_text(
        "# the demo's stand-in channels: team gets everything, oncall only critical\n"
        f"targets:\n  - {{name: team, url: 'json://127.0.0.1:{team.port}/team'}}\n"
        f"  - {{name: oncall, url: 'json://127.0.0.1:{oncall.port}/oncall', "
        "severities: [critical]}\n"
    )
    say("[1/6] Starting the local stack (the rules' windows shortened so a fault comes and goes "
        "in a minute) with two stand-in channels: team (everything) and oncall (critical only)")  # fmt: skip
    info = stack.start(
        stack.StackOptions(
            state_dir=state_dir, receiver=True, any_free_port=True, notify_config=notify,
            output_dir=output_dir or Settings().output_dir, verify_delay=10,
            window_factor=escalation.WINDOW_FACTOR,
        )
    )  # fmt: skip
    try:
        index = Index(Path(info.output_dir) / "index.sqlite")
        sc = escalation.Scenario(info, index, say=say)
        say("[2/6] Waiting for Prometheus to scrape normal traffic")
        wait_scraped(info.urls["prometheus"], 60)
        time.sleep(5)
        say("[3/6] Fault: 3% of requests fail (the warning's 1%, not the critical's 5%); "
            f"{gap_s:.0f}s after the warning fires, 10% fail")  # fmt: skip
        inc = escalation.warning_then_critical(sc, gap_s=gap_s)
        first, second = escalation.done(inc)
        warning, critical = escalation.fired_at(inc, WARNING), escalation.fired_at(inc, CRITICAL)
        say(f"      {_t(warning)}  {WARNING} (warning) fired; investigated at once: "
            f"{first.record} ({first.top_cause or 'no likely cause'})")  # fmt: skip
        say(f"      {_t(critical)}  {CRITICAL} (critical) fired, {critical - warning:.0f}s later: "
            f"incident #{inc.id} escalated; its investigation: {second.record}")  # fmt: skip
        say("[4/6] What each place says now")
        _places(say, sc, inc, second, critical, team, oncall)
        say("[5/6] The fault ends: the symptom alerts resolve while the SLO alerts go on firing")
        sc.mode("normal")
        inc = sc.wait("the incident to resolve", lambda: (i := sc.incident(inc.id)).status
                      == "resolved" and i)  # fmt: skip
        slo = [a.alertname for a in inc.alerts if a.context and a.status == "firing"]
        say(f"      incident #{inc.id} resolved at {_t(inc.resolved_at)} while "
            f"{', '.join(slo) or 'no SLO alert'} still fired; its verification follows")  # fmt: skip
        say(f"[6/6] `runbook incidents` lists it; the pages: {info.urls['runbook']}/incidents/"
            f"{inc.id} (viewer token in {info.output_dir}/.viewer-token)")  # fmt: skip
        if keep:
            say("The stack keeps running so you can look at the URLs above; Ctrl-C stops it.")
            signal.pause()
        return 0
    finally:
        say("Stopping everything the demo started ...")
        stopped = stack.stop(Path(info.state_dir))
        team.close()
        oncall.close()
        say(f"Stopped {len(stopped)} processes.")


def _places(say: Say, sc: escalation.Scenario, inc: Incident, run: IncidentRun, critical: float,
            team: ChatSink, oncall: ChatSink) -> None:  # fmt: skip
    """The severity the record, the page, the channels and the CLI's message show."""
    from runbook_lib.service.incident_view import incident_message

    summ = record.summary(sc.out / run.record)
    before = summ.escalated_from.severity if summ.escalated_from else "?"
    say(f"      record lead     {summ.severity} (escalated from {before}): "
        f"{sc.out / run.record / 'report.html'}")  # fmt: skip
    viewer = (sc.out / ".viewer-token").read_text().strip()
    page = httpx.get(f"{sc.info.urls['runbook']}/incidents/{inc.id}", timeout=10,
                     headers={"authorization": f"Bearer {viewer}"}).text  # fmt: skip
    shown = next((s for s in ("critical", "warning", "info") if f'sev-{s}">{s}' in page), "?")
    say(f"      incident page   {shown}")
    sent = sc.wait("the escalated message", lambda: _sent(sc.index, inc.id, "oncall"), 60)
    msg = next(r.json() for r in oncall.delivered if "Escalated" in r.json()["title"])
    say(f"      oncall channel  {msg['title']}")
    say(f"                      delivered {sent - critical:.1f}s after the critical fired")
    titles = [r.json()["title"] for r in team.delivered]
    say(f"      team channel    {len(titles)} messages: " + " | ".join(titles))
    text = incident_message(sc.index, inc.id)
    say(f"      runbook incidents --message {inc.id}: "
        + next(ln for ln in text.splitlines() if ln.startswith("Severity")))  # fmt: skip


def _sent(index: Index, incident_id: int, target: str) -> float | None:
    rows = Outbox(index).deliveries()
    return next((r["sent_at"] for r in rows if r["incident_id"] == incident_id
                 and r["target"] == target and r["state"] == "sent"), None)  # fmt: skip


def _t(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC):%H:%M:%S}"
