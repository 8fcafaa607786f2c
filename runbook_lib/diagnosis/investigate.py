"""Gather the evidence of one runbook run: Prometheus signals, the logs of the window, the
host (live or a snapshot) and the container, each one allowed to fail on its own."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runbook_lib.diagnosis.constants import MIN_KEYED_MISSES
from runbook_lib.diagnosis.model import Evidence, LogFacts
from runbook_lib.evidence import host_state as host_snapshot
from runbook_lib.evidence import logs, signals
from runbook_lib.evidence.panels import Scope
from runbook_lib.evidence.prom import Prom


@dataclass(frozen=True)
class Inputs:
    """Where the evidence comes from; empty strings mean "not given"."""

    prometheus_url: str
    scope: Scope
    at: datetime
    lookback_minutes: int = 15
    # a path or glob, "file:/p", "container:NAME", "journal:UNIT"; several, read together; or
    # a source of its own (a record's saved lines)
    log_source: str | list[str] | logs.LogSource = ""
    host_snapshot: str = ""  # a JSON snapshot to use instead of the live host
    live: bool = False
    container: str = ""
    service_port: int | None = None
    temp_dir: str = "/tmp"
    watch_dirs: tuple[str, ...] = ()
    prom: Any = None  # a client to use (recording or replaying) instead of prometheus_url


def gather(inp: Inputs) -> Evidence:
    prom = inp.prom or Prom(inp.prometheus_url)
    ev = Evidence(signals.collect(prom, inp.scope, inp.at, inp.lookback_minutes))
    start = inp.at - timedelta(minutes=inp.lookback_minutes)
    ev.logs, ev.logs_missing = read_logs(inp.log_source, start, inp.at)
    ev.host, ev.host_missing = _host(inp, start)
    ev.container, ev.container_missing = _container(inp)
    return ev


def read_logs(
    spec: str | list[str] | logs.LogSource, start: datetime, end: datetime
) -> tuple[LogFacts | None, str]:
    if not spec:
        return None, "no log source was given"
    read = (logs.source_for(spec) if isinstance(spec, str | list) else spec).read(start, end)
    if read.error:
        return None, read.error
    return log_facts(read), ""


def log_facts(read: logs.LogRead) -> LogFacts:
    m = logs.match(read.lines)
    errors = sum(n for level, n in m.levels.items() if level in logs.ERROR_LEVELS)
    shares = {}
    for pid in m.counts:
        value = m.share(pid) if errors else 0.0
        shares[pid] = 0.0 if math.isnan(value) else value
    cache = logs.cache_key_stats(read.lines)
    kpw = cache["keys_per_workbook"]
    return LogFacts(
        counts=dict(m.counts),
        error_lines=errors,
        shares=shares,
        keys_per_workbook=None
        if math.isnan(kpw) or cache["identified"] < MIN_KEYED_MISSES
        else kpw,
        distinct_workbook_ratio=(
            cache["workbooks"] / cache["identified"]
            if cache["identified"] >= MIN_KEYED_MISSES
            else None
        ),
        source=read.source,
        cache_keys=cache if cache["identified"] >= MIN_KEYED_MISSES else None,
    )


def _host(inp: Inputs, start: datetime) -> tuple[dict | None, str]:
    """The host now; its kernel's OOM kills only from `start` on, as the logs: a kill before
    the window (another process's, hours ago) says nothing of this incident."""
    if inp.host_snapshot:
        path = Path(inp.host_snapshot)
        if not path.exists():
            return None, f"host snapshot {path} does not exist"
        return host_snapshot.load(path), ""
    if not inp.live:
        return None, "replaying a past incident (live=False): the host now is not the host then"
    return host_snapshot.take(
        service_port=inp.service_port,
        temp_dir=inp.temp_dir,
        dirs=inp.watch_dirs,
        since=start.timestamp(),
    ), ""


def _container(inp: Inputs) -> tuple[object | None, str]:
    if not inp.container:
        return None, "no container was given"
    if not inp.live:
        return None, "replaying a past incident (live=False): container state is not from then"
    from runbook_lib.evidence import containers

    state = containers.state(inp.container)
    return state, "" if state.exists else (state.error or f"container {inp.container} not found")
