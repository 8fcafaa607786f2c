"""Benchmark: how long an incident that changes under its investigation takes to be told.

On the local stack (rules' windows divided by 10, `for:` by 30, Alertmanager's group_wait
1 s; the receiver's hold margin 5 s), three timings, each from what Prometheus and the index
record:

1. warning -> record, nothing more severe pending: the warning's investigation starts at
   once (no fixed hold);
2. warning -> record, a critical pending when the warning fires: the investigation waits for
   the critical (its `for:` remaining and the margin) and the critical leads it;
3. critical -> message, a critical 60 s after the warning: the escalation's investigation
   and its `escalated` message, from the critical's firing to the message's delivery.

Prints the figures (and with --json one JSON object on the last line); asserts nothing.
    .venv/bin/python -m benchmarks.escalation [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from runbook_lib.incidents.index import Index
from runbook_lib.lab import escalation, stack
from runbook_lib.lab.chat_sink import ChatSink
from runbook_lib.lab.escalation import CRITICAL, WARNING
from runbook_lib.storage.outbox import Outbox


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gap", type=float, default=60.0, help="seconds from warning to critical")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="bench-escalation-"))
    sink = ChatSink()
    (state / "notify.yml").write_text(
        f"targets:\n  - {{name: oncall, url: 'json://127.0.0.1:{sink.port}/oncall', "
        "severities: [critical]}\n"
    )
    opts = stack.StackOptions(
        state_dir=state, any_free_port=True, receiver=True, output_dir=state / "records",
        verify_delay=3, workers=2, notify_config=state / "notify.yml",
        window_factor=escalation.WINDOW_FACTOR,
        receiver_args=["--hold-margin", "5", "--hold-cap", "60"],
    )  # fmt: skip
    print(f"starting the stack in {state} ...", flush=True)
    info = stack.start(opts)
    figures: dict[str, float] = {}
    try:
        index = Index(Path(info.output_dir) / "index.sqlite")
        sc = escalation.Scenario(info, index, say=lambda line: print(line, flush=True))
        time.sleep(3)
        print("[1/2] a critical pending when the warning fires", flush=True)
        inc = escalation.critical_pending(sc)
        [run] = inc.runs
        figures["pending_warning_to_record_s"] = run.finished_at - sc.seen["warning_fired"]
        figures["pending_held_s"] = run.started_at - run.held_since
        escalation.settle(sc, inc.id)
        print(f"[2/2] a critical {args.gap:.0f}s after the warning", flush=True)
        inc = escalation.warning_then_critical(sc, gap_s=args.gap)
        first, second = escalation.done(inc)
        figures["alone_warning_to_record_s"] = first.finished_at - escalation.fired_at(inc, WARNING)
        critical = escalation.fired_at(inc, CRITICAL)
        figures["warning_to_critical_s"] = critical - escalation.fired_at(inc, WARNING)
        figures["critical_to_record_s"] = second.finished_at - critical
        sent = sc.wait("the escalated message", lambda: _sent(index, inc.id, "escalated"), 60)
        figures["critical_to_message_s"] = sent - critical
        escalation.settle(sc, inc.id)
    finally:
        stack.stop(state)
        sink.close()
    print()
    print(
        f"warning -> record, nothing more severe pending   {figures['alone_warning_to_record_s']:6.1f} s"
    )
    print(f"warning -> record, a critical pending            {figures['pending_warning_to_record_s']:6.1f} s"
          f"   (held {figures['pending_held_s']:.1f} s for it)")  # fmt: skip
    print(
        f"warning -> critical (the scenario's gap)         {figures['warning_to_critical_s']:6.1f} s"
    )
    print(
        f"critical -> escalation's record                  {figures['critical_to_record_s']:6.1f} s"
    )
    print(
        f"critical -> escalated message delivered          {figures['critical_to_message_s']:6.1f} s"
    )
    if args.json:
        print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
    return 0


def _sent(index: Index, incident_id: int, kind: str) -> float | None:
    rows = [r for r in Outbox(index).deliveries() if r["incident_id"] == incident_id]
    return next((r["sent_at"] for r in rows if r["kind"] == kind and r["state"] == "sent"), None)


if __name__ == "__main__":
    raise SystemExit(main())
