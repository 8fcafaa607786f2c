"""The `runbook` command: its arguments, and which function each subcommand calls."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runbook_lib.cli.commands import (
    _demo,
    _doctor,
    _lint,
    _list,
    _postmortem,
    _prune,
    _run,
    _sim_mode,
    _sim_run,
    _stack_start,
    _stack_status,
    _stack_stop,
    _summary,
)
from runbook_lib.cli.configure import init as _init
from runbook_lib.cli.configure import rules_render as _rules_render
from runbook_lib.cli.errors import UsageError
from runbook_lib.cli.incidents import incidents as _incidents
from runbook_lib.cli.operators import add_parser as _operator_parser
from runbook_lib.cli.serving import (
    _notify_status,
    _notify_test,
    _serve,
    _worker,
)
from runbook_lib.contract.config import ConfigError, Settings, require_file
from runbook_lib.lab import stack


def build_parser() -> argparse.ArgumentParser:
    settings = Settings()
    ap = argparse.ArgumentParser(prog="runbook", description="Executable GGEN MCP runbooks.")
    ap.add_argument("--config", metavar="FILE",
                    help="the runbook.toml to read (RUNBOOK_CONFIG); `runbook init` writes one")  # fmt: skip
    sub = ap.add_subparsers(dest="command", required=True)

    def with_state(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--state-dir",
            type=Path,
            default=settings.state_dir,
            help="where the local stack keeps its data (RUNBOOK_STATE_DIR)",
        )
        return p

    st = sub.add_parser("stack", help="the local monitoring stack")
    st_sub = st.add_subparsers(dest="action", required=True)
    p = with_state(st_sub.add_parser("start", help="start Prometheus, Alertmanager, ..."))
    p.add_argument("--profile", choices=["fast", "production"], default="fast")
    p.add_argument("--receiver", action="store_true", help="also start the webhook receiver")
    p.add_argument(
        "--any-free-port",
        action="store_true",
        help="do not try the conventional ports (9090, 9093, ...)",
    )
    p.add_argument("--memory-limit-bytes", type=int, default=settings.memory_limit_bytes)
    p.add_argument("--metrics-profile", choices=["contract", "server"], default="contract",
                   help="the simulator's metrics: the runbook contract (ggen_mcp_*) or exactly "
                   "the GGEN MCP server's (mcp_*); the stack's rules and receiver follow")  # fmt: skip
    p.set_defaults(func=_stack_start)
    with_state(st_sub.add_parser("stop", help="stop what `start` started")).set_defaults(
        func=_stack_stop
    )
    with_state(st_sub.add_parser("status", help="print the URLs")).set_defaults(func=_stack_status)

    sim = sub.add_parser("sim", help="the GGEN MCP simulator of the local stack")
    sim_sub = sim.add_subparsers(dest="action", required=True)
    p = sim_sub.add_parser("run", help="run the simulator in the foreground")
    p.add_argument("--profile", choices=["contract", "server"], default="contract",
                   help="server: expose exactly the GGEN MCP server's mcp_* series")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9464)
    p.add_argument("--state-dir", type=Path)
    p.set_defaults(func=_sim_run)
    p = with_state(sim_sub.add_parser("mode", help="switch the fault mode"))
    p.add_argument("mode")
    p.set_defaults(func=_sim_mode)

    p = sub.add_parser("serve", help="webhook receiver and notebook workers")
    p.add_argument("--host", default=settings.host,
                   help="address to bind (default 127.0.0.1, this machine only: an Alertmanager "
                   "elsewhere needs 0.0.0.0 behind a TLS proxy; host in runbook.toml)")  # fmt: skip
    p.add_argument("--port", type=int, default=settings.port)
    p.add_argument("--token-file", help="default: RUNBOOK_WEBHOOK_TOKEN(_FILE)")
    p.add_argument("--output", help="records directory and index (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--no-workers", action="store_true", help="only accept and queue alerts")
    p.add_argument(
        "--database",
        default=settings.database_url,
        help="distributed mode: the shared index, e.g. postgresql+psycopg://u:p@host/db "
        "(RUNBOOK_DATABASE_URL); runs go to --broker instead of local workers",
    )
    p.add_argument(
        "--broker",
        default=settings.broker_url,
        help="distributed mode: the Celery broker, e.g. redis://host:6379/0 (RUNBOOK_BROKER_URL)",
    )
    p.add_argument("--dispatch-grace", type=float, default=60.0,
                   help="distributed: re-send a run's task when not started this many seconds "
                   "after it was due")  # fmt: skip
    p.add_argument("--sweep-every", type=float, default=15.0,
                   help="distributed: seconds between sweeps for runs to send again")  # fmt: skip
    p.add_argument("--lease-grace", type=float, default=30.0,
                   help="distributed: the workers' --lease-grace")  # fmt: skip
    p.add_argument("--runbooks-dir", "--notebooks", dest="runbooks_dir",
                   default=settings.runbooks_dir, type=Path,
                   help="the runbook notebooks, pinned at start and again on SIGHUP "
                   "(RUNBOOK_RUNBOOKS_DIR; default: the installed package's)")  # fmt: skip
    p.add_argument("--prometheus-url", help="for the notebooks (RUNBOOK_PROMETHEUS_URL)")
    p.add_argument("--alertmanager-url", default=settings.alertmanager_url,
                   help="for the notebooks and to reconcile open incidents against its "
                   "active alerts (RUNBOOK_ALERTMANAGER_URL)")  # fmt: skip
    p.add_argument("--correlation-window", type=float, default=settings.correlation_window,
                   help="seconds after an incident resolved during which a slow-burn alert of its "
                   "family still joins it as context; 0: every alert its own incident "
                   "(RUNBOOK_CORRELATION_WINDOW, default 900)")  # fmt: skip
    _hold_arguments(p, settings)
    p.add_argument("--reconcile-every", type=float, default=settings.reconcile_every,
                   help="seconds between checks of open incidents against Alertmanager; alerts "
                   "it no longer has are closed as stale (0: never)")  # fmt: skip
    p.add_argument("--stale-after", type=float, default=settings.stale_after,
                   help="seconds an alert Alertmanager no longer lists (and no resolution came) "
                   "stays open before it is closed as stale (default 900)")  # fmt: skip
    p.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell")
    p.add_argument("--run-timeout", type=float, default=900, help="seconds per run, in all")
    p.add_argument(
        "--verify-delay",
        type=float,
        default=300,
        help="seconds after resolution to run the follow-up verification",
    )
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.add_argument(
        "--retention-days",
        type=float,
        default=settings.retention_days,
        help="remove records older than this, hourly (0: keep all; RUNBOOK_RETENTION_DAYS)",
    )
    p.add_argument("--notify-config", default=settings.notify_config,
                   help="notify.yml: where findings are posted (RUNBOOK_NOTIFY_CONFIG; "
                   "default: notify.yml in the output directory, when there)")  # fmt: skip
    p.add_argument("--external-url", default=settings.external_url,
                   help="this server as people reach it, for links in messages and records "
                   "(RUNBOOK_EXTERNAL_URL; default http://HOST:PORT)")  # fmt: skip
    p.add_argument("--operators-file", default=settings.operators_file,
                   help="who may act on incidents: `runbook operator add` writes it "
                   "(RUNBOOK_OPERATORS_FILE; default operators.json in the output directory)")  # fmt: skip
    _log_format_argument(p, settings)
    p.set_defaults(func=_serve)

    nt = sub.add_parser("notify", help="the notifications of notify.yml")
    nt_sub = nt.add_subparsers(dest="action", required=True)
    p = nt_sub.add_parser("test", help="send a sample to every target and say which answered")
    p.add_argument("--config", help="notify.yml (default: RUNBOOK_NOTIFY_CONFIG, or the output's)")
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.set_defaults(func=_notify_test)
    p = nt_sub.add_parser("status", help="the outbox: what was sent, what waits, what failed")
    p.add_argument("--output", help="records directory and index (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--database", default=settings.database_url)
    p.set_defaults(func=_notify_status)

    p = sub.add_parser(
        "worker", help="distributed mode: run notebooks for the runs on --broker (Celery)"
    )
    p.add_argument("--database", default=settings.database_url,
                   required=not settings.database_url,
                   help="the shared index (RUNBOOK_DATABASE_URL)")  # fmt: skip
    p.add_argument("--broker", default=settings.broker_url,
                   required=not settings.broker_url,
                   help="the Celery broker (RUNBOOK_BROKER_URL)")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                   help="pool processes, each with a warm kernel")  # fmt: skip
    p.add_argument("--name", default="", help="this worker's name in Celery")
    p.add_argument("--output", help="the records directory all machines share (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--prometheus-url", help="for the notebooks (RUNBOOK_PROMETHEUS_URL)")
    p.add_argument("--alertmanager-url", default=settings.alertmanager_url,
                   help="the records' Alertmanager links (RUNBOOK_ALERTMANAGER_URL)")  # fmt: skip
    p.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell")
    p.add_argument("--run-timeout", type=float, default=900, help="seconds per run, in all")
    p.add_argument("--verify-delay", type=float, default=300,
                   help="the receivers' --verify-delay (the broker's visibility timeout)")  # fmt: skip
    p.add_argument("--param", action="append", default=[], metavar="K=V")
    p.add_argument("--runbooks-dir", "--notebooks", dest="runbooks_dir",
                   default=settings.runbooks_dir, type=Path,
                   help="the runbook notebooks, pinned at start and again on SIGHUP "
                   "(RUNBOOK_RUNBOOKS_DIR; default: the installed package's)")  # fmt: skip
    _hold_arguments(p, settings)
    p.add_argument("--lease-grace", type=float, default=30.0,
                   help="seconds past --run-timeout before another worker may take a run")  # fmt: skip
    _log_format_argument(p, settings)
    p.set_defaults(func=_worker)

    p = sub.add_parser("incidents", help="list incidents, newest first")
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--database", default=settings.database_url,
                   help="distributed mode: the shared index (RUNBOOK_DATABASE_URL)")  # fmt: skip
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument("--message", metavar="ID|FINGERPRINT",
                   help="the runbook's message for the team about this incident, as it stands "
                   "now, with the link to its record")  # fmt: skip
    p.add_argument("--mitigated", metavar="ID|FINGERPRINT",
                   help="record that a mitigation is in place (the message then says Mitigating)")  # fmt: skip
    p.set_defaults(func=_incidents)

    _operator_parser(sub, settings)

    p = sub.add_parser("postmortem", help="a post-mortem draft of an incident")
    p.add_argument("records", nargs="+", metavar="INCIDENT|RECORD",
                   help="an incident id of the index (12 or #12), or its record directories")  # fmt: skip
    p.add_argument("--output", help="default: <records dir>/postmortem-<first record>")
    p.add_argument("--records-dir", help="the records and the index, for an incident id "
                   "(RUNBOOK_OUTPUT_DIR)")  # fmt: skip
    p.add_argument("--database", default=settings.database_url,
                   help="distributed mode: the shared index (RUNBOOK_DATABASE_URL)")  # fmt: skip
    p.add_argument("--prometheus-url", default=settings.prometheus_url,
                   help="asked when the alerts went pending (RUNBOOK_PROMETHEUS_URL)")  # fmt: skip
    p.set_defaults(func=_postmortem)

    p = sub.add_parser("prune", help="remove records older than the retention")
    p.add_argument("--days", type=float, required=True)
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_prune)

    sub.add_parser("list", help="alerts -> notebooks").set_defaults(func=_list)

    p = sub.add_parser("run", help="run one runbook now; prints the record directory")
    p.add_argument("alertname", nargs="?")
    p.add_argument(
        "--from-record",
        metavar="RECORD",
        help="re-execute RECORD's runbook against its saved data instead of Prometheus",
    )
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--annotation", action="append", default=[], metavar="K=V")
    p.add_argument("--prometheus-url")
    p.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="any notebook parameter; JSON values are parsed",
    )
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--timeout", type=float, default=600, help="per-cell timeout, seconds")
    p.set_defaults(func=_run)

    p = sub.add_parser("lint", help="check runbook notebooks against the notebook contract")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="notebooks or directories (default: the runbooks of the package, "
                   "the checkout's notebooks/ when installed from it)")  # fmt: skip
    p.set_defaults(func=_lint)

    p = sub.add_parser("summary", help="print a record's summary")
    p.add_argument("record")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_summary)

    p = sub.add_parser("doctor", help="preflight: what is reachable, which metrics exist")
    p.add_argument("--prometheus-url", help="default: RUNBOOK_PROMETHEUS_URL or :9090")
    p.add_argument("--alertmanager-url", help="check its route to the receiver (default: "
                   "RUNBOOK_ALERTMANAGER_URL; none: skipped)")  # fmt: skip
    p.add_argument("--receiver-url", help="the receiver as Alertmanager reaches it (default: "
                   "RUNBOOK_EXTERNAL_URL, else http://HOST:PORT of runbook.toml)")  # fmt: skip
    p.set_defaults(func=_doctor)

    p = sub.add_parser("init", help="write runbook.toml and a webhook token; print the wiring")
    p.add_argument("--config", help="where to write it (default: RUNBOOK_CONFIG, else "
                   "/etc/runbook/runbook.toml as root, else ~/.config/runbook/runbook.toml)")  # fmt: skip
    p.add_argument("--prometheus-url", default="http://127.0.0.1:9090")
    p.add_argument("--alertmanager-url", default="",
                   help="yours, e.g. http://alertmanager:9093: records link to it, doctor checks its "
                   "route, serve closes stale incidents against it (none: all of that is off)")  # fmt: skip
    p.add_argument("--output", help="records and index (default: /var/lib/runbook as root, "
                   "else ~/.local/share/runbook)")  # fmt: skip
    p.add_argument("--external-url", default="",
                   help="this service as Alertmanager and people reach it: every rule's "
                   "runbook_url and the webhook lead here; when it is http on this machine, "
                   "serve listens on its port (default http://127.0.0.1:8080)")  # fmt: skip
    p.add_argument("--host", help="the address `runbook serve` binds (default 127.0.0.1; "
                   "0.0.0.0 for an --external-url naming this machine to others)")  # fmt: skip
    p.add_argument("--port", type=int, help="the port `runbook serve` listens on (default: "
                   "--external-url's when on this machine, else 8080 behind your proxy)")  # fmt: skip
    p.add_argument("--memory-limit-bytes", type=int, default=settings.memory_limit_bytes,
                   help="the service's memory limit, for the recording rule and the notebooks "
                   "(default 4 GiB)")  # fmt: skip
    p.add_argument("--metrics-profile", choices=["contract", "server"], default="contract",
                   help="server: the real GGEN MCP server's mcp_* metrics (other recording rules)")  # fmt: skip
    p.add_argument("--log-file", metavar="GLOB",
                   help="the service's log files, rotated ones included, e.g. "
                   "'/var/log/ggen-mcp/*.log*'")  # fmt: skip
    p.add_argument("--log-container", metavar="NAME|label:K=V",
                   help="the service's Docker container, by name or by label")  # fmt: skip
    p.add_argument("--log-unit", metavar="UNIT", help="the service's systemd unit (journald)")
    p.add_argument("--force", action="store_true", help="write over an existing config file")
    p.set_defaults(func=_init)

    p = sub.add_parser("rules", help="the Prometheus rule files rendered for this installation")
    r_sub = p.add_subparsers(dest="action", required=True)
    p = r_sub.add_parser("render", help="rewrite them for the settings now (external_url, "
                         "memory_limit_bytes, metrics_profile); after every upgrade")  # fmt: skip
    p.add_argument("--dir", help="where (default: rules/ beside runbook.toml)")
    p.set_defaults(func=_rules_render)

    p = with_state(sub.add_parser("demo", help="the whole chain on a local stack"))
    p.add_argument("--mode", default="errors:invalid_input", help="simulator fault to inject")
    p.add_argument("--output", help="records directory (RUNBOOK_OUTPUT_DIR)")
    p.add_argument("--timeout", type=float, default=240.0)
    p.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    p.add_argument("--escalate", action="store_true",
                   help="an error rate that worsens: a warning, then a critical a minute later "
                   "that escalates the incident")  # fmt: skip
    p.set_defaults(func=_demo)
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
    except stack.StackError as exc:
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


def _hold_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """How a warning's investigation waits for a more severe alert (service/holds.py)."""
    p.add_argument("--hold-cap", type=float, default=settings.hold_cap,
                   help="seconds a warning's investigation waits at most for a more severe "
                   "alert Prometheus holds pending (RUNBOOK_HOLD_CAP, default 600)")  # fmt: skip
    p.add_argument("--hold-margin", type=float, default=settings.hold_margin,
                   help="seconds past that alert's for: to wait for Alertmanager to send it "
                   "(RUNBOOK_HOLD_MARGIN, default 45)")  # fmt: skip
    p.add_argument("--correlation-hold", type=float, default=settings.correlation_hold,
                   help="seconds a warning's investigation waits when Prometheus cannot say "
                   "what is pending (RUNBOOK_CORRELATION_HOLD, default 10)")  # fmt: skip


def _log_format_argument(p: argparse.ArgumentParser, settings: Settings) -> None:
    p.add_argument("--log-format", default=settings.log_format, metavar="text|json",
                   help="one readable line per event, or one JSON object per line "
                   "(RUNBOOK_LOG_FORMAT, default text)")  # fmt: skip
