#!/bin/sh
# /tests/run of the guest_cuse test (busybox sh inside the guest): one vnvmed serves a
# two-namespace controller over vfio-user, a second vnvmed attaches it with the userspace
# driver and exposes it through CUSE, and nvme-cli drives /dev/vnvme/* like a kernel device.
# Prints numbered TAP lines; exits non-zero when a check failed.
. /tests/tap.sh

# vnvmed keeps its CUSE index locks in /var/tmp and its sockets where we say.
mkdir -p /var/tmp /run/vnvme/tgt

cat >/tmp/target.json <<'EOF'
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 512, "block_size": 512}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc1", "num_blocks": 4096, "block_size": 4096}}
  ]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "VFIOUSER"}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "nqn.2026-11.io.vnvme:guest",
      "serial_number": "VNVMEGUEST0001", "model_number": "vnvme guest e2e", "allow_any_host": true}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "nqn.2026-11.io.vnvme:guest",
      "namespace": {"bdev_name": "Malloc0", "nsid": 1}}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "nqn.2026-11.io.vnvme:guest",
      "namespace": {"bdev_name": "Malloc1", "nsid": 2}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "nqn.2026-11.io.vnvme:guest",
      "listen_address": {"trtype": "VFIOUSER", "adrfam": "IPv4", "traddr": "/run/vnvme/tgt", "trsvcid": ""}}}
  ]}
]}
EOF

vnvmed -c /tmp/target.json -r /run/vnvme/tgt.sock >/tmp/target.log 2>&1 &
target=$!
if wait_for -S /run/vnvme/tgt/cntrl $target; then
  ok "target vnvmed listens on /run/vnvme/tgt/cntrl"
else
  not_ok "target vnvmed listens on /run/vnvme/tgt/cntrl"
  sed 's/^/# /' /tmp/target.log
fi

# The host role: no target of its own, controllers attached through RPC as an operator would.
echo '{"subsystems": []}' >/tmp/host.json
vnvmed -c /tmp/host.json -r /run/vnvme/host.sock >/tmp/host.log 2>&1 &
host=$!
if wait_for -S /run/vnvme/host.sock $host; then
  ok "host vnvmed serves RPC on /run/vnvme/host.sock"
else
  not_ok "host vnvmed serves RPC on /run/vnvme/host.sock"
  sed 's/^/# /' /tmp/host.log
fi
check "bdev_nvme_attach_controller" \
  vnvme -s /run/vnvme/host.sock rpc bdev_nvme_attach_controller \
  '{"name": "Nvme0", "trtype": "vfiouser", "traddr": "/run/vnvme/tgt"}'
check "bdev_nvme_cuse_register" vnvme -s /run/vnvme/host.sock rpc bdev_nvme_cuse_register '{"name": "Nvme0"}'

for dev in nvme0 nvme0n1 nvme0n2; do
  if wait_for -c /dev/vnvme/$dev $host; then
    ok "/dev/vnvme/$dev exists"
  else
    not_ok "/dev/vnvme/$dev exists"
  fi
done

ctrl=/dev/vnvme/nvme0
ns1=/dev/vnvme/nvme0n1
ns2=/dev/vnvme/nvme0n2

check "nvme id-ctrl $ctrl" nvme id-ctrl $ctrl
if grep -q '^mn *: vnvme guest e2e' /tmp/out.txt && grep -q '^sn *: VNVMEGUEST0001' /tmp/out.txt; then
  ok "id-ctrl shows the target's model and serial"
else
  not_ok "id-ctrl shows the target's model and serial"; sed 's/^/# /' /tmp/out.txt
fi

check "nvme id-ns $ns1" nvme id-ns $ns1
if grep -q '^nsze *: 0x200$' /tmp/out.txt; then
  ok "id-ns $ns1: nsze 0x200 (512 blocks)"
else
  not_ok "id-ns $ns1: nsze 0x200 (512 blocks)"; sed 's/^/# /' /tmp/out.txt
fi
check "nvme id-ns $ns2" nvme id-ns $ns2
if grep -q '^nsze *: 0x1000$' /tmp/out.txt && grep -q 'lbads:12 .*in use' /tmp/out.txt; then
  ok "id-ns $ns2: nsze 0x1000 (4096 blocks) of 4 KiB"
