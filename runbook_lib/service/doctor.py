"""`runbook doctor`: before an incident, can the runbooks see, and will the alerts arrive?
Prometheus, its rules and first scrape, the contract metrics (and which runbook panels each
missing one blinds), Alertmanager's route to the receiver, the token, the receiver, Docker,
the Jupyter kernel, the output directory. A failed check names what fixes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbook_lib.contract import paths
from runbook_lib.contract.alerts import RUNBOOKS
from runbook_lib.contract.config import config_path
from runbook_lib.contract.names import NAMES, PROFILES, use
from runbook_lib.evidence.panels import PANELS, Scope
from runbook_lib.evidence.prom import Failure, Prom
from runbook_lib.service import rulefiles
from runbook_lib.service import wiring_checks as wc
from runbook_lib.service.wiring_checks import Check

PROMETHEUS_FIX = ("give its address with --prometheus-url, RUNBOOK_PROMETHEUS_URL or "
                  "prometheus_url in runbook.toml")  # fmt: skip

OVERVIEW = ("error_rate", "latency", "cache_hit_rate", "memory")
RUNBOOK_PANELS: dict[str, tuple[str, ...]] = {
    "service_down": (*OVERVIEW, "up", "request_rate", "component_health"),
    "high_error_rate": (*OVERVIEW, "errors_by_type", "errors_by_tool", "component_health"),
    "high_latency": (*OVERVIEW, "latency_by_tool", "cpu", "cache_evictions"),
    "memory": (*OVERVIEW, "heap", "cache_size", "libreoffice_processes"),
    "cache_hit_rate": (*OVERVIEW, "cache_evictions", "cache_size"),
    "libreoffice_leak": (*OVERVIEW, "libreoffice_processes"),
    "fork_leak": (*OVERVIEW, "active_forks"),
    "fd_leak": (*OVERVIEW, "descriptors"),
    "disk_usage": (*OVERVIEW, "disk"),
    "triage": (*OVERVIEW, "up", "request_rate"),
}


def panel_metrics(name: str) -> set[str]:
    """Contract metric names a panel's queries read (found in its PromQL)."""
    text = " ".join(PANELS[name].queries(Scope("x")).values())
    names = set(NAMES.metrics().values())
    found = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    hist = {n for n in names if f"{n}_bucket" in found}
    return (found & names) | hist


# Checks that inform but do not fail the doctor: without Docker the container checks say so.
ADVISORY = {"docker"}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    missing_metrics: list[str] = field(default_factory=list)
    blind_panels: dict[str, list[str]] = field(default_factory=dict)  # runbook -> panels
    blind_runbooks: list[str] = field(default_factory=list)
    profile: str | None = None  # the metrics profile the Prometheus holds, if any
    blind_causes: dict[str, list[str]] = field(default_factory=dict)  # runbook -> causes
    waiting: bool = False  # Prometheus has not scraped GGEN MCP yet: no metric is judged

    @property
    def ok(self) -> bool:
        return not self.blind_runbooks and all(
            c.ok or c.skipped or c.warn for c in self.checks if c.name not in ADVISORY
        )


def run(
    prometheus_url: str,
    output_dir: Path,
    docker_base_url: str | None = None,
    at: datetime | None = None,
    wiring: wc.Wiring | None = None,
    log_sources: list[str] | None = None,
) -> Report:
    """Every check; with `wiring`, also Alertmanager, the token and the receiver; with
    `log_sources` (runbook.toml's), whether they answer with recent lines."""
    report = Report()
    prom = Prom(prometheus_url, timeout=5)
    at = at or datetime.now(UTC)
    present = _present_metrics(prom, at)
    if present is None:
        report.checks.append(
            Check("prometheus", False, f"{prometheus_url} does not answer", PROMETHEUS_FIX)
        )
        report.blind_runbooks = list(RUNBOOKS)
    else:
        report.checks.append(Check("prometheus", True, f"{prometheus_url} answers"))
        report.profile = detect_profile(present)
        _prometheus_wiring(report, prometheus_url, wiring.links if wiring else "")
        if not report.waiting:
            _judge_metrics(report, prom, present, at)
    if wiring is not None:
        report.checks += wc.alertmanager_checks(wiring)
        report.checks += [wc.token_check(wiring), *wc.receiver_checks(wiring)]
    report.checks += [_docker(docker_base_url), _kernel(), _writable(output_dir)]
    if log_sources is not None:
        report.checks.append(log_check(log_sources, at))
    return report


