"""`runbook serve` and `runbook worker`: the alert service's commands."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.cli import flags
from runbook_lib.cli.errors import UsageError
from runbook_lib.contract.config import (
    ConfigError,
    Settings,
    config_path,
    operators_path,
    read_token,
)
from runbook_lib.contract.config import file_values as config_file_values

if TYPE_CHECKING:
    from runbook_lib.service.workers import RunConfig
from runbook_lib.cli.commands import _pairs, typed_params

log = logging.getLogger("runbook.serve")


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser("serve", help="webhook receiver and notebook workers")
    flags.add(p, "serve", settings)
    p.add_argument("--token-file", help="default: RUNBOOK_WEBHOOK_TOKEN(_FILE)")
    p.add_argument("--no-workers", action="store_true", help="only accept and queue alerts")
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "worker", help="distributed mode: run notebooks for the runs on --broker (Celery)"
    )
    flags.add(p, "worker", settings)
    p.add_argument("--name", default="", help="this worker's name in Celery")
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.set_defaults(func=_worker)


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


def _run_config(args: argparse.Namespace, given: Settings) -> RunConfig:
    """How runs are made, each --param checked against every runbook of --runbooks-dir (the
    processes that run notebooks pin those with `_pin` once nothing else can fail)."""
    from runbook_lib.service.holds import HoldPolicy
    from runbook_lib.service.workers import RunConfig

    params = _site_params(args.param, given.runbooks_dir)
    return RunConfig(
        output_dir=given.output_dir,
        workers=given.workers,
        cell_timeout=given.cell_timeout,
        run_timeout=given.run_timeout,
        prometheus_url=given.prometheus_url,
        alertmanager_url=given.alertmanager_url,
        params={**given.notebook_params(), **params},  # the site's logs, then --param
        notebook_dir=given.runbooks_dir,
        hold=HoldPolicy(given.prometheus_url, fallback_s=given.correlation_hold,
                        cap_s=given.hold_cap, margin_s=given.hold_margin),
    )  # fmt: skip


def _pin(config: RunConfig) -> RunConfig:
    """`config` with the runbooks of its runbooks_dir pinned under its output directory
    (execution/pinning.py)."""
    from dataclasses import replace

    from runbook_lib.execution.pinning import Runbooks

    try:
        return replace(config, runbooks=Runbooks(config.notebook_dir, config.output_dir))
    except (OSError, ValueError) as exc:
        raise UsageError(f"runbook: --runbooks-dir: {exc}") from None


def _site_params(items: list[str], runbooks_dir: Path) -> dict:
    """serve's and worker's --param, typed and checked against every runbook of
    `runbooks_dir`, since each of their runs gets them."""
    from runbook_lib.contract.alerts import RUNBOOKS

    pairs = _pairs(items, "--param")
    if not pairs:
        return {}
    notebooks = [n for rb in RUNBOOKS if (n := Path(runbooks_dir) / f"{rb}.ipynb").exists()]
    checked = [typed_params(pairs, n, "--param") for n in notebooks or [Path(runbooks_dir)]]
    return checked[-1]


def _serve(args: argparse.Namespace) -> int:
    given = flags.given(args, "serve")
    token = _webhook_token(args.token_file, given)
    output = given.output_dir
    log_format = _log_format("runbook serve", given.log_format)
    config = _run_config(args, given)
    database, broker = given.database_url, given.broker_url
    if bool(database) != bool(broker):
        raise UsageError("runbook serve: distributed mode needs both --database and --broker "
                         "(RUNBOOK_DATABASE_URL, RUNBOOK_BROKER_URL); give both or neither")  # fmt: skip
    if broker:
        _check_broker("runbook serve", broker)
    notify, notify_says = _notify_config(given)
    sock = _bind("runbook serve", given.host, given.port)  # all checked before anything is made
    _make_output("runbook serve", output, sock)
    # The server's libraries (~2 s of CPU) once the operator's settings are known good
    import uvicorn

    from runbook_lib.incidents.index import Index
    from runbook_lib.service.server import create_app

    dispatcher = None
    if database:
        from runbook_lib.service import distributed

        index = Index(url=database, correlation_window=given.correlation_window)
        app = distributed.make_app(distributed.settings_from(given, config))
        dispatcher = distributed.CeleryDispatcher(app, index)
    else:
        index = Index(output / "index.sqlite", correlation_window=given.correlation_window)
    embedded = dispatcher is None and not args.no_workers
    if given.external_url:  # the pool's workers write records whose links lead here
        os.environ["RUNBOOK_EXTERNAL_URL"] = given.external_url
    if embedded:
        config = _pin(config)
    viewer, viewer_where = _secret(given.viewer_token, output / ".viewer-token")
    secret, _ = _secret(given.session_secret, output / ".session-secret")
    operators = operators_path(given.operators_file, output)
    given = replace(given, webhook_token=token, viewer_token=viewer, session_secret=secret,
                    operators_file=str(operators))  # fmt: skip
    app = create_app(given, index, run_config=config if embedded else None,
                     dispatcher=dispatcher, notify=notify)  # fmt: skip
    _start_logging(log_format)
    if config.runbooks:
        log.info("runbooks %s from %s (SIGHUP pins them again)", config.runbooks.current.hash,
                 config.runbooks.source)  # fmt: skip
    mode = (f"{config.workers} workers" if embedded else
            f"runs to {broker}, index {index.where}" if dispatcher else "no workers")  # fmt: skip
    where = f"http://{given.host}:{given.port}"
    log.info("webhook %s/alerts -> %s (%s)", where, output, mode)
    log.info("incident pages %s/incidents (viewer token %s; operators in %s)",
             where, viewer_where, operators)  # fmt: skip
    log.info("%s", notify_says)
    # uvicorn's own lines (warnings, errors) go through the same handler; no access log
    server = uvicorn.Server(uvicorn.Config(app, host=given.host, port=given.port,
                                           log_config=None, log_level="warning",
                                           access_log=False))  # fmt: skip
    signal.signal(
        signal.SIGHUP, _on_hangup(app.state.sender, config_file_values(), config.runbooks)
    )
    server.run(sockets=[sock])  # the socket bound before anything was made
    return 0


def _on_hangup(sender, settings_then: dict[str, object], runbooks=None):
    """SIGHUP: the runbooks are pinned again (in a thread: not inside the handler), notify.yml
    is read again (it is also whenever it changes), and runbook.toml: the log says which of
    its settings changed; those take effect at the next start."""
    import threading

    def hangup(signum, frame) -> None:
        if runbooks is not None:
            threading.Thread(target=runbooks.reload, daemon=True).start()
        if sender:
            sender.reload()
        try:
            now = config_file_values()
        except ConfigError as exc:
            log.error("SIGHUP: %s; the running settings stay", exc)
            return
        changed = sorted(k for k in {*settings_then, *now} if settings_then.get(k) != now.get(k))
        if changed:
            said = ", ".join(f"{k} {settings_then.get(k)!r} -> {now.get(k)!r}" for k in changed)
            log.warning("SIGHUP: %s changed: %s; restart `runbook serve` for them to apply "
                        "(notify.yml applies at once)", config_path(), said)  # fmt: skip
        else:
            log.info("SIGHUP: %s unchanged; notify.yml read again", config_path())

    return hangup


def _bind(command: str, host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is created: a port in use is the
    operator's to fix, and says how, instead of a traceback after the start banner."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted
    # sockets whose proto says TCP; without it every answer on a kept-alive connection (its
    # head and body written apart) waited for the client's delayed ACK: 43-48 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"{command}: {host}:{port} is in use{_holder(port)}: stop it, or "
                             "give another port with --port (port in runbook.toml; keep "
                             "external_url's port the same)") from None  # fmt: skip
        raise UsageError(f"{command}: cannot listen on {host}:{port}: {exc.strerror}: give "
                         "another --host or --port (host, port in runbook.toml)") from None  # fmt: skip
    sock.listen(2048)
    return sock


def _holder(port: int) -> str:
    """' (by pid N, NAME)' for the process listening on `port`, when this user may see it."""
    try:
        import psutil

        for conn in psutil.net_connections("inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                return f" (by pid {conn.pid}, {psutil.Process(conn.pid).name()})"
    except (OSError, psutil.Error):
        pass
    return ""


def _make_output(command: str, output: Path, sock: socket.socket | None = None) -> None:
    """The records directory, made (or found writable) before anything is written into it;
    a path under a file, or one this user may not write, is one line and leaves nothing."""
    from runbook_lib.contract import paths

    problem = paths.create_dir(output)
    if problem:
        if sock is not None:
            sock.close()
        raise UsageError(f"{command}: output directory: {problem}; give a directory this "
                         "user may write with --output (RUNBOOK_OUTPUT_DIR, output_dir in "
                         "runbook.toml)")  # fmt: skip


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


def _notify_config(given: Settings):
    """notify.yml as given (--notify-config, RUNBOOK_NOTIFY_CONFIG), else beside the records,
    watched: read again when it changes or on SIGHUP. Links lead to --external-url
    (RUNBOOK_EXTERNAL_URL) unless the file names its base_url."""
    from runbook_lib.service.notify import NotifyConfig, Watched

    given_path = given.notify_config
    path = Path(given_path) if given_path else given.output_dir / "notify.yml"
    if given_path and not path.exists():
        raise UsageError(f"runbook serve: no notification config at {path}: fix "
                         "--notify-config (RUNBOOK_NOTIFY_CONFIG, notify_config in "
                         "runbook.toml) or leave it unset")  # fmt: skip
    host = _reachable(given.host)
    base = given.external_url or f"http://{host}:{given.port}"
    guessed = ""
    if host != given.host and not given.external_url:
        guessed = (
            " (a guess: set --external-url, RUNBOOK_EXTERNAL_URL, to the address people reach)"
        )
    if not path.exists():
        return Watched(path, None, base), (
            f"notifications off until {path} names targets (read when it changes, or on SIGHUP)"
        )
    try:
        cfg = NotifyConfig.load(path)
    except ValueError as exc:
        raise UsageError(f"runbook serve: {exc}") from None  # names the file and the field
    watch = Watched(path, cfg, base)
    names = ", ".join(t.name for t in cfg.targets) or "none"
    return watch, (f"notifications to {names} (from {path}, read again when it changes), links "
                   f"to {watch.config.base_url}{guessed if watch.config.base_url == base else ''}")  # fmt: skip


def _reachable(host: str) -> str:
    """A host name for links: a wildcard bind address is no address to click."""
    import socket

    return socket.getfqdn() if host in ("0.0.0.0", "::", "") else host


def _worker(args: argparse.Namespace) -> int:
    from runbook_lib.service import distributed

    given = flags.given(args, "worker")
    _check_broker("runbook worker", given.broker_url)
    log_format = _log_format("runbook worker", given.log_format)
    _make_output("runbook worker", given.output_dir)
    config = _pin(_run_config(args, given))
    settings = distributed.settings_from(given, config)
    _start_logging(log_format)
    logging.getLogger("runbook.worker").info(
        "runbooks %s from %s (SIGHUP restarts the worker, which pins them again)",
        config.runbooks.current.hash, config.runbooks.source)  # fmt: skip
    logging.getLogger("runbook.worker").info(
        "runs from %s, index %s, records -> %s (%d warm processes)", given.broker_url,
        given.database_url.split("@")[-1], given.output_dir, given.workers,
    )  # fmt: skip
    distributed.run_worker(settings, given.workers, args.name)
    return 0
