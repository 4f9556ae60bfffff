#!/bin/sh
# /tests/run of vm_reconnect: one script for every VM of the test, its part chosen by the
# vnvme.role= kernel argument the host (vm_reconnect.sh) gives each boot.
. /tests/tap.sh

role=$(sed -n 's/.*vnvme\.role=\([a-z-]*\).*/\1/p' /proc/cmdline)
ns=/dev/nvme0n1
t=0
while [ ! -b $ns ] && [ $t -lt 200 ]; do sleep 0.1; t=$((t + 1)); done
check "$role: $ns is there" test -b $ns

# The first VM's data: written by one VM, verified by the next (fio's verify_only pass
# recomputes the same blocks and checksums from the same job).
first_job="--name=first --filename=$ns --ioengine=libaio --direct=1 --rw=randwrite --bs=4k
  --iodepth=32 --size=32m --randseed=1234 --verify=crc32c --verify_fatal=1"

case $role in
  write)
    # shellcheck disable=SC2086
    check "write: fio writes 32 MiB with checksums" fio $first_job --do_verify=1
    ;;
  read)
    # shellcheck disable=SC2086
    check "read: a second VM process verifies the first VM's data" fio $first_job --verify_only
    ;;
  killed)
    # Runs until the host kills this VM's QEMU with SIGKILL in the middle of it.
    fio --name=busy --filename=$ns --ioengine=libaio --direct=1 --rw=randwrite --bs=4k \
      --iodepth=32 --offset=64m --size=64m --time_based --runtime=120 >/dev/null 2>&1 &
    sleep 2
    echo "@@ FIO RUNNING"
    wait
    not_ok "killed: still alive after fio's 120 s"
    ;;
  after)
    # shellcheck disable=SC2086
    check "after: the first VM's data survived the killed VM" fio $first_job --verify_only
    check "after: fio verify on the next VM" fio --name=after --filename=$ns --ioengine=libaio \
      --direct=1 --rw=randwrite --bs=4k --iodepth=32 --offset=64m --size=16m \
      --verify=crc32c --verify_fatal=1 --do_verify=1
    ;;
  *)
    not_ok "unknown role '$role'"
    ;;
esac
exit $failed
