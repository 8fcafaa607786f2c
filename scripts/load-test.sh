#!/usr/bin/env bash
# Switch the running simulator's traffic or fault mode (default: normal).
# Modes: normal high errors errors:invalid_input errors:database errors:third_party
#        errors:libreoffice latency:cpu latency:slow_db latency:cache_thrash latency:libreoffice
#        memory_leak cache_too_small soffice_leak fork_leak fd_leak crash port_conflict disk_fill
set -euo pipefail
source "$(dirname "$0")/_runbook.sh"
exec "$RUNBOOK" sim mode "${1:-normal}"
