"""The `runbook` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.contract.config import Settings
from runbook_lib.lab import stack

if TYPE_CHECKING:
    from runbook_lib.service.workers import RunConfig


def _stack_start(args: argparse.Namespace) -> int:
    opts = stack.StackOptions(
        state_dir=args.state_dir,
        profile=args.profile,
        receiver=args.receiver,
        any_free_port=args.any_free_port,
        memory_limit_bytes=args.memory_limit_bytes,
    )
    info = stack.start(opts)
    print(f"Local stack started ({info.profile} profile), state in {info.state_dir}")
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


def _sim_mode(args: argparse.Namespace) -> int:
    info = stack.StackInfo.load(args.state_dir.resolve())
    result = stack.set_mode(info, args.mode)
    print(f"GGEN MCP simulator: {result['previous']} -> {result['mode']}")
    return 0


def _run_config(args: argparse.Namespace, output: Path) -> RunConfig:
    from runbook_lib.service.workers import RunConfig

    settings = Settings()
    return RunConfig(
        output_dir=output,
        workers=getattr(args, "workers", None) or os.cpu_count() or 2,
        cell_timeout=args.cell_timeout,
        run_timeout=args.run_timeout,
        prometheus_url=args.prometheus_url or settings.prometheus_url,
        alertmanager_url=args.alertmanager_url or "",
        params={k: _param_value(v) for k, v in _pairs(args.param, "--param").items()},
        **({"notebook_dir": Path(args.notebooks)} if getattr(args, "notebooks", None) else {}),
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from runbook_lib.records.index import Index
    from runbook_lib.service.server import create_app

    settings = Settings()
    token = Path(args.token_file).read_text().strip() if args.token_file else settings.token()
    output = Path(args.output or settings.output_dir)
    config = _run_config(args, output)
    dispatcher = None
    if args.database or args.broker:
        if not (args.database and args.broker):
            raise SystemExit("runbook serve: distributed mode needs both --database and --broker")
        from runbook_lib.service import distributed

        index = Index(url=args.database)
        app = distributed.make_app(distributed.settings_from(args, config))
        dispatcher = distributed.CeleryDispatcher(app, index)
    else:
        index = Index(output / "index.sqlite")
    embedded = dispatcher is None and not args.no_workers
    app = create_app(
        index,
        token,
        run_config=config if embedded else None,
        dispatcher=dispatcher,
        records_dir=output,
        verify_delay=args.verify_delay,
        viewer_token=os.environ.get("RUNBOOK_VIEWER_TOKEN", ""),
        jupyter_url=os.environ.get("RUNBOOK_JUPYTER_URL", ""),
        retention_days=args.retention_days,
    )
    mode = (f"{config.workers} workers" if embedded else
            f"runs to {args.broker}, index {index.where}" if dispatcher else "no workers")  # fmt: skip
    print(f"runbook serve: http://{args.host}:{args.port}/alerts -> {output} ({mode})",
          file=sys.stderr)  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from runbook_lib.service import distributed

    output = Path(args.output or Settings().output_dir)
    output.mkdir(parents=True, exist_ok=True)
    config = _run_config(args, output)
    settings = distributed.settings_from(args, config)
    print(f"runbook worker: runs from {args.broker}, index {args.database.split('@')[-1]}, "
          f"records -> {output} ({args.concurrency} warm processes)", file=sys.stderr)  # fmt: skip
    distributed.run_worker(settings, args.concurrency, args.name)
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


def build_parser() -> argparse.ArgumentParser:
    settings = Settings()
    ap = argparse.ArgumentParser(prog="runbook", description="Executable GGEN MCP runbooks.")
    sub = ap.add_subparsers(dest="command", required=True)

    def with_state(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--state-dir",
            type=Path,
            default=settings.state_dir,
            help="where the local stack keeps its data (RUNBOOK_STATE_DIR)",
        )
        return p

    st = sub.add_parser("stack", help="the local monitoring stack")
    st_sub = st.add_subparsers(dest="action", required=True)
    p = with_state(st_sub.add_parser("start", help="start Prometheus, Alertmanager, ..."))
    p.add_argument("--profile", choices=["fast", "production"], default="fast")
    p.add_argument("--receiver", action="store_true", help="also start the webhook receiver")
    p.add_argument(
        "--any-free-port",
        action="store_true",
        help="do not try the conventional ports (9090, 9093, ...)",
    )
    p.add_argument("--memory-limit-bytes", type=int, default=settings.memory_limit_bytes)
    p.set_defaults(func=_stack_start)
    with_state(st_sub.add_parser("stop", help="stop what `start` started")).set_defaults(
        func=_stack_stop
    )
    with_state(st_sub.add_parser("status", help="print the URLs")).set_defaults(func=_stack_status)

    sim = sub.add_parser("sim", help="the GGEN MCP simulator of the local stack")
    sim_sub = sim.add_subparsers(dest="action", required=True)
    p = with_state(sim_sub.add_parser("mode", help="switch the fault mode"))
    p.add_argument("mode")
    p.set_defaults(func=_sim_mode)

    p = sub.add_parser("serve", help="webhook receiver and notebook workers")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token-file", help="default: RUNBOOK_WEBHOOK_TOKEN(_FILE)")
    p.add_argument("--output", help="records directory and index (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--no-workers", action="store_true", help="only accept and queue alerts")
    p.add_argument(
        "--database",
        default=os.environ.get("RUNBOOK_DATABASE_URL", ""),
        help="distributed mode: the shared index, e.g. postgresql+psycopg://u:p@host/db "
        "(RUNBOOK_DATABASE_URL); runs go to --broker instead of local workers",
    )
    p.add_argument(
        "--broker",
        default=os.environ.get("RUNBOOK_BROKER_URL", ""),
        help="distributed mode: the Celery broker, e.g. redis://host:6379/0 (RUNBOOK_BROKER_URL)",
    )
    p.add_argument("--dispatch-grace", type=float, default=60.0,
                   help="distributed: re-send a run's task when not started this many seconds "
                   "after it was due")  # fmt: skip
    p.add_argument("--sweep-every", type=float, default=15.0,
                   help="distributed: seconds between sweeps for runs to send again")  # fmt: skip
    p.add_argument("--lease-grace", type=float, default=30.0,
                   help="distributed: the workers' --lease-grace")  # fmt: skip
    p.add_argument("--notebooks", help="the runbook notebooks (default: the package's)")
    p.add_argument("--prometheus-url", help="for the notebooks (RUNBOOK_PROMETHEUS_URL)")
    p.add_argument("--alertmanager-url")
    p.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell")
    p.add_argument("--run-timeout", type=float, default=900, help="seconds per run, in all")
    p.add_argument(
        "--verify-delay",
        type=float,
        default=300,
        help="seconds after resolution to run the follow-up verification",
    )
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.add_argument(
        "--retention-days",
        type=float,
        default=float(os.environ.get("RUNBOOK_RETENTION_DAYS", "0")),
        help="remove records older than this, hourly (0: keep all; RUNBOOK_RETENTION_DAYS)",
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "worker", help="distributed mode: run notebooks for the runs on --broker (Celery)"
    )
    p.add_argument("--database", default=os.environ.get("RUNBOOK_DATABASE_URL", ""),
                   required="RUNBOOK_DATABASE_URL" not in os.environ,
                   help="the shared index (RUNBOOK_DATABASE_URL)")  # fmt: skip
    p.add_argument("--broker", default=os.environ.get("RUNBOOK_BROKER_URL", ""),
                   required="RUNBOOK_BROKER_URL" not in os.environ,
                   help="the Celery broker (RUNBOOK_BROKER_URL)")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                   help="pool processes, each with a warm kernel")  # fmt: skip
    p.add_argument("--name", default="", help="this worker's name in Celery")
    p.add_argument("--output", help="the records directory all machines share (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--prometheus-url", help="for the notebooks (RUNBOOK_PROMETHEUS_URL)")
    p.add_argument("--alertmanager-url")
    p.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell")
    p.add_argument("--run-timeout", type=float, default=900, help="seconds per run, in all")
    p.add_argument("--verify-delay", type=float, default=300,
                   help="the receivers' --verify-delay (the broker's visibility timeout)")  # fmt: skip
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.add_argument("--notebooks", help="the runbook notebooks (default: the package's)")
    p.add_argument("--lease-grace", type=float, default=30.0,
                   help="seconds past --run-timeout before another worker may take a run")  # fmt: skip
    p.set_defaults(func=_worker)

    p = sub.add_parser("incidents", help="list incidents, newest first")
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--message",
        type=int,
        metavar="ID",
        help="print the runbook's communication message for incident ID, as it stands now",
    )
    p.set_defaults(func=_incidents)

    p = sub.add_parser("postmortem", help="a post-mortem draft from an incident's records")
    p.add_argument("records", nargs="+", metavar="RECORD")
    p.add_argument("--output", help="default: <records dir>/postmortem-<first record>")
    p.set_defaults(func=_postmortem)

    p = sub.add_parser("prune", help="remove records older than the retention")
    p.add_argument("--days", type=float, required=True)
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_prune)

    sub.add_parser("list", help="alerts -> notebooks").set_defaults(func=_list)

    p = sub.add_parser("run", help="run one runbook now; prints the record directory")
    p.add_argument("alertname", nargs="?")
    p.add_argument(
        "--from-record",
        metavar="RECORD",
        help="re-execute RECORD's runbook against its saved data instead of Prometheus",
    )
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--annotation", action="append", default=[], metavar="K=V")
    p.add_argument("--prometheus-url")
    p.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="any notebook parameter; JSON values are parsed",
    )
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--timeout", type=float, default=600, help="per-cell timeout, seconds")
    p.set_defaults(func=_run)

    p = sub.add_parser("summary", help="print a record's summary")
    p.add_argument("record")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_summary)

    p = sub.add_parser("doctor", help="preflight: what is reachable, which metrics exist")
    p.add_argument("--prometheus-url", help="default: RUNBOOK_PROMETHEUS_URL or :9090")
    p.set_defaults(func=_doctor)

    p = with_state(sub.add_parser("demo", help="the whole chain on a local stack"))
    p.add_argument("--mode", default="errors:invalid_input", help="simulator fault to inject")
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--timeout", type=float, default=240.0)
    p.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    p.set_defaults(func=_demo)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except stack.StackError as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
