"""The local monitoring stack: Prometheus, Alertmanager, node exporter, the GGEN MCP
simulator and, when asked, the runbook webhook receiver, all on loopback, with their data
under one state directory. `stop` ends exactly the processes recorded there.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from runbook_lib.contract.config import Settings
from runbook_lib.lab import deploy, pids
from runbook_lib.lab.errors import StackError
from runbook_lib.lab.ports import HOST, free_port, port_free

log = logging.getLogger("runbook.lab")

DEFAULT_PORTS = {
    "prometheus": 9090,
    "alertmanager": 9093,
    "node_exporter": 9100,
    "ggen_mcp": 9464,
    "runbook": 8080,
}


def choose_ports(preferred: dict[str, int] | None = None, *, any_free: bool = False) -> dict:
    """The preferred (conventional) port of each component when free, else a free one."""
    ports: dict[str, int] = {}
    for name, port in {**DEFAULT_PORTS, **(preferred or {})}.items():
        ok = not any_free and port not in ports.values() and port_free(port)
        ports[name] = port if ok else free_port()
    return ports


@dataclass
class StackInfo:
    """What a started stack is: written to STATE/stack.json for the scripts and the CLI."""

    state_dir: str
    profile: str
    ports: dict[str, int]
    token_file: str
    sim_log: str
    temp_dir: str
    receiver: bool
    urls: dict[str, str] = field(default_factory=dict)
    output_dir: str = ""  # where the receiver files records

    @classmethod
    def load(cls, state_dir: Path) -> StackInfo:
        path = state_dir / "stack.json"
        if not path.exists():
            raise StackError(f"no stack is running under {state_dir} (no stack.json)")
        return cls(**json.loads(path.read_text()))


@dataclass
class StackOptions:
    state_dir: Path
    profile: str = "fast"
    ports: dict[str, int] | None = None
    any_free_port: bool = False
    memory_limit_bytes: int | None = None
    receiver: bool = False
    output_dir: Path | None = None  # the receiver's records; default RUNBOOK_OUTPUT_DIR
    verify_delay: float = 300.0  # the receiver's follow-up delay after resolution
    workers: int | None = None
    prometheus_url: str | None = None  # use this Prometheus instead of starting one
    webhook_url: str | None = None
    sim_args: list[str] = field(default_factory=list)
    start_timeout: float = 30.0
    notify_config: Path | None = None  # the receiver's notify.yml
    metrics_profile: str = "contract"  # "server": the simulator speaks the server's mcp_*
    window_factor: int = 1  # divides the rules' range windows (tests whose faults come and go)
    receiver_args: list[str] = field(default_factory=list)  # more `runbook serve` flags


# A port chosen free can be taken before its component binds it, by a process that does
# not respect the claims of `ports.free_port`: the stack then starts once more on other ports.
PORT_TAKEN = "address already in use"
FIRST_ATTEMPT = "logs.first-attempt"  # the logs of a start given up for a taken port


def start(opts: StackOptions) -> StackInfo:
    """Start every component and wait until each answers; on failure stop what started.
    A component that exited because its port was taken is given one more start, on other
    ports (the first attempt's logs are kept in logs.first-attempt/)."""
    state = opts.state_dir.resolve()
    if (state / "stack.json").exists() and pids.records(state / "pids"):
        raise StackError(f"a stack is already running under {state}; stop it first")
    shutil.rmtree(state / FIRST_ATTEMPT, ignore_errors=True)  # an earlier start's
    try:
        return _start_once(state, opts)
    except StackError as exc:
        taken = _port_taken(str(exc))
        if taken is None:
            raise
        log.warning("%s; starting the stack again on other ports", taken)
        (state / "logs").rename(state / FIRST_ATTEMPT)
        return _start_once(state, opts)


def _port_taken(error: str) -> str | None:
    """'NAME exited while starting: <its log line>' when a component's log says its port
    was taken, else None (any other failure, a component that did not answer)."""
    head, *tail = error.splitlines()
    if not head.endswith(" exited while starting:"):
        return None
    said = next((line.strip() for line in tail if PORT_TAKEN in line.lower()), None)
    return f"{head} {said}" if said else None


def _start_once(state: Path, opts: StackOptions) -> StackInfo:
    """One start on freshly chosen ports, from empty data."""
    _fresh(state)
    ports = choose_ports(opts.ports, any_free=opts.any_free_port)
    token_file = state / "webhook-token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(24) + "\n")
        token_file.chmod(0o600)
    webhook_url = opts.webhook_url or f"http://{HOST}:{ports['runbook']}/alerts"
    profile = deploy.write_profile(
        state / "config",
        targets(ports),
        webhook_url=webhook_url,
        token_file=token_file,
        fast=opts.profile == "fast",
        memory_limit_bytes=opts.memory_limit_bytes,
        metrics_profile=opts.metrics_profile,
        window_factor=opts.window_factor,
    )
    info = StackInfo(
        state_dir=str(state),
        profile=opts.profile,
        ports=ports,
        token_file=str(token_file),
        sim_log=str(state / "sim" / "ggen-mcp.log"),
        temp_dir=str(state / "sim" / "tmp"),
        receiver=opts.receiver,
        urls=urls(ports, opts.prometheus_url),
        output_dir=str((opts.output_dir or Settings().output_dir).resolve()),
    )
    try:
        env = {**os.environ, "RUNBOOK_METRICS_PROFILE": opts.metrics_profile}
        _start_together(state, _components(info, profile, opts), env, opts.start_timeout)
    except BaseException:
        stop(state)  # the simulator's helpers too, before `_fresh` forgets them
        raise
    (state / "stack.json").write_text(json.dumps(asdict(info), indent=2))
    return info


RUN_DATA = ("prometheus", "alertmanager", "config", "logs", "sim", "stack.json")


def _fresh(state: Path) -> None:
    """Each start begins with empty data: old samples must not fire or resolve new alerts."""
    state.mkdir(parents=True, exist_ok=True)
    for name in RUN_DATA:
        path = state / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def targets(ports: dict[str, int]) -> deploy.Targets:
    """What the Prometheus and Alertmanager profile point at, on loopback."""
    return deploy.Targets(
        ggen_mcp=f"{HOST}:{ports['ggen_mcp']}",
        node_exporter=f"{HOST}:{ports['node_exporter']}",
        runbook=f"{HOST}:{ports['runbook']}",
        alertmanager=f"{HOST}:{ports['alertmanager']}",
    )


def urls(ports: dict[str, int], prometheus_url: str | None = None) -> dict[str, str]:
    return {
        "prometheus": (prometheus_url or f"http://{HOST}:{ports['prometheus']}").rstrip("/"),
        "alertmanager": f"http://{HOST}:{ports['alertmanager']}",
        "node_exporter": f"http://{HOST}:{ports['node_exporter']}/metrics",
        "ggen_mcp": f"http://{HOST}:{ports['ggen_mcp']}",
        "runbook": f"http://{HOST}:{ports['runbook']}",
    }


def _components(info: StackInfo, profile: deploy.Profile, opts: StackOptions) -> list:
    state, p, u = Path(info.state_dir), info.ports, info.urls
    py = sys.executable
    memory = opts.memory_limit_bytes or 4 << 30
    comps = [
        (
            "ggen-mcp",
            [
                py,
                "-m",
                "runbook_lib.lab.sim",
                "--host",
                HOST,
                "--port",
                str(p["ggen_mcp"]),
                "--state-dir",
                str(state / "sim"),
                "--memory-limit-bytes",
                str(memory),
                "--quiet",
                "--profile",
                opts.metrics_profile,
                *opts.sim_args,
            ],
            f"{u['ggen_mcp']}/health",
        ),
        (
            "node-exporter",
            [
                _bin("prometheus-node-exporter"),
                f"--web.listen-address={HOST}:{p['node_exporter']}",
                "--collector.disable-defaults",
                "--collector.filesystem",
                "--collector.meminfo",
                "--collector.loadavg",
                "--collector.cpu",
                "--collector.stat",
            ],
            u["node_exporter"],
        ),
        (
            "alertmanager",
            [
                _bin("prometheus-alertmanager"),
                f"--config.file={profile.alertmanager_config}",
                f"--storage.path={state / 'alertmanager'}",
                f"--web.listen-address={HOST}:{p['alertmanager']}",
                "--cluster.listen-address=",
                f"--web.external-url={u['alertmanager']}",
            ],
            f"{u['alertmanager']}/-/ready",
        ),
        (
            "prometheus",
            [
                _bin("prometheus"),
                f"--config.file={profile.prometheus_config}",
                f"--storage.tsdb.path={state / 'prometheus'}",
                f"--web.listen-address={HOST}:{p['prometheus']}",
                f"--web.external-url={u['prometheus']}",
                "--storage.tsdb.retention.time=2d",
            ],
            f"{u['prometheus']}/-/ready",
        ),
    ]
    if opts.prometheus_url:  # someone else's Prometheus; its config is theirs
        comps = [c for c in comps if c[0] != "prometheus"]
    if info.receiver:
        comps.append(
            (
                "runbook",
                [
                    py,
                    "-m",
                    "runbook_lib.cli",
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(p["runbook"]),
                    "--token-file",
                    info.token_file,
                    "--output",
                    info.output_dir,
                    "--prometheus-url",
                    u["prometheus"],
                    "--alertmanager-url",
                    u["alertmanager"],
                    "--verify-delay",
                    str(opts.verify_delay),
                    "--workers",
                    str(opts.workers or os.cpu_count() or 2),
                    "--param",
                    "live=true",
                    "--param",
                    f"log_file={info.sim_log}",
                    "--param",
                    f"temp_dir={info.temp_dir}",
                    "--param",
                    f"memory_limit_bytes={memory}",
                    *(["--notify-config", str(opts.notify_config)] if opts.notify_config else []),
                    *opts.receiver_args,
                ],
                f"{u['runbook']}/health",
            )
        )
    return comps


# Started once every other component but the receiver answers: a target down at
# Prometheus's first scrape fires GgenMcpServiceDown (the fast profile's `for:` is 2 s).
# The receiver is not alerted on by being down, so its start (seconds of imports and warm
# workers) overlaps Prometheus's.
SCRAPES_THE_OTHERS, NOT_ALERTED_ON = "prometheus", "runbook"


def _start_together(state: Path, comps: list, env: dict[str, str], timeout: float) -> None:
    """Launch the components side by side and wait until each answers: the others at
    once, Prometheus when they (but the receiver) answer. One after the other, each start
    waited on the last one's readiness polls and imports."""
    late = [c for c in comps if c[0] == SCRAPES_THE_OTHERS]
    first = [c for c in comps if c[0] != SCRAPES_THE_OTHERS]
    for name, cmd, _ in first:
        _launch(state, name, cmd, env)
    for name, _, ready in first:
        if name != NOT_ALERTED_ON:
            _wait_ready(state, name, ready, timeout)
    for name, cmd, ready in late:
        _launch(state, name, cmd, env)
        _wait_ready(state, name, ready, timeout)
    for name, _, ready in first:
        if name == NOT_ALERTED_ON:
            _wait_ready(state, name, ready, timeout)


def _bin(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} is not installed: run `make setup` (Debian packages)")
    return path


def _launch(state: Path, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            cwd=state,
            env=env,
        )
    pids.record(state / "pids", proc.pid, name)


def _wait_ready(state: Path, name: str, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    proc = next((r for r in pids.records(state / "pids") if r.name == name), None)
    while time.monotonic() < deadline:
        if proc is None or proc.process() is None or proc.process().status() == "zombie":
            raise StackError(f"{name} exited while starting:\n{_tail(state, name)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise StackError(f"{name} did not answer {url} within {timeout:.0f}s:\n{_tail(state, name)}")


def _tail(state: Path, name: str, lines: int = 15) -> str:
    path = state / "logs" / f"{name}.log"
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def stop(state_dir: Path) -> list[pids.PidRecord]:
    """Stop every process recorded under the state directory (the simulator's helpers too)."""
    state = state_dir.resolve()
    stopped = pids.stop_all(state / "pids")
    stopped += pids.stop_all(state / "sim" / "pids")
    (state / "stack.json").unlink(missing_ok=True)
    return stopped


def set_mode(info: StackInfo, mode: str) -> dict:
    """Switch the simulator's fault mode through its admin endpoint."""
    try:
        resp = httpx.post(f"{info.urls['ggen_mcp']}/admin/mode", params={"mode": mode}, timeout=5)
    except httpx.HTTPError as exc:
        raise StackError(f"simulator at {info.urls['ggen_mcp']} did not answer: {exc}") from exc
    if resp.status_code != 200:
        raise StackError(resp.json().get("detail", resp.text))
    return resp.json()
