#!/bin/sh
# /tests/run of scripts/bench-vm: fio on /dev/nvme0n1 of this guest, whatever device is behind it
# (vnvmed through vfio-user-pci, or QEMU's own emulated NVMe). One line per job:
#   RESULT JOB IOPS MEAN_LAT_US GUEST_CPU_US_PER_IO
# Guest CPU counts every vCPU's non-idle time from /proc/stat (interrupts and softirqs included).
secs=$(sed -n 's/.*vnvme\.secs=\([0-9]*\).*/\1/p' /proc/cmdline)
secs=${secs:-10}
ns=/dev/nvme0n1
t=0
while [ ! -b $ns ] && [ $t -lt 200 ]; do sleep 0.1; t=$((t + 1)); done
[ -b $ns ] || { echo "not ok 1 - no $ns"; exit 1; }
# Written once so that reads return real data on both devices.
fio --name=fill --filename=$ns --ioengine=libaio --direct=1 --rw=write --bs=1m --iodepth=4 \
  --size=256m >/dev/null 2>&1

busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
hz=100
run() {
  name=$1
  shift
  b0=$(busy_ticks)
  fio --name="$name" --filename=$ns --ioengine=libaio --direct=1 --size=256m --time_based \
    --runtime="$secs" --output-format=json --output=/tmp/$name.json "$@" >/dev/null 2>&1
  b1=$(busy_ticks)
  awk -v name="$name" -v ticks=$((b1 - b0)) -v hz=$hz '
    /"read" : \{/ {r=1}
    r && !io && /"total_ios" :/ {gsub(/[^0-9]/, "", $3); io=$3}
    r && !iops && /"iops" :/ {gsub(/[^0-9.]/, "", $3); iops=$3}
    r && /"lat_ns" : \{/ {l=1}
    l && !lat && /"mean" :/ {gsub(/[^0-9.]/, "", $3); lat=$3}
    END {printf "RESULT %s %.0f %.1f %.1f\n", name, iops, lat / 1000, io ? ticks * 1e6 / hz / io : 0}
  ' /tmp/$name.json
}
run randread-4k-qd1 --rw=randread --bs=4k --iodepth=1
run randread-4k-qd32 --rw=randread --bs=4k --iodepth=32
run read-128k-qd8 --rw=read --bs=128k --iodepth=8
echo "ok 1 - benchmark ran"
