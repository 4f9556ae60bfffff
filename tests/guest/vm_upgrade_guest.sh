#!/bin/sh
# /tests/run of vm_upgrade: fio with verify on both namespaces while the host upgrades vnvmed.
. /tests/tap.sh

for ns in /dev/nvme0n1 /dev/nvme0n2; do
  t=0
  while [ ! -b $ns ] && [ $t -lt 200 ]; do sleep 0.1; t=$((t + 1)); done
  check "$ns is there" test -b $ns
done

# Written before the upgrades, read back after them: the RAM namespace's memory moved to new processes.
before="--name=before --filename=/dev/nvme0n1 --ioengine=libaio --direct=1 --rw=randwrite --bs=4k
  --iodepth=32 --size=16m --randseed=4321 --verify=crc32c --verify_fatal=1"
# shellcheck disable=SC2086
check "fio writes 16 MiB with checksums to the RAM namespace" fio $before --do_verify=1

# The host adds namespace 3 right after this line and removes it after its upgrades.
(while :; do [ -b /dev/nvme0n3 ] && { touch /tmp/n3.seen; break; }; sleep 0.2; done) &
echo "@@ FIO RUNNING"
# Writes verified as they go (verify_backlog) and at the end, for longer than the host's three upgrades take.
if fio --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --verify=crc32c --verify_fatal=1 \
    --verify_backlog=512 --time_based --runtime=14 --randseed=99 --group_reporting=0 \
    --write_iops_log=/tmp/iops --log_avg_msec=100 \
    --name=ram --filename=/dev/nvme0n1 --offset=32m --size=64m \
    --name=uring --filename=/dev/nvme0n2 --size=64m >/tmp/fio.out 2>&1; then
  ok "fio with crc32c verify at iodepth 32 on the RAM and the uring namespace through three upgrades"
else
  not_ok "fio with crc32c verify at iodepth 32 on the RAM and the uring namespace through three upgrades"
fi
grep -E 'err=|lat \(|clat \(|IOPS=' /tmp/fio.out | sed 's/^/# /'
# The IOPS of each 100 ms of the RAM job's writes: a pause shows as a low bucket (measured, not asserted).
for log in /tmp/iops_iops.1.log; do
  [ -f $log ] && awk -F, '$3 + 0 == 1 { v[n++] = $2 + 0 } END {
      if (!n) exit; min = v[0]; for (i = 0; i < n; i++) if (v[i] < min) min = v[i]
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      printf "# ram job, IOPS per 100 ms bucket: %d buckets, lowest %d, median %d\n", n, min, v[int(n / 2)] }' $log
done
# shellcheck disable=SC2086
check "the RAM namespace's data from before the upgrades reads back intact" fio $before --verify_only
check "the namespace hot-added before the upgrades appeared" test -f /tmp/n3.seen
t=0
while [ -b /dev/nvme0n3 ] && [ $t -lt 150 ]; do sleep 0.1; t=$((t + 1)); done
check "the namespace removed after the upgrades went away (its notice came through a carried AER)" test ! -b /dev/nvme0n3
if dmesg | grep -iE 'nvme.*(timeout|reset|abort)' >/tmp/dmesg.bad; then
  not_ok "the guest's kernel logged no NVMe timeout, abort or reset"
  sed 's/^/# /' /tmp/dmesg.bad
else
  ok "the guest's kernel logged no NVMe timeout, abort or reset"
fi
exit $failed