else
  not_ok "id-ns $ns2: nsze 0x1000 (4096 blocks) of 4 KiB"; sed 's/^/# /' /tmp/out.txt
fi

check "nvme list-ns $ctrl" nvme list-ns $ctrl
if grep -q '0x1$' /tmp/out.txt && grep -q '0x2$' /tmp/out.txt && [ "$(grep -c '0x' /tmp/out.txt)" -eq 2 ]; then
  ok "list-ns lists nsid 1 and 2"
else
  not_ok "list-ns lists nsid 1 and 2"; sed 's/^/# /' /tmp/out.txt
fi

check "nvme smart-log $ctrl" nvme smart-log $ctrl
if grep -q '^critical_warning[[:space:]]*: 0$' /tmp/out.txt && grep -q '^available_spare[[:space:]]*: 100%' /tmp/out.txt; then
  ok "smart-log prints the health log"
else
  not_ok "smart-log prints the health log"; sed 's/^/# /' /tmp/out.txt
fi

# 4 KiB = blocks 8..15 of the 512-byte namespace (-c is zero-based).
dd if=/dev/urandom of=/tmp/in.bin bs=4096 count=1 2>/dev/null
check "nvme write 4 KiB to $ns1" nvme write $ns1 -s 8 -c 7 -z 4096 -d /tmp/in.bin
check "nvme read 4 KiB from $ns1" nvme read $ns1 -s 8 -c 7 -z 4096 -d /tmp/readback.bin
check "read data equals written data" cmp /tmp/in.bin /tmp/readback.bin
# The 4 KiB-block namespace: one block, and it must not see ns1's write before its own.
check "nvme read block 2 of $ns2 before writing it" nvme read $ns2 -s 2 -c 0 -z 4096 -d /tmp/other.bin
if cmp -s /tmp/in.bin /tmp/other.bin; then
  not_ok "$ns2 does not hold $ns1's data"
else
  ok "$ns2 does not hold $ns1's data"
fi
dd if=/dev/urandom of=/tmp/in2.bin bs=4096 count=1 2>/dev/null
check "nvme write one 4 KiB block to $ns2" nvme write $ns2 -s 2 -c 0 -z 4096 -d /tmp/in2.bin
check "nvme read it back from $ns2" nvme read $ns2 -s 2 -c 0 -z 4096 -d /tmp/readback2.bin
check "$ns2 read data equals written data" cmp /tmp/in2.bin /tmp/readback2.bin
check "$ns1 still holds its data" sh -c "nvme read $ns1 -s 8 -c 7 -z 4096 -d /tmp/readback.bin && cmp /tmp/in.bin /tmp/readback.bin"

check "nvme flush $ns1" nvme flush $ns1
check "nvme get-feature -f 7 $ctrl" nvme get-feature $ctrl -f 7
if grep -q 'Current value:0x[0-9a-f]\{8\}' /tmp/out.txt; then
  ok "get-feature 7 reports the number of queues"
else
  not_ok "get-feature 7 reports the number of queues"; sed 's/^/# /' /tmp/out.txt
fi

# same_file A B: cmp with the first differing bytes shown on failure.
same() { cmp "$1" "$2" && return 0; od -An -tx1 "$2" | head -4; return 1; }
tgt_rpc() { vnvme -s /run/vnvme/tgt.sock "$@"; }
dd if=/dev/zero of=/tmp/zero.bin bs=4096 count=1 2>/dev/null

check "nvme set-feature -f 4 -v 0x160 $ctrl" nvme set-feature $ctrl -f 4 -v 0x160
check "nvme get-feature -f 4 $ctrl" nvme get-feature $ctrl -f 4
if grep -q 'Current value:0x0*160' /tmp/out.txt; then
  ok "get-feature reads back the temperature threshold set-feature wrote"
else
  not_ok "get-feature reads back the temperature threshold set-feature wrote"; sed 's/^/# /' /tmp/out.txt
fi
check "nvme error-log $ctrl" nvme error-log $ctrl -e 4
if grep -q 'error_count' /tmp/out.txt; then
  ok "error-log prints entries"
