"""The monitoring configuration of deploy/, its checks, and profiles derived from it.

A profile is deploy/ rewritten for one local stack: real ports, absolute paths, and for the
`fast` profile shorter intervals and `for` durations (same expressions), so alerts fire in
seconds in tests and the demo. There is no second hand-kept copy of any rule.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from runbook_lib.contract.config import Settings
from runbook_lib.service import rulefiles

FAST_FACTOR = 30  # `for` durations are divided by this in the fast profile
FAST_MIN_FOR_S = 2
FAST_INTERVAL = "1s"
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class Targets:
    """host:port of everything the profile points at."""

    ggen_mcp: str = "localhost:9464"
    node_exporter: str = "localhost:9100"
    runbook: str = "localhost:8080"
    alertmanager: str = "localhost:9093"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m` or `90s`."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    return f"{int(seconds)}s" if seconds >= 1 else f"{int(seconds * 1000)}ms"


def fast_for(text: str) -> str:
    return format_duration(max(FAST_MIN_FOR_S, round(parse_duration(text) / FAST_FACTOR)))


def rules_profile(
    rules: dict, *, fast: bool, memory_limit_bytes: int | None, runbook_base: str | None = None,
    window_factor: int = 1, template: Path | None = None,
) -> dict:  # fmt: skip
    """One rule file rendered for this stack (`rulefiles.render`: its receiver in every
    `runbook_url`, its memory limit; with `template`, the info series), then its timings:
    the `fast` profile's intervals and `for`, and `window_factor`, which divides the range
    windows of the expressions too (`[5m]` -> `[10s]` for 30), for tests whose faults must
    come and go in seconds (an alert resolves as soon as its window forgets the fault)."""
    rulefiles.render(
        rules,
        runbook_base=runbook_base or rulefiles.TEMPLATE_BASE,
        memory_limit_bytes=memory_limit_bytes,
        file=template.name if template else "",
        rules_version=rulefiles.version(template) if template else "",
    )
    for group in rules["groups"]:
        if fast:
            group["interval"] = FAST_INTERVAL
        for rule in group["rules"]:
            if fast and "for" in rule:
                rule["for"] = fast_for(rule["for"])
            if window_factor > 1:
                rule["expr"] = shorter_windows(str(rule["expr"]), window_factor)
    return rules


def shorter_windows(expr: str, factor: int) -> str:
    """`expr` with each range window `[D]` divided by `factor` (at least 2 s)."""

    def short(m: re.Match) -> str:
        return f"[{format_duration(max(FAST_MIN_FOR_S, parse_duration(m[1]) / factor))}]"

    return re.sub(r"\[(\d+(?:ms|s|m|h|d|w|y))\]", short, expr)


def prometheus_profile(cfg: dict, targets: Targets, rule_files: list[Path], *, fast: bool) -> dict:
    by_job = {
        "ggen-mcp": targets.ggen_mcp,
        "node-exporter": targets.node_exporter,
        "runbook": targets.runbook,
    }
    for job in cfg["scrape_configs"]:
        job["static_configs"] = [{"targets": [by_job[job["job_name"]]]}]
    cfg["rule_files"] = [str(p) for p in rule_files]
    cfg["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [targets.alertmanager]}]}]
    if fast:
        cfg["global"].update(
            scrape_interval=FAST_INTERVAL,
            scrape_timeout=FAST_INTERVAL,
            evaluation_interval=FAST_INTERVAL,
        )
    return cfg


def alertmanager_profile(cfg: dict, webhook_url: str, token_file: Path, *, fast: bool) -> dict:
    for receiver in cfg["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    if fast:
        cfg["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
    return cfg


@dataclass(frozen=True)
class Profile:
    prometheus_config: Path
    alertmanager_config: Path


def write_profile(
    dest: Path,
    targets: Targets,
    *,
    webhook_url: str,
    token_file: Path,
    fast: bool = True,
    memory_limit_bytes: int | None = None,
    deploy_dir: Path | None = None,
    metrics_profile: str = "contract",
    window_factor: int = 1,
) -> Profile:
    """Write prometheus.yml, rules/ and alertmanager.yml for one stack into `dest`; for the
    server metrics profile, the recording rules that derive the alerts' series from mcp_*."""
    src = deploy_dir or Settings().deploy_dir
    prom = _load(src / "prometheus.yml")
    if metrics_profile == "server":
        prom["rule_files"] = [
            "rules/server/recording.yml" if n == "rules/recording.yml" else n
            for n in prom["rule_files"]
        ]
    (dest / "rules").mkdir(parents=True, exist_ok=True)
    rule_files = []
    for name in prom["rule_files"]:
        out = dest / "rules" / Path(name).name
        rules = rules_profile(
            _load(src / name),
            fast=fast,
            memory_limit_bytes=memory_limit_bytes,
            runbook_base=webhook_url.removesuffix("/alerts"),
            window_factor=window_factor,
            template=src / name,
        )
        _dump(out, rules)
        rule_files.append(out)
    prom_out = dest / "prometheus.yml"
    _dump(prom_out, prometheus_profile(prom, targets, rule_files, fast=fast))
    am_out = dest / "alertmanager.yml"
    am = alertmanager_profile(_load(src / "alertmanager.yml"), webhook_url, token_file, fast=fast)
    _dump(am_out, am)
    return Profile(prom_out, am_out)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _dump(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=120))


@dataclass(frozen=True)
class CheckResult:
    command: list[str]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _run(cmd: list[str], cwd: Path) -> CheckResult:
    exe = shutil.which(cmd[0])
    if exe is None:
        return CheckResult(cmd, 127, f"{cmd[0]} not found: run `make setup`")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    return CheckResult(cmd, proc.returncode, proc.stdout + proc.stderr)


def check(deploy_dir: Path | None = None) -> list[CheckResult]:
    """promtool and amtool over deploy/, and over a fast profile generated from it."""
    src = deploy_dir or Settings().deploy_dir
    results = [
        _run(["promtool", "check", "config", "prometheus.yml"], src),
        _run(
            [
                "promtool",
                "check",
                "rules",
                *sorted(str(p.relative_to(src)) for p in (src / "rules").rglob("*.yml")),
            ],
            src,
        ),
        _run(
            [
                "promtool",
                "test",
                "rules",
                *sorted(str(p.relative_to(src)) for p in (src / "tests").glob("*.yml")),
            ],
            src,
        ),
        _run(["amtool", "check-config", "alertmanager.yml"], src),
    ]
    with tempfile.TemporaryDirectory(prefix="runbook-profile-") as tmp:
        dest = Path(tmp)
        token = dest / "webhook-token"
        token.write_text("check\n")
        prof = write_profile(
            dest,
            Targets(),
            webhook_url="http://127.0.0.1:8080/alerts",
            token_file=token,
            deploy_dir=src,
        )
        results += [
            _run(["promtool", "check", "config", str(prof.prometheus_config)], dest),
            _run(["amtool", "check-config", str(prof.alertmanager_config)], dest),
        ]
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["check"]:
        print("usage: python -m runbook_lib.lab.deploy check", file=sys.stderr)
        return 2
    failed = 0
    for res in check():
        mark = "ok  " if res.ok else "FAIL"
        print(f"{mark} {' '.join(res.command)}")
        if not res.ok:
            failed += 1
            print(res.output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
