"""`runbook stack`, `runbook sim` and `runbook demo`: the local monitoring stack of the lab."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runbook_lib.cli import flags
from runbook_lib.contract.config import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    st = sub.add_parser("stack", help="the local monitoring stack")
    st_sub = st.add_subparsers(dest="action", required=True)
    p = st_sub.add_parser("start", help="start Prometheus, Alertmanager, ...")
    flags.add(p, "stack start", settings)
    p.add_argument("--receiver", action="store_true", help="also start the webhook receiver")
    p.add_argument("--any-free-port", action="store_true",
                   help="do not try the conventional ports (9090, 9093, ...)")  # fmt: skip
    p.set_defaults(func=_stack_start)
    p = st_sub.add_parser("stop", help="stop what `start` started")
    flags.add(p, "stack stop", settings)
    p.set_defaults(func=_stack_stop)
    p = st_sub.add_parser("status", help="print the URLs")
    flags.add(p, "stack status", settings)
    p.set_defaults(func=_stack_status)

    sim = sub.add_parser("sim", help="the GGEN MCP simulator of the local stack")
    sim_sub = sim.add_subparsers(dest="action", required=True)
    p = sim_sub.add_parser("run", help="run the simulator in the foreground")
    flags.add(p, "sim run", settings)
    p.add_argument("--state-dir", type=Path, help="where it keeps its mode (default: none)")
    p.set_defaults(func=_sim_run)
    p = sim_sub.add_parser("mode", help="switch the fault mode")
    flags.add(p, "sim mode", settings)
    p.add_argument("mode")
    p.set_defaults(func=_sim_mode)

    p = sub.add_parser("demo", help="the whole chain on a local stack")
    flags.add(p, "demo", settings)
    p.add_argument("--output", help="records directory (default: RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    p.add_argument("--escalate", action="store_true",
                   help="an error rate that worsens: a warning, then a critical a minute later "
                   "that escalates the incident")  # fmt: skip
    p.set_defaults(func=_demo)


def _stack_start(args: argparse.Namespace) -> int:
    from runbook_lib.lab import stack

    opts = stack.StackOptions(
        state_dir=args.state_dir,
        profile=args.stack_profile,
        receiver=args.receiver,
        any_free_port=args.any_free_port,
        memory_limit_bytes=args.memory_limit_bytes,
        metrics_profile=args.metrics_profile,
    )
    info = stack.start(opts)
    print(f"Local stack started ({info.profile} profile, {args.metrics_profile} metrics), "
          f"state in {info.state_dir}")  # fmt: skip
    for name, url in info.urls.items():
        if name != "runbook" or info.receiver:
            print(f"  {name:<14} {url}")
    print(f"  simulator log  {info.sim_log}")
    print("Faults: scripts/load-test.sh MODE; stop: scripts/stop-monitoring.sh")
    return 0


def _stack_stop(args: argparse.Namespace) -> int:
    from runbook_lib.lab import stack

    stopped = stack.stop(args.state_dir)
    for rec in stopped:
        print(f"stopped {rec.name} (pid {rec.pid})")
    if not stopped:
        print(f"nothing was running under {args.state_dir.resolve()}")
    return 0


def _stack_status(args: argparse.Namespace) -> int:
    from runbook_lib.lab import stack

    info = stack.StackInfo.load(args.state_dir.resolve())
    print(json.dumps(info.urls, indent=2))
    return 0


def _sim_run(args: argparse.Namespace) -> int:
    """The simulator in the foreground, speaking the contract or the server's metrics."""
    from runbook_lib.lab.sim.__main__ import main as sim_main

    argv = ["--host", args.sim_host, "--port", str(args.sim_port), "--profile",
            args.metrics_profile]  # fmt: skip
    return sim_main(argv + (["--state-dir", str(args.state_dir)] if args.state_dir else []))


def _sim_mode(args: argparse.Namespace) -> int:
    from runbook_lib.lab import stack

    info = stack.StackInfo.load(args.state_dir.resolve())
    result = stack.set_mode(info, args.mode)
    print(f"GGEN MCP simulator: {result['previous']} -> {result['mode']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from runbook_lib.lab import demo

    out = Path(args.output) if args.output else None
    if args.escalate:
        from runbook_lib.lab import demo_escalation

        return demo_escalation.run(args.state_dir, keep=args.keep, output_dir=out)
    return demo.run(args.state_dir, mode=args.demo_mode, timeout=args.demo_timeout,
                    keep=args.keep, output_dir=out,
                    prometheus_url=Settings().prometheus_url or None)  # fmt: skip