else
  not_ok "error-log prints entries"; sed 's/^/# /' /tmp/out.txt
fi

check "nvme write-zeroes $ns1 blocks 8-15" nvme write-zeroes $ns1 -s 8 -c 7
check "read after write-zeroes gives zeroes" sh -c \
  "nvme read $ns1 -s 8 -c 7 -z 4096 -d /tmp/rz.bin && cmp /tmp/zero.bin /tmp/rz.bin"

check "nvme write 4 KiB to $ns1 again" nvme write $ns1 -s 8 -c 7 -z 4096 -d /tmp/in.bin
check "nvme compare with the same data succeeds" nvme compare $ns1 -s 8 -c 7 -z 4096 -d /tmp/in.bin
if nvme compare $ns1 -s 8 -c 7 -z 4096 -d /tmp/in2.bin >/tmp/out.txt 2>&1; then
  not_ok "nvme compare with other data fails"; sed 's/^/# /' /tmp/out.txt
elif grep -qi 'compare' /tmp/out.txt; then
  ok "nvme compare with other data fails with a compare failure"
else
  not_ok "nvme compare with other data fails with a compare failure"; sed 's/^/# /' /tmp/out.txt
fi
check "nvme dsm --ad deallocates blocks 8-15" nvme dsm $ns1 --ad -s 8 -b 8
check "deallocated blocks read as zeroes" sh -c \
  "nvme read $ns1 -s 8 -c 7 -z 4096 -d /tmp/rz.bin && cmp /tmp/zero.bin /tmp/rz.bin"

# Raw passthrough: Write (01h) and Read (02h) of blocks 32-39, Identify (06h) CNS 1.
check "nvme io-passthru write" nvme io-passthru $ns1 -o 1 -n 1 --cdw10=32 --cdw12=7 -l 4096 -w -i /tmp/in.bin
check "nvme io-passthru read" sh -c "nvme io-passthru $ns1 -o 2 -n 1 --cdw10=32 --cdw12=7 -l 4096 -r -b >/tmp/pt.bin"
check "io-passthru read returns the io-passthru write" same /tmp/in.bin /tmp/pt.bin
check "nvme admin-passthru identify" sh -c "nvme admin-passthru $ctrl -o 6 --cdw10=1 -l 4096 -r -b >/tmp/idc.bin"
if [ "$(dd if=/tmp/idc.bin bs=1 skip=24 count=15 2>/dev/null)" = "vnvme guest e2e" ]; then
  ok "admin-passthru identify carries the model number"
else
  not_ok "admin-passthru identify carries the model number"; od -c /tmp/idc.bin | head -4
fi

check "nvme reset $ctrl" nvme reset $ctrl
check "I/O after reset" sh -c "nvme read $ns1 -s 32 -c 7 -z 4096 -d /tmp/pt2.bin && cmp /tmp/in.bin /tmp/pt2.bin"

# A namespace added and removed on the target: the CUSE device follows the namespace-changed
# event on its own; ns-rescan (NVME_IOCTL_RESCAN) then finds the same list.
check "target: bdev malloc-create Malloc2" tgt_rpc bdev malloc-create Malloc2 1 4096
check "target: ns add nsid 3" tgt_rpc ns add nqn.2026-11.io.vnvme:guest Malloc2 3
if wait_for -c /dev/vnvme/nvme0n3 $host; then
  ok "/dev/vnvme/nvme0n3 appears after the namespace-changed event"
else
  not_ok "/dev/vnvme/nvme0n3 appears after the namespace-changed event"; ls -l /dev/vnvme
fi
check "nvme ns-rescan $ctrl" nvme ns-rescan $ctrl
check "nvme id-ns /dev/vnvme/nvme0n3" nvme id-ns /dev/vnvme/nvme0n3
if grep -q '^nsze *: 0x100$' /tmp/out.txt; then
  ok "nvme0n3 has 256 blocks of 4 KiB"
else
  not_ok "nvme0n3 has 256 blocks of 4 KiB"; sed 's/^/# /' /tmp/out.txt
