"""`runbook operator add|list|remove`: the people who may act on incidents from their pages.

The token `add` prints is shown once: the file keeps only its SHA-256 (service/operators.py).
The receiver reads the file again when it changes; a removed operator's sessions end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runbook_lib.cli import flags
from runbook_lib.contract.config import Settings, operators_path
from runbook_lib.service.operators import Operators, OperatorsError


def _file(args: argparse.Namespace) -> Operators:
    return Operators(operators_path(args.operators_file, Path(args.output_dir)))


def operator(args: argparse.Namespace) -> int:
    ops = _file(args)
    try:
        if args.action == "add":
            token = ops.add(args.name)
            print(f"operator {args.name} added to {ops.path}; their token (shown once, give it "
                  "to them privately; they sign in with it at /signin):", file=sys.stderr)  # fmt: skip
            print(token)
        elif args.action == "remove":
            ops.remove(args.name)
            print(f"operator {args.name} removed from {ops.path}; their sessions end")
        else:
            rows = ops.all()
            if not rows:
                print(f"no operators in {ops.path}; `runbook operator add NAME` adds one")
            for op in rows:
                print(f"  {op.name:<24} added {op.added_at}")
    except OperatorsError as exc:
        print(f"runbook operator: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction, settings: Settings) -> None:
    op = sub.add_parser("operator", help="who may act on incidents (acknowledge, silence, ...)")
    op_sub = op.add_subparsers(dest="action", required=True)
    for action, text in (("add", "add an operator and print their token once"),
                         ("remove", "remove an operator (their token and sessions end)"),
                         ("list", "the operators")):  # fmt: skip
        p = op_sub.add_parser(action, help=text)
        if action != "list":
            p.add_argument("name", metavar="NAME")
        flags.add(p, f"operator {action}", settings)
        p.set_defaults(func=operator)
