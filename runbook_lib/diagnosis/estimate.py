"""Effects estimated from the run's own data instead of assumed: what a stage (the database,
LibreOffice, a cache miss) adds to the tools that go through it, and what one process holds.

A rule that assumes an effect ("a LibreOffice process weighs 150 MB", "a miss slows every
tool") is right on the incident it was written from and wrong on the next. These estimate
the effect from how the figures move together in the window, and say how they did.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

from runbook_lib.diagnosis.constants import (
    DRIFT_POINTS,
    MIN_CLIMB_POINTS,
    MIN_POINTS,
    MIN_PROCESS_STEPS,
    PLAUSIBLE_PROCESS,
    PROCESS_FIT_R2,
)

# numpy and pandas are imported where a rule runs, not where it registers: see
# `diagnosis/__init__.py`
if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


# ---------------------------------------------------------------- what a stage adds
def stage_costs(
    extra: dict[str, float], weight: dict[str, float], stages: dict[str, frozenset[str]]
) -> dict[str, float]:
    """What each stage adds to every tool that goes through it: the non-negative costs that
    best fit (least squares, weighted by traffic) what each tool gained, a tool's gain being
    the sum of its stages' costs. Tools no stage covers take no part. A tool only one stage
    covers fixes that stage's cost; the others are told apart by the tools they share."""
    import numpy as np

    names = list(stages)
    tools = [t for t in extra if any(t in stages[s] for s in names)]
    if not tools:
        return dict.fromkeys(names, 0.0)
    y = np.array([extra[t] for t in tools])
    w = np.sqrt(np.array([weight[t] for t in tools]))
    best, best_err = dict.fromkeys(names, 0.0), float((w * y) @ (w * y))
    for k in range(1, len(names) + 1):
        for subset in combinations(names, k):
            a = np.array([[1.0 if t in stages[s] else 0.0 for s in subset] for t in tools])
            cost = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)[0]
            if (cost < -1e-9).any():
                continue  # a stage cannot make a tool faster: not a solution
            err = float(np.sum((w * (y - a @ cost)) ** 2))
            if err < best_err - 1e-12:
                best = {**dict.fromkeys(names, 0.0), **dict(zip(subset, cost.clip(0), strict=True))}
                best_err = err
    return best


def split_by_stage(
    extra: dict[str, float], costs: dict[str, float], stages: dict[str, frozenset[str]]
) -> dict[str, dict[str, float]]:
    """Each tool's gain split among the stages it goes through, in proportion to their
    fitted costs (evenly when every cost is 0): stage -> tool -> seconds."""
    out: dict[str, dict[str, float]] = {s: {} for s in stages}
    for tool, gained in extra.items():
        mine = [s for s in stages if tool in stages[s]]
        if not mine or gained <= 0:
            continue
        total = sum(costs[s] for s in mine)
        for s in mine:
            out[s][tool] = gained * (costs[s] / total if total > 0 else 1 / len(mine))
    return out


# ---------------------------------------------------------------- when a climb began
@dataclass(frozen=True)
class Climb:
    """Where a series climbed, and how much its line rose there (a jump between levels is
    not a climb: it belongs to neither)."""

    frame: pd.DataFrame
    rise: float


def climb(series: pd.DataFrame) -> Climb:
    """The stretch of `series` over which it climbed: the split into a level stretch, a line
    and a level stretch again that fits it best (either level stretch may be empty), so that
    how steadily it grew is judged where it grew, whenever that began and if it stopped."""
    import numpy as np

    f = series.dropna(subset=["value"]).sort_values("timestamp").reset_index(drop=True)
    y = f["value"].to_numpy(dtype=float)
    n, shortest = len(y), int(MIN_CLIMB_POINTS)
    if n < shortest + 2:
        return Climb(f, float(y[-1] - y[0]) if n else 0.0)
    x = np.arange(n, dtype=float)
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones(n), x, y, x * x, x * y, y * y)]
    cuts = np.arange(n + 1)
    a, b = np.meshgrid(cuts, cuts, indexing="ij")
    ok = b - a >= shortest
    a, b = a[ok], b[ok]
    err = _sse_level(sums, 0, a) + _sse_line(sums, a, b) + _sse_level(sums, b, n)
    # A point that fits the level and the line equally well is the line's: of the splits
    # that fit best, the longest climb.
    near = err <= err.min() + 1e-9 * float(((y - y.mean()) ** 2).sum()) + 1e-12
    best = int(np.flatnonzero(near)[np.argmax((b - a)[near])])
    start, end = int(a[best]), int(b[best])
    slope = np.polyfit(x[start:end], y[start:end], 1)[0]
    return Climb(f.iloc[start:end], float(slope * (end - 1 - start)))


