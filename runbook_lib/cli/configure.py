"""`runbook init` and `runbook rules render`: the config file, the webhook token, the rule
files rendered for this installation, and what to paste into Prometheus and Alertmanager,
so a service can be wired to an existing stack in minutes. Every path and setting is
checked before anything is written; a failure leaves nothing behind."""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from runbook_lib.cli import flags
from runbook_lib.cli.errors import UsageError
from runbook_lib.contract import config, paths
from runbook_lib.contract.settings import data_dir
from runbook_lib.service import wiring

TOKEN_NAME = "webhook-token"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


def register(sub: argparse._SubParsersAction, settings: config.Settings) -> None:
    p = sub.add_parser("init", help="write runbook.toml and a webhook token; print the wiring")
    flags.add(p, "init", settings)
    p.add_argument("--force", action="store_true", help="write over an existing config file")
    p.set_defaults(func=init)

    p = sub.add_parser("rules", help="the Prometheus rule files rendered for this installation")
    r_sub = p.add_subparsers(dest="action", required=True)
    p = r_sub.add_parser("render", help="rewrite them for the settings now (external_url, "
                         "memory_limit_bytes, metrics_profile); after every upgrade")  # fmt: skip
    p.add_argument("--dir", help="where (default: rules/ beside runbook.toml)")
    p.set_defaults(func=rules_render)


def render(values: dict[str, object]) -> str:
    """runbook.toml text: one `key = value` line per setting given, strings as TOML strings."""
    lines = ["# runbook.toml: written by `runbook init`; RUNBOOK_<KEY> variables override it."]
    for key, val in values.items():
        text = json.dumps(val) if isinstance(val, str) else repr(val)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    proxy: str  # "" when Alertmanager reaches `serve` directly; else what must forward where