RECENT = timedelta(hours=24)  # a service's log with no line this long is not where it logs now
LOG_SAMPLE = 1000  # lines enough to say the source is alive, without reading a day of them
LOG_FIX = ("name where the service logs in runbook.toml: log_file (a glob; rotated files "
           "too), container (a name or label:K=V) or log_unit (`runbook init --force "
           "--log-file/--log-container/--log-unit`)")  # fmt: skip


def log_check(specs: list[str], at: datetime) -> Check:
    """The configured log sources answer, and hold a line of the last 24 hours; without
    any, the records cannot judge the causes that need logs (a warning, not a failure)."""
    from runbook_lib.evidence import logs

    if not specs:
        return Check("log source", False, "none configured: records cannot judge the causes that "
                     "need logs", LOG_FIX, warn=True)  # fmt: skip
    source = logs.source_for(specs)
    read = source.read(at - RECENT, at + timedelta(minutes=1), limit=LOG_SAMPLE)
    if read.error:
        return Check("log source", False, read.error, LOG_FIX)
    if not read.lines:
        return Check("log source", False, f"{source.description}: no line in the last 24 h: "
                     "is this where the service logs now?", LOG_FIX)  # fmt: skip
    newest = max((x.ts for x in read.lines if x.ts), default=None)
    when = f", newest {newest:%Y-%m-%d %H:%M} UTC" if newest and not read.truncated else ""
    count = f"{len(read.lines)}{'+' if read.truncated else ''}"
    return Check("log source", True, f"{source.description}: {count} lines in the last 24 h{when}")


def _prometheus_wiring(report: Report, url: str, links: str) -> None:
    """The rules loaded (linking to `links`, rendered by this version), and a first scrape
    of GGEN MCP (before it, no metric is missing: none is there yet, and listing them all
    would only alarm)."""
    base = url.rstrip("/")
    profile = report.profile or NAMES.profile
    rules, error = wc.get_json(f"{base}/api/v1/rules")
    report.checks += (
        wc.rules_checks(rules, profile, links, rulefiles.rules_dir(config_path()))
        if rules is not None
        else [Check("rules", False, f"cannot read {base}/api/v1/rules: {error}", PROMETHEUS_FIX)]
    )  # fmt: skip
    targets, error = wc.get_json(f"{base}/api/v1/targets")
    if targets is None:
        report.checks.append(Check("first scrape", False, f"cannot read targets: {error}",
                                   PROMETHEUS_FIX))  # fmt: skip
        return
    started = wc.started_at(wc.get_json(f"{base}/api/v1/status/runtimeinfo")[0])
    with use(profile):
        scrape = wc.scrape_check(targets, NAMES.job, started, report.profile is not None)
    report.checks.append(scrape.check)
    report.waiting = scrape.waiting


def _judge_metrics(report: Report, prom: Prom, present: set[str], at: datetime) -> None:
    with use(report.profile or NAMES.profile):
        wanted = set(NAMES.metrics().values())
        report.missing_metrics = sorted(m for m in wanted if m not in present)
        _blindness(report, set(report.missing_metrics))
        if report.profile:  # with no series at all there is nothing to judge
            report.blind_causes = _blind_causes(prom, at)


def detect_profile(present: set[str]) -> str | None:
    """The profile whose own series Prometheus holds most of (None: neither's)."""
    own = {name: set(p.metrics().values()) - p.lacked() for name, p in PROFILES.items()}
    score = {name: len(names & present - {"up"} - _node_series()) for name, names in own.items()}
    best = max(score, key=score.get)
    return best if score[best] else None


def _node_series() -> set[str]:
    return {NAMES.fs_avail, NAMES.fs_size}


def _blind_causes(prom: Prom, at: datetime) -> dict[str, list[str]]:
    """Per runbook, the causes its rules cannot judge from the series Prometheus holds now:
    each cause the diagnosis calls unknown for a metric reason (logs and the host aside)."""
    from runbook_lib import diagnosis
    from runbook_lib.evidence import signals

    ev = diagnosis.Evidence(signals.collect(prom, Scope(None), at))
    out: dict[str, list[str]] = {}
    for runbook in diagnosis.RULES:
        blind = [
            v.cause
            for v in diagnosis.diagnose(runbook, ev)
            if v.verdict == "unknown"
            and any("not exposed" in m or "(reads " in m for m in v.missing)
        ]
        if blind:
            out[runbook] = blind
    return out


