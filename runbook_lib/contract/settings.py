"""Every setting of `runbook`, defined once (celery's `app/defaults.py` is the model).

Each `Setting` names its type, default, help and the commands that take it as a flag. From
this table come the flags (`cli/flags.py`), the RUNBOOK_* variables and the runbook.toml
keys (`contract/config.py`), and docs/settings.md (`python -m runbook_lib.contract.settings
docs/settings.md`, `make settings-doc`). A flag, else its variable, else the file, else the
default: one name serves all three (`prometheus_url`, RUNBOOK_PROMETHEUS_URL,
`--prometheus-url`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout, when there is one
PACKAGE = Path(__file__).resolve().parents[1]
NOTEBOOKS = PACKAGE / "notebooks"  # shipped in the package (`notebooks/` in the checkout)
RULES = PACKAGE / "rules"  # the Prometheus rule files, likewise (`deploy/rules/`)
MEMORY_LIMIT_BYTES = 4 << 30  # the service's memory limit
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

SERVICE = ("serve", "worker")  # the two commands that run notebooks for alerts
OPERATOR = ("operator add", "operator remove", "operator list")


@dataclass(frozen=True)
class Setting:
    """One setting: where it may be given, its type and default, and what it means."""

    name: str
    type: type
    default: object  # a value, or a function of no arguments for one found at run time
    help: str
    commands: tuple[str, ...] = ()  # the commands that take it as a flag
    flag: str = ""  # default: --name-with-dashes
    aliases: tuple[str, ...] = ()  # other flags for it that keep working silently
    deprecated: tuple[tuple[str, str], ...] = ()  # (command, old flag): works, with a note
    choices: tuple[str, ...] = ()
    env: bool = True  # RUNBOOK_<NAME>
    file: bool = True  # a runbook.toml key
    path: bool = False  # in runbook.toml, relative to the file's directory
    shown: str = ""  # the default as help and doc show it, for one found at run time
    written: object = None  # `runbook init`: the flag's default, what the file gets
    required_in: tuple[str, ...] = ()  # commands that refuse to start without a value
    metavar: str | None = None

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return f"RUNBOOK_{self.name.upper()}" if self.env else ""

    def default_value(self) -> object:
        return self.default() if callable(self.default) else self.default

    def default_text(self) -> str:
        if self.shown:
            return self.shown
        value = self.default
        if isinstance(value, float):
            return f"{value:g}"
        return "(none)" if value in ("", None) else str(value)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def data_dir() -> Path:
    """The default home of records and the index: outside any checkout, never the cwd."""
    if is_root():
        return Path("/var/lib/runbook")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "runbook"


def _state_default() -> Path:
    checkout = (ROOT / "pyproject.toml").exists() and (ROOT / "runbook_lib").is_dir()
    return ROOT / ".state" if checkout else data_dir() / "state"


def _cpus() -> int:
    return os.cpu_count() or 2


S = Setting
TABLE: tuple[Setting, ...] = (
    # -- where things are --------------------------------------------------------------------
    S("config", str, "", "the runbook.toml every setting is read from; `runbook init` writes "
      "it there", ("runbook", "init"), metavar="FILE", file=False,
      shown="/etc/runbook/runbook.toml as root, else $XDG_CONFIG_HOME/runbook/runbook.toml"),
    S("output_dir", Path, data_dir, "the records directory and its index (index.sqlite)",
      ("serve", "worker", "run", "incidents", "prune", "notify test", "notify status",
       *OPERATOR, "init"), flag="--output", path=True, metavar="DIR",
      shown="/var/lib/runbook as root, else $XDG_DATA_HOME/runbook"),
    S("runbooks_dir", Path, NOTEBOOKS, "the runbook notebooks serve and worker pin at start "
      "and again on SIGHUP", SERVICE, aliases=("--notebooks",), path=True, metavar="DIR",
      shown="the installed package's notebooks"),
    S("state_dir", Path, _state_default, "where the local stack keeps its data",
      ("stack start", "stack stop", "stack status", "sim mode", "demo"), path=True,
      metavar="DIR", shown=".state in a checkout, else $XDG_DATA_HOME/runbook/state"),
    S("deploy_dir", Path, ROOT / "deploy", "the deployment files the lab copies (Compose, "
      "systemd units)", path=True, metavar="DIR", shown="deploy/ of the checkout"),
    # -- what the service talks to -----------------------------------------------------------
    S("prometheus_url", str, "", "the Prometheus the notebooks query, holds ask what is "
      "pending and post-mortems when the alerts went pending",
      (*SERVICE, "run", "postmortem", "doctor", "init"), written="http://127.0.0.1:9090",
      metavar="URL"),
    S("alertmanager_url", str, "", "the Alertmanager records link to, doctor checks the route "
      "of, serve reconciles open incidents against and silences go to (none: all of that is "
      "off)", (*SERVICE, "doctor", "init"), written="", metavar="URL"),
    S("external_url", str, "", "this service as Alertmanager and people reach it: links in "
      "messages and records, every rule's runbook_url (none: http://HOST:PORT)",
      ("serve", "init"), written="", metavar="URL"),
    S("database_url", str, "", "distributed mode: the shared index, e.g. "
      "postgresql+psycopg://u:p@host/db; runs go to --broker instead of local workers",
      ("serve", "worker", "incidents", "notify status", "postmortem"), flag="--database",
      required_in=("worker",), metavar="URL"),
    S("broker_url", str, "", "distributed mode: the Celery broker, e.g. redis://host:6379/0",
      SERVICE, flag="--broker", required_in=("worker",), metavar="URL"),
    # -- the receiver ------------------------------------------------------------------------
    S("host", str, "127.0.0.1", "the address serve binds (this machine only by default: an "
      "Alertmanager elsewhere needs 0.0.0.0, behind a TLS proxy)", ("serve", "init")),
    S("port", int, 8080, "the port serve listens on (init: --external-url's when it is on "
      "this machine)", ("serve", "init")),
    S("webhook_token", str, "", "the bearer token Alertmanager sends (better: a token file)",
      file=False),
    S("webhook_token_file", str, "", "the file whose first line is the webhook token; "
      "`runbook init` writes one", path=True),
    S("viewer_token", str, "", "the token that reads the incident pages (default: one "
      "written to <output_dir>/.viewer-token)", file=False),
    S("session_secret", str, "", "signs the pages' session cookies (default: one written to "
      "<output_dir>/.session-secret)", file=False),
    S("pages_accept_webhook_token", bool, False, "the webhook token also reads the pages",
      file=False),
    S("jupyter_url", str, "", "a JupyterLab serving the checkout: records link to it"),
    S("operators_file", str, "", "who may act on incidents; `runbook operator add` writes it",
      ("serve", *OPERATOR), path=True, shown="operators.json in the output directory"),
    S("notify_config", str, "", "notify.yml: where findings are posted",
      ("serve", "notify test"), path=True, deprecated=(("notify test", "--config"),),
      shown="notify.yml in the output directory, when there"),
    S("retention_days", float, 0.0, "remove records older than this many days, hourly "
      "(0: keep all)", ("serve",)),
    S("reconcile_every", float, 60.0, "seconds between checks of open incidents against "
      "Alertmanager; alerts it no longer has are closed as stale (0: never)", ("serve",)),
    S("stale_after", float, STALE_AFTER_S, "seconds an alert Alertmanager no longer lists "
      "(and no resolution came) stays open before it is closed as stale; keep it above "
      "Alertmanager's group_interval (5 min by default)", ("serve",)),
    # -- incidents and holds -----------------------------------------------------------------
    S("correlation_window", float, CORRELATION_WINDOW_S, "seconds after an incident resolved "
      "during which a slow-burn alert of its family still joins it as context; 0: every "
      "alert its own incident", ("serve",)),
    S("hold_cap", float, HOLD_CAP_S, "seconds a warning's investigation waits at most for a "
      "more severe alert Prometheus holds pending", SERVICE),
    S("hold_margin", float, HOLD_MARGIN_S, "seconds past that alert's for: to wait for "
      "Alertmanager to send it", SERVICE),
    S("correlation_hold", float, 10.0, "seconds a warning's investigation waits when "
      "Prometheus cannot say what is pending", SERVICE),
    # -- runs --------------------------------------------------------------------------------
    S("workers", int, _cpus, "notebook processes, each with a warm kernel",
      ("serve", "worker"), deprecated=(("worker", "--concurrency"),), shown="the CPU count"),
    S("cell_timeout", float, 300.0, "seconds a notebook cell may run",
      (*SERVICE, "run"), deprecated=(("run", "--timeout"),)),
    S("run_timeout", float, 900.0, "seconds a run may take, in all", SERVICE),
    S("verify_delay", float, 300.0, "seconds after resolution to run the follow-up "
      "verification (the broker's visibility timeout)", SERVICE),
    S("lease_grace", float, 30.0, "distributed: seconds past --run-timeout before another "
      "worker may take a run", SERVICE),
    S("dispatch_grace", float, 60.0, "distributed: re-send a run's task when not started "
      "this many seconds after it was due", ("serve",)),
    S("sweep_every", float, 15.0, "distributed: seconds between sweeps for runs to send "
      "again", ("serve",)),
    S("memory_limit_bytes", int, MEMORY_LIMIT_BYTES, "the service's memory limit, for the "
      "recording rule and the notebooks", ("stack start", "init"), written=MEMORY_LIMIT_BYTES),
    S("metrics_profile", str, "contract", "the metrics: the runbook contract (ggen_mcp_*) or "
      "exactly the GGEN MCP server's (mcp_*); rules, receiver and simulator follow",
      ("stack start", "sim run", "init"), choices=("contract", "server"),
      deprecated=(("sim run", "--profile"),), written="contract"),
    # -- the service's own logs --------------------------------------------------------------
    S("log_format", str, "text", "serve's and worker's log lines: one readable line per "
      "event, or one JSON object per line", SERVICE, choices=("text", "json"), metavar="text|json"),
    S("log_file", str, "", "the service's log files, a file or a glob, rotated (and .gz) "
      "ones included, e.g. '/var/log/ggen-mcp/*.log*'", ("init",), metavar="GLOB"),
    S("container", str, "", "the service's Docker container: a name, or label:KEY=VALUE",
      ("init",), flag="--log-container", metavar="NAME|label:K=V"),
    S("log_unit", str, "", "the service's systemd unit, read from the journal (UNIT@DIR: "
      "journal files collected in DIR); the resolution commands restart it", ("init",),
      metavar="UNIT"),
    # -- command options: flags only ---------------------------------------------------------
    S("stack_profile", str, "fast", "the stack's timings: fast (seconds, for the lab) or "
      "production", ("stack start",), flag="--profile", choices=("fast", "production"),
      env=False, file=False),
    S("sim_host", str, "127.0.0.1", "the address the simulator binds", ("sim run",),
      flag="--host", env=False, file=False),
    S("sim_port", int, 9464, "the port the simulator listens on", ("sim run",), flag="--port",
      env=False, file=False),
    S("demo_mode", str, "errors:invalid_input", "the simulator fault the demo injects",
      ("demo",), flag="--mode", env=False, file=False),
    S("demo_timeout", float, 240.0, "seconds the demo waits for the record", ("demo",),
      flag="--timeout", env=False, file=False),
    S("limit", int, 50, "how many incidents to list", ("incidents",), env=False, file=False),
)  # fmt: skip
del S

SETTINGS: dict[str, Setting] = {s.name: s for s in TABLE}


def for_command(command: str) -> list[Setting]:
    """The settings `command` takes as flags, in the table's order."""
    return [s for s in TABLE if command in s.commands]


