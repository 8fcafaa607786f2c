#!/usr/bin/env bash
# Stop exactly the processes start-monitoring.sh started (by recorded pid, never by name).
set -euo pipefail
source "$(dirname "$0")/_runbook.sh"
exec "$RUNBOOK" stack stop "$@"
