#!/bin/sh
# /tests/run of the guest_smoke test (busybox sh inside the guest): start the CUSE smoke
# server, wait for its device node, check it with the client, and check that nvme-cli runs.
# Prints TAP lines; exits non-zero when a check failed.
failed=0

if nvme version >/tmp/nvme-version 2>&1 && grep -q '^nvme version' /tmp/nvme-version; then
  echo "ok - nvme-cli runs in the guest ($(head -n1 /tmp/nvme-version))"
else
  echo "not ok - nvme-cli runs in the guest"; cat /tmp/nvme-version; failed=1
fi

cuse_smoke &
server=$!
# devtmpfs creates the node once the server has registered the device.
tries=0
while [ ! -c /dev/vnvme-smoke ] && [ $tries -lt 100 ] && kill -0 $server 2>/dev/null; do
  sleep 0.1
  tries=$((tries + 1))
done
if [ -c /dev/vnvme-smoke ]; then
  echo "ok - cuse_smoke created /dev/vnvme-smoke"
  cuse_smoke_client /dev/vnvme-smoke || failed=1
else
  echo "not ok - cuse_smoke created /dev/vnvme-smoke"; failed=1
fi

kill $server 2>/dev/null
wait $server 2>/dev/null
exit $failed
