#!/usr/bin/env bash
# Check docs/spark-control.service with systemd's own tools, offline (works without
# systemd as PID 1): `systemd-analyze verify` against a scratch root holding the unit
# and the release binary, and `systemd-analyze security --offline` with a threshold.
#   bash scripts/check-systemd.sh [path/to/spark-control]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/release/spark-control}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin" "$root/usr/local/bin/spark-control"
install -D -m 0644 docs/spark-control.service "$root/etc/systemd/system/spark-control.service"
# The scratch root needs systemd's own units (sysinit.target, …) for the dependencies.
mkdir -p "$root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/system"
systemd-analyze verify --root="$root" spark-control.service
# Exposure 0 (best) … 10; the unit scores 1.6 ("OK") on systemd 252. Fail above 2.0.
systemd-analyze security --offline=true --threshold=20 --root="$root" spark-control.service >/dev/null
echo "systemd: unit verifies; security exposure within threshold"
