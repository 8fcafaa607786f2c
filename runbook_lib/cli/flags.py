"""The flags of each command, made from the settings table (contract/settings.py): a flag's
name, type, default and help are the table's, so two commands never disagree about one."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from runbook_lib.contract import settings as table
from runbook_lib.contract.config import Settings


class Deprecated(argparse.Action):
    """An old name of a flag: stores as the new one does, with a one-line note on stderr."""

    def __init__(self, *args, new: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"runbook: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add(p: argparse.ArgumentParser, command: str, settings: Settings, *names: str) -> None:
    """The flags of `command` (a subcommand's words, e.g. "notify test"): every setting of
    the table it takes, or only `names` of them; each defaults to the setting as found."""
    for s in table.for_command(command):
        if not names or s.name in names:
            _add_one(p, command, s, settings)


def default(s: table.Setting, command: str, settings: Settings) -> object:
    """A flag's default: the setting's value (flag, variable, file, table); for `runbook
    init`, what it writes unless told (`written`), since it writes the file others read."""
    if command == "init":
        return s.written
    if s.env or s.file:
        return getattr(settings, s.name)
    return s.default_value()


def _add_one(p: argparse.ArgumentParser, command: str, s: table.Setting, settings: Settings):
    value = default(s, command, settings)
    # with a metavar naming the choices, the command checks them (its error names the
    # variable and the key too); otherwise argparse does
    choices = None if s.metavar else s.choices or None
    kind = {"type": s.type if s.type is not bool else None, "choices": choices,
            "metavar": s.metavar or ("N" if s.type in (int, float) else None)}  # fmt: skip
    p.add_argument(s.option, *s.aliases, dest=s.name, default=value, help=_help(s, command),
                   required=command in s.required_in and value in ("", None), **kind)  # fmt: skip
    for where, old in s.deprecated:  # the old name: works, says the new one, not in --help
        if where == command:
            p.add_argument(old, dest=s.name, action=Deprecated, new=s.option,
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kind)  # fmt: skip


def _help(s: table.Setting, command: str) -> str:
    if command == "init":  # init writes the file: say the key, not where it is read from
        key = f"writes {s.name}" if s.file else f"default {s.variable}, else {s.default_text()}"
        return f"{s.help} ({key}" + (f"; default {s.written}" if s.written else "") + ")"
    where = ", ".join(w for w in (s.variable, f"{s.name} in runbook.toml" if s.file else "") if w)
    said = f"{where}; default {s.default_text()}" if where else f"default {s.default_text()}"
    return f"{s.help} ({said})"


def given(args: argparse.Namespace, command: str, settings: Settings | None = None) -> Settings:
    """The settings with this command's flags applied: what it runs with."""
    base = settings or Settings()
    names = {f.name for f in dataclasses.fields(base)}
    flags = {s.name: _typed(s, getattr(args, s.name)) for s in table.for_command(command)
             if s.name in names and getattr(args, s.name, None) is not None}  # fmt: skip
    return dataclasses.replace(base, **flags)


def _typed(s: table.Setting, value: object) -> object:
    return Path(value) if s.type is Path and not isinstance(value, Path) else value