def _seg(sums: list[np.ndarray], a, b) -> list[np.ndarray]:
    return [s[b] - s[a] for s in sums]


def _sse_level(sums: list[np.ndarray], a, b) -> np.ndarray:
    """Squared error of each stretch [a, b) about its mean (0 for an empty stretch)."""
    import numpy as np

    n, _, sy, _, _, syy = _seg(sums, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, syy - np.where(n > 0, sy * sy / np.maximum(n, 1), 0.0), 0.0)


def _sse_line(sums: list[np.ndarray], a, b) -> np.ndarray:
    """Squared error of each stretch [a, b) about its least-squares line."""
    import numpy as np

    n, sx, sy, sxx, sxy, syy = _seg(sums, a, b)
    vx = sxx - sx * sx / n
    cov = sxy - sx * sy / n
    return syy - sy * sy / n - np.where(vx > 0, cov * cov / np.where(vx > 0, vx, 1.0), 0.0)


# ---------------------------------------------------------------- what one process holds
@dataclass(frozen=True)
class ProcessSize:
    """What one process of a kind holds, and how that was found."""

    bytes: float
    how: str  # "from the window", "from the host", "assumed"
    detail: str  # the figures behind it, in words

    def text(self) -> str:
        return f"{self.bytes / 1e6:.0f} MB each, {self.how}: {self.detail}"


def per_process(
    memory: pd.DataFrame | None,
    count: pd.DataFrame | None,
    host_sizes: list[float],
    default: float,
    name: str,
) -> ProcessSize:
    """The memory one `name` process holds: from how resident memory moves with the process
    count over the window (the slope of memory's moves on the count's moves, so that a steady
    leak, which moves memory at every scrape, stays in the intercept), else the host's
    measured processes, else `default`, saying which."""
    import numpy as np

    fitted = _regressed(memory, count)
    if fitted is not None:
        size, r2, steps = fitted
        return ProcessSize(
            size,
            "from the window",
            f"resident memory moved {size / 1e6:.0f} MB with each {name} process over "
            f"{steps:.0f} processes started or ended (fit R² {r2:.2f})",
        )
    if host_sizes:
        size = float(np.median(host_sizes))
        return ProcessSize(size, "from the host", f"median of {len(host_sizes)} {name} processes")
    return ProcessSize(default, "assumed", f"neither the series nor the host measure a {name}")


def _regressed(
    memory: pd.DataFrame | None, count: pd.DataFrame | None
) -> tuple[float, float, float] | None:
    """(bytes per process, R², processes moved): memory's move at each scrape where the
    count moved, less the drift of the scrapes around it where the count did not (a leak
    moves memory at every scrape), over the count's move. None when the count moved too
    little or memory does not follow it."""
    import numpy as np
    import pandas as pd

    if not isinstance(memory, pd.DataFrame) or not isinstance(count, pd.DataFrame):
        return None
    both = memory.merge(count, on="timestamp", suffixes=("_mem", "_n")).sort_values("timestamp")
    both = both.dropna(subset=["value_mem", "value_n"])
    if len(both) < MIN_POINTS:
        return None
    d_mem = np.diff(both["value_mem"].to_numpy(dtype=float))
    d_n = np.diff(both["value_n"].to_numpy(dtype=float))
    moved = d_n != 0
    steps = float(np.abs(d_n).sum())
    if steps < MIN_PROCESS_STEPS:
        return None
    # A scrape where neither moved repeats the previous sample (a query step finer than the
    # scrape interval): it says nothing about drift.
    rest = _drift(d_mem, ~moved & (d_mem != 0))
    size = float((d_mem - rest)[moved] @ d_n[moved] / (d_n[moved] @ d_n[moved]))
    r = (d_mem - rest)[moved]
    ss_tot = float(r @ r)
    r2 = 1 - float(((r - size * d_n[moved]) ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0
    if size <= 0 or size > PLAUSIBLE_PROCESS or r2 < PROCESS_FIT_R2:
        return None
    return size, r2, steps


def _drift(d_mem: np.ndarray, quiet: np.ndarray) -> np.ndarray:
    """At each scrape, how memory moved when no process started or ended: the median move of
    the quiet scrapes within `DRIFT_POINTS` of it (of all quiet scrapes when none is near;
    none when there is no quiet scrape)."""
    import numpy as np

    idx = np.flatnonzero(quiet)
    if not len(idx):
        return np.zeros_like(d_mem)
    overall = float(np.median(d_mem[idx]))
    out = np.empty_like(d_mem)
    for i in range(len(d_mem)):
        near = idx[np.abs(idx - i) <= DRIFT_POINTS]
        out[i] = float(np.median(d_mem[near])) if len(near) else overall
    return out
