"""`runbook demo`: the whole chain on a local stack, told step by step.

Simulator fault -> Prometheus alert firing -> Alertmanager webhook delivered to the runbook
receiver. Everything started is stopped on exit, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from runbook_lib import stack
from runbook_lib.alerts import Alert, route
from runbook_lib.server import Inbox
from runbook_lib.sim.modes import EXPECTED_ALERT

Say = Callable[[str], None]


@dataclass
class Delivery:
    alert: Alert
    fired_after_s: float
    delivered_after_s: float


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
    raise DemoError(f"Prometheus at {prom_url} has not scraped GGEN MCP within {timeout:.0f}s")


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


def wait_delivered(inbox: Inbox, alertname: str, timeout: float) -> Alert:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for payload in inbox.read():
            for alert in payload.alerts:
                if alert.name == alertname and alert.status == "firing":
                    return alert
        time.sleep(0.5)
    raise DemoError(f"Alertmanager did not deliver {alertname} within {timeout:.0f}s")


def run(
    state_dir: Path,
    mode: str = "errors:invalid_input",
    timeout: float = 240.0,
    keep: bool = False,
    say: Say = print,
    output_dir: Path | None = None,
) -> int:
    alertname = EXPECTED_ALERT.get(mode)
    if alertname is None:
        raise DemoError(
            f"mode {mode!r} makes no alert fire; pick one of "
            + ", ".join(m for m, a in EXPECTED_ALERT.items() if a)
        )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    say(
        "[1/6] Starting the local stack: GGEN MCP simulator, node exporter, Alertmanager, "
        "Prometheus, runbook webhook receiver"
    )
    info = stack.start(
        stack.StackOptions(
            state_dir=state_dir,
            receiver=True,
            memory_limit_bytes=512 << 20 if mode == "memory_leak" else None,
        )
    )
    try:
        for name, url in info.urls.items():
            say(f"      {name:<14} {url}")
        u = info.urls
        say("[2/6] Waiting for Prometheus to scrape GGEN MCP (normal traffic)")
        wait_scraped(u["prometheus"], 60)
        time.sleep(5)
        say(f"[3/6] Fault: scripts/load-test.sh {mode}")
        stack.set_mode(info, mode)
        fault_at = time.monotonic()
        say(f"[4/6] Waiting for Prometheus to fire {alertname} (fast profile: short `for`)")
        fired = wait_firing(u["prometheus"], alertname, timeout, say)
        say("[5/6] Waiting for Alertmanager to POST it to the runbook webhook")
        alert = wait_delivered(Inbox(Path(info.state_dir) / "inbox.jsonl"), alertname, 60)
        delivered = time.monotonic() - fault_at
        _report(say, info, alert, fired, delivered)
        say(f"[6/6] Running the runbook notebooks/{route(alertname)}.ipynb for it (Papermill)")
        rec = _investigate(info, alert, output_dir)
        _report_record(say, rec, time.monotonic() - fault_at)
        if keep:
            say("The stack keeps running so you can look at the URLs above; Ctrl-C stops it.")
            signal.pause()
        return 0
    finally:
        say("Stopping everything the demo started ...")
        stopped = stack.stop(Path(info.state_dir))
        say(f"Stopped {len(stopped)} processes.")


def _report(say: Say, info: stack.StackInfo, alert: Alert, fired: float, delivered: float) -> None:
    u = info.urls
    say("")
    say(
        f"  ALERT     {alert.name}  severity={alert.labels.get('severity')}  "
        f"instance={alert.labels.get('instance')}"
    )
    say(f"  summary   {alert.annotations.get('summary', '')}")
    say(f"  runbook   {alert.annotations.get('runbook', '')}")
    say(f"  timing    fault -> firing {fired:.0f}s, fault -> webhook delivered {delivered:.0f}s")
    say(
        f"  webhook   accepted with the bearer token; fingerprint {alert.fingerprint}, "
        f"startsAt {alert.startsAt.isoformat()}"
    )
    say(f"  payload   {info.state_dir}/inbox.jsonl")
    say(f"  sim log   {info.sim_log}")
    say(
        f"  pages     {u['prometheus']}/alerts  {u['alertmanager']}/#/alerts  (while running; "
        "`runbook demo --keep` keeps them up)"
    )
    say("")


def _investigate(info: stack.StackInfo, alert: Alert, output_dir: Path | None) -> Path:
    from runbook_lib import runner
    from runbook_lib.config import Settings

    params = runner.alert_params(
        alert.name,
        {k: v for k, v in alert.labels.items() if k != "alertname"},
        annotations=alert.annotations,
        starts_at=alert.startsAt.isoformat(),
        fp=alert.fingerprint,
        prometheus_url=info.urls["prometheus"],
        extra={
            "live": True,
            "log_file": info.sim_log,
            "temp_dir": info.temp_dir,
            "alertmanager_url": info.urls["alertmanager"],
        },
    )
    return runner.run(params, output_dir or Settings().output_dir, progress=True)


def _report_record(say: Say, rec: Path, since_fault: float) -> None:
    from runbook_lib import record

    summ = record.summary(rec)
    say("")
    say(f"  RECORD    {rec}/report.html   ({summ['status']}, {since_fault:.0f}s after the fault)")
    top = next((d for d in summ["diagnosis"] if d["cause"] == summ["top_cause"]), None)
    if top:
        say(f"  DIAGNOSIS {top['cause']} ({top['verdict']}, score {top['score']:.2f})")
        for line in top["evidence"]:
            say(f"            {line}")
    else:
        say("  DIAGNOSIS no cause is likely; see the record")
    say(f"  summary   runbook summary {rec}")
    say("")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
