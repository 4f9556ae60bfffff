#!/bin/sh
# /tests/run of the guest_cli test (busybox sh inside the guest): the vnvme CLI's host-role
# commands and `vnvme list` against real CUSE devices. One vnvmed serves two controllers; a
# host vnvmed attaches the first from its config file (attach + cuse register), a second host
# vnvmed attaches the other through `vnvme controller attach` / `vnvme cuse register`.
# `vnvme list` must show the namespaces of both processes. Prints numbered TAP lines; exits
# non-zero when a check failed.
. /tests/tap.sh

# output_is DESCRIPTION EXPECTED: the last check's output (/tmp/out.txt) equals file EXPECTED.
output_is() {
  if cmp -s "$2" /tmp/out.txt; then
    ok "$1"
  else
    not_ok "$1"
    echo "# expected:"; sed 's/^/# /' "$2"; echo "# got:"; sed 's/^/# /' /tmp/out.txt
  fi
}
host() { vnvme -s /run/vnvme/host.sock "$@"; }
host2() { vnvme -s /run/vnvme/host2.sock "$@"; }

# vnvmed keeps its CUSE index locks in /var/tmp and its sockets where we say.
mkdir -p /var/tmp /run/vnvme

# Namespaces of 1 GiB (512 B blocks), 16 MiB and 1 MiB (4 KiB blocks): RAM is committed
# only when written, and nothing here writes.
cat >/tmp/target.json <<'EOF'
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 2097152, "block_size": 512}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc1", "num_blocks": 4096, "block_size": 4096}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc2", "num_blocks": 256, "block_size": 4096}}
  ]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "VFIOUSER"}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "nqn.2026-11.io.vnvme:cli0",
      "serial_number": "VNVMECLI0001", "model_number": "vnvme cli e2e", "allow_any_host": true}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "nqn.2026-11.io.vnvme:cli0",
      "namespace": {"bdev_name": "Malloc0", "nsid": 1}}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "nqn.2026-11.io.vnvme:cli0",
      "namespace": {"bdev_name": "Malloc1", "nsid": 2}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "nqn.2026-11.io.vnvme:cli0",
      "listen_address": {"trtype": "VFIOUSER", "adrfam": "IPv4", "traddr": "/run/vnvme/tgt0", "trsvcid": ""}}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "nqn.2026-11.io.vnvme:cli1",
      "serial_number": "VNVMECLI0002", "model_number": "vnvme cli e2e second", "allow_any_host": true}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "nqn.2026-11.io.vnvme:cli1",
      "namespace": {"bdev_name": "Malloc2", "nsid": 1}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "nqn.2026-11.io.vnvme:cli1",
      "listen_address": {"trtype": "VFIOUSER", "adrfam": "IPv4", "traddr": "/run/vnvme/tgt1", "trsvcid": ""}}}
  ]}
]}
EOF

vnvmed -c /tmp/target.json -r /run/vnvme/tgt.sock >/tmp/target.log 2>&1 &
target=$!
if wait_for -S /run/vnvme/tgt0/cntrl $target && wait_for -S /run/vnvme/tgt1/cntrl $target; then
  ok "target vnvmed listens on /run/vnvme/tgt0 and tgt1"
else
  not_ok "target vnvmed listens on /run/vnvme/tgt0 and tgt1"
  sed 's/^/# /' /tmp/target.log
fi

# The first host: the host role from a config file, as SPDK writes it (rpc.py's extra
# transport-id fields included).
cat >/tmp/host.json <<'EOF'
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_nvme_attach_controller", "params": {"name": "Nvme0", "trtype": "VFIOUSER",
      "traddr": "/run/vnvme/tgt0", "adrfam": "IPv4", "trsvcid": "", "subnqn": "nqn.2026-11.io.vnvme:cli0",
      "prchk_reftag": false, "prchk_guard": false, "ctrlr_loss_timeout_sec": 0}},
    {"method": "bdev_nvme_cuse_register", "params": {"name": "Nvme0"}}
  ]}
]}
EOF
vnvmed -c /tmp/host.json -r /run/vnvme/host.sock >/tmp/host.log 2>&1 &
hostpid=$!
if wait_for -S /run/vnvme/host.sock $hostpid; then
  ok "host vnvmed started from a config with bdev_nvme_attach_controller and bdev_nvme_cuse_register"
else
  not_ok "host vnvmed started from a config with bdev_nvme_attach_controller and bdev_nvme_cuse_register"
  sed 's/^/# /' /tmp/host.log
fi
for dev in nvme0 nvme0n1 nvme0n2; do
  if wait_for -c /dev/vnvme/$dev $hostpid; then ok "/dev/vnvme/$dev exists"; else not_ok "/dev/vnvme/$dev exists"; fi
done

# The second host: empty config, everything through the CLI.
echo '{"subsystems": []}' >/tmp/host2.json
vnvmed -c /tmp/host2.json -r /run/vnvme/host2.sock >/tmp/host2.log 2>&1 &
host2pid=$!
if wait_for -S /run/vnvme/host2.sock $host2pid; then
  ok "second host vnvmed serves RPC"
else
  not_ok "second host vnvmed serves RPC"; sed 's/^/# /' /tmp/host2.log
fi
check "vnvme controller attach Nvme1 /run/vnvme/tgt1" host2 controller attach Nvme1 /run/vnvme/tgt1
if grep -q '"Nvme1n1"' /tmp/out.txt; then
  ok "attach answers the namespace's bdev name Nvme1n1"
