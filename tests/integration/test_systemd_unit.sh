#!/usr/bin/env bash
# The systemd unit that `meson install` ships (contrib/systemd/vnvmed.service.in): systemd's own
# checker accepts it, with ExecStart pointed at the daemon just built. Skipped (77) where systemd
# is not installed.
#   test_systemd_unit.sh BUILT_UNIT VNVMED
set -euo pipefail
unit=$1 vnvmed=$2
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
work=$(mktemp -d /tmp/vnvme-unit.XXXXXX)
trap 'rm -rf "$work"' EXIT
grep -q '^Type=notify$' "$unit" || { echo "the unit is not Type=notify"; exit 1; }
grep -q '^ExecStart=.*/vnvmed ' "$unit" || { echo "ExecStart does not run vnvmed"; exit 1; }
sed "s|^ExecStart=[^ ]*/vnvmed |ExecStart=$vnvmed |" "$unit" >"$work/vnvmed.service"
if ! out=$(systemd-analyze verify "$work/vnvmed.service" 2>&1); then
  echo "$out"
  exit 1
fi
[ -z "$out" ] || { echo "systemd-analyze warns:"; echo "$out"; exit 1; }
echo "systemd-analyze verify: clean"
