"""What a process of the service pays to start: the receiver, a warm worker and the command
line import no pandas or numpy (~0.5 s of CPU each time one starts); a rule imports them
when it runs, and the diagnosis package still registers every rule when imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pandas", "numpy", "matplotlib")


def loaded_after(code: str) -> list[str]:
    """The heavy libraries loaded in a fresh interpreter after running `code`."""
    probe = f"{code}; import sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize(
    "module",
    [
        "runbook_lib.service.server",  # `runbook serve`
        "runbook_lib.service.warm_worker",  # each pool worker
        "runbook_lib.service.distributed",  # `runbook worker`
        "runbook_lib.execution.runner",  # `runbook run`, before its kernel
        "runbook_lib.diagnosis.postcheck",  # what the messages read: HELD, verified
        "runbook_lib.diagnosis.answer",
    ],
)
def test_the_service_and_the_command_line_start_without_pandas(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_the_diagnosis_package_registers_its_rules_without_pandas_and_they_run_with_it() -> None:
    code = (
        "from runbook_lib import diagnosis; from runbook_lib.diagnosis.engine import CAUSES; "
        "assert 'fd_leak' in diagnosis.RULES['fd_leak'], diagnosis.RULES.keys(); "
        "assert 'memory_leak' in diagnosis.RULES['memory'] and 'memory_leak' in CAUSES"
    )
    assert loaded_after(code) == []
    # a rule that needs them imports them: the climb of a series level for 20 scrapes, then
    # jumping to 10 and rising by 1 a scrape for 60 (the jump is not part of the climb)
    climbed = (
        "import pandas as pd; from runbook_lib.diagnosis.estimate import climb; "
        "t = pd.date_range('2026-01-01', periods=80, freq='15s', tz='UTC'); "
        "v = [5.0] * 20 + [10.0 + i for i in range(60)]; "
        "c = climb(pd.DataFrame({'timestamp': t, 'value': v})); "
        "assert (round(c.rise, 6), c.frame['value'].iloc[0], len(c.frame)) == (59.0, 10.0, 60)"
    )
    assert loaded_after(climbed) == ["pandas", "numpy"]
