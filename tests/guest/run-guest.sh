#!/usr/bin/env bash
# Boot the test guest and report what its /tests/run printed:
#   run-guest.sh INITRAMFS [LOG]
# Prints the output between the markers init.sh writes, and exits with the guest test's
# status; exits 1 when the markers are missing (the guest crashed, hung or timed out).
# The whole console goes to LOG (default INITRAMFS.log) and is printed on failure.
#   VNVME_GUEST_KERNEL_DIR   prepared kernel (else prepare-kernel.sh is run)
#   VNVME_GUEST_TIMEOUT      seconds before QEMU is killed (default 120)
# QEMU runs under TCG only: /dev/kvm on these machines is a nested PVM KVM that cannot run
# ordinary guests (QEMU aborts or the guest crawls), so it must not be used even if present.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "run-guest: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 INITRAMFS [LOG]"
initrd=$1
log=${2:-$initrd.log}
[ -f "$initrd" ] || die "no such initramfs: $initrd"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
kernel_dir=${VNVME_GUEST_KERNEL_DIR:-$("$here/prepare-kernel.sh")}
timeout_s=${VNVME_GUEST_TIMEOUT:-120}

# vmlinux is the uncompressed ELF: QEMU enters it through its PVH note, skipping the
# in-guest decompression. panic=-1 and -no-reboot turn a guest panic into a QEMU exit.
# -nodefaults: no VGA and no NIC (whose iPXE ROM SeaBIOS would load); the console is the
# serial port on stdio.
start=$(date +%s%N)
set +e
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 \
  -accel tcg -cpu max -m 512M -smp 2 \
  -nodefaults -display none -serial stdio -no-reboot \
  -kernel "$kernel_dir/vmlinux" -initrd "$initrd" \
  -append 'console=ttyS0 panic=-1 quiet' \
  </dev/null >"$log" 2>&1
qemu_rc=$?
set -e
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
elapsed=$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))

# SeaBIOS leaves escape codes on the console and the first marker may share a line with
# them, so match anywhere in the line and treat the log as text (grep -a).
if ! grep -aq '==== VNVME-GUEST-END rc=' "$log"; then
  cat "$log" >&2
  [ "$qemu_rc" -eq 124 ] && die "guest timed out after ${timeout_s}s (log: $log)"
  die "guest ended without result markers (qemu exit $qemu_rc, log: $log)"
fi
sed -n '/==== VNVME-GUEST-BEGIN ====/,/==== VNVME-GUEST-END rc=/p' "$log" |
  grep -av '==== VNVME-GUEST-' | tr -d '\r'
guest_rc=$(grep -ao '==== VNVME-GUEST-END rc=[0-9]*' "$log" | tail -n1 | sed 's/.*rc=//')
echo "run-guest: guest finished in ${elapsed}s, tests exited $guest_rc"
if [ "$guest_rc" != 0 ]; then
  echo "run-guest: full console log ($log):" >&2
  tr -d '\r' <"$log" >&2
  exit 1
fi
