#!/usr/bin/env bash
# The systemd unit that `meson install` ships (contrib/systemd/vnvmed.service.in): systemd's own
# checker accepts it, with ExecStart and ExecReload pointed at the programs just built. Skipped (77)
# where systemd is not installed.
#   test_systemd_unit.sh BUILT_UNIT VNVMED VNVME
set -euo pipefail
unit=$1 vnvmed=$2 vnvme=$3
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
work=$(mktemp -d /tmp/vnvme-unit.XXXXXX)
trap 'rm -rf "$work"' EXIT
grep -q '^Type=notify$' "$unit" || { echo "the unit is not Type=notify"; exit 1; }
grep -q '^ExecStart=.*/vnvmed .*--fd-store' "$unit" || { echo "ExecStart does not run vnvmed --fd-store"; exit 1; }
grep -q '^FileDescriptorStoreMax=[1-9]' "$unit" || { echo "no file descriptor store for crash recovery"; exit 1; }
grep -q '^ExecReload=.*/vnvme .* upgrade$' "$unit" || { echo "ExecReload does not upgrade vnvmed"; exit 1; }
sed -e "s|^ExecStart=[^ ]*/vnvmed |ExecStart=$vnvmed |" -e "s|^ExecReload=[^ ]*/vnvme |ExecReload=$vnvme |" \
  "$unit" >"$work/vnvmed.service"
if ! out=$(systemd-analyze verify "$work/vnvmed.service" 2>&1); then
  echo "$out"
  exit 1
fi
[ -z "$out" ] || { echo "systemd-analyze warns:"; echo "$out"; exit 1; }
echo "systemd-analyze verify: clean"
