#!/usr/bin/env bash
# Install the Debian packages whose binaries are missing; as non-root, say which and fail.
set -euo pipefail
packages=(docker.io prometheus prometheus-alertmanager prometheus-node-exporter busybox-static)
declare -A binaries=(
  [docker.io]="dockerd"
  [prometheus]="prometheus promtool"
  [prometheus-alertmanager]="prometheus-alertmanager amtool"
  [prometheus-node-exporter]="prometheus-node-exporter"
  [busybox-static]="busybox"
)
missing=()
for pkg in "${packages[@]}"; do
  for bin in ${binaries[$pkg]}; do
    if ! command -v "$bin" >/dev/null 2>&1; then
      missing+=("$pkg")
      break
    fi
  done
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$EUID" -ne 0 ]; then
  echo "Missing Debian packages. Install them as root, then rerun:" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
