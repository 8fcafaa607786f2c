"""Settings: a flag, else its RUNBOOK_* environment variable, else `runbook.toml`, else the
default, for every setting of the table (contract/settings.py). Every key of the file is the
variable's name without `RUNBOOK_`, in lower case (`prometheus_url` <-> RUNBOOK_PROMETHEUS_URL),
so one name serves all three.

The file is RUNBOOK_CONFIG when set, else /etc/runbook/runbook.toml for root and
$XDG_CONFIG_HOME/runbook/runbook.toml for anyone else; `runbook init` writes it. Records and
the index default to /var/lib/runbook (root) or $XDG_DATA_HOME/runbook: a fixed place, never
the current directory, so `runbook incidents` finds the receiver's index wherever it is
typed. Relative paths in the file are read from the file's directory."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import field, make_dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, ValidationError, create_model

from runbook_lib.contract import settings as table

__all__ = [
    "ConfigError", "FileConfig", "Settings", "config_path", "file_values", "operators_path",
    "read_token", "require_file", "value",
]  # fmt: skip


class ConfigError(ValueError):
    """runbook.toml cannot be read, or holds what it may not."""


def _file_type(s: table.Setting) -> object:
    if s.choices:
        return Literal[s.choices]  # type: ignore[valid-type]
    return str if s.type is Path else s.type


# What runbook.toml may hold (the table's file keys); an unknown key is an error.
FileConfig = create_model(
    "FileConfig",
    __config__=ConfigDict(extra="forbid"),
    **{s.name: (_file_type(s) | None, None) for s in table.TABLE if s.file},
)
PATH_KEYS = tuple(s.name for s in table.TABLE if s.file and s.path)


def config_path() -> Path:
    """Where runbook.toml is read from (and `runbook init` writes it)."""
    given = os.environ.get("RUNBOOK_CONFIG", "")
    if given:
        return Path(given).expanduser()
    if table.is_root():
        return Path("/etc/runbook/runbook.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "runbook" / "runbook.toml"


@lru_cache(maxsize=8)
def _read(path: Path, mtime: float) -> dict[str, object]:
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a runbook.toml: name the file itself "
                          "(--config FILE, RUNBOOK_CONFIG)")  # fmt: skip
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        cfg = FileConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        said = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{path}: {where}: {said}{_did_you_mean(first)}") from None
    values = cfg.model_dump(exclude_none=True)
    for key in PATH_KEYS:
        if key in values:
            values[key] = str((path.parent / Path(values[key]).expanduser()).resolve())
    return values


def _did_you_mean(error: dict) -> str:
    """For a misspelled key, the key it most likely meant."""
    if error["type"] != "extra_forbidden":
        return ""
    close = difflib.get_close_matches(str(error["loc"][0]), FileConfig.model_fields, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def require_file() -> None:
    """A config file named by RUNBOOK_CONFIG (or --config) must be there: a typo in its
    name would otherwise check, or serve, with every setting at its default."""
    given = os.environ.get("RUNBOOK_CONFIG", "")
    if given and not Path(given).expanduser().exists():
        raise ConfigError(f"{given} does not exist: fix --config or RUNBOOK_CONFIG, or write "
                          f"it with `runbook init --config {given}`")  # fmt: skip


def file_values() -> dict[str, object]:
    """runbook.toml's values; {} when there is no file."""
    path = config_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return _read(path, mtime)


def value(key: str) -> object:
    """The setting `key` from RUNBOOK_<KEY>, else runbook.toml, else the table's default."""
    s = table.SETTINGS[key]
    env = os.environ.get(s.variable) if s.env else None
    if env is not None and env != "":
        try:
            return table.parse(s, env, s.variable)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    found = file_values().get(key) if s.file else None
    if found is None:
        found = s.default_value()
    return s.type(found) if s.type is Path else found


class _Methods:
    """What is worked out from several settings (the fields come from the table)."""

    def log_sources(self) -> list[str]:
        """The service's log sources as `logs.source_for` reads them."""
        return [spec for spec in (self.log_file, self.container and f"container:{self.container}",
                                  self.log_unit and f"journal:{self.log_unit}") if spec]  # fmt: skip

    def notebook_params(self) -> dict[str, object]:
        """What every run of this installation passes to its notebook (`--param` wins): the
        service's logs and container, and its memory limit (parameters of the same names)."""
        params: dict[str, object] = {"memory_limit_bytes": self.memory_limit_bytes}
        for key in ("log_file", "container", "log_unit"):
            if getattr(self, key):
                params[key] = getattr(self, key)
        return params

    def token(self) -> str:
        """The webhook bearer token: the variable, else the first line of the token file.
        Raises ConfigError naming the file when it cannot be read."""
        if self.webhook_token:
            return self.webhook_token
        if self.webhook_token_file:
            return read_token(Path(self.webhook_token_file))
        return ""


# Every setting of the table, each read by `value` when not given: Settings() is the
# installation's; Settings(port=9000) the same with one setting given.
Settings = make_dataclass(
    "Settings",
    [
        (s.name, s.type, field(default_factory=partial(value, s.name)))
        for s in table.TABLE
        if s.env or s.file
    ],  # not the flag-only options of one command
    bases=(_Methods,),
    frozen=True,
)
Settings.__module__ = __name__
Settings.__doc__ = "The settings as given, else as read (contract/settings.py lists them)."


def operators_path(given: str | Path | None, output_dir: Path) -> Path:
    """Who may act on incidents: the operators file given, else operators.json beside the
    records (the receiver's output directory)."""
    return Path(given).expanduser() if given else Path(output_dir) / "operators.json"


def read_token(path: Path) -> str:
    """The first line of a token file, or a ConfigError that names the file."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not token:
        raise ConfigError(f"the token file {path} is empty")
    return token
