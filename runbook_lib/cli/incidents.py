"""`runbook incidents`: the incidents of the index, an incident's message for the team, and
recording that a mitigation is in place."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_lib.cli import flags
from runbook_lib.contract.config import Settings

if TYPE_CHECKING:  # the index and its views import pandas and nbconvert: only when run
    from runbook_lib.contract.incident import Incident
    from runbook_lib.incidents.index import Index


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser("incidents", help="list incidents, newest first")
    flags.add(p, "incidents", settings)
    p.add_argument("--json", action="store_true")
    p.add_argument("--message", metavar="ID|FINGERPRINT",
                   help="the runbook's message for the team about this incident, as it stands "
                   "now, with the link to its record")  # fmt: skip
    p.add_argument("--mitigated", metavar="ID|FINGERPRINT",
                   help="record that a mitigation is in place (the message then says Mitigating)")  # fmt: skip
    p.set_defaults(func=incidents)


class _NoIndex(LookupError):
    pass


def _open(args: argparse.Namespace, output: Path) -> Index:
    """The index the receiver writes: --database (distributed), else the output's file."""
    from runbook_lib.incidents.index import Index

    if args.database_url:
        return Index(url=args.database_url)
    path = output / "index.sqlite"
    if not path.exists():
        raise _NoIndex(f"{path} does not exist: no incident was filed there; give --output DIR "
                       "(RUNBOOK_OUTPUT_DIR, output_dir in runbook.toml) or --database URL")  # fmt: skip
    return Index(path)


def find(index: Index, ref: str) -> int:
    """An incident by its id (#12 or 12) or by an alert's fingerprint (or its first 6+)."""
    text = ref.removeprefix("#")
    if text.isdigit():
        try:
            return index.incident(int(text)).id
        except LookupError:
            if len(text) < 6:
                raise
    try:
        return index.by_fingerprint(text)
    except LookupError:
        if problem := ref_problem(ref):  # no exact match, and too short to be a prefix
            raise LookupError(problem) from None
        raise


def ref_problem(ref: str) -> str:
    """Why `ref` can name no incident ("" when it can): a fingerprint prefix under 6
    characters would match too much."""
    text = ref.removeprefix("#")
    if text.isdigit() or len(text) >= 6:
        return ""
    return (f"{ref!r} is neither an incident id nor 6 or more characters of an alert's "
            "fingerprint: give the id (12 or #12) or more of the fingerprint")  # fmt: skip


def link(inc: Incident, output: Path, external_url: str) -> str:
    """Where a person reads the incident: its page when the receiver has a known address,
    else the investigation's report."""
    from runbook_lib.service import incident_view

    if external_url:
        return f"{external_url.rstrip('/')}/incidents/{inc.id}"
    inv = incident_view.current_investigation(inc.runs)
    return str(output / inv.record / "report.html") if inv else ""


def incidents(args: argparse.Namespace) -> int:
    settings = Settings()
    output = Path(args.output_dir)
    try:
        index = _open(args, output)
        if args.message or args.mitigated:
            return _about_one(args, index, output, settings)
    except _NoIndex as exc:
        if args.message or args.mitigated:
            print(f"runbook incidents: {exc}", file=sys.stderr)
            return 2
        print(f"no incidents yet: {exc}", file=sys.stderr)
        if args.json:
            print("[]")
        return 0
    except LookupError as exc:
        print(f"runbook incidents: {exc}; `runbook incidents` lists them", file=sys.stderr)
        return 2
    rows = index.incidents(args.limit)
    if args.json:
        print(json.dumps([inc.model_dump(mode="json") for inc in rows], indent=1))
        return 0
    for inc in rows:
        print(_line(inc))
        if len(inc.alerts) > 1:
            for a in inc.alerts:
                print(f"    alert  {a.alertname} ({a.severity or '-'}, {a.status})")
        for r in inc.runs:
            state = r.status or r.state
            cause = f"  top cause: {r.top_cause}" if r.top_cause else ""
            print(f"    {r.kind:<13} {state:<10} {output / r.record}{cause}")
    return 0


def _about_one(args: argparse.Namespace, index: Index, output: Path, settings: Settings) -> int:
    from runbook_lib.incidents.actions import Closed
    from runbook_lib.service.incident_view import load, message_of

    if args.mitigated:
        iid = find(index, args.mitigated)
        try:  # the same action as the page's "Mark mitigated", by this machine's user
            new = index.mark_mitigated(iid, actor=f"{getpass.getuser()} (command line)")
        except Closed as exc:
            print(f"runbook incidents: {exc}", file=sys.stderr)
            return 2
        print(f"incident #{iid}: mitigation {'recorded' if new else 'was recorded already'}; "
              "its message now says Mitigating until its alerts resolve")  # fmt: skip
        return 0
    inc = load(index, find(index, args.message))
    print(message_of(inc, link=link(inc, output, settings.external_url)))
    return 0


def _line(inc: Incident) -> str:
    received = datetime.fromtimestamp(inc.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    n = len(inc.alerts)
    alerts = f"  ({n} alerts)" if n > 1 else ""
    return (
        f"{received}Z  #{inc.id:<4} {inc.alertname}  {inc.severity or '-'}  "
        f"{inc.status}  instance={inc.labels.get('instance', '-')}{alerts}"
    )
