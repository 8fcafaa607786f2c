"""`runbook notify test|status`: the notifications of notify.yml, tried and listed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runbook_lib.cli import flags
from runbook_lib.contract.config import Settings


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    nt = sub.add_parser("notify", help="the notifications of notify.yml")
    nt_sub = nt.add_subparsers(dest="action", required=True)
    p = nt_sub.add_parser("test", help="send a sample to every target and say which answered")
    flags.add(p, "notify test", settings)
    p.set_defaults(func=_notify_test)
    p = nt_sub.add_parser("status", help="the outbox: what was sent, what waits, what failed")
    flags.add(p, "notify status", settings)
    p.set_defaults(func=_notify_status)


def _notify_test(args: argparse.Namespace) -> int:
    """A sample message to every target of notify.yml; says which answered."""
    from runbook_lib.service import notify

    path = Path(args.notify_config or Path(args.output_dir) / "notify.yml")
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
    from runbook_lib.incidents.index import Index
    from runbook_lib.storage.outbox import Outbox

    output = Path(args.output_dir)
    if not args.database_url and not (output / "index.sqlite").exists():
        print(f"no notifications yet: {output / 'index.sqlite'} does not exist", file=sys.stderr)
        return 0
    index = Index(url=args.database_url) if args.database_url else Index(output / "index.sqlite")
    rows = Outbox(index).deliveries()
    if not rows:
        print("no notifications yet")
    for r in rows:
        err = f"  ({r['last_error']})" if r["last_error"] and r["state"] != "sent" else ""
        print(f"  {r['state']:<8} {r['kind']:<15} incident {r['incident_id']:<5} -> {r['target']}"
              f"  attempts {r['attempts']}{err}")  # fmt: skip
    return 0
