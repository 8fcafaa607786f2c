"""The `runbook` command: the parser each command module fills, and the errors it turns into
one line."""

from __future__ import annotations

import argparse
import os
import sys

from runbook_lib.cli import commands, configure, flags, incidents, lab, notify, operators, serving
from runbook_lib.cli.errors import UsageError
from runbook_lib.contract.config import ConfigError, Settings, require_file
from runbook_lib.lab.errors import StackError

# The command modules, each registering its own subcommands, in the order help lists them.
MODULES = (lab, serving, notify, incidents, operators, commands, configure)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's parser; the flags' defaults are the settings as found now."""
    settings = Settings()
    ap = argparse.ArgumentParser(prog="runbook", description="Executable GGEN MCP runbooks.")
    flags.add(ap, "runbook", settings)  # --config: read before parsing (`_global_config`)
    sub = ap.add_subparsers(dest="command", required=True)
    for module in MODULES:
        module.register(sub, settings)
    return ap


def _global_config(argv: list[str]) -> list[str]:
    """`runbook --config FILE CMD ...`: the file every setting is read from (RUNBOOK_CONFIG)."""
    if argv[:1] == ["--config"] and len(argv) > 1:
        os.environ["RUNBOOK_CONFIG"] = argv[1]
        return argv[2:]
    if argv[:1] and argv[0].startswith("--config="):
        os.environ["RUNBOOK_CONFIG"] = argv[0].split("=", 1)[1]
        return argv[1:]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = _global_config(list(sys.argv[1:] if argv is None else argv))
    try:
        if argv[:1] != ["init"]:  # init writes the file; everyone else needs it there
            require_file()
        _metric_names()
        args = build_parser().parse_args(argv)  # reads runbook.toml for the defaults
        return args.func(args)
    except UsageError as exc:  # an operator's mistake: one line with the fix, no traceback
        print(exc, file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _metric_names() -> None:
    """The metrics profile of the settings, checked (the import took the default if not)."""
    from runbook_lib.contract import names

    try:
        names.NAMES.current = names.load()
    except ConfigError:
        raise
    except ValueError as exc:
        raise UsageError(f"runbook: {exc} (metrics_profile in runbook.toml)") from None
