"""The `runbook` command starts light: building its parser (what `--help` and every command
pay before they run) imports no data, notebook or web library; a command imports what it
needs when it runs. Its help text is unchanged by that. The service's processes (the
receiver, each pool worker) and `runbook run` start without pandas or numpy; a diagnosis
rule imports them where it runs, and the diagnosis package still registers every rule when
imported (issue 25)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import empty_config

# What a command's own work needs, never the parser: each costs 0.1-1 s of CPU to import,
# the last three 20-60 ms (`runbook --help` 0.29-0.41 -> 0.20-0.27 s without them).
HEAVY = ("pandas", "matplotlib", "nbformat", "nbconvert", "nbclient", "papermill",
         "fastapi", "uvicorn", "sqlalchemy", "jsonschema", "httpx", "psutil", "yaml")  # fmt: skip
# What a process that serves or runs needs only once a rule or a chart runs: pandas and numpy
# were ~0.5 s of each start's CPU (the receiver's import 1.74 -> 1.12 CPU-s, a worker's 1.22
# -> 0.74).
DATA = ("pandas", "numpy", "matplotlib")

INCIDENTS_HELP = """\
usage: runbook incidents [-h] [--output DIR] [--database URL] [--limit N] [--json]
                         [--message ID|FINGERPRINT] [--mitigated ID|FINGERPRINT]

options:
  -h, --help            show this help message and exit
  --output DIR          the records directory and its index (index.sqlite) (RUNBOOK_OUTPUT_DIR,
                        output_dir in runbook.toml; default /var/lib/runbook as root, else
                        $XDG_DATA_HOME/runbook)
  --database URL        distributed mode: the shared index, e.g. postgresql+psycopg://u:p@host/db;
                        runs go to --broker instead of local workers (RUNBOOK_DATABASE_URL,
                        database_url in runbook.toml; default (none))
  --limit N             how many incidents to list (default 50)
  --json
  --message ID|FINGERPRINT
                        the runbook's message for the team about this incident, as it stands now,
                        with the link to its record
  --mitigated ID|FINGERPRINT
                        record that a mitigation is in place (the message then says Mitigating)
"""

LINT_HELP = """\
usage: runbook lint [-h] [NOTEBOOK ...]

positional arguments:
  NOTEBOOK    notebooks or directories (default: the runbooks of the package, the checkout's
              notebooks/ when installed from it)

options:
  -h, --help  show this help message and exit
"""


def _python(code: str, tmp_path: Path) -> str:
    """`code` run by a fresh interpreter (nothing imported yet), its stdout."""
    env = {**os.environ, "RUNBOOK_CONFIG": str(empty_config(tmp_path)), "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_building_the_parser_imports_no_heavy_library(tmp_path: Path) -> None:
    out = _python(
        "import sys\nfrom runbook_lib.cli import build_parser\nbuild_parser()\n" + _loaded(HEAVY),
        tmp_path,
    )
    assert out.split() == []


def test_the_incidents_command_reads_the_index_without_the_diagnosis_or_nbconvert(
    tmp_path: Path,
) -> None:
    """`runbook incidents` (the index, the incidents' messages) is run once a command by
    people and scripts: it loads the index and its views, not what runs a notebook."""
    out = _python(
        "import sys\n"
        "from runbook_lib.incidents.index import Index\n"
        "from runbook_lib.service import incident_view\n" + _loaded(HEAVY[:5]),
        tmp_path,
    )
    assert out.split() == []


def test_help_text_of_a_command_whose_work_is_imported_late(tmp_path: Path) -> None:
    code = "import sys\nfrom runbook_lib.cli import main\nsys.exit(main([{!r}, '--help']))\n"
    assert _python(code.format("incidents"), tmp_path) == INCIDENTS_HELP
    assert _python(code.format("lint"), tmp_path) == LINT_HELP


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
def test_the_service_and_runbook_run_start_without_pandas(module: str, tmp_path: Path) -> None:
    out = _python(f"import sys\nimport {module}\n{_loaded(DATA)}", tmp_path)
    assert out.split() == []


def test_the_diagnosis_package_registers_its_rules_without_pandas_and_they_run_with_it(
    tmp_path: Path,
) -> None:
    registered = (
        "import sys\n"
        "from runbook_lib import diagnosis\n"
        "from runbook_lib.diagnosis.engine import CAUSES\n"
        "assert 'fd_leak' in diagnosis.RULES['fd_leak'], diagnosis.RULES.keys()\n"
        "assert 'memory_leak' in diagnosis.RULES['memory'] and 'memory_leak' in CAUSES\n"
    )
    assert _python(registered + _loaded(DATA), tmp_path).split() == []
    # a rule that needs them imports them: the climb of a series level for 20 scrapes, then
    # jumping to 10 and rising by 1 a scrape for 60 (the jump is not part of the climb)
    climbed = (
        "import sys\n"
        "import pandas as pd\n"
        "from runbook_lib.diagnosis.estimate import climb\n"
        "t = pd.date_range('2026-01-01', periods=80, freq='15s', tz='UTC')\n"
        "v = [5.0] * 20 + [10.0 + i for i in range(60)]\n"
        "c = climb(pd.DataFrame({'timestamp': t, 'value': v}))\n"
        "assert (round(c.rise, 6), c.frame['value'].iloc[0], len(c.frame)) == (59.0, 10.0, 60)\n"
    )
    assert _python(climbed + _loaded(DATA), tmp_path).split() == ["pandas", "numpy"]


def _loaded(modules: tuple[str, ...]) -> str:
    """A line printing which of `modules` the interpreter has loaded."""
    return f"print(' '.join(m for m in {modules!r} if m in sys.modules))\n"
