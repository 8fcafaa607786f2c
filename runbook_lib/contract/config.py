"""Settings: a flag, else its RUNBOOK_* environment variable, else `runbook.toml`, else the
default. Every key of the file is the variable's name without `RUNBOOK_`, in lower case
(`prometheus_url` <-> RUNBOOK_PROMETHEUS_URL), so one name serves all three.

The file is RUNBOOK_CONFIG when set, else /etc/runbook/runbook.toml for root and
$XDG_CONFIG_HOME/runbook/runbook.toml for anyone else; `runbook init` writes it. Records and
the index default to /var/lib/runbook (root) or $XDG_DATA_HOME/runbook: a fixed place, never
the current directory, so `runbook incidents` finds the receiver's index wherever it is
typed. Relative paths in the file are read from the file's directory."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

ROOT = Path(__file__).resolve().parents[2]  # the checkout, when there is one
PACKAGE = Path(__file__).resolve().parents[1]
NOTEBOOKS = (
    PACKAGE / "notebooks"
)  # shipped in the package (`notebooks/` in the checkout links here)
RULES = PACKAGE / "rules"  # the Prometheus rule files, likewise (`deploy/rules/`)
MEMORY_LIMIT_BYTES = 4 << 30  # the service's limit; RUNBOOK_MEMORY_LIMIT_BYTES overrides it
# Alerts of one instance and runbook family firing together are one incident; a slow-burn
# alert (an SLO burn rate with its own `for: 5m`) that fires up to this long after the
# incident resolved is still its context. 0 turns correlation off.
CORRELATION_WINDOW_S = 900.0
# An alert Alertmanager no longer lists for this long, with no `resolved`, is stale: longer
# than its default group_interval (5 min), after which the `resolved` would have come.
STALE_AFTER_S = 900.0
# A warning's investigation waits for a more severe alert Prometheus holds pending: until
# that alert's `for:` has passed plus this margin (Alertmanager's default group_wait of 30 s
# and an evaluation), and never longer than the cap (a `for: 5m` critical and its margin).
HOLD_MARGIN_S = 45.0
HOLD_CAP_S = 600.0


class ConfigError(ValueError):
    """runbook.toml cannot be read, or holds what it may not."""


class FileConfig(BaseModel):
    """What runbook.toml may hold; an unknown key is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    output_dir: str | None = None
    webhook_token_file: str | None = None
    host: str | None = None
    port: int | None = None
    external_url: str | None = None
    notify_config: str | None = None
    operators_file: str | None = None  # who may act on incidents (`runbook operator add`)
    retention_days: float | None = None
    correlation_window: float | None = None
    correlation_hold: float | None = None
    hold_cap: float | None = None
    hold_margin: float | None = None
    reconcile_every: float | None = None
    stale_after: float | None = None
    database_url: str | None = None
    broker_url: str | None = None
    memory_limit_bytes: int | None = None
    metrics_profile: str | None = None  # contract (ggen_mcp_*) or server (the real mcp_*)
    log_format: Literal["text", "json"] | None = None  # serve's and worker's log lines
    # Where the service's own logs are, for the records (any of them, read together):
    log_file: str | None = None  # a file or a glob, rotated (and .gz) files included
    container: str | None = None  # its Docker container: a name, or label:KEY=VALUE
    log_unit: str | None = None  # its systemd unit, read from the journal
    runbooks_dir: str | None = None  # the runbooks serve and worker pin (default: the package's)


PATH_KEYS = ("output_dir", "webhook_token_file", "notify_config", "operators_file", "runbooks_dir")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def config_path() -> Path:
    """Where runbook.toml is read from (and `runbook init` writes it)."""
    given = os.environ.get("RUNBOOK_CONFIG", "")
    if given:
        return Path(given).expanduser()
    if is_root():
        return Path("/etc/runbook/runbook.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "runbook" / "runbook.toml"


def data_dir() -> Path:
    """The default home of records and the index: outside any checkout, never the cwd."""
    if is_root():
        return Path("/var/lib/runbook")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "runbook"


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


def value(key: str, default: object = "") -> object:
    """RUNBOOK_<KEY>, else the file's `key`, else `default`."""
    env = os.environ.get(f"RUNBOOK_{key.upper()}")
    if env is not None and env != "":
        if not isinstance(default, int | float):
            return env
        try:
            return type(default)(env)
        except ValueError:
            kind = "a whole number" if isinstance(default, int) else "a number (seconds, days)"
            raise ConfigError(f"RUNBOOK_{key.upper()}={env!r} is not {kind}") from None
    return file_values().get(key, default)


def _state_default() -> str:
    checkout = (ROOT / "pyproject.toml").exists() and (ROOT / "runbook_lib").is_dir()
    return str(ROOT / ".state" if checkout else data_dir() / "state")


def _deploy_default() -> str:
    return str(ROOT / "deploy")


@dataclass(frozen=True)
class Settings:
    prometheus_url: str = field(default_factory=lambda: str(value("prometheus_url")))
    alertmanager_url: str = field(default_factory=lambda: str(value("alertmanager_url")))
    output_dir: Path = field(
        default_factory=lambda: Path(str(value("output_dir", str(data_dir()))))
    )
    state_dir: Path = field(default_factory=lambda: Path(str(value("state_dir", _state_default()))))
    deploy_dir: Path = field(
        default_factory=lambda: Path(str(value("deploy_dir", _deploy_default())))
    )
    webhook_token: str = field(default_factory=lambda: str(value("webhook_token")))
    webhook_token_file: str = field(default_factory=lambda: str(value("webhook_token_file")))
    host: str = field(default_factory=lambda: str(value("host", "127.0.0.1")))
    port: int = field(default_factory=lambda: int(value("port", 8080)))
    external_url: str = field(default_factory=lambda: str(value("external_url")))
    notify_config: str = field(default_factory=lambda: str(value("notify_config")))
    operators_file: str = field(default_factory=lambda: str(value("operators_file")))
    retention_days: float = field(default_factory=lambda: float(value("retention_days", 0.0)))
    correlation_window: float = field(
        default_factory=lambda: float(value("correlation_window", CORRELATION_WINDOW_S))
    )
    correlation_hold: float = field(default_factory=lambda: float(value("correlation_hold", 10.0)))
    hold_cap: float = field(default_factory=lambda: float(value("hold_cap", HOLD_CAP_S)))
    hold_margin: float = field(default_factory=lambda: float(value("hold_margin", HOLD_MARGIN_S)))
    reconcile_every: float = field(default_factory=lambda: float(value("reconcile_every", 60.0)))
    stale_after: float = field(default_factory=lambda: float(value("stale_after", STALE_AFTER_S)))
    database_url: str = field(default_factory=lambda: str(value("database_url")))
    broker_url: str = field(default_factory=lambda: str(value("broker_url")))
    memory_limit_bytes: int = field(
        default_factory=lambda: int(value("memory_limit_bytes", MEMORY_LIMIT_BYTES))
    )
    log_format: str = field(default_factory=lambda: str(value("log_format", "text")))
    runbooks_dir: Path = field(default_factory=lambda: Path(str(value("runbooks_dir", NOTEBOOKS))))
    log_file: str = field(default_factory=lambda: str(value("log_file")))
    container: str = field(default_factory=lambda: str(value("container")))
    log_unit: str = field(default_factory=lambda: str(value("log_unit")))

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
