#!/bin/sh
# /tests/run of vm_boot: this guest was started with no -kernel. SeaBIOS read syslinux, the
# kernel and this initramfs from a vnvmed namespace with its own NVMe driver; reaching this
# script is the test. Then the guest's nvme driver takes the controller over.
. /tests/tap.sh

ok "booted with no -kernel: init reached"
check "the boot loader started the kernel (BOOT_IMAGE=/vmlinuz on the command line)" \
  grep -q 'BOOT_IMAGE=/vmlinuz' /proc/cmdline
t=0
while [ ! -b /dev/nvme0n1 ] && [ $t -lt 200 ]; do sleep 0.1; t=$((t + 1)); done
# The boot disk's FAT volume holds the files the boot loader read.
check "the guest's nvme driver sees the boot disk, syslinux's files on it" sh -c \
  "dd if=/dev/nvme0n1 bs=1M count=4 2>/dev/null | grep -aq 'SYSLINUX'"
exit $failed
