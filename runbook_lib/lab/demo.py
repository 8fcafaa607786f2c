"""`runbook demo`: the whole chain on a local stack, told step by step.

Simulator fault -> Prometheus alert firing -> Alertmanager webhook delivered to the runbook
receiver. Everything started is stopped on exit, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from runbook_lib.contract.alerts import route
from runbook_lib.contract.config import Settings
from runbook_lib.contract.incident import Incident, IncidentRun
from runbook_lib.incidents.index import Index
from runbook_lib.lab import stack
from runbook_lib.lab.chat_sink import ChatSink
from runbook_lib.lab.sim.modes import EXPECTED_ALERT, EXPECTED_CAUSES

Say = Callable[[str], None]


class DemoError(stack.StackError):
    pass


def prometheus_alert(prom_url: str, alertname: str) -> dict | None:
    """The alert `alertname` as Prometheus's /api/v1/alerts reports it, or None."""
    resp = httpx.get(f"{prom_url}/api/v1/alerts", timeout=5)
    resp.raise_for_status()
    for alert in resp.json()["data"]["alerts"]:
        if alert["labels"].get("alertname") == alertname:
            return alert
    return None


def wait_scraped(prom_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = httpx.get(
            f"{prom_url}/api/v1/query", params={"query": 'up{job="ggen-mcp"}'}, timeout=5
        )
        result = resp.json()["data"]["result"]
        if result and result[0]["value"][1] == "1":
            return
        time.sleep(0.5)
    raise DemoError(
        f"Prometheus at {prom_url} has not scraped GGEN MCP within {timeout:.0f}s "
        "(job ggen-mcp must be in its scrape config)"
    )


def wait_firing(prom_url: str, alertname: str, timeout: float, say: Say) -> float:
    """Seconds until `alertname` fires; reports each state change."""
    start, last = time.monotonic(), None
    while time.monotonic() - start < timeout:
        alert = prometheus_alert(prom_url, alertname)
        state = alert["state"] if alert else "inactive"
        if state != last:
            value = f" (value {float(alert['value']):.3g})" if alert else ""
            say(f"      {time.monotonic() - start:5.1f}s  {alertname}: {state}{value}")
            last = state
        if state == "firing":
            return time.monotonic() - start
        time.sleep(1)
    raise DemoError(f"{alertname} did not fire within {timeout:.0f}s (last state: {last})")


def wait_delivered(index: Index, alertname: str, timeout: float, known: set[int]) -> Incident:
    """The new incident the receiver filed `alertname` under (delivered, persisted, queued):
    its own, or the one of the same fault it joined."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for inc in index.incidents():
            names = {a.alertname for a in inc.alerts}
            if alertname in names and inc.id not in known:
                return inc
        time.sleep(0.3)
    raise DemoError(f"Alertmanager did not deliver {alertname} within {timeout:.0f}s")


def wait_record(
    index: Index, incident_id: int, kind: str, timeout: float, say: Say, alertname: str = ""
) -> IncidentRun:
    """The finished run of `kind` for the incident (led by `alertname`, when given: after
    an escalation, the critical's); reports when a worker picks it up."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        [inc] = [i for i in index.incidents() if i.id == incident_id]
        for r in inc.runs:
            if r.kind != kind or (alertname and r.alertname != alertname):
                continue
            if r.state != seen:
                say(f"      {kind} run: {r.state}")
                seen = r.state
            if r.state == "done":
                return r
        time.sleep(0.5)
    raise DemoError(f"the {kind} run of incident {incident_id} did not finish in {timeout:.0f}s")


def run(
    state_dir: Path,
    mode: str = "errors:invalid_input",
    timeout: float = 240.0,
    keep: bool = False,
    say: Say = print,
    output_dir: Path | None = None,
    prometheus_url: str | None = None,
    ports: dict[str, int] | None = None,
) -> int:
    """The whole chain; with `prometheus_url` (RUNBOOK_PROMETHEUS_URL) that Prometheus is
    used instead of starting one: it must scrape the simulator and alert to our
    Alertmanager (STATE/config/prometheus.yml is the configuration it needs)."""
    alertname = EXPECTED_ALERT.get(mode)
    if alertname is None:
        raise DemoError(
            f"mode {mode!r} makes no alert fire; pick one of "
            + ", ".join(m for m, a in EXPECTED_ALERT.items() if a)
        )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    theirs = Path(output_dir or Settings().output_dir) / "notify.yml"
    sink = None if theirs.exists() else ChatSink()
    notify_yml = theirs if sink is None else _sink_config(Path(state_dir), sink)
    say(
        "[1/7] Starting the local stack: GGEN MCP simulator, node exporter, Alertmanager, "
        + ("" if prometheus_url else "Prometheus, ")
        + "runbook receiver with its notebook workers"
    )
    info = stack.start(
        stack.StackOptions(
            state_dir=state_dir,
            receiver=True,
            output_dir=output_dir,
            ports=ports,
            prometheus_url=prometheus_url,
            memory_limit_bytes=512 << 20 if mode == "memory_leak" else None,
            notify_config=notify_yml,
        )
    )
    try:
        for name, url in info.urls.items():
            say(f"      {name:<14} {url}")
        if prometheus_url:
            say(
                f"      (Prometheus from RUNBOOK_PROMETHEUS_URL; it needs the scrape and alerting "
                f"config of {info.state_dir}/config/prometheus.yml)"
            )
        u = info.urls
        index = Index(Path(info.output_dir) / "index.sqlite")
        known = {i.id for i in index.incidents(1000)}
        say("[2/7] Waiting for Prometheus to scrape GGEN MCP (normal traffic)")
        wait_scraped(u["prometheus"], 60)
        time.sleep(5)
        say(f"[3/7] Fault: scripts/load-test.sh {mode}")
        stack.set_mode(info, mode)
        fault_at = time.monotonic()
        say(f"[4/7] Waiting for Prometheus to fire {alertname} (fast profile: short `for`)")
        fired = wait_firing(u["prometheus"], alertname, timeout, say)
        say("[5/7] Waiting for Alertmanager to POST it to the runbook receiver")
        inc = wait_delivered(index, alertname, 60, known)
        delivered = time.monotonic() - fault_at
        _report(say, info, inc, fired, delivered)
        say(f"[6/7] A worker runs notebooks/{route(alertname)}.ipynb for it (Papermill)")
        lead = index.incident(inc.id).alertname  # the most severe, after an escalation
        run_row = wait_record(index, inc.id, "investigation", 600, say, alertname=lead)
        rec = Path(info.output_dir) / run_row.record
        _report_record(say, rec, time.monotonic() - fault_at, run_row, mode)
        _report_incident(say, index, inc.id)
        say("[7/7] The finding goes to the team's channel (notify.yml)")
        _report_message(say, sink, index, notify_yml, lead)
        if keep:
            say("The stack keeps running so you can look at the URLs above; Ctrl-C stops it.")
            signal.pause()
        return 0
    finally:
        say("Stopping everything the demo started ...")
        stopped = stack.stop(Path(info.state_dir))
        if sink:
            sink.close()
        say(f"Stopped {len(stopped)} processes.")


def _report(say: Say, info: stack.StackInfo, inc: Incident, fired: float, delivered: float) -> None:
    u = info.urls
    say("")
    say(
        f"  ALERT     {inc.alertname}  severity={inc.severity}  "
        f"instance={inc.labels.get('instance')}"
    )
    say(f"  summary   {inc.annotations.get('summary', '')}")
    say(f"  timing    fault -> firing {fired:.0f}s, fault -> webhook accepted {delivered:.0f}s")
    say(
        f"  webhook   accepted with the bearer token and queued as incident #{inc.id} "
        f"(fingerprint {inc.fingerprint}, startsAt {inc.starts_at})"
    )
    say(f"  index     {info.output_dir}/index.sqlite   (`runbook incidents` lists it)")
    say(f"  sim log   {info.sim_log}")
    say(
        f"  pages     {u['prometheus']}/alerts  {u['alertmanager']}/#/alerts  "
        f"{u['runbook']}/metrics  (while running; `runbook demo --keep` keeps them up)"
    )
    say("")


def _report_record(
    say: Say, rec: Path, since_fault: float, run_row: IncidentRun, mode: str
) -> None:
    from runbook_lib.records import record

    summ = record.summary(rec)
    alert_to_record = run_row.finished_at - run_row.enqueued_at
    held = (run_row.started_at - run_row.held_since) if run_row.held_since else 0.0
    say("")
    say(f"  RECORD    {rec}/report.html")
    say(f"            {rec}/record.html   (with the code)")
    say(
        f"  status    {summ.status}; webhook accepted -> record written {alert_to_record:.0f}s; "
        f"fault -> record {since_fault:.0f}s"
    )
    if held >= 1:
        why = run_row.hold_note or "a more severe alert of the same fault was pending"
        say(f"            ({held:.0f}s of it held: {why})")
    top = summ.verdict_of(summ.top_cause)
    if top:
        say(f"  DIAGNOSIS {top.cause} ({top.verdict}, score {top.score:.2f})")
        for line in top.evidence:
            say(f"            {line}")
        if expected := EXPECTED_CAUSES.get(mode):
            mark = "✔ matches" if top.cause in expected else "✘ does not match"
            say(f"            {mark} the injected fault ({mode}: {', '.join(sorted(expected))})")
    elif summ.error:
        say(f"  ERROR     {summ.error}")
    else:
        say("  DIAGNOSIS no cause is likely; see the record")
    say(f"  summary   runbook summary {rec}")
    say("")


def _report_incident(say: Say, index: Index, incident_id: int) -> None:
    """The fault's alerts, filed as one incident, and its investigations: one, led by the
    most severe alert, or a warning's and the critical's that escalated it."""
    inc = index.incident(incident_id)
    alerts = inc.alerts
    runs = [r for r in inc.runs if r.kind == "investigation"]
    led = ", then ".join(
        f"{r.alertname} ({r.severity}{', escalated' if r.trigger.startswith('escalated:') else ''})"
        for r in runs
    )  # fmt: skip
    say(f"  INCIDENT  #{incident_id}: {len(alerts)} alert{'s' * (len(alerts) != 1)} of one fault "
        f"on {inc.instance or 'no instance'}, {len(runs)} investigation"
        f"{'s' * (len(runs) != 1)}: {led}")  # fmt: skip
    for a in alerts:
        kind = " (slow burn: context)" if a.context else ""
        say(f"            {a.alertname:<34} {a.severity or '-':<9} {a.status}{kind}")
    say("            `runbook incidents` lists it; it closes when its symptom alerts resolve")
    say("")


def _sink_config(state_dir: Path, sink: ChatSink) -> Path:
    """A notify.yml posting to the demo's stand-in channel."""
    path = state_dir / "notify.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# the demo's stand-in for a team channel; see docs/notifications.md\n"
        f"targets:\n  - {{name: demo-channel, url: 'json://127.0.0.1:{sink.port}/hook'}}\n"
    )
    return path


def _report_message(
    say: Say, sink: ChatSink | None, index: Index, notify_yml: Path, alertname: str
) -> None:
    """What the team got: the stand-in's copy, or the outbox's state for real targets."""
    deadline = time.monotonic() + 30
    if sink is None:
        from runbook_lib.storage.outbox import Outbox

        while time.monotonic() < deadline:
            rows = Outbox(index).deliveries()
            if rows and all(r["state"] in ("sent", "failed") for r in rows):
                break
            time.sleep(0.5)
        for r in Outbox(index).deliveries():
            say(f"  MESSAGE   {r['key']} -> {r['target']}: {r['state']}"
                + (f" ({r['last_error']})" if r["state"] != "sent" else ""))  # fmt: skip
        say(f"            targets from {notify_yml}; `runbook notify status` shows the outbox")
        return

    def ours() -> dict | None:  # the finding of the investigation shown, not an earlier one
        return next((m for r in sink.delivered if (m := r.json())["title"].startswith(titles)),
                    None)  # fmt: skip

    titles = (f"🚨 {alertname} · ", f"⬆️ Escalated: {alertname} · ")
    while time.monotonic() < deadline and not ours():
        time.sleep(0.3)
    msg = ours()
    if msg is None:
        say("  MESSAGE   none arrived within 30 s; `runbook notify status` shows why")
        return
    say(f"  MESSAGE   posted to http://127.0.0.1:{sink.port}/hook (a local stand-in channel):")
    say(f"            {msg['title']}")
    for line in msg["message"].splitlines()[:4]:
        say(f"            {line}")
    say(f"            + the overview chart ({len(msg.get('attachments') or [])} attachment)")
    say("            To post to Slack, Teams or e-mail instead, put a notify.yml beside the")
    say("            records (docs/notifications.md).")
    say("")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
