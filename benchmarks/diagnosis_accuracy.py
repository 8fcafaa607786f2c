"""Accuracy of the diagnosis over every scenario and seed, per runbook family, with the
differential (attribution) and without it, in the same run.

Backfills every cause's scenario, every co-occurring scenario (`mixes`) and the healthy
baseline for the given seeds into a private Prometheus (promtool, real TSDB blocks), then
diagnoses each with the evidence a run would gather (metrics, logs, host snapshot). A
single-cause scenario is right when its cause is the top cause; a two-cause one when
`top_causes` names exactly its two causes; a healthy baseline when no runbook finds a
likely cause. "without" clears the attributors, which is the engine before the
differential: each rule alone, ties broken by score and name.

    .venv/bin/python -m benchmarks.diagnosis_accuracy [--seeds 0 1 2] [--json]
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
from runbook_lib.lab.scenarios.build import gather as scenario_evidence


def gather(prom_url: str, sc: Scenario, tmp: Path) -> diagnosis.Evidence:
    return scenario_evidence(sc, prom_url, tmp)


@contextmanager
def without_differential():
    saved = dict(engine.ATTRIBUTORS)
    engine.ATTRIBUTORS.clear()
    try:
        yield
    finally:
        engine.ATTRIBUTORS.update(saved)


def verdict_of(sc: Scenario, ev: diagnosis.Evidence) -> tuple[bool, str]:
    """Is the diagnosis right on `sc`, and what it said."""
    if sc.runbook is None:
        likely = [
            f"{rb}:{v.cause}"
            for rb in diagnosis.RULES
            for v in diagnosis.diagnose(rb, ev)
            if v.verdict == "likely"
        ]
        return not likely, ",".join(likely) or "none likely"
    verdicts = diagnosis.diagnose(sc.runbook, ev)
    tops = [t["cause"] for t in engine.top_causes(verdicts)]
    said = "+".join(tops) or "none likely"
    if len(sc.causes) > 1:
        return set(tops) == set(sc.causes), said
    return bool(tops) and tops[0] == sc.cause, said


def run(seeds: tuple[int, ...]) -> dict:
    scenarios = all_scenarios(seeds) + mixed_scenarios(seeds)
    with tempfile.TemporaryDirectory(prefix="accuracy-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        print(f"backfilling {len(scenarios)} scenarios into a private Prometheus ...", flush=True)
        backfill(scenarios, work / "data", work / "work")
        prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
        print(f"  ready in {time.monotonic() - t0:.0f} s", flush=True)
        rows = []
        try:
            for i, sc in enumerate(scenarios, 1):
                ev = gather(prom.url, sc, work)
                right, said = verdict_of(sc, ev)
                with without_differential():
                    right_before, said_before = verdict_of(sc, ev)
                rows.append(
                    {
                        "scenario": sc.name,
                        "family": sc.runbook or "healthy",
                        "kind": "healthy"
                        if sc.runbook is None
                        else ("two causes" if len(sc.causes) > 1 else "co-occurring")
                        if sc.mix
                        else "single",
                        "right": right,
                        "said": said,
                        "right_without": right_before,
                        "said_without": said_before,
                    }
                )
                if i % 20 == 0:
                    print(f"  diagnosed {i}/{len(scenarios)}", flush=True)
        finally:
            prom.stop()
    return summarize(rows, seeds)


def summarize(rows: list[dict], seeds: tuple[int, ...]) -> dict:
    fam: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for r in rows:
        cell = fam[r["family"]][r["kind"]]
        cell[0] += r["right"]
        cell[1] += r["right_without"]
        cell[2] += 1
    wrong = [r for r in rows if not r["right"]]
    fixed = [r for r in rows if r["right"] and not r["right_without"]]
    return {
        "seeds": list(seeds),
        "scenarios": len(rows),
        "right": sum(r["right"] for r in rows),
        "right_without_differential": sum(r["right_without"] for r in rows),
        "families": {
            f: {k: dict(zip(("right", "without", "of"), v, strict=True)) for k, v in kinds.items()}
            for f, kinds in sorted(fam.items())
        },
        "wrong": [f"{r['scenario']}: said {r['said']}" for r in wrong],
        "fixed_by_differential": [
            f"{r['scenario']}: without it said {r['said_without']}" for r in fixed
        ],
    }


def report(out: dict) -> None:
    print(f"\nseeds {out['seeds']}: {out['scenarios']} scenarios")
    print(f"{'family':<18}{'kind':<14}{'with':>8}{'without':>9}")
    for f, kinds in out["families"].items():
        for k, c in kinds.items():
            print(f"{f:<18}{k:<14}{c['right']:>4}/{c['of']:<3}{c['without']:>5}/{c['of']:<3}")
    print(
        f"{'all':<32}{out['right']:>4}/{out['scenarios']:<3}"
        f"{out['right_without_differential']:>5}/{out['scenarios']}"
    )
    for line in out["wrong"]:
        print(f"  WRONG {line}")
    for line in out["fixed_by_differential"]:
        print(f"  fixed {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(tuple(args.seeds))
    report(out)
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