fi
check "list-ns shows nsid 3" sh -c "nvme list-ns $ctrl | grep -q '0x3\$'"
check "target: ns remove nsid 3" tgt_rpc ns remove nqn.2026-11.io.vnvme:guest 3
if gone /dev/vnvme/nvme0n3 && [ -c $ns1 ] && [ -c $ns2 ]; then
  ok "/dev/vnvme/nvme0n3 disappears, nvme0n1 and nvme0n2 stay"
else
  not_ok "/dev/vnvme/nvme0n3 disappears, nvme0n1 and nvme0n2 stay"; ls -l /dev/vnvme
fi
check "nvme ns-rescan $ctrl after removal" nvme ns-rescan $ctrl
if [ ! -e /dev/vnvme/nvme0n3 ] && [ -c $ns1 ] && [ -c $ns2 ]; then
  ok "after ns-rescan: nvme0n1 and nvme0n2, no nvme0n3"
else
  not_ok "after ns-rescan: nvme0n1 and nvme0n2, no nvme0n3"; ls -l /dev/vnvme
fi

# read()/write() on the namespace devices: dd, cmp and hexdump like on a block device.
dd if=/dev/urandom of=/tmp/img.bin bs=4096 count=64 2>/dev/null
check "dd an image onto $ns1" dd if=/tmp/img.bin of=$ns1 bs=65536 conv=notrunc
check "cmp the image with $ns1" same /tmp/img.bin $ns1
check "dd reads the first 8 KiB back" sh -c "dd if=$ns1 of=/tmp/head.bin bs=4096 count=2 && dd if=/tmp/img.bin of=/tmp/imghead.bin bs=4096 count=2 && cmp /tmp/head.bin /tmp/imghead.bin"
if [ "$(hexdump -C $ns1 | head -2)" = "$(hexdump -C /tmp/img.bin | head -2)" ]; then
  ok "hexdump of $ns1 shows the image"
else
  not_ok "hexdump of $ns1 shows the image"
fi
check "nvme read sees what dd wrote" sh -c "nvme read $ns1 -s 8 -c 7 -z 4096 -d /tmp/r8.bin && dd if=/tmp/img.bin of=/tmp/i8.bin bs=4096 skip=1 count=1 && cmp /tmp/i8.bin /tmp/r8.bin"

# run_tap LABEL PROGRAM ARGS...: a C test's TAP lines join ours, prefixed with LABEL.
run_tap() {
  label=$1
  shift
  "$@" >/tmp/tap.txt 2>&1
  rc=$?
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "$label: ${line#ok [0-9]* - }" ;;
      "not ok "*) not_ok "$label: ${line#not ok [0-9]* - }" ;;
      *) echo "$line" ;;
    esac
  done </tmp/tap.txt
  [ $rc -eq 0 ] || not_ok "$1 exits 0 (rc $rc)"
}

# Every ioctl, directly (tests/guest/cuse_ioctl_test.c).
run_tap ioctl cuse_ioctl_test $ctrl $ns1 $ns2
# The same devices from a 32-bit process (tests/guest/cuse_compat_test.c, a static -m32 build).
if [ -x /bin/cuse_compat_test ]; then
  run_tap compat cuse_compat_test $ctrl $ns2
else
  not_ok "a 32-bit build of cuse_compat_test is in the guest (gcc-multilib: scripts/install-deps)"
fi

# nvme-cli end to end: each read is a whole process (exec, open, ioctl), as users run it.
elapsed_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }
for spec in "4096 0" "126976 30"; do
  set -- $spec
  start=$(elapsed_cs)
  i=0
  while [ $i -lt 20 ]; do
    nvme read $ns2 -s 0 -c $2 -z $1 -d /tmp/perf.bin >/dev/null 2>&1 || break
    i=$((i + 1))
  done
  cs=$(( $(elapsed_cs) - start ))
  [ $cs -gt 0 ] || cs=1
  echo "# rate nvme-cli read $1 bytes: $i reads in ${cs}0 ms: $((i * 100 / cs)) reads/s, $((i * $1 * 100 / cs / 1024)) KiB/s"
  if [ $i -eq 20 ]; then ok "20 nvme-cli reads of $1 bytes"; else not_ok "20 nvme-cli reads of $1 bytes"; fi
done

