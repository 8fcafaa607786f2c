"""The `runbook` subcommands that look at incidents and records, and run the lab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.contract.config import Settings
from runbook_lib.lab import stack

if TYPE_CHECKING:
    pass


def _stack_start(args: argparse.Namespace) -> int:
    opts = stack.StackOptions(
        state_dir=args.state_dir,
        profile=args.profile,
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
    stopped = stack.stop(args.state_dir)
    for rec in stopped:
        print(f"stopped {rec.name} (pid {rec.pid})")
    if not stopped:
        print(f"nothing was running under {args.state_dir.resolve()}")
    return 0


def _stack_status(args: argparse.Namespace) -> int:
    info = stack.StackInfo.load(args.state_dir.resolve())
    print(json.dumps(info.urls, indent=2))
    return 0


def _sim_run(args: argparse.Namespace) -> int:
    """The simulator in the foreground, speaking the contract or the server's metrics."""
    from runbook_lib.lab.sim.__main__ import main as sim_main

    argv = ["--host", args.host, "--port", str(args.port), "--profile", args.profile]
    return sim_main(argv + (["--state-dir", str(args.state_dir)] if args.state_dir else []))


def _sim_mode(args: argparse.Namespace) -> int:
    info = stack.StackInfo.load(args.state_dir.resolve())
    result = stack.set_mode(info, args.mode)
    print(f"GGEN MCP simulator: {result['previous']} -> {result['mode']}")
    return 0


def _postmortem(args: argparse.Namespace) -> int:
    from runbook_lib.records import postmortem

    try:
        out = postmortem.write(args.records, Path(args.output) if args.output else None, True)
    except (ValueError, FileNotFoundError) as exc:
        print(f"runbook postmortem: {exc}", file=sys.stderr)
        return 2
    print(out / "postmortem.html")
    print(out / "postmortem.md")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from runbook_lib.records import retention

    output = Path(args.output or Settings().output_dir)
    done = retention.prune(output, args.days, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(done.removed)} records ({done.freed_bytes / 2**20:.1f} MiB) older than "
          f"{args.days:g} days; kept {len(done.kept_linked)} linked from a post-mortem")  # fmt: skip
    for name in done.removed:
        print(f"  {name}")
    return 0


def _message(output: Path, incident_id: int) -> int:
    from runbook_lib.records.index import Index
    from runbook_lib.service.incident_view import incident_message

    path = output / "index.sqlite"
    try:
        if not path.exists():
            raise LookupError(f"no incident {incident_id}: {path} does not exist")
        print(incident_message(Index(path), incident_id))
    except LookupError as exc:
        print(f"runbook incidents: {exc}", file=sys.stderr)
        return 2
    return 0


def _incidents(args: argparse.Namespace) -> int:
    from runbook_lib.records.index import Index

    output = Path(args.output or Settings().output_dir)
    if args.message is not None:
        return _message(output, args.message)
    path = output / "index.sqlite"
    if not path.exists():
        print(f"no incidents yet: {path} does not exist", file=sys.stderr)
        if args.json:
            print("[]")
        return 0
    rows = Index(path).incidents(args.limit)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    for inc in rows:
        print(_incident_line(inc))
        for r in inc["runs"]:
            state = r["status"] or r["state"]
            cause = f"  top cause: {r['top_cause']}" if r["top_cause"] else ""
            print(f"    {r['kind']:<13} {state:<10} {output / r['record']}{cause}")
    return 0


def _incident_line(inc: dict) -> str:
    from datetime import UTC, datetime

    received = datetime.fromtimestamp(inc["received_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{received}Z  #{inc['id']:<4} {inc['alertname']}  {inc['severity'] or '-'}  "
        f"{inc['status']}  instance={inc['labels'].get('instance', '-')}"
    )


def _demo(args: argparse.Namespace) -> int:
    from runbook_lib.lab import demo

    return demo.run(
        args.state_dir,
        mode=args.mode,
        timeout=args.timeout,
        keep=args.keep,
        output_dir=Path(args.output) if args.output else None,
        prometheus_url=Settings().prometheus_url or None,
    )


def _doctor(args: argparse.Namespace) -> int:
    from runbook_lib.service import doctor

    url = args.prometheus_url or Settings().prometheus_url or "http://127.0.0.1:9090"
    report = doctor.run(url, Settings().output_dir)
    print(doctor.render(report))
    return 0 if report.ok else 1


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"runbook: {what} {item!r} is not KEY=VALUE")
        out[key] = value
    return out


def _param_value(text: str) -> object:
    """--param values: JSON when they parse (true, 15, [..]), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _list(args: argparse.Namespace) -> int:
    from runbook_lib.contract.alerts import ROUTES

    width = max(map(len, ROUTES))
    for alert, runbook in ROUTES.items():
        print(f"{alert:<{width}}  notebooks/{runbook}.ipynb")
    print(f"{'(any other alert)':<{width}}  notebooks/triage.ipynb")
    return 0


def _run(args: argparse.Namespace) -> int:
    from runbook_lib.records import record, runner

    settings = Settings()
    extra = {k: _param_value(v) for k, v in _pairs(args.param, "--param").items()}
    if args.from_record:
        params = runner.replay_params(Path(args.from_record), **extra)
        out = runner.run(params, Path(args.output or settings.output_dir), progress=True)
        print(out)
        return 0 if record.summary(out)["status"] == "completed" else 1
    if not args.alertname:
        raise SystemExit("runbook run: give ALERTNAME, or --from-record RECORD")
    params = runner.alert_params(
        args.alertname,
        _pairs(args.label, "--label"),
        at=args.at,
        annotations=_pairs(args.annotation, "--annotation"),
        prometheus_url=args.prometheus_url or settings.prometheus_url,
        extra=extra,
    )
    out = runner.run(
        params, Path(args.output or settings.output_dir), progress=True, timeout=args.timeout
    )
    summ = json.loads((out / "summary.json").read_text())
    print(out)
    return 0 if summ["status"] == "completed" else 1


def _tops(summ: dict) -> str:
    """The top cause, or the causes that contribute together, with their shares."""
    tops = summ.get("top_causes") or (
        [{"cause": summ["top_cause"], "explained_share": None}] if summ.get("top_cause") else []
    )
    if not tops:
        return "none likely"
    named = [
        t["cause"]
        + (f" ({100 * t['explained_share']:.0f}%)" if t["explained_share"] is not None else "")
        for t in tops
    ]
    return named[0] if len(named) == 1 else " + ".join(named) + ", contributing together"


def _summary(args: argparse.Namespace) -> int:
    from runbook_lib.records import record

    summ = record.summary(Path(args.record))
    if args.json:
        print(json.dumps(summ, indent=1))
        return 0
    print(
        f"{summ['alert']} ({summ.get('severity') or 'no severity'}) -> {summ['runbook']}: "
        f"{summ['status']}"
    )
    print(f"  top cause: {_tops(summ)}")
    for d in summ.get("diagnosis", [])[:3]:
        share = d.get("explained_share")
        explains = f"  explains {100 * share:.0f}%" if share is not None else ""
        print(f"  {d['verdict']:<9} {d['score']:.2f} {d['cause']}{explains}")
        for line in d["evidence"][:3]:
            print(f"      {line}")
    for gap in summ.get("data_gaps", []):
        print(f"  gap: {gap}")
    if summ.get("error"):
        print(f"  error: {summ['error']}")
    return 0