def parse(setting: Setting, text: str, where: str) -> object:
    """`text` as the setting's type; ValueError naming `where` it came from."""
    if setting.type is bool:
        said = text.strip().lower()
        if said in ("1", "true", "yes", "on"):
            return True
        if said in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{where}={text!r} is not 1 or 0")
    if setting.type in (int, float):
        try:
            return setting.type(text)
        except ValueError:
            kind = "a whole number" if setting.type is int else "a number (seconds, days)"
            raise ValueError(f"{where}={text!r} is not {kind}") from None
    return setting.type(text)


# -- the generated doc --------------------------------------------------------------------
def markdown() -> str:
    """docs/settings.md: every setting with its variable, its runbook.toml key, its flags."""
    lines = [
        "# Settings",
        "",
        "<!-- generated from runbook_lib/contract/settings.py by `make settings-doc`; "
        "do not edit -->",
        "",
        "Every setting is read, first found wins, from its flag, its `RUNBOOK_*` environment "
        "variable, its key in `runbook.toml` (see `runbook init`), and its default. Paths in "
        "`runbook.toml` are read relative to the file's directory. A flag marked *(old)* "
        "still works and prints a one-line note naming the new one.",
    ]
    for s in TABLE:
        where = [
            f"`{s.variable}`" if s.env else "",
            f"`{s.name}` in runbook.toml" if s.file else "",
        ]
        kind = " or ".join(f"`{c}`" for c in s.choices) if s.choices else s.type.__name__
        lines += ["", f"## {s.name}", "", s.help[0].upper() + s.help[1:] + ".", ""]
        lines.append(f"- **Set by:** {', '.join(w for w in where if w) or 'its flag only'}")
        lines.append(f"- **Type:** {kind}; **default:** {s.default_text()}")
        if s.commands:
            lines.append(f"- **Flag:** {_flags(s)}")
    return "\n".join(lines) + "\n"


def _flags(s: Setting) -> str:
    if not s.commands:
        return ""
    names = " or ".join(f"`{f}`" for f in (s.option, *s.aliases))
    old = [f"`{c} {f}` *(old)*" for c, f in s.deprecated]
    commands = ", ".join(c if c != "runbook" else "`runbook` itself" for c in s.commands)
    return f"{names} of {commands}" + (f"; {', '.join(old)}" if old else "")


def main(argv: list[str]) -> int:
    """Write docs/settings.md (or the path given)."""
    path = Path(argv[0]) if argv else ROOT / "docs" / "settings.md"
    path.write_text(markdown())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
