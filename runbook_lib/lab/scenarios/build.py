"""Build one scenario: a timeline around a fixed past alert time, changed by one cause."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbook_lib.contract.names import NAMES
from runbook_lib.lab.scenarios.catalog import CATALOG, Extras
from runbook_lib.lab.scenarios.model import Timeline, Variation, grid
from runbook_lib.lab.sim.messages import error_message

BASE_TIME = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
HISTORY = timedelta(minutes=100)
AFTER = timedelta(minutes=10)
STEP_S = 30.0
SEVERITY = {
    "GgenMcpServiceDown": "critical",
    "GgenMcpNoSuccessfulRequests": "critical",
    "GgenMcpHighErrorRate": "critical",
    "GgenMcpHighLatency": "critical",
    "GgenMcpMemoryCritical": "critical",
    "GgenMcpFileDescriptorExhaustion": "critical",
}


@dataclass
class Scenario:
    name: str
    runbook: str | None
    cause: str | None
    alert: str | None
    instance: str
    alert_at: datetime
    seed: int
    timeline: Timeline
    extras: Extras
    causes: tuple[str, ...] = ()  # every true cause (two when both contribute)
    mix: str | None = None  # the co-occurring scenario it comes from, if any

    @property
    def at(self) -> datetime:
        """When the runbook evaluates: two minutes after the alert fired."""
        return self.alert_at + timedelta(minutes=2)

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(float(self.timeline.times[0]), UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(float(self.timeline.times[-1]), UTC)

    def labels(self) -> dict[str, str]:
        labels = {"job": NAMES.job, "instance": self.instance}
        if self.alert:
            labels |= {"alertname": self.alert, "severity": SEVERITY.get(self.alert, "warning")}
        return labels

    def write_logs(self, path: Path, since: datetime | None = None) -> Path:
        """The service's JSON-lines log over the timeline (from `since`), as the simulator
        writes it."""
        rows = sorted(self.extras.logs + _error_lines(self), key=lambda r: r[0])
        if since is not None:
            rows = [r for r in rows if r[0] >= since.timestamp()]
        with open(path, "w", encoding="utf-8") as fh:
            for t, level, event, msg, fields in rows:
                ts = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
                fh.write(
                    json.dumps(
                        {
                            "ts": ts.replace("+00:00", "Z"),
                            "level": level,
                            "event": event,
                            "msg": msg,
                            **fields,
                        }
                    )
                    + "\n"
                )
        return path

    def write_host(self, path: Path) -> Path | None:
        """The host snapshot a responder would have taken, when the cause has one."""
        if self.extras.host is None:
            return None
        path.write_text(json.dumps(self.extras.host, indent=1))
        return path


def build(
    runbook: str,
    cause: str,
    seed: int = 0,
    alert_at: datetime | None = None,
    variation: Variation | None = None,
) -> Scenario:
    spec = CATALOG.get((runbook, cause))
    if spec is None:
        raise KeyError(f"no scenario for cause {cause!r} of runbook {runbook!r}")
    key = f"{runbook}/{cause}/{seed}"
    alert_at, tl, extras = _generate(key, spec.apply, seed, alert_at, variation)
    return Scenario(
        f"{runbook}/{cause}/s{seed}",
        runbook,
        cause,
        spec.alert,
        f"scenario-{runbook}-{cause}-s{seed}".replace("_", "-"),
        alert_at,
        seed,
        tl,
        extras,
        (cause,),
    )


def build_mix(
    name: str, seed: int = 0, alert_at: datetime | None = None, variation: Variation | None = None
) -> Scenario:
    """A co-occurring scenario of `mixes.MIXES`: the true cause(s), and a second cause's
    signal moving with them."""
    from runbook_lib.lab.scenarios.mixes import MIXES

    m = MIXES.get(name)
    if m is None:
        raise KeyError(f"no co-occurring scenario {name!r}; known: {', '.join(sorted(MIXES))}")
    alert_at, tl, extras = _generate(f"mix/{name}/{seed}", m.apply, seed, alert_at, variation)
    return Scenario(
        f"{m.runbook}/mix-{name}/s{seed}",
        m.runbook,
        m.causes[0],
        CATALOG[(m.runbook, m.causes[0])].alert,
        f"scenario-mix-{name}-s{seed}",
        alert_at,
        seed,
        tl,
        extras,
        m.causes,
        name,
    )


def _generate(
    key: str, apply, seed: int, alert_at: datetime | None, variation: Variation | None = None
) -> tuple[datetime, Timeline, Extras]:
    """A healthy timeline around the alert time of `seed`, changed by `apply`, drawn from
    the random source named `key` (the same key gives the same scenario)."""
    rng = random.Random(key)
    alert_at = alert_at or BASE_TIME + timedelta(hours=3 * seed)
    tl = _timeline(alert_at, rng, variation or Variation())
    extras = Extras()
    apply(tl, rng, extras)
    return alert_at, tl, extras


def mixed_scenarios(seeds: tuple[int, ...] = (0, 1, 2)) -> list[Scenario]:
    from runbook_lib.lab.scenarios.mixes import MIXES

    return [build_mix(name, seed) for seed in seeds for name in MIXES]


def healthy(
    seed: int = 0, alert_at: datetime | None = None, variation: Variation | None = None
) -> Scenario:
    rng = random.Random(f"healthy/{seed}")
    alert_at = alert_at or BASE_TIME + timedelta(hours=3 * seed)
    tl = _timeline(alert_at, rng, variation or Variation())
    return Scenario(
        f"healthy/s{seed}",
        None,
        None,
        None,
        f"scenario-healthy-s{seed}",
        alert_at,
        seed,
        tl,
        Extras(),
    )


def all_scenarios(seeds: tuple[int, ...] = (0,)) -> list[Scenario]:
    out = [build(rb, cause, seed) for seed in seeds for (rb, cause) in CATALOG]
    return out + [healthy(seed) for seed in seeds]


def _timeline(alert_at: datetime, rng: random.Random, variation: Variation) -> Timeline:
    """Healthy traffic around `alert_at`; the fault begins 8-16 minutes before the alert,
    or when the variation says."""
    times = grid(alert_at - HISTORY, alert_at + AFTER, STEP_S)
    lead = rng.uniform(8, 16) * 60
    if variation.onset_min is not None:
        lead = variation.onset_min * 60
    onset = alert_at.timestamp() - lead
    return Timeline(times=times, step_s=STEP_S, onset=onset, variation=variation)


def _error_lines(s: Scenario) -> list[tuple]:
    """Up to 20 error lines a minute, in proportion to the timeline's error types."""
    tl, rng = s.timeline, random.Random(s.name)
    rows = []
    per_min = int(60 / tl.step_s)
    for i in range(0, len(tl.times), per_min):
        if not tl.up[i]:
            continue
        for part in tl.errors:
            n = min(20, int(round(tl.rate[i] * 60 * part.ratio[i])))
            types = rng.choices(list(part.mix), weights=list(part.mix.values()), k=n)
            for etype in types:
                tool = rng.choice(part.tools)
                t = tl.times[i] + rng.uniform(0, 60)
                msg = error_message(
                    rng, s.extras.error_family, etype, tool, rng.randrange(5000, 30000)
                )
                rows.append(
                    (
                        t,
                        "error",
                        "request",
                        msg,
                        {
                            "tool": tool,
                            "status": "timeout" if etype == "timeout" else "error",
                            "error_type": etype,
                        },
                    )
                )
        rows.append(
            (
                tl.times[i] + 1,
                "info",
                "request",
                "read_table ok",
                {"tool": "read_table", "status": "success"},
            )
        )
    return rows


def gather(sc: Scenario, prometheus_url: str, work: Path):
    """The evidence a run would gather for `sc`: its metrics from `prometheus_url` (where it
    was backfilled), its log lines and host snapshot written into `work`."""
    from runbook_lib.diagnosis import investigate
    from runbook_lib.evidence.panels import Scope

    log = sc.write_logs(work / f"{sc.instance}.log")
    snap = sc.write_host(work / f"{sc.instance}.json")
    return investigate.gather(
        investigate.Inputs(
            prometheus_url,
            Scope(sc.instance, node_instance=sc.instance + "-node"),
            sc.at,
            log_source=str(log),
            host_snapshot=str(snap or ""),
        )
    )
