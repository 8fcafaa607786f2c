"""`runbook init`: the config file, the webhook token, and what to paste into Prometheus and
Alertmanager, so a service can be wired to an existing stack in minutes."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from runbook_lib.contract import config
from runbook_lib.service import wiring

TOKEN_NAME = "webhook-token"


def render(values: dict[str, object]) -> str:
    """runbook.toml text: one `key = value` line per setting given, strings as TOML strings."""
    lines = ["# runbook.toml: written by `runbook init`; RUNBOOK_<KEY> variables override it."]
    for key, val in values.items():
        text = json.dumps(val) if isinstance(val, str) else repr(val)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def _token(path: Path) -> str:
    """Keep an existing token (Alertmanager may already hold it); else write a new one."""
    if path.exists():
        return "kept"
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(32) + "\n")
    return "new"


def init(args: argparse.Namespace) -> int:
    path = (Path(args.config).expanduser() if args.config else config.config_path()).resolve()
    if path.exists() and not args.force:
        print(f"runbook init: {path} exists; edit it, or pass --force to write it again",
              file=sys.stderr)  # fmt: skip
        return 2
    output = Path(args.output).expanduser().resolve() if args.output else config.data_dir()
    token_file = path.parent / TOKEN_NAME
    values: dict[str, object] = {
        "prometheus_url": args.prometheus_url,
        "output_dir": str(output),
        "webhook_token_file": TOKEN_NAME,  # beside the file, wherever it is mounted
        "host": args.host,
        "port": args.port,
    }
    if args.alertmanager_url:  # a guessed address would reconcile against a stranger
        values["alertmanager_url"] = args.alertmanager_url
    if args.external_url:
        values["external_url"] = args.external_url
    if args.metrics_profile != "contract":
        values["metrics_profile"] = args.metrics_profile
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        output.mkdir(parents=True, exist_ok=True)
        token_state = _token(token_file)
        path.write_text(render(values))
    except OSError as exc:
        print(f"runbook init: cannot write {exc.filename}: {exc.strerror}; choose another place "
              "with --config PATH and --output DIR", file=sys.stderr)  # fmt: skip
        return 2
    _explain(path, token_file, token_state, output, args)
    return 0


def _explain(path: Path, token: Path, token_state: str, output: Path, args) -> None:
    url = wiring.receiver_url(args.external_url, args.host, args.port)
    print(f"wrote {path}")
    print(f"{'kept' if token_state == 'kept' else 'wrote'} {token} (the webhook token, mode 600)")
    print(f"records and the index go to {output}")
    if path.resolve() != config.config_path().resolve():
        print(f"this is not the default place: export RUNBOOK_CONFIG={path}")
    print("\n1. Prometheus: load these rule files (prometheus.yml), then reload Prometheus:\n")
    print(_indent(wiring.prometheus_snippet(args.metrics_profile)))
    print("2. Alertmanager: add this route and receiver (alertmanager.yml), then reload it;")
    print(f"   the token file must be readable by Alertmanager (copy {token} to its host):\n")
    print(_indent(wiring.alertmanager_snippet(url, token)))
    if args.host in ("127.0.0.1", "localhost", "::1"):
        print(f"   `runbook serve` listens on {args.host}: an Alertmanager on another host needs "
              "--host 0.0.0.0 (or host in runbook.toml) behind a TLS proxy\n")  # fmt: skip
    print("3. Start the receiver, then check the wiring:\n")
    print("     runbook serve\n     runbook doctor")


def _indent(text: str) -> str:
    return "".join(f"     {line}\n" for line in text.splitlines())
