"""Accuracy of the diagnosis: on every scenario and seed as the library draws it (with the
differential and without it, in the same run), then on a robustness sweep of the same
scenarios perturbed per seed (`runbook_lib.lab.scenarios.sweep`).

Each set is backfilled into a private Prometheus (promtool, real TSDB blocks) and each
scenario diagnosed with the evidence a run would gather (metrics, logs, host snapshot). A
single-cause scenario is right when its cause is the top cause; a two-cause one when
`top_causes` names exactly its two causes; a healthy baseline when no runbook finds a likely
cause. "without" clears the attributors: each rule alone, ties broken by score and name.

Per family, and overall: `accuracy` (right / scenarios), `likely_precision` (of the causes
called likely, how many are true causes; for a healthy baseline, none is), `none_rate` (of
the incidents, how often nothing is likely), `false_contributor_rate` (of the single-cause
incidents, how often a second cause is named in `top_causes`).

    .venv/bin/python -m benchmarks.diagnosis_accuracy [--seeds 0 1 2] [--sweep-seeds 100 ...]
        [--only FAMILY ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from runbook_lib import diagnosis
from runbook_lib.diagnosis import engine
from runbook_lib.lab.scenarios import (
    Scenario,
    ScenarioPrometheus,
    all_scenarios,
    backfill,
    mixed_scenarios,
)
from runbook_lib.lab.scenarios.build import gather
from runbook_lib.lab.scenarios.sweep import sweep_scenarios

METRICS = ("accuracy", "likely_precision", "none_rate", "false_contributor_rate")
# The targets on the sweep: figure -> (at least, at most).
TARGETS = {
    "accuracy": (0.97, None),
    "likely_precision": (0.97, None),
    "false_contributor_rate": (None, 0.02),
}


def targets(sweep: dict) -> dict[str, bool]:
    """Each target of the sweep, met or not; a healthy baseline is never `likely`."""
    out = {}
    for name, (low, high) in TARGETS.items():
        v = sweep[name]["overall"]
        label = f"{name} >= {low:g}" if low is not None else f"{name} <= {high:g}"
        out[label] = v is not None and (low is None or v >= low) and (high is None or v <= high)
    healthy = sweep["accuracy"]["families"].get("healthy")
    if healthy is not None:  # (not when --only leaves the baselines out)
        out["healthy baselines never likely"] = healthy == 1.0
    return out


@contextmanager
def without_differential():
    saved = dict(engine.ATTRIBUTORS)
    engine.ATTRIBUTORS.clear()
    try:
        yield
    finally:
        engine.ATTRIBUTORS.update(saved)


def judged(sc: Scenario, ev: diagnosis.Evidence) -> dict:
    """What the diagnosis said on `sc`: right or not, the top causes, every likely cause."""
    if sc.runbook is None:
        likely = [
            f"{rb}:{v.cause}"
            for rb in diagnosis.RULES
            for v in diagnosis.diagnose(rb, ev)
            if v.verdict == "likely"
        ]
        return {"right": not likely, "tops": [], "likely": likely, "said": ",".join(likely)}
    verdicts = diagnosis.diagnose(sc.runbook, ev)
    tops = [t["cause"] for t in engine.top_causes(verdicts)]
    likely = [v.cause for v in verdicts if v.verdict == "likely"]
    if len(sc.causes) > 1:
        right = set(tops) == set(sc.causes)
    else:
        right = bool(tops) and tops[0] == sc.cause
    return {"right": right, "tops": tops, "likely": likely, "said": "+".join(tops)}


def kind(sc: Scenario) -> str:
    if sc.runbook is None:
        return "healthy"
    if not sc.mix:
        return "single"
    return "two causes" if len(sc.causes) > 1 else "co-occurring"


def diagnose_all(scenarios: list[Scenario], label: str, compare: bool) -> list[dict]:
    """Backfill `scenarios` into a private Prometheus and judge each (also without the
    differential when `compare`)."""
    with tempfile.TemporaryDirectory(prefix="accuracy-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        print(f"{label}: backfilling {len(scenarios)} scenarios ...", flush=True)
        backfill(scenarios, work / "data", work / "work")
        prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
        print(f"  ready in {time.monotonic() - t0:.0f} s", flush=True)
        rows = []
        try:
            for i, sc in enumerate(scenarios, 1):
                ev = gather(sc, prom.url, work)
                row = {"scenario": sc.name, "family": sc.runbook or "healthy", "kind": kind(sc),
                       "causes": list(sc.causes), **judged(sc, ev)}  # fmt: skip
                if compare:
                    with without_differential():
                        alone = judged(sc, ev)
                    row |= {"right_without": alone["right"], "said_without": alone["said"]}
                rows.append(row)
                if i % 50 == 0:
                    print(f"  diagnosed {i}/{len(scenarios)}", flush=True)
        finally:
            prom.stop()
    return rows


def figures(rows: list[dict]) -> dict[str, float | None]:
    """The four figures of `rows` (None where a figure has nothing to count)."""
    incidents = [r for r in rows if r["family"] != "healthy"]
    singles = [r for r in incidents if len(r["causes"]) == 1]
    called = [(c, r) for r in rows for c in r["likely"]]
    true_likely = sum(r["family"] != "healthy" and c in r["causes"] for c, r in called)

    def rate(n: int, of: int) -> float | None:
        return round(n / of, 4) if of else None

    return {
        "accuracy": rate(sum(r["right"] for r in rows), len(rows)),
        "likely_precision": rate(true_likely, len(called)),
        "none_rate": rate(sum(not r["tops"] for r in incidents), len(incidents)),
        "false_contributor_rate": rate(sum(len(r["tops"]) > 1 for r in singles), len(singles)),
    }


def summarize(rows: list[dict]) -> dict:
    """Overall and per-family figures, the counts per family and kind, and what was wrong."""
    by_family: dict[str, list[dict]] = defaultdict(list)
    cells: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for r in rows:
        by_family[r["family"]].append(r)
        cell = cells[r["family"]][r["kind"]]
        cell[0] += r["right"]
        cell[1] += r.get("right_without", False)
        cell[2] += 1
    overall = figures(rows)
    per_family = {f: figures(rs) for f, rs in sorted(by_family.items())}
    out: dict = {m: {"overall": overall[m], "families": {f: v[m] for f, v in per_family.items()}}
                 for m in METRICS}  # fmt: skip
    out |= {
        "scenarios": len(rows),
        "right": sum(r["right"] for r in rows),
        "counts": {
            f: {k: dict(zip(("right", "without", "of"), v, strict=True)) for k, v in ks.items()}
            for f, ks in sorted(cells.items())
        },
        "wrong": [
            f"{r['scenario']}: said {r['said'] or 'none likely'}" for r in rows if not r["right"]
        ],  # fmt: skip
        "false_contributors": [
            f"{r['scenario']}: said {r['said']}"
            for r in rows
            if len(r["causes"]) == 1 and len(r["tops"]) > 1
        ],
        "false_likely": [
            f"{r['scenario']}: {c}" for r in rows for c in r["likely"] if c not in r["causes"]
        ],
    }
    if rows and "right_without" in rows[0]:
        out["right_without_differential"] = sum(r["right_without"] for r in rows)
        out["fixed_by_differential"] = [
            f"{r['scenario']}: without it said {r['said_without'] or 'none likely'}"
            for r in rows
            if r["right"] and not r["right_without"]
        ]
    return out


def report(title: str, out: dict, compare: bool) -> None:
    print(f"\n{title}: {out['scenarios']} scenarios")
    print(f"{'family':<18}{'kind':<14}{'right':>8}" + (f"{'without':>10}" if compare else ""))
    for f, kinds in out["counts"].items():
        for k, c in kinds.items():
            line = f"{f:<18}{k:<14}{c['right']:>4}/{c['of']:<3}"
            print(line + (f"{c['without']:>6}/{c['of']:<3}" if compare else ""))
    total = f"{'all':<32}{out['right']:>4}/{out['scenarios']:<3}"
    if compare:
        total += f"{out['right_without_differential']:>6}/{out['scenarios']}"
    print(total)
    print(f"\n{'family':<18}" + "".join(f"{m:>24}" for m in METRICS))
    families = sorted(out["accuracy"]["families"])
    for f in [*families, "overall"]:
        vals = [out[m]["overall"] if f == "overall" else out[m]["families"][f] for m in METRICS]
        print(f"{f:<18}" + "".join(f"{'-' if v is None else f'{100 * v:.1f} %':>24}" for v in vals))
    for line in out["wrong"]:
        print(f"  WRONG {line}")
    for line in out["false_contributors"]:
        print(f"  FALSE CONTRIBUTOR {line}")
    for line in out["false_likely"]:
        print(f"  FALSE LIKELY {line}")
    for line in out.get("fixed_by_differential", []):
        print(f"  fixed {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--sweep-seeds", type=int, nargs="*", default=list(range(100, 108)))
    ap.add_argument("--only", nargs="*", default=[], help="runbook families (and 'healthy')")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.monotonic()

    def chosen(scenarios: list[Scenario]) -> list[Scenario]:
        return [s for s in scenarios if not args.only or (s.runbook or "healthy") in args.only]

    base_scenarios = chosen(all_scenarios(tuple(args.seeds)) + mixed_scenarios(tuple(args.seeds)))
    base = summarize(diagnose_all(base_scenarios, "scenarios", compare=True)) if args.seeds else {}
    sweep = {}
    if args.sweep_seeds:
        perturbed = chosen(sweep_scenarios(tuple(args.sweep_seeds)))
        sweep = summarize(diagnose_all(perturbed, "sweep", compare=False))
    if base:
        report(f"scenarios, seeds {args.seeds}", base, compare=True)
    if sweep:
        report(f"robustness sweep, seeds {args.sweep_seeds}", sweep, compare=False)
        sweep["targets"] = targets(sweep)
        print("\ntargets on the sweep:")
        for label, met in sweep["targets"].items():
            print(f"  {'met    ' if met else 'MISSED '} {label}")
    print(f"\n{time.monotonic() - t0:.0f} s in all")
    if args.json:
        out = {m: sweep[m] for m in METRICS} | {"targets": sweep["targets"]} if sweep else {}
        out |= {"seeds": args.seeds, "sweep_seeds": args.sweep_seeds, "scenarios": base,
                "sweep": sweep}  # fmt: skip
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
