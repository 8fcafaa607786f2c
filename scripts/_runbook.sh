# Sourced by the scripts: find the project's `runbook` command.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNBOOK="$ROOT/.venv/bin/runbook"
if [ ! -x "$RUNBOOK" ]; then
  echo "The project is not set up yet: run 'make setup' (or 'make demo') in $ROOT first." >&2
  exit 1
fi
export RUNBOOK_STATE_DIR="${RUNBOOK_STATE_DIR:-$ROOT/.state}"
