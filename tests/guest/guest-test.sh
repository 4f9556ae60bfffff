#!/usr/bin/env bash
# A meson test that runs in the test guest:
#   guest-test.sh RUN_SCRIPT [FILE[:DEST]...]
# Builds an initramfs from RUN_SCRIPT (run as /tests/run) and the built FILEs (default
# /bin/NAME), boots it and exits with the guest's result. Exits 77 (meson: skipped) when the
# host lacks the tools (scripts/install-deps installs them). The first run downloads the
# Debian kernel once into the cache (see prepare-kernel.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
for tool in qemu-system-x86_64 busybox nvme cpio xz apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null; then
    echo "guest-test: SKIP: $tool not found (run scripts/install-deps)"
    exit 77
  fi
done

VNVME_GUEST_KERNEL_DIR=$("$here/prepare-kernel.sh")
export VNVME_GUEST_KERNEL_DIR

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Uncompressed: gunzip inside a TCG guest costs more than QEMU loading the larger file.
"$here/build-initramfs.sh" "$work/initramfs.cpio" "$@"
"$here/run-guest.sh" "$work/initramfs.cpio" "$work/console.log"
