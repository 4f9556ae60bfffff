#!/bin/sh
# /tests/run of vm_crash: fio with verify while the host kills vnvmed and its supervisor restarts it.
. /tests/tap.sh

ns=/dev/nvme0n1
t=0
while [ ! -b $ns ] && [ $t -lt 200 ]; do sleep 0.1; t=$((t + 1)); done
check "$ns is there" test -b $ns

before="--name=before --filename=$ns --ioengine=libaio --direct=1 --rw=randwrite --bs=4k
  --iodepth=32 --size=16m --randseed=4321 --verify=crc32c --verify_fatal=1"
# shellcheck disable=SC2086
check "fio writes 16 MiB with checksums before the crash" fio $before --do_verify=1

echo "@@ FIO RUNNING"
if fio --name=through --filename=$ns --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 \
    --offset=32m --size=64m --verify=crc32c --verify_fatal=1 --verify_backlog=512 --time_based --runtime=25 \
    --randseed=77 >/tmp/fio.out 2>&1; then
  ok "fio with crc32c verify at iodepth 32 through vnvmed's crash and restart: no error, no bad block"
else
  not_ok "fio with crc32c verify at iodepth 32 through vnvmed's crash and restart: no error, no bad block"
  sed 's/^/# /' /tmp/fio.out | tail -30
fi
grep -E 'err=|clat \(' /tmp/fio.out | sed 's/^/# /'
# shellcheck disable=SC2086
check "the data written before the crash reads back intact" fio $before --verify_only
dmesg | grep -iE 'nvme' | grep -iE 'reset|fatal|timeout|CSTS' | sed 's/^/# kernel: /' | tail -8
exit $failed
