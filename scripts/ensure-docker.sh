#!/usr/bin/env bash
# Start dockerd when no Docker engine answers (there is no systemd here).
set -euo pipefail
docker_ok() { docker info >/dev/null 2>&1; }
docker_ok && exit 0
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd is not installed: run 'make setup' (Debian package docker.io)." >&2
  exit 1
fi
if [ "$EUID" -ne 0 ]; then
  echo "No Docker engine answers and dockerd needs root: start it, then rerun." >&2
  exit 1
fi
echo "Starting dockerd (log: /var/log/dockerd-runbook.log)"
setsid nohup dockerd >/var/log/dockerd-runbook.log 2>&1 </dev/null &
for _ in $(seq 60); do
  docker_ok && exit 0
  sleep 0.5
done
echo "dockerd did not answer within 30 s; see /var/log/dockerd-runbook.log" >&2
exit 1