else
  not_ok "attach answers the namespace's bdev name Nvme1n1"; sed 's/^/# /' /tmp/out.txt
fi
check "vnvme cuse register Nvme1" host2 cuse register Nvme1
printf '/dev/vnvme/nvme1\n/dev/vnvme/nvme1n1\n' >/tmp/want.txt
output_is "cuse register prints the devices (index 1: the first host holds 0)" /tmp/want.txt
check "/dev/vnvme/nvme1n1 is a character device" test -c /dev/vnvme/nvme1n1
check "vnvme cuse register Nvme1 again fails" sh -c '! vnvme -s /run/vnvme/host2.sock cuse register Nvme1'
check "vnvme controller list" host2 controller list
if grep -q '"cuse_devices"' /tmp/out.txt && grep -q '"/dev/vnvme/nvme1n1"' /tmp/out.txt &&
   grep -q '"traddr": "/run/vnvme/tgt1"' /tmp/out.txt; then
  ok "controller list shows Nvme1 at /run/vnvme/tgt1 with its CUSE devices"
else
  not_ok "controller list shows Nvme1 at /run/vnvme/tgt1 with its CUSE devices"; sed 's/^/# /' /tmp/out.txt
fi

# The table, from the devices of both host processes, without any RPC socket.
cat >/tmp/want.txt <<'EOF'
Node               SN                   Model                                    Namespace Usage                      Format           FW Rev
------------------ -------------------- ---------------------------------------- --------- -------------------------- ---------------- --------
/dev/vnvme/nvme0n1 VNVMECLI0001         vnvme cli e2e                            1           1.07 GB /   1.07 GB      512   B +  0 B   0.1.0
/dev/vnvme/nvme0n2 VNVMECLI0001         vnvme cli e2e                            2          16.78 MB /  16.78 MB        4 KiB +  0 B   0.1.0
/dev/vnvme/nvme1n1 VNVMECLI0002         vnvme cli e2e second                     1           1.05 MB /   1.05 MB        4 KiB +  0 B   0.1.0
EOF
check "vnvme list" vnvme -s /nonexistent.sock list
output_is "vnvme list shows both processes' namespaces" /tmp/want.txt

# The first host's configuration carries the attach and the CUSE registration.
check "vnvme config save (first host)" sh -c 'vnvme -s /run/vnvme/host.sock config save >/tmp/saved.json'
if grep -q '"method": "bdev_nvme_attach_controller"' /tmp/saved.json &&
   grep -q '"traddr": "/run/vnvme/tgt0"' /tmp/saved.json &&
   grep -q '"method": "bdev_nvme_cuse_register"' /tmp/saved.json; then
  ok "saved config has bdev_nvme_attach_controller and bdev_nvme_cuse_register"
else
  not_ok "saved config has bdev_nvme_attach_controller and bdev_nvme_cuse_register"; sed 's/^/# /' /tmp/saved.json
fi

check "vnvme cuse unregister Nvme1" host2 cuse unregister Nvme1
if gone /dev/vnvme/nvme1n1 && gone /dev/vnvme/nvme1; then
  ok "unregister removed /dev/vnvme/nvme1 and nvme1n1"
else
  not_ok "unregister removed /dev/vnvme/nvme1 and nvme1n1"; ls -l /dev/vnvme
fi
head -4 /tmp/want.txt >/tmp/want2.txt
check "vnvme list after unregister" vnvme list
output_is "vnvme list no longer shows nvme1n1" /tmp/want2.txt
check "vnvme controller detach Nvme1" host2 controller detach Nvme1
check "vnvme controller list after detach" host2 controller list
if grep -q 'Nvme1' /tmp/out.txt; then
  not_ok "the second host has no controllers left"; sed 's/^/# /' /tmp/out.txt
else
  ok "the second host has no controllers left"
fi

# A host vnvmed restarted from its saved configuration gets its CUSE devices back.
kill $hostpid
wait $hostpid 2>/dev/null
if gone /dev/vnvme/nvme0n1; then ok "host exit removed its devices"; else not_ok "host exit removed its devices"; fi
# The target may still be closing the old connection (one client at a time): retry briefly.
tries=0
while :; do
  vnvmed -c /tmp/saved.json -r /run/vnvme/host.sock >/tmp/host.log 2>&1 &
  hostpid=$!
  wait_for -c /dev/vnvme/nvme0n2 $hostpid && break
  tries=$((tries + 1))
  [ $tries -lt 10 ] || break
  kill $hostpid 2>/dev/null
  wait $hostpid 2>/dev/null
  sleep 0.2
done
if [ -c /dev/vnvme/nvme0n1 ] && [ -c /dev/vnvme/nvme0n2 ]; then
  ok "host restarted from the saved config has /dev/vnvme/nvme0n1 and nvme0n2 again"
else
  not_ok "host restarted from the saved config has /dev/vnvme/nvme0n1 and nvme0n2 again"; sed 's/^/# /' /tmp/host.log
fi
check "vnvme list after the restart" vnvme list
output_is "vnvme list shows the restored namespaces" /tmp/want2.txt

for pid in $hostpid $host2pid $target; do
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
done
if [ $failed -ne 0 ]; then
  echo "# host vnvmed log:"; sed 's/^/# /' /tmp/host.log
  echo "# second host vnvmed log:"; sed 's/^/# /' /tmp/host2.log
  echo "# target vnvmed log:"; sed 's/^/# /' /tmp/target.log
fi
exit $failed
