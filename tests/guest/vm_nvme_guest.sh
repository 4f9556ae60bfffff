#!/bin/sh
# /tests/run of vm_nvme (busybox sh in a guest on QEMU's vfio-user-pci, served by vnvmed on the
# host): the guest's own nvme driver and its tools against vnvmed. Lines starting "@@ " ask the
# host (vm_nvme.sh) to act; the guest then waits for the effect.
. /tests/tap.sh

# wait_path TEST PATH SECONDS
wait_path() {
  t=0
  while ! test "$1" "$2" && [ $t -lt $(($3 * 10)) ]; do sleep 0.1; t=$((t + 1)); done
  test "$1" "$2"
}
# wait_gone PATH SECONDS
wait_gone() {
  t=0
  while [ -e "$1" ] && [ $t -lt $(($2 * 10)) ]; do sleep 0.1; t=$((t + 1)); done
  [ ! -e "$1" ]
}
# fio_verify NAME DEVICE ARGS...: a write pass, then fio reads everything back and checks it.
fio_verify() {
  name=$1 dev=$2
  shift 2
  check "fio $name on $dev: no I/O error, verify clean" \
    fio --name="$name" --filename="$dev" --ioengine=libaio --direct=1 --do_verify=1 \
      --verify_fatal=1 --group_reporting "$@"
}
md5() { dd if="$1" bs=1M count="$2" iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1; }

ns1=/dev/nvme0n1
wait_path -b $ns1 20
check "nvme list shows the vnvmed namespace" sh -c "nvme list | grep -q '$ns1 .*vnvme'"
check "id-ctrl: model and subsystem NQN" sh -c \
  "nvme id-ctrl /dev/nvme0 | grep -q '^mn .*vnvme guest' && nvme id-ctrl /dev/nvme0 | grep -q 'subnqn.*nqn.2026-11.io.vnvme:vm'"
check "id-ns: 262144 blocks of 512 bytes" sh -c \
  "nvme id-ns $ns1 | grep -q '^nsze *: 0x40000' && nvme id-ns $ns1 | grep -q 'lbaf  0 : ms:0   lbads:9 .*(in use)'"

# One I/O queue per vCPU, each on its own MSI-X vector (an IRQ line of its own).
queues=$(grep -c 'nvme0q[1-9]' /proc/interrupts)
irqs=$(grep 'nvme0q[1-9]' /proc/interrupts | awk '{print $1}' | sort -u | wc -l)
if [ "$queues" -ge 2 ] && [ "$irqs" -eq "$queues" ] && grep 'nvme0q[1-9]' /proc/interrupts | grep -q MSI; then
  ok "$queues I/O queues with their own MSI-X vectors"
else
  not_ok "at least 2 I/O queues with their own MSI-X vectors"
  grep nvme /proc/interrupts | sed 's/^/# /'
fi

fio_verify rand4k $ns1 --rw=randwrite --bs=4k --iodepth=32 --size=16m --verify=crc32c
fio_verify mixed $ns1 --rw=randwrite --bsrange=512-256k --iodepth=16 --numjobs=2 \
  --offset=32m --size=32m --offset_increment=32m --verify=md5
# The I/O queues all took interrupts (the work above ran on every CPU's queue or not; the
# first queue at least must have).
if grep 'nvme0q1' /proc/interrupts | awk '{s=0; for (i=2;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; exit !(s>0)}'; then
  ok "I/O completions arrived by MSI-X interrupt"
else
  not_ok "I/O completions arrived by MSI-X interrupt"
  grep nvme /proc/interrupts | sed 's/^/# /'
fi

# The SMART / Health log shows this guest's own traffic. nvme-cli 2.3 prints "Data Units Read : 164
# (83.97 MB)" and "host_read_commands : 12345": the first number after the colon.
nvme smart-log /dev/nvme0 >/tmp/smart.txt 2>&1
smart() { sed -n "s/^$1[[:space:]]*: *\([0-9,]*\).*/\1/p" /tmp/smart.txt | tr -d ','; }
if [ "$(smart 'Data Units Written')" -gt 0 ] 2>/dev/null && [ "$(smart 'Data Units Read')" -gt 0 ] &&
  [ "$(smart host_write_commands)" -gt 4096 ] && [ "$(smart host_read_commands)" -gt 4096 ]; then
  ok "smart-log counts the data and commands fio moved"
