"""What a run could not see, said so that the operator knows what supplies it: a missing
source names the `--param` (of `runbook run` and `runbook serve`) and notebook parameter that
give it, and a Prometheus that did not answer is stated once for the run, not per panel."""

from __future__ import annotations

import re

from runbook_lib.notebook.parameters import Params

# How `Prom` says it got no answer at all (connection refused, timeout, unknown host).
UNREACHABLE = re.compile(r"Prometheus at (?P<url>\S+) is unreachable \((?P<why>.*)\)")
NO_SERVICE_PORT = (
    "host: the service's process is unknown: the alert has no instance label HOST:PORT to "
    "find it by its port; pass --label instance=HOST:PORT (notebook parameter labels)"
)


def unanswered(url: str, why: str) -> str:
    """The one statement of a degraded run: which Prometheus was silent, and where it is set."""
    return (
        f"Prometheus at {url} did not answer: {why}; every figure from it is missing "
        "(the address: --prometheus-url, RUNBOOK_PROMETHEUS_URL, notebook parameter "
        "prometheus_url)"
    )


NOT_GIVEN = {
    "no log source was given": "name the service's logs in runbook.toml (log_file, container "
    "or log_unit; `runbook init --log-file/--log-container/--log-unit`), or pass --param "
    "log_file=PATH or --param container=NAME",
    "no container was given": "name it in runbook.toml (container) or pass --param container=NAME",
}
REPLAY_HOST = (
    "pass --param host_snapshot=FILE, a snapshot taken then (notebook parameter host_snapshot)"
)


def source_hint(part: str, why: str, p: Params) -> str:
    """What supplies a missing source (logs, host, container): the `--param` of `runbook run`
    and `runbook serve`, named by its notebook parameter. Empty when none can: a replay
    does not read the host of today on purpose, save from a snapshot taken then."""
    if why in NOT_GIVEN:
        return NOT_GIVEN[why]
    if why.startswith("replaying a past incident"):
        return REPLAY_HOST if part == "host" else ""
    name = {"logs": "log_file" if p.log_file else "container", "host": "host_snapshot"}
    given = name.get(part, part)
    where = f"{given} in runbook.toml or " if given in ("log_file", "container") else ""
    return f"check {where}--param {given} (notebook parameter {given})"
