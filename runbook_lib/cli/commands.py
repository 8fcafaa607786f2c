"""The `runbook` subcommands that look at incidents and records, and run the lab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runbook_lib.cli import show
from runbook_lib.cli.errors import UsageError
from runbook_lib.contract.config import Settings
from runbook_lib.contract.summary import Summary
from runbook_lib.lab import stack


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

    output = Path(args.output) if args.output else None
    incident = args.records[0].removeprefix("#") if len(args.records) == 1 else ""
    try:
        if incident.isdigit():
            index, records_dir = _index_of(args, "runbook postmortem")
            out = postmortem.for_incident(
                index, int(incident), records_dir, output=output,
                prometheus_url=args.prometheus_url, progress=True,
            )  # fmt: skip
        else:
            out = postmortem.for_records(args.records, output=output,
                                         prometheus_url=args.prometheus_url, progress=True)  # fmt: skip
    except LookupError as exc:
        raise UsageError(f"runbook postmortem: {exc.args[0]}: `runbook incidents` lists "
                         "them") from None  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(
            f"runbook postmortem: {exc}: give an incident id or the incident's record "
            "directories (`runbook incidents` lists them)"
        ) from None
    print(out / "postmortem.html")
    print(out / "postmortem.md")
    return 0


def _index_of(args: argparse.Namespace, command: str):
    """The index (`--database`, else index.sqlite in the records directory) and the records
    directory; UsageError when there is neither."""
    from runbook_lib.records.index import Index

    records_dir = Path(args.records_dir or Settings().output_dir)
    if args.database:
        return Index(url=args.database), records_dir
    if not (records_dir / "index.sqlite").exists():
        raise UsageError(f"{command}: no index at {records_dir / 'index.sqlite'}: give "
                         "--records-dir DIR (RUNBOOK_OUTPUT_DIR) or --database URL")  # fmt: skip
    return Index(records_dir / "index.sqlite"), records_dir


def _prune(args: argparse.Namespace) -> int:
    from runbook_lib.records import retention

    output = Path(args.output or Settings().output_dir)
    if args.days <= 0:
        raise UsageError(f"runbook prune: --days {args.days:g}: give a positive number of days")
    if not output.is_dir():
        raise UsageError(
            f"runbook prune: no records directory {output}: give --output DIR "
            "(or set RUNBOOK_OUTPUT_DIR, output_dir in runbook.toml)"
        )
    done = retention.prune(output, args.days, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(done.removed)} records ({done.freed_bytes / 2**20:.1f} MiB) older than "
          f"{args.days:g} days; kept {len(done.kept_linked)} linked from a post-mortem")  # fmt: skip
    for name in done.removed:
        print(f"  {name}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from runbook_lib.lab import demo

    if args.escalate:
        from runbook_lib.lab import demo_escalation

        out = Path(args.output) if args.output else None
        return demo_escalation.run(args.state_dir, keep=args.keep, output_dir=out)
    return demo.run(
        args.state_dir,
        mode=args.mode,
        timeout=args.timeout,
        keep=args.keep,
        output_dir=Path(args.output) if args.output else None,
        prometheus_url=Settings().prometheus_url or None,
    )


def _doctor(args: argparse.Namespace) -> int:
    """Every check with its fix; exit 0 only when all the configured ones pass."""
    from runbook_lib.service import doctor, wiring_checks
    from runbook_lib.service.wiring_checks import Wiring

    settings = Settings()
    url = args.prometheus_url or settings.prometheus_url or "http://127.0.0.1:9090"
    wired = Wiring.from_settings(settings, args.alertmanager_url or "", args.receiver_url or "")
    report = doctor.run(url, settings.output_dir, wiring=wired, log_sources=settings.log_sources())
    report.checks.append(wiring_checks.listen_check(settings))
    print(doctor.render(report))
    return 0 if report.ok else 1


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"runbook: {what} {item!r} is not KEY=VALUE: write {what} KEY=VALUE")
        out[key] = value
    return out


def typed_params(pairs: dict[str, str], notebook: Path, flag: str) -> dict:
    """--param values read by the types `notebook` declares (a str as written, others as
    JSON), checked by its model; UsageError naming the parameter and the fix."""
    from runbook_lib.notebook import parameters

    try:
        return parameters.parse_pairs(pairs, notebook)
    except parameters.ParameterError as exc:
        raise UsageError(f"runbook: {flag}: {exc}") from None


def _lint(args: argparse.Namespace) -> int:
    """Every notebook's problems, one line each naming the notebook, the cell and the fix;
    exit 0 only when there are none."""
    from runbook_lib.contract.config import NOTEBOOKS
    from runbook_lib.notebook import lint

    paths = [Path(p) for p in args.notebooks] or [NOTEBOOKS]
    for path in paths:
        if not path.exists():
            raise UsageError(f"runbook lint: {path} does not exist: give notebooks or a "
                             "directory of them (default: the package's runbooks)")  # fmt: skip
    count = sum(len(list(p.glob("*.ipynb"))) if p.is_dir() else 1 for p in paths)
    problems = lint.lint(paths)
    for problem in problems:
        print(problem)
    print(f"{count} notebooks, {len(problems)} problems"
          + ("" if problems else ": the notebook contract holds"))  # fmt: skip
    return 1 if problems else 0


def _list(args: argparse.Namespace) -> int:
    from runbook_lib.contract.alerts import ROUTES

    width = max(map(len, ROUTES))
    for alert, runbook in ROUTES.items():
        print(f"{alert:<{width}}  notebooks/{runbook}.ipynb")
    print(f"{'(any other alert)':<{width}}  notebooks/triage.ipynb")
    return 0


def _run(args: argparse.Namespace) -> int:
    """One runbook now: the record's path, then its answer; exit 0 only when it completed."""
    from runbook_lib.contract.alerts import route
    from runbook_lib.records import record, runner

    settings = Settings()
    pairs = _pairs(args.param, "--param")
    if args.from_record:
        replayed = _replay_params(Path(args.from_record), {})
        runbook = route(replayed["alert_name"])
    elif not args.alertname:
        raise UsageError("runbook run: no alert: give ALERTNAME (`runbook list` names them), "
                         "or --from-record RECORD")  # fmt: skip
    else:
        runbook = route(args.alertname)
    extra = typed_params(pairs, settings.runbooks_dir / f"{runbook}.ipynb", "--param")
    if args.from_record:
        params = {**replayed, **extra}
    else:
        params = _alert_params(args, settings, extra)
    out = runner.run(params, Path(args.output or settings.output_dir), progress=True,
                     timeout=args.timeout, runbook=runbook,
                     notebook_dir=settings.runbooks_dir)  # fmt: skip
    summ = record.summary(out)
    print(out)
    print(show.summary_text(summ, out, brief=True))
    _file_manual(out, params, summ, settings.database_url)
    return 0 if summ.status == "completed" else 1


