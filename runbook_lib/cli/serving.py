"""`runbook serve`, `runbook worker` and `runbook notify`: the alert service's commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.cli.errors import UsageError
from runbook_lib.contract.config import (
    ConfigError,
    Settings,
    config_path,
    operators_path,
    read_token,
)

if TYPE_CHECKING:
    from runbook_lib.service.workers import RunConfig
from runbook_lib.cli.commands import _pairs, _param_value

log = logging.getLogger("runbook.serve")


def _log_format(command: str, fmt: str) -> str:
    """--log-format (RUNBOOK_LOG_FORMAT, log_format), checked before anything starts."""
    from runbook_lib.service import logs

    if fmt not in logs.FORMATS:
        raise UsageError(f"{command}: --log-format {fmt!r} (RUNBOOK_LOG_FORMAT, log_format in "
                         f"runbook.toml): give one of {', '.join(logs.FORMATS)}")  # fmt: skip
    return fmt


def _start_logging(fmt: str) -> None:
    """Once the command is sure to start: every line of this process, and of the workers it
    starts, in `fmt` (service/logs.py)."""
    from runbook_lib.service import logs

    logs.configure(fmt)
    os.environ["RUNBOOK_LOG_FORMAT"] = fmt  # the pool's worker processes log alike


def _run_config(args: argparse.Namespace, output: Path) -> RunConfig:
    from runbook_lib.service.holds import HoldPolicy
    from runbook_lib.service.workers import RunConfig

    settings = Settings()
    prometheus_url = args.prometheus_url or settings.prometheus_url
    return RunConfig(
        output_dir=output,
        workers=getattr(args, "workers", None) or os.cpu_count() or 2,
        cell_timeout=args.cell_timeout,
        run_timeout=args.run_timeout,
        prometheus_url=prometheus_url,
        alertmanager_url=args.alertmanager_url or "",
        params={k: _param_value(v) for k, v in _pairs(args.param, "--param").items()},
        **({"notebook_dir": Path(args.notebooks)} if getattr(args, "notebooks", None) else {}),
        hold=HoldPolicy(prometheus_url, fallback_s=args.correlation_hold, cap_s=args.hold_cap,
                        margin_s=args.hold_margin),
    )  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from runbook_lib.records.index import Index
    from runbook_lib.service.server import create_app

    settings = Settings()
    token = _webhook_token(args.token_file, settings)
    output = Path(args.output or settings.output_dir)
    config = _run_config(args, output)
    log_format = _log_format("runbook serve", args.log_format)
    if bool(args.database) != bool(args.broker):
        raise UsageError("runbook serve: distributed mode needs both --database and --broker "
                         "(RUNBOOK_DATABASE_URL, RUNBOOK_BROKER_URL); give both or neither")  # fmt: skip
    if args.broker:
        _check_broker("runbook serve", args.broker)
    notify, notify_says = _notify_config(args, output)  # all checked before anything is made
    dispatcher = None
    if args.database:
        from runbook_lib.service import distributed

        index = Index(url=args.database, **_grouping(args))
        app = distributed.make_app(distributed.settings_from(args, config))
        dispatcher = distributed.CeleryDispatcher(app, index)
    else:
        index = Index(output / "index.sqlite", **_grouping(args))
    embedded = dispatcher is None and not args.no_workers
    if args.external_url:  # the pool's workers write records whose links lead here
        os.environ["RUNBOOK_EXTERNAL_URL"] = args.external_url
    output.mkdir(parents=True, exist_ok=True)
    viewer, viewer_where = _secret(
        os.environ.get("RUNBOOK_VIEWER_TOKEN", ""), output / ".viewer-token"
    )
    secret, _ = _secret(os.environ.get("RUNBOOK_SESSION_SECRET", ""), output / ".session-secret")
    operators = operators_path(args.operators_file, output)
    app = create_app(
        index,
        token,
        run_config=config if embedded else None,
        dispatcher=dispatcher,
        records_dir=output,
        verify_delay=args.verify_delay,
        viewer_token=viewer,
        jupyter_url=os.environ.get("RUNBOOK_JUPYTER_URL", ""),
        retention_days=args.retention_days,
        session_secret=secret,
        pages_accept_webhook_token=os.environ.get("RUNBOOK_PAGES_ACCEPT_WEBHOOK_TOKEN") == "1",
        notify=notify,
        alertmanager_url=args.alertmanager_url or "",
        reconcile_every=args.reconcile_every,
        stale_after=args.stale_after,
        operators_file=operators,
        prometheus_url=config.prometheus_url,
    )
    _start_logging(log_format)
    mode = (f"{config.workers} workers" if embedded else
            f"runs to {args.broker}, index {index.where}" if dispatcher else "no workers")  # fmt: skip
    log.info("webhook http://%s:%d/alerts -> %s (%s)", args.host, args.port, output, mode)
    log.info("incident pages http://%s:%d/incidents (viewer token %s; operators in %s)",
             args.host, args.port, viewer_where, operators)  # fmt: skip
    log.info("%s", notify_says)
    # uvicorn's own lines (warnings, errors) go through the same handler; no access log
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", log_config=None,
                access_log=False)  # fmt: skip
    return 0


NO_TOKEN = (
    "runbook serve: no webhook token: give --token-file FILE, or set "
    "RUNBOOK_WEBHOOK_TOKEN_FILE (or webhook_token_file in {config}); `runbook init` writes one"
)


def _webhook_token(token_file: str | None, settings: Settings) -> str:
    """The token Alertmanager must send, found before anything is created: a receiver that
    cannot check it would accept nobody, so it refuses to start and says where to put one."""
    if not token_file and settings.webhook_token:
        return settings.webhook_token
    if token_file:
        path, where = Path(token_file), "--token-file"
    elif settings.webhook_token_file:
        path = Path(settings.webhook_token_file)
        from_env = os.environ.get("RUNBOOK_WEBHOOK_TOKEN_FILE")
        where = (
            "RUNBOOK_WEBHOOK_TOKEN_FILE" if from_env else f"webhook_token_file in {config_path()}"
        )
    else:
        raise UsageError(NO_TOKEN.format(config=config_path()))
    try:
        return read_token(path)
    except ConfigError as exc:
        raise UsageError(f"runbook serve: {exc} (named by {where}): put the token there, or "
                         "`runbook init` writes one") from None  # fmt: skip


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


def _check_broker(command: str, url: str) -> None:
    """A broker URL Celery can use; its own error for another is a KeyError traceback."""
    scheme = url.partition("://")[0]
    if not url.partition("://")[2] or scheme not in BROKER_SCHEMES:
        raise UsageError(f"{command}: --broker {url!r} is not a broker URL: write e.g. "
                         "redis://HOST:6379/0 (RUNBOOK_BROKER_URL, broker_url in runbook.toml)")  # fmt: skip


def _grouping(args: argparse.Namespace) -> dict[str, float]:
    """How alerts join incidents (see records/grouping.py)."""
    return {"correlation_window": args.correlation_window}


def _secret(given: str, path: Path) -> tuple[str, str]:
    """A credential: the variable's value, else the file's, else a new one written to the
    file (readable by its owner only) so that it survives restarts."""
    import secrets

    if given:
        return given, "from the environment"
    if path.exists():
        return path.read_text().strip(), f"in {path}"
    value = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value, f"in {path} (new)"


def _notify_config(args: argparse.Namespace, output: Path):
    """notify.yml as given (--notify-config, RUNBOOK_NOTIFY_CONFIG), else beside the records;
    links lead to --external-url (RUNBOOK_EXTERNAL_URL) unless the file names its base_url."""
    from runbook_lib.service.notify import NotifyConfig

    path = Path(args.notify_config) if args.notify_config else output / "notify.yml"
    if not path.exists():
        if args.notify_config:
            raise UsageError(f"runbook serve: no notification config at {path}: fix "
                             "--notify-config (RUNBOOK_NOTIFY_CONFIG, notify_config in "
                             "runbook.toml) or leave it unset")  # fmt: skip
        return None, f"notifications off (no {path}; see README 'Getting the finding to your team')"
    try:
        cfg = NotifyConfig.load(path)
    except ValueError as exc:
        raise UsageError(f"runbook serve: {exc}") from None  # names the file and the field
    guessed = ""
    if not cfg.base_url:
        host = _reachable(args.host)
        cfg.base_url = args.external_url or f"http://{host}:{args.port}"
        if host != args.host and not args.external_url:
            guessed = (
                " (a guess: set --external-url, RUNBOOK_EXTERNAL_URL, to the address people reach)"
            )
    names = ", ".join(t.name for t in cfg.targets) or "none"
    return cfg, f"notifications to {names} (from {path}), links to {cfg.base_url}{guessed}"


def _reachable(host: str) -> str:
    """A host name for links: a wildcard bind address is no address to click."""
    import socket

    return socket.getfqdn() if host in ("0.0.0.0", "::", "") else host


def _notify_test(args: argparse.Namespace) -> int:
    """A sample message to every target of notify.yml; says which answered."""
    from runbook_lib.service import notify

    path = Path(args.config or os.environ.get("RUNBOOK_NOTIFY_CONFIG", "")
                or Path(args.output or Settings().output_dir) / "notify.yml")  # fmt: skip
    try:
        cfg = notify.NotifyConfig.load(path)
    except ValueError as exc:
        print(f"runbook notify: {exc}", file=sys.stderr)
        return 2
    if not cfg.targets:
        print(f"runbook notify: {path} names no targets", file=sys.stderr)
        return 2
    failed = 0
    for t in cfg.targets:
        tried = notify.send(t, notify.sample())
        failed += not tried.ok
        print(f"  {'answered' if tried.ok else 'FAILED  '}  {t.name}"
              + ("" if tried.ok else f": {tried.error}"))  # fmt: skip
    print(f"{len(cfg.targets) - failed} of {len(cfg.targets)} targets answered")
    return 1 if failed else 0


def _notify_status(args: argparse.Namespace) -> int:
    """What the outbox holds: per delivery, its event, target, state and last error."""
    from runbook_lib.records.index import Index
    from runbook_lib.records.outbox import Outbox

    output = Path(args.output or Settings().output_dir)
    if not args.database and not (output / "index.sqlite").exists():
        print(f"no notifications yet: {output / 'index.sqlite'} does not exist", file=sys.stderr)
        return 0
    index = Index(url=args.database) if args.database else Index(output / "index.sqlite")
    rows = Outbox(index).deliveries()
    if not rows:
        print("no notifications yet")
    for r in rows:
        err = f"  ({r['last_error']})" if r["last_error"] and r["state"] != "sent" else ""
        print(f"  {r['state']:<8} {r['kind']:<15} incident {r['incident_id']:<5} -> {r['target']}"
              f"  attempts {r['attempts']}{err}")  # fmt: skip
    return 0


def _worker(args: argparse.Namespace) -> int:
    from runbook_lib.service import distributed

    _check_broker("runbook worker", args.broker)
    log_format = _log_format("runbook worker", args.log_format)
    output = Path(args.output or Settings().output_dir)
    output.mkdir(parents=True, exist_ok=True)
    config = _run_config(args, output)
    settings = distributed.settings_from(args, config)
    _start_logging(log_format)
    logging.getLogger("runbook.worker").info(
        "runs from %s, index %s, records -> %s (%d warm processes)", args.broker,
        args.database.split("@")[-1], output, args.concurrency,
    )  # fmt: skip
    distributed.run_worker(settings, args.concurrency, args.name)
    return 0
