#!/usr/bin/env bash
# Install the Debian packages of scripts/system-packages.txt whose binaries (or files) are
# missing; as non-root, say which and fail.
set -euo pipefail
table="${BASH_SOURCE[0]%/*}/system-packages.txt"
missing=()
while read -r pkg provides; do
  case "$pkg" in ''|'#'*) continue ;; esac
  for item in $provides; do
    if [[ "$item" == /* ]]; then
      [ -e "$item" ] && continue
    elif command -v "$item" >/dev/null 2>&1; then
      continue
    fi
    missing+=("$pkg")
    break
  done
done <"$table"
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
