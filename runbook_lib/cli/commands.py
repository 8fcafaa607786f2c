"""`runbook run`, `list`, `lint`, `summary`, `postmortem`, `prune` and `doctor`: running a
runbook by hand, and the commands that look at records."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.cli import flags
from runbook_lib.cli.errors import UsageError
from runbook_lib.contract.config import Settings

if TYPE_CHECKING:  # its pydantic models are built at import: only for the commands that read one
    from runbook_lib.contract.summary import Summary


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser("run", help="run one runbook now; prints the record directory")
    p.add_argument("alertname", nargs="?")
    p.add_argument("--from-record", metavar="RECORD",
                   help="re-execute RECORD's runbook against its saved data instead of Prometheus")  # fmt: skip
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--annotation", action="append", default=[], metavar="K=V")
    p.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="any notebook parameter; JSON values are parsed")  # fmt: skip
    flags.add(p, "run", settings)
    p.set_defaults(func=_run)

    sub.add_parser("list", help="alerts -> notebooks").set_defaults(func=_list)

    p = sub.add_parser("lint", help="check runbook notebooks against the notebook contract")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="notebooks or directories (default: the runbooks of the package, "
                   "the checkout's notebooks/ when installed from it)")  # fmt: skip
    p.set_defaults(func=_lint)

    p = sub.add_parser("summary", help="print a record's summary")
    p.add_argument("record")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_summary)

    p = sub.add_parser("postmortem", help="a post-mortem draft of an incident")
    p.add_argument("records", nargs="+", metavar="INCIDENT|RECORD",
                   help="an incident id of the index (12 or #12), or its record directories")  # fmt: skip
    p.add_argument("--output", help="default: <records dir>/postmortem-<first record>")
    p.add_argument("--records-dir", help="the records and the index, for an incident id "
                   "(default: RUNBOOK_OUTPUT_DIR, output_dir in runbook.toml)")  # fmt: skip
    flags.add(p, "postmortem", settings)
    p.set_defaults(func=_postmortem)

    p = sub.add_parser("prune", help="remove records older than the retention")
    p.add_argument("--days", type=float, required=True)
    p.add_argument("--dry-run", action="store_true")
    flags.add(p, "prune", settings)
    p.set_defaults(func=_prune)

    p = sub.add_parser("doctor", help="preflight: what is reachable, which metrics exist")
    flags.add(p, "doctor", settings)
    p.add_argument("--receiver-url", help="the receiver as Alertmanager reaches it (default: "
                   "RUNBOOK_EXTERNAL_URL, else http://HOST:PORT of runbook.toml)")  # fmt: skip
    p.set_defaults(func=_doctor)


def _postmortem(args: argparse.Namespace) -> int:
    from runbook_lib.incidents import postmortem

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
    from runbook_lib.incidents.index import Index

    records_dir = Path(args.records_dir or Settings().output_dir)
    if args.database_url:
        return Index(url=args.database_url), records_dir
    if not (records_dir / "index.sqlite").exists():
        raise UsageError(f"{command}: no index at {records_dir / 'index.sqlite'}: give "
                         "--records-dir DIR (RUNBOOK_OUTPUT_DIR) or --database URL")  # fmt: skip
    return Index(records_dir / "index.sqlite"), records_dir


def _prune(args: argparse.Namespace) -> int:
    from runbook_lib.storage import retention

    output = Path(args.output_dir)
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
    from runbook_lib.contract.settings import NOTEBOOKS
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
    from runbook_lib.cli import show
    from runbook_lib.contract.alerts import route
    from runbook_lib.execution import runner
    from runbook_lib.records import record

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
    out = runner.run(params, Path(args.output_dir), progress=True,
                     timeout=args.cell_timeout, runbook=runbook,
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
    from runbook_lib.incidents.index import Index

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
    from runbook_lib.execution import runner

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
    from runbook_lib.execution import runner

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
    from runbook_lib.cli import show

    path = Path(args.record)
    summ = record_summary(path, "summary")
    if args.json:
        print(json.dumps(summ.as_json(), indent=1))
        return 0
    print(show.summary_text(summ, path))
    return 0