def _present_metrics(prom: Prom, at: datetime) -> set[str] | None:
    # The service's own series only: Prometheus, the node exporter and the receiver expose
    # process_* series of their own, which say nothing about GGEN MCP.
    names: set[str] = set()
    for query in (
        f'group by (__name__) ({{__name__=~"ggen_mcp_.*|mcp_.*|process_.*|nodejs_.*|up", '
        f'job="{NAMES.job}"}})',
        'group by (__name__) ({__name__=~"node_filesystem_.*"})',
    ):
        res = prom.instant(query, at)
        if res.failure is Failure.UNREACHABLE:
            return None
        names |= set(res.frame["__name__"]) if "__name__" in res.frame else set()
    return names | {n.removesuffix("_bucket") for n in names if n.endswith("_bucket")}


def _blindness(report: Report, missing: set[str]) -> None:
    """A runbook is blind when every panel of its own (beyond the overview) lost its data."""
    for runbook, names in RUNBOOK_PANELS.items():
        lost = [p for p in names if panel_metrics(p) & missing]
        if lost:
            report.blind_panels[runbook] = lost
        own = [p for p in names if p not in OVERVIEW]
        if own and all(p in lost for p in own):
            report.blind_runbooks.append(runbook)


def _docker(base_url: str | None) -> Check:
    from runbook_lib.evidence import containers

    client, error = containers.client(base_url)
    if client is None:
        fix = ("start the Docker engine (or give this user its socket); without one, the "
               "records say the container checks were not made")  # fmt: skip
        return Check("docker", False, f"{error} (container checks will say so)", fix)
    return Check("docker", True, "engine answers")


def _kernel() -> Check:
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    ok = "runbook" in specs or "python3" in specs
    fix = (
        "install ipykernel's kernel into this environment: python -m ipykernel install --sys-prefix"
    )
    return Check("jupyter kernel", ok, ", ".join(sorted(specs)) or "no kernel installed", fix)


def _writable(path: Path) -> Check:
    """Whether `serve` could write its records there, found without creating anything."""
    problem = paths.unwritable_dir(path)
    if problem:
        fix = ("give a directory this user may write with --output, RUNBOOK_OUTPUT_DIR or "
               "output_dir in runbook.toml")  # fmt: skip
        return Check("output directory", False, problem, fix)
    said = f"{path} is writable" if path.is_dir() else f"{path} can be created (serve creates it)"
    return Check("output directory", True, said)


def render(report: Report) -> str:
    lines = [line for c in report.checks for line in _check_lines(c)]
    if report.profile:
        lines.append(
            f"metrics profile   {report.profile} "
            f'(metrics_profile = "{report.profile}" in runbook.toml, or RUNBOOK_METRICS_PROFILE)'
        )
    elif report.checks and report.checks[0].ok and not report.waiting:
        lines.append("metrics profile   none: Prometheus holds neither ggen_mcp_* nor mcp_* series")
    if report.missing_metrics:
        lines.append(
            f"missing metrics ({len(report.missing_metrics)}): " + ", ".join(report.missing_metrics)
        )
    for runbook, lost in report.blind_panels.items():
        lines.append(f"  {runbook}: loses {', '.join(lost)}")
    for runbook, causes in report.blind_causes.items():
        lines.append(f"  {runbook}: cannot judge {', '.join(causes)}")
    if report.blind_runbooks:
        lines.append(
            "runbooks with no data of their own (every panel beyond the overview lost): "
            + ", ".join(report.blind_runbooks)
        )
    return "\n".join(lines)


def _check_lines(c: Check) -> list[str]:
    """A check's status line and, when it failed, what fixes it (a snippet indented)."""
    mark = (
        "skip"
        if c.skipped
        else "ok  "
        if c.ok
        else "warn"
        if c.warn or c.name in ADVISORY
        else "FAIL"
    )
    lines = [f"{mark} {c.name:<17} {c.detail}"]
    if c.fix and not c.ok:
        first, *rest = c.fix.splitlines()
        lines.append(f"     fix: {first}")
        lines += [f"       {line}" for line in rest]
    return lines
