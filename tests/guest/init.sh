#!/bin/sh
# /init of the test guest (busybox sh): set up a minimal system with CUSE, run /tests/run once
# and print its output between markers that run-guest.sh looks for on the serial console.
# Every path ends in `poweroff -f`, which (with -no-reboot) makes QEMU exit.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
# The initramfs carries no /dev/console node (making one needs root at build time), so the
# kernel started us without stdio; take the console from devtmpfs.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp

# Kernel messages would interleave with the test output; failures show up in dmesg below.
echo 1 >/proc/sys/kernel/printk

rc=0
for m in $(cat /lib/modules/order); do
  if ! insmod /lib/modules/$m.ko; then
    echo "init: insmod $m failed"
    rc=1
  fi
done

echo "==== VNVME-GUEST-BEGIN ===="
if [ "$rc" -eq 0 ]; then
  cd /tmp
  sh /tests/run
  rc=$?
fi
echo "==== VNVME-GUEST-END rc=$rc ===="
echo "---- dmesg ----"
dmesg | tail -n 50
sync
poweroff -f