def listen_address(external_url: str, host: str | None, port: int | None) -> Listen:
    """Where `serve` listens, agreeing with the external URL: when that URL is plain http on
    this machine, its port (and a loopback URL's host); otherwise a proxy forwards to
    --host/--port, and the answer says which."""
    if not external_url:
        return Listen(host or DEFAULT_HOST, port or DEFAULT_PORT, "")
    url = urllib.parse.urlsplit(external_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(f"runbook init: --external-url {external_url!r} is not an http(s) URL: "
                         "write e.g. http://runbook.example.internal:8080")  # fmt: skip
    local = wiring.this_machine(url.hostname)
    if url.scheme == "http" and local is not False:
        url_port = url.port or 80
        if port and port != url_port:
            raise UsageError(
                f"runbook init: --port {port} contradicts --external-url {external_url} "
                f"(port {url_port} on this machine): drop --port, or give the proxy's URL as "
                "--external-url when one forwards to that port"
            )
        return Listen(host or (DEFAULT_HOST if local else "0.0.0.0"), url_port, "")
    host, port = host or DEFAULT_HOST, port or DEFAULT_PORT
    where = url.netloc
    return Listen(host, port, f"{where} must forward to {host}:{port} (a TLS proxy or load "
                  "balancer there; `runbook serve` speaks plain http)")  # fmt: skip


def log_values(args: argparse.Namespace) -> dict[str, object]:
    """Where the service's logs are: any of a file glob, a container, a journald unit."""
    values: dict[str, object] = {}
    if args.log_file:
        values["log_file"] = args.log_file
    if args.container:
        values["container"] = args.container
    if args.log_unit:
        values["log_unit"] = args.log_unit
    return values


def _check_places(path: Path, output: Path, force: bool) -> None:
    """Every place init writes, judged before it writes any."""
    if path.is_dir():
        raise UsageError(f"runbook init: --config {path} is a directory: name the file, "
                         f"e.g. --config {path / 'runbook.toml'}")  # fmt: skip
    if path.exists() and not force:
        raise UsageError(f"runbook init: {path} exists; edit it, or pass --force to write it again")
    for what, place, fix in (
        (path, path.parent, "--config PATH"),
        (output, output, "--output DIR"),
    ):
        problem = paths.unwritable_dir(place)
        if problem:
            raise UsageError(f"runbook init: cannot write {what}: {problem}; choose another "
                             f"place with {fix}")  # fmt: skip


def init(args: argparse.Namespace) -> int:
    path = (Path(args.config).expanduser() if args.config else config.config_path()).absolute()
    output = args.output_dir.expanduser().absolute() if args.output_dir else data_dir()
    listen = listen_address(args.external_url, args.host, args.port)
    _check_places(path, output, args.force)
    memory = args.memory_limit_bytes
    values: dict[str, object] = {
        "prometheus_url": args.prometheus_url,
        "output_dir": str(output),
        "webhook_token_file": TOKEN_NAME,  # beside the file, wherever it is mounted
        "host": listen.host,
        "port": listen.port,
        "memory_limit_bytes": memory,
    }
    if args.alertmanager_url:  # a guessed address would reconcile against a stranger
        values["alertmanager_url"] = args.alertmanager_url
    if args.external_url:
        values["external_url"] = args.external_url.rstrip("/")
    if args.metrics_profile != "contract":
        values["metrics_profile"] = args.metrics_profile
    values |= log_values(args)
    links = wiring.receiver_url(args.external_url, listen.host, listen.port).removesuffix("/alerts")
    made = _write(path, output, values, links=links, memory=memory, profile=args.metrics_profile)
    _explain(path, made, output, listen, links, args)
    return 0


@dataclass(frozen=True)
class Made:
    token: Path
    token_state: str  # "new" or "kept"
    rules: list[Path]


def _write(
    path: Path, output: Path, values: dict, *, links: str, memory: int, profile: str
) -> Made:
    """The directories, the token, runbook.toml and the rule files; on a failure midway,
    what was made is removed again and the error is one line."""
    from runbook_lib.service import rulefiles  # yaml: only what writes the rules

    created: list[Path] = []
    token = path.parent / TOKEN_NAME
    try:
        for place in (path.parent, output):
            top = paths.first_missing(place)  # what a rollback removes, parents made included
            problem = paths.create_dir(place)
            if problem:
                raise OSError(problem)
            if top is not None:
                created.append(top)
        state = "kept" if token.exists() else "new"
        if state == "new":  # keep an existing token: Alertmanager may already hold it
            token.touch(mode=0o600)
            created.append(token)
            token.write_text(secrets.token_urlsafe(32) + "\n")
        rules_dir = rulefiles.rules_dir(path)
        if not rules_dir.exists():
            created.append(rules_dir)
        written = rulefiles.write(rules_dir, runbook_base=links, memory_limit_bytes=memory,
                                  profile=profile)  # fmt: skip
        path.write_text(render(values))
    except OSError as exc:
        for made in reversed(created):
            shutil.rmtree(made) if made.is_dir() else made.unlink(missing_ok=True)
        said = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        raise UsageError(f"runbook init: cannot write {said}; choose another place with "
                         "--config PATH and --output DIR") from None  # fmt: skip
    return Made(token, state, [w.path for w in written])


def _explain(path: Path, made: Made, output: Path, listen: Listen, links: str, args) -> None:
    from runbook_lib.service import rulefiles  # yaml: only what writes the rules

    print(f"wrote {path}")
    print(f"{'kept' if made.token_state == 'kept' else 'wrote'} {made.token} "
          "(the webhook token, mode 600)")  # fmt: skip
    print(f"wrote {rulefiles.rules_dir(path)}/ (the rule files, every runbook_url -> {links})")
    print(f"records and the index go to {output}")
    print(f"`runbook serve` will listen on {listen.host}:{listen.port}")
    if listen.proxy:
        print(f"  {listen.proxy}")
    if path.resolve() != config.config_path().resolve():
        print(f"this is not the default place: export RUNBOOK_CONFIG={path}")
    print("\n1. Prometheus: load these rule files (prometheus.yml), then reload Prometheus")
    print("   (`runbook rules render` rewrites them after an upgrade or a change of setting):\n")
    print(_indent(wiring.prometheus_snippet(made.rules)))
    print("2. Alertmanager: add this route and receiver (alertmanager.yml), then reload it;")
    print(f"   the token file must be readable by Alertmanager (copy {made.token} to its host):\n")
    print(_indent(wiring.alertmanager_snippet(f"{links}/alerts", made.token)))
    if listen.host in ("127.0.0.1", "localhost", "::1") and not listen.proxy:
        print(f"   `runbook serve` listens on {listen.host}: an Alertmanager on another host needs "
              "host = \"0.0.0.0\" in runbook.toml, better behind a TLS proxy\n")  # fmt: skip
    if not log_values(args):
        print("   No log source: records will not read the service's logs. Name them with "
              "--log-file GLOB, --log-container NAME or --log-unit UNIT (init --force)\n")  # fmt: skip
    print("3. Start the receiver, then check the wiring:\n")
    print("     runbook serve\n     runbook doctor")


def rules_render(args: argparse.Namespace) -> int:
    """Rewrite the rule files for the settings as they are now (after an upgrade, or a new
    external URL or memory limit); say which changed."""
    from runbook_lib.service import rulefiles  # yaml: only what writes the rules

    settings = config.Settings()
    links = wiring.receiver_url(settings.external_url, settings.host, settings.port)
    links = links.removesuffix("/alerts")
    dest = Path(args.dir).absolute() if args.dir else rulefiles.rules_dir(config.config_path())
    problem = paths.unwritable_dir(dest)
    if problem:
        raise UsageError(f"runbook rules render: {problem}; give another place with --dir DIR")
    from runbook_lib.contract.names import NAMES

    written = rulefiles.write(dest, runbook_base=links, memory_limit_bytes=settings.memory_limit_bytes,
                              profile=NAMES.profile)  # fmt: skip
    for w in written:
        print(f"{'wrote    ' if w.changed else 'unchanged'} {w.path}")
    print(f"every runbook_url -> {links}; memory limit {settings.memory_limit_bytes} bytes")
    if any(w.changed for w in written):
        print("reload Prometheus (kill -HUP, or POST /-/reload) to load them")
    return 0


def _indent(text: str) -> str:
    return "".join(f"     {line}\n" for line in text.splitlines())
