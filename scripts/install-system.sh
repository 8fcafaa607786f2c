#!/usr/bin/env bash
# Install the Debian packages below whose binaries (or files) are missing; as non-root, say
# which and fail. tests/test_system_binaries.py reads this table and checks that every
# program the code, tests and scripts start is provided by a package here (or the venv).
set -euo pipefail
# package                  binaries it provides (or a file, for packages without one)
read -r -d '' TABLE <<'EOF' || true
docker.io                  dockerd docker
prometheus                 prometheus promtool
prometheus-alertmanager    prometheus-alertmanager amtool
prometheus-node-exporter   prometheus-node-exporter
busybox-static             busybox
chromium                   chromium
fonts-noto-color-emoji     /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
fontconfig                 fc-list
redis-server               redis-server
redis-tools                redis-check-rdb
systemd                    systemd-analyze journalctl
systemd-journal-remote     /lib/systemd/systemd-journal-remote
git                        git
postgresql-15              /usr/lib/postgresql/15/bin/postgres /usr/lib/postgresql/15/bin/initdb
EOF
missing=()
while read -r pkg provides; do
  [ -n "$pkg" ] || continue
  for item in $provides; do
    if [[ "$item" == /* ]]; then
      [ -e "$item" ] && continue
    elif command -v "$item" >/dev/null 2>&1; then
      continue
    fi
    missing+=("$pkg")
    break
  done
done <<<"$TABLE"
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
