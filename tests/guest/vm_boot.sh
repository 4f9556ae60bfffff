#!/usr/bin/env bash
# vm_boot: a VM boots from a vnvmed namespace with no -kernel. The disk is a FAT image made with
# Debian's syslinux and mtools (no loop mount) holding the guest kernel, an initramfs and
# syslinux.cfg, served by a uring bdev; SeaBIOS's NVMe driver loads it through QEMU's
# vfio-user-pci, and the guest reaches its init.
#   vm_boot.sh VNVMED VNVME
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"

for tool in mkfs.vfat mcopy syslinux; do
  command -v "$tool" >/dev/null || { host_not_ok "$tool not found (scripts/install-deps installs it)"; exit 1; }
done

# A small gzipped initramfs: SeaBIOS reads it by polled NVMe commands under TCG.
"$here/build-initramfs.sh" "$work/initrd.gz" "$here/vm_boot_guest.sh" "$here/tap.sh:/tests/tap.sh" || exit 1
img=$work/boot.img
truncate -s 64M "$img"
mkfs.vfat -n VNVMEBOOT "$img" >/dev/null
cat >"$work/syslinux.cfg" <<CFG
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz console=ttyS0 panic=-1 quiet
CFG
host_check "boot image made: kernel, initramfs, syslinux.cfg and syslinux on a FAT volume" sh -c "
  mcopy -i '$img' '$kernel_dir/vmlinuz' ::/vmlinuz &&
  mcopy -i '$img' '$work/initrd.gz' ::/initrd.gz &&
  mcopy -i '$img' '$work/syslinux.cfg' ::/syslinux.cfg &&
  syslinux --install '$img'"

vm_config "$work/config.json" nqn.2026-11.io.vnvme:boot Boot0 \
  '{"method": "bdev_uring_create", "params": {"name": "Boot0", "filename": "'"$img"'", "block_size": 512}}'
vnvmed_start "$work/config.json" || exit 1

VM_NO_KERNEL=1 VM_BOOTINDEX=1 vm_start boot "" "$work/vm/cntrl"
vm_finish boot 240
guest_rc=$?
host_check "vnvmed is still running" kill -0 "$vnvmed_pid"
[ "$guest_rc" = 0 ] && [ "$host_failed" = 0 ]
