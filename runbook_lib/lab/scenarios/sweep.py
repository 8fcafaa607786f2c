"""The robustness sweep: every scenario (each cause, each co-occurring mix, the healthy
baseline) under perturbations drawn per seed, so that a diagnosis tuned to one picture of a
cause fails here. Each scenario draws, from its own name and seed:

- the fault's magnitude, x0.5 to x1.5 (error ratios, added seconds, memory growth, process
  counts; a fault that fires its alert at a level keeps firing it);
- what one LibreOffice process holds, 120-350 MB (when LibreOffice processes are the cause);
- which of a stage's tools the fault touches (half the time a subset of them);
- optional series the service does not expose: component health half the time (the real
  server has none), each process and secondary series one time in five; never a series
  the true cause cannot be told without (`NEEDS`, written here by hand);
- the onset, 20-70 minutes before the alert; a growth (memory, descriptors, disk) runs from
  it until the alert. The service stopping is the exception: ServiceDown fires a minute
  after the stop, so the stop comes 4-6 minutes before the alert (what precedes it, such as
  memory growing to an OOM kill, before that).
"""

from __future__ import annotations

import random

from runbook_lib.contract.names import NAMES as N
from runbook_lib.lab.scenarios.build import Scenario, build, build_mix, healthy
from runbook_lib.lab.scenarios.catalog import CATALOG
from runbook_lib.lab.scenarios.model import Variation

MAGNITUDE = (0.5, 1.5)
SOFFICE_BYTES = (120e6, 350e6)
ONSET_MIN = (20.0, 70.0)
STOP_MIN = (4.0, 6.0)  # service_down: the stop, before ServiceDown fires
# Series a scenario may lack, each a group that goes together, with how often it is dropped.
OPTIONAL: dict[tuple[str, ...], float] = {
    (N.health,): 0.5,
    (N.cpu,): 0.2,
    (N.rss,): 0.2,
    (N.heap_used, N.heap_total): 0.2,
    (N.open_fds, N.max_fds): 0.2,
    (N.start_time,): 0.2,
    (N.libreoffice,): 0.2,
    (N.active_forks,): 0.2,
    (N.slow_queries,): 0.2,
    (N.screenshot,): 0.2,
    (N.cache_evictions,): 0.2,
}
_MEMORY = {N.rss}
# The series a responder needs to tell each cause at all: never dropped when it is a true
# cause (a cause without them is rightly unknown, which is not what the sweep measures).
NEEDS: dict[str, set[str]] = {
    "cpu_saturation": {N.cpu},
    "memory_pressure": _MEMORY,
    "memory_leak": _MEMORY | {N.libreoffice},  # a leak is what the processes do not explain
    "cache_too_large": _MEMORY,
    "large_payloads": _MEMORY,
    "too_many_libreoffice_processes": _MEMORY | {N.libreoffice},
    "libreoffice_bottleneck": {N.screenshot},
    "cache_too_small": {N.cache_evictions},
    "ttl_too_short": {N.cache_evictions},
    "fd_leak": {N.open_fds, N.max_fds},
    "fd_limit_too_low": {N.open_fds, N.max_fds},
    "oom_killed": _MEMORY,
}


def variation(name: str, seed: int, runbook: str | None, causes: tuple[str, ...]) -> Variation:
    """The perturbation of scenario `name` on `seed` (the same arguments, the same draw)."""
    rng = random.Random(f"sweep/{name}/{seed}")
    needed = set().union(*(NEEDS.get(c, set()) for c in causes))
    dropped = {
        series
        for group, p in OPTIONAL.items()
        if rng.random() < p and not needed & set(group)
        for series in group
    }
    return Variation(
        seed=f"sweep/{name}/{seed}",
        magnitude=rng.uniform(*MAGNITUDE),
        soffice_bytes=rng.uniform(*SOFFICE_BYTES),
        pick_tools=rng.random() < 0.5,
        dropped=frozenset(dropped),
        onset_min=rng.uniform(*(STOP_MIN if runbook == "service_down" else ONSET_MIN)),
    )


def sweep_scenarios(seeds: tuple[int, ...]) -> list[Scenario]:
    """Every cause's scenario, every co-occurring scenario and the healthy baseline, each
    perturbed, for each seed."""
    from runbook_lib.lab.scenarios.mixes import MIXES

    out = []
    for seed in seeds:
        for rb, cause in CATALOG:
            v = variation(f"{rb}/{cause}", seed, rb, (cause,))
            out.append(build(rb, cause, seed, variation=v))
        for name, m in MIXES.items():
            out.append(build_mix(name, seed, variation=variation(name, seed, m.runbook, m.causes)))
        out.append(healthy(seed, variation=variation("healthy", seed, None, ())))
    return out
