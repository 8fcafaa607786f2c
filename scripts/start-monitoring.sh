#!/usr/bin/env bash
# Start Prometheus, Alertmanager, the node exporter and the GGEN MCP simulator on loopback.
# Options: --profile fast|production, --receiver, --any-free-port (see `runbook stack start -h`).
set -euo pipefail
source "$(dirname "$0")/_runbook.sh"
exec "$RUNBOOK" stack start "$@"
