#!/bin/sh
# /tests/run of vm_rbd: the guest's disk is a vnvmed namespace on a Ceph RBD image. A fio verify
# pass; then a second one during which the host stops the cluster's only OSD for 5 s: the
# guest's writes wait (delays, no errors: the outage is shorter than the bdev's timeout and
# the driver's), and fio's read-back afterwards finds every block as written.
. /tests/tap.sh

ns=/dev/nvme0n1
t=0
while [ ! -b $ns ] && [ $t -lt 200 ]; do sleep 0.1; t=$((t + 1)); done
check "the RBD-backed namespace is there" test -b $ns

check "fio verify on the RBD namespace" fio --name=rbd --filename=$ns --ioengine=libaio --direct=1 \
  --rw=randwrite --bsrange=4k-64k --iodepth=32 --size=32m --verify=crc32c --verify_fatal=1 --do_verify=1

# About 20 s of writes at a fixed rate, so that the outage lands among them.
fio --name=outage --filename=$ns --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=16 \
  --offset=64m --size=16m --rate_iops=200 --verify=crc32c --verify_fatal=1 --do_verify=1 \
  --output-format=json --output=/tmp/outage.json >/tmp/outage.txt 2>&1 &
fio_pid=$!
sleep 2
echo "@@ OUTAGE"
if wait $fio_pid; then
  ok "fio through the OSD outage: no I/O error, verify found no corrupted block"
else
  not_ok "fio through the OSD outage: no I/O error, verify found no corrupted block"
  sed 's/^/# /' /tmp/outage.txt /tmp/outage.json | tail -40
fi
# The slowest write waited out the outage: it really happened under this I/O.
max_ns=$(awk '/"write" : \{/ {w=1} w && /"clat_ns" : \{/ {c=1} c && /"max" :/ {gsub(/[^0-9]/, "", $3); print $3; exit}' /tmp/outage.json)
if [ -n "$max_ns" ] && [ "$max_ns" -ge 2000000000 ]; then
  ok "the guest saw the outage as delay (slowest write $((max_ns / 1000000)) ms)"
else
  not_ok "the guest saw the outage as delay (slowest write: ${max_ns:-?} ns)"
fi
exit $failed
