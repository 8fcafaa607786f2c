"""The `runbook` command starts light: building its parser (what `--help` and every command
pay before they run) imports no data, notebook or web library; a command imports what it
needs when it runs. Its help text is unchanged by that (issue 25)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import empty_config

# What a command's own work needs, never the parser: each costs 0.1-1 s of CPU to import,
# the last three 20-60 ms (`runbook --help` 0.29-0.41 -> 0.20-0.27 s without them).
HEAVY = ("pandas", "matplotlib", "nbformat", "nbconvert", "nbclient", "papermill",
         "fastapi", "uvicorn", "sqlalchemy", "jsonschema", "httpx", "psutil", "yaml")  # fmt: skip

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
        "import sys\n"
        "from runbook_lib.cli import build_parser\n"
        "build_parser()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n",
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
        "from runbook_lib.service import incident_view\n"
        f"print(' '.join(m for m in {HEAVY[:5]!r} if m in sys.modules))\n",
        tmp_path,
    )
    assert out.split() == []


def test_help_text_of_a_command_whose_work_is_imported_late(tmp_path: Path) -> None:
    code = "import sys\nfrom runbook_lib.cli import main\nsys.exit(main([{!r}, '--help']))\n"
    assert _python(code.format("incidents"), tmp_path) == INCIDENTS_HELP
    assert _python(code.format("lint"), tmp_path) == LINT_HELP