# A live upgrade of the host vnvmed (framework_upgrade): an open CUSE connection cannot change hands,
# so its devices go away and the new process registers them again. A descriptor opened before sees
# its device gone (the kernel ends the FUSE connection); opened again, the node works, data intact.
exec 7<$ns1
head -c 1 <&7 >/dev/null 2>/tmp/held.before
dd if=/dev/urandom of=/tmp/up.bin bs=4096 count=1 2>/dev/null
check "nvme write 4 KiB to $ns1 before the upgrade" nvme write $ns1 -s 64 -c 7 -z 4096 -d /tmp/up.bin
if vnvme -s /run/vnvme/host.sock upgrade >/tmp/upgrade.json 2>&1 &&
   newhost=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' /tmp/upgrade.json) && [ -n "$newhost" ]; then
  ok "the host vnvmed upgraded while $ns1 was open (pid $host to $newhost)"
  host=$newhost
else
  not_ok "the host vnvmed upgraded while $ns1 was open"; sed 's/^/# /' /tmp/upgrade.json
fi
if wait_for -c $ns1 $host && wait_for -c $ctrl $host; then
  ok "the new process registered $ctrl and $ns1 again"
else
  not_ok "the new process registered $ctrl and $ns1 again"; ls -l /dev/vnvme; sed 's/^/# /' /tmp/host.log | tail -20
fi
check "nvme id-ctrl $ctrl after the upgrade" nvme id-ctrl $ctrl
check "$ns1's data from before the upgrade reads back" \
  sh -c "nvme read $ns1 -s 64 -c 7 -z 4096 -d /tmp/readback.bin && cmp /tmp/up.bin /tmp/readback.bin"
# Before the upgrade a read of the held descriptor worked; after it, it fails (the kernel ended that connection).
if [ -s /tmp/held.before ]; then
  not_ok "the descriptor opened before the upgrade read before it"; sed 's/^/# /' /tmp/held.before
elif head -c 1 <&7 >/dev/null 2>/tmp/held.after; then
  not_ok "the descriptor opened before the upgrade reports an error after it"
elif [ -s /tmp/held.after ]; then
  ok "the descriptor opened before the upgrade reports an error after it: $(tr -d '\n' </tmp/held.after)"
else
  not_ok "the descriptor opened before the upgrade reports an error after it"
  sed 's/^/# before: /' /tmp/held.before
  sed 's/^/# after: /' /tmp/held.after
fi
exec 7<&-

# Access control: the nodes registered again for group 4321 with mode 0640; a user of that group,
# and root without CAP_SYS_ADMIN, get what Linux's NVMe driver gives them (cuse_access_test.c).
check "bdev_nvme_cuse_unregister" vnvme -s /run/vnvme/host.sock rpc bdev_nvme_cuse_unregister '{"name": "Nvme0"}'
gone $ns1 || not_ok "$ns1 removed by unregister"
check "bdev_nvme_cuse_register with group 4321, mode 0640" vnvme -s /run/vnvme/host.sock rpc bdev_nvme_cuse_register \
  '{"name": "Nvme0", "owner": "0", "group": "4321", "mode": "0640"}'
wait_for -c $ns1 $host || not_ok "$ns1 back after register"
run_tap access cuse_access_test $ctrl $ns1 4321
vnvme -s /run/vnvme/host.sock rpc save_config >/tmp/save.json 2>&1
if grep -q '"group": *"4321"' /tmp/save.json && grep -q '"mode": *"0640"' /tmp/save.json; then
  ok "save_config keeps the CUSE nodes' group and mode"
else
  not_ok "save_config keeps the CUSE nodes' group and mode"; sed 's/^/# /' /tmp/save.json
fi

check "bdev_nvme_detach_controller" \
  vnvme -s /run/vnvme/host.sock rpc bdev_nvme_detach_controller '{"name": "Nvme0"}'
if [ ! -e $ctrl ] && [ ! -e $ns1 ]; then
  ok "detach removed the CUSE devices"
else
  not_ok "detach removed the CUSE devices"; ls -l /dev/vnvme
fi

for pid in $host $target; do
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
done
if [ $failed -ne 0 ]; then
  echo "# host vnvmed log:"; sed 's/^/# /' /tmp/host.log
  echo "# target vnvmed log:"; sed 's/^/# /' /tmp/target.log
fi
exit $failed
