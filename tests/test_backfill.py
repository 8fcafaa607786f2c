"""The scenarios' OpenMetrics, split into one file per promtool block (`write_blocks`): the
same samples as the single file, each in the two-hour block promtool would put it in."""

from __future__ import annotations

from pathlib import Path

from runbook_lib.lab.scenarios import all_scenarios, write_openmetrics
from runbook_lib.lab.scenarios.backfill import write_blocks


def _samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def _stamps(text: str) -> set[float]:
    return {float(line.rsplit(" ", 1)[1]) for line in _samples(text)}


def test_block_files_hold_the_single_files_samples_split_at_two_hour_boundaries(
    tmp_path: Path,
) -> None:
    # high_error_rate/invalid_input, seed 0: from 20 min after a two-hour boundary, a sample
    # every 30 s for 110 min: 200 times before the next boundary, 21 from it on.
    (scenario,) = [
        s for s in all_scenarios(seeds=(0,)) if s.name == "high_error_rate/invalid_input/s0"
    ]
    one = write_openmetrics([scenario], tmp_path / "one.om.txt").read_text()
    files = write_blocks([scenario], tmp_path)

    texts = [f.read_text() for f in files]
    assert [len(_stamps(t)) for t in texts] == [200, 21]
    starts = [int(f.name.removeprefix("block-").removesuffix(".om.txt")) for f in files]
    assert starts[1] - starts[0] == 7200 and starts[0] % 7200 == 0
    for start, text in zip(starts, texts, strict=True):
        assert all(start <= t < start + 7200 for t in _stamps(text)), start
        assert text.endswith("# EOF\n")
        # every family announced in each file, in the single file's order
        types = [line for line in one.splitlines() if line.startswith("# TYPE")]
        assert [line for line in text.splitlines() if line.startswith("# TYPE")] == types
    assert sorted(_samples(texts[0]) + _samples(texts[1])) == sorted(_samples(one))
