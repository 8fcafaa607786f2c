"""The benchmarks' workload: the full record people get when errors are present.

The high_error_rate runbook draws its error-type and error-by-tool charts only when the
service has errors (their queries keep series `> 0`): with the simulator's normal 0.02%
error ratio a record drew 2 charts or 5 as chance left those panels empty or not, so CPU
figures did not compare run to run. The benchmarks put the simulator in its `errors` mode
(12% of requests fail, five error types, every tool) before they start, so every record
does the same work, and say how many charts each drew.

Those errors also fire the stack's own error alerts for the simulator's instance. The
benchmarks' alerts stand for faults of their own, so the real alerts are not delivered
(`NOWHERE`) and no benchmark warning waits for that real critical (`isolated`: a hold cap
of 0 s; the receiver still asks Prometheus before each warning's run, as it always does).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from runbook_lib.lab import stack

MODE = "errors"
NOWHERE = "http://127.0.0.1:9/alerts"  # Alertmanager's webhook: a closed port


def isolated() -> None:
    """Each benchmark alert a fault of its own: not joined into another's incident, and
    a warning's run never held for the critical the simulator's errors fire."""
    os.environ["RUNBOOK_CORRELATION_WINDOW"] = "0"
    os.environ["RUNBOOK_HOLD_CAP"] = "0"


def set_errors(info: stack.StackInfo) -> None:
    """The simulator fails 12% of requests from now on (every error panel has series)."""
    stack.set_mode(info, MODE)


def charts_drawn(record_dir: Path) -> int:
    """Charts (PNG outputs) in a record's notebook."""
    nb = json.loads((record_dir / "record.ipynb").read_text())
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"]
               for out in cell.get("outputs", []))  # fmt: skip


def chart_counts(record_dirs: list[Path]) -> dict[int, int]:
    """How many records drew how many charts: {charts: records}."""
    return dict(sorted(Counter(charts_drawn(d) for d in record_dirs).items()))
