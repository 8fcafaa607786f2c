#!/usr/bin/env bash
# The runbook notebooks are source, stored without outputs, execution counts or the kernel's
# language_info: `.gitattributes` sends them through nbstripout when git reads the work tree
# (add, diff, status), so saving a notebook from JupyterLab after Run All changes nothing git
# sees unless a cell changed. `make setup` runs this; `runbook lint` reads a notebook through
# the same filter. Usage: scripts/install-git-filter.sh [PYTHON]  (default .venv/bin/python,
# relative: git runs the filter from the top of each work tree)
set -euo pipefail
python=${1:-.venv/bin/python}
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "not a git checkout: no notebook filter installed"
  exit 0
fi
# nbstripout, started through runbook_lib (runbook_lib/notebook/stripout.py: 0.3 s of CPU a
# notebook instead of 1.6-2.2 s; git starts one for every notebook it reads)
git config filter.nbstripout.clean \
  "$python -m runbook_lib.notebook.stripout --keep-id --extra-keys 'metadata.language_info cell.metadata.trusted'"
git config filter.nbstripout.smudge cat
