"""`make mutation`: mutation testing of the core modules against the fast test tier.

Runs mutmut (configured in pyproject.toml: the modules, and `-m "not stack"`), then prints
the kill rate per module and overall, counting only mutants that are not judged equivalent.
Equivalent mutants (a change no test can see, e.g. a help string) are listed with the
reason in benchmarks/mutation-equivalent.txt, one `name  # why` per line. Survivors are
printed by name; `.venv/bin/mutmut show NAME` shows the change.

    .venv/bin/python -m benchmarks.mutation [--no-run] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = Path(__file__).with_name("mutation-equivalent.txt")
MUTMUT = Path(sys.executable).with_name("mutmut")
LINE = re.compile(r"^\s*(?P<name>[\w.ǁ]+__mutmut_\d+): (?P<status>.+)$")


def equivalent() -> dict[str, str]:
    out = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            name, _, why = line.partition("#")
            if name.strip():
                out[name.strip()] = why.strip()
    return out


def results() -> dict[str, str]:
    done = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True
    )
    found = {}
    for line in done.stdout.splitlines():
        if m := LINE.match(line):
            found[m["name"]] = m["status"].strip()
    return found


def module(name: str) -> str:
    return name.split(".x")[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-run", action="store_true", help="report the last run only")
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    args = ap.parse_args()
    if not args.no_run:
        subprocess.run([str(MUTMUT), "run", "--max-children", "2"], cwd=ROOT, check=False)
    found, equiv = results(), equivalent()
    checked = [s for s in found.values() if s != "not checked"]
    if not checked:
        print("mutmut checked no mutant: the tests fail on the unmutated code (see above)")
        return 1
    per: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    for name, status in sorted(found.items()):
        if name in equiv:
            per[module(name)]["equivalent"] += 1
            continue
        per[module(name)][status] += 1
        if status not in ("killed", "timeout"):
            survivors.append(f"{name}: {status}")
    print(f"{'module':<28} {'killed':>7} {'survived':>9} {'no tests':>9} {'equiv.':>7} {'rate':>6}")
    total = Counter()
    for mod, c in sorted(per.items()):
        total.update(c)
        print(f"{mod:<28} {_line(c)}")
    print(f"{'all':<28} {_line(total)}")
    if survivors:
        print("\nSurvivors (`mutmut show NAME`):")
        print("\n".join(f"  {s}" for s in survivors))
    rate = _rate(total)
    if args.json:
        print(json.dumps({"kill_rate": rate, "counts": dict(total), "survivors": len(survivors)}))
    return 0


def _rate(c: Counter) -> float:
    judged = c["killed"] + c["timeout"] + c["survived"] + c["no tests"]
    return round((c["killed"] + c["timeout"]) / judged, 4) if judged else 0.0


def _line(c: Counter) -> str:
    killed = c["killed"] + c["timeout"]
    return (
        f"{killed:>7} {c['survived']:>9} {c['no tests']:>9} {c['equivalent']:>7} "
        f"{100 * _rate(c):5.1f}%"
    )


if __name__ == "__main__":
    sys.exit(main())