else
  not_ok "smart-log counts the data and commands fio moved"
  sed 's/^/# /' /tmp/smart.txt
fi

dd if=/dev/urandom of=/tmp/1m bs=1M count=1 2>/dev/null
check "dd: 1 MiB written with O_DIRECT" dd if=/tmp/1m of=$ns1 bs=1M seek=100 oflag=direct
check "dd: 1 MiB reads back the same" sh -c "dd if=$ns1 bs=1M skip=100 count=1 iflag=direct 2>/dev/null | cmp - /tmp/1m"

check "blkdiscard of 1 MiB" blkdiscard -o $((100 * 1048576)) -l 1048576 $ns1
check "discarded blocks read back as zeroes" sh -c \
  "dd if=$ns1 bs=1M skip=100 count=1 iflag=direct 2>/dev/null | cmp - /dev/zero -n 1048576"

dd if=/tmp/1m of=$ns1 bs=1M seek=101 oflag=direct 2>/dev/null
check "nvme write-zeroes of 8 blocks" nvme write-zeroes $ns1 --start-block=$((101 * 2048)) --block-count=7
check "written-zeroes blocks read back as zeroes, the next one intact" sh -c \
  "dd if=$ns1 bs=512 skip=$((101 * 2048)) count=8 iflag=direct 2>/dev/null | cmp - /dev/zero -n 4096 &&
   dd if=/tmp/1m bs=512 skip=8 count=1 of=/tmp/block9 2>/dev/null &&
   dd if=$ns1 bs=512 skip=$((101 * 2048 + 8)) count=1 iflag=direct 2>/dev/null | cmp - /tmp/block9"

# nvme-cli names the status it got: it must be LBA Out of Range (status code 0x80).
if ! nvme read $ns1 --start-block=262144 --block-count=0 --data-size=512 >/tmp/oor.txt 2>&1 &&
  grep -q 'LBA_RANGE\|LBA Out of Range' /tmp/oor.txt; then
  ok "a read past the end fails with LBA Out of Range"
  sed 's/^/# /' /tmp/oor.txt
else
  not_ok "a read past the end fails with LBA Out of Range"
  sed 's/^/# /' /tmp/oor.txt
fi

before=$(md5 $ns1 64)
check "nvme reset" nvme reset /dev/nvme0
wait_path -b $ns1 20
check "data reads back intact after the reset" test "$(md5 $ns1 64)" = "$before"
fio_verify after-reset $ns1 --rw=randwrite --bs=4k --iodepth=8 --offset=96m --size=4m --verify=crc32c

# Namespace hot add: the host adds namespace 2 over RPC; the driver learns of it from the
# Namespace Attribute Changed event alone (nothing here rescans).
echo "@@ HOTADD"
if wait_path -b /dev/nvme0n2 30; then
  ok "hot-added namespace appears as /dev/nvme0n2 by itself"
  fio_verify hot /dev/nvme0n2 --rw=randwrite --bs=4k --iodepth=16 --size=8m --verify=crc32c
else
  not_ok "hot-added namespace appears as /dev/nvme0n2 by itself"
  nvme list-ns /dev/nvme0 | sed 's/^/# /'
fi
echo "@@ HOTREMOVE"
check "hot-removed namespace disappears" wait_gone /dev/nvme0n2 30
check "nvme0n1 unaffected by the removal" test "$(md5 $ns1 64)" = "$before"

# PCI remove: the driver shuts the controller down (CC.SHN; the host checks vnvmed saw the
# shutdown complete), then a rescan brings it back.
dev=$(readlink -f /sys/class/nvme/nvme0/device)
check "PCI remove of $dev" sh -c "echo 1 >$dev/remove"
check "the controller is gone after the remove" wait_gone /dev/nvme0 10
echo "@@ REMOVED"
check "PCI rescan" sh -c "echo 1 >/sys/bus/pci/rescan"
check "the namespace is back after the rescan" wait_path -b $ns1 30
check "data intact after remove and rescan" test "$(md5 $ns1 64)" = "$before"
fio_verify after-rescan $ns1 --rw=randwrite --bs=4k --iodepth=32 --offset=100m --size=4m --verify=crc32c

exit $failed
