"""The `runbook` command."""

from runbook_lib.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