def _file_manual(out: Path, params: dict, summ: Summary, database_url: str = "") -> None:
    """A run by hand goes into the index the receiver writes (the shared database when
    there is one, else the SQLite file beside the records) as kind `manual`, so that
    `runbook incidents` and the pages show it; the record is kept even if the index fails."""
    from runbook_lib.records.index import Index

    try:
        index = Index(url=database_url) if database_url else Index(out.parent / "index.sqlite")
        iid = index.add_manual(params["alert_name"], params.get("labels") or {}, out.name, summ)
    except Exception as exc:  # noqa: BLE001 - whatever the database says, the record stays
        print(f"runbook run: the record is kept, but the index could not list it: {exc}",
              file=sys.stderr)  # fmt: skip
        return
    print(f"runbook run: filed as incident #{iid} (manual) in {index.where}", file=sys.stderr)


def _alert_params(args: argparse.Namespace, settings: Settings, extra: dict) -> dict:
    """A manual run's parameters, checked before anything is written."""
    from runbook_lib.contract.clock import utc
    from runbook_lib.records import runner

    if not args.alertname:
        raise UsageError(
            "runbook run: no alert: give ALERTNAME (`runbook list` names them), "
            "or --from-record RECORD"
        )
    labels = _pairs(args.label, "--label")
    annotations = _pairs(args.annotation, "--annotation")
    try:
        utc(args.at or None)
    except ValueError:
        raise UsageError(
            f"runbook run: --at {args.at!r} is not an ISO 8601 time: "
            "write e.g. --at 2026-01-15T10:30:00Z"
        ) from None
    extra = {**settings.notebook_params(), **extra}  # its logs, container and memory limit
    if settings.alertmanager_url:  # the record's links lead to the configured Alertmanager
        extra = {"alertmanager_url": settings.alertmanager_url, **extra}
    return runner.alert_params(
        args.alertname,
        labels,
        at=args.at,
        annotations=annotations,
        prometheus_url=args.prometheus_url or settings.prometheus_url,
        extra=extra,
    )


def _replay_params(rec: Path, extra: dict) -> dict:
    """The parameters to re-run a record against its saved data, or what is wrong with it."""
    from runbook_lib.records import runner

    if not rec.is_dir():
        raise UsageError(f"runbook run: --from-record {rec}: no such record directory: "
                         f"{RECORD_FIX}")  # fmt: skip
    try:
        return runner.replay_params(rec, **extra)
    except (OSError, ValueError) as exc:
        raise UsageError(f"runbook run: --from-record: {exc}: {RECORD_FIX}") from None


RECORD_FIX = "give a record directory (`runbook incidents` lists them)"


def record_summary(path: Path, command: str) -> Summary:
    """A record's summary, or a UsageError saying why `path` is not a record."""
    from runbook_lib.records import record

    if not path.exists():
        raise UsageError(f"runbook {command}: {path} does not exist: {RECORD_FIX}")
    if not ((path / "summary.json").exists() or (path / "record.ipynb").exists()):
        raise UsageError(f"runbook {command}: {path} is not a record (no summary.json nor "
                         f"record.ipynb): {RECORD_FIX}")  # fmt: skip
    try:
        return record.summary(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"runbook {command}: cannot read the summary of {path}: {exc}") from None


def _summary(args: argparse.Namespace) -> int:
    """Everything a record's summary.json holds; --json prints the file as it is."""
    path = Path(args.record)
    summ = record_summary(path, "summary")
    if args.json:
        print(json.dumps(summ.as_json(), indent=1))
        return 0
    print(show.summary_text(summ, path))
    return 0
