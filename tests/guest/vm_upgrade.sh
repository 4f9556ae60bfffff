#!/usr/bin/env bash
# vm_upgrade: vnvmed is upgraded (framework_upgrade, to its own binary) three times in a row while
# a guest's own nvme driver runs fio with crc32c verify at iodepth 32 on a RAM and a uring
# namespace. fio must finish without an I/O error or a bad block, the guest's kernel must log no
# timeout or reset, and what the guest wrote to the RAM namespace before the upgrades must read back
# intact after them. A namespace hot-added before the upgrades and removed after them must appear
# and go away in the guest (the removal's notice goes out on an AER the guest sent to the first
# process). QEMU's vfio-user client is unmodified: it never sees a reconnect.
#   vm_upgrade.sh VNVMED VNVME
# VNVME_VM_UPGRADES=N upgrades N times instead of 3 (0: the same run without upgrades, for comparing
# the guest's latency and IOPS figures it prints).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"

nqn=nqn.2026-12.io.vnvme:upgrade
truncate -s 128M "$work/uring.img"
mkdir -p "$work/vm"
cat >"$work/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 32768, "block_size": 4096}},
    {"method": "bdev_uring_create", "params": {"name": "Uring0", "filename": "$work/uring.img"}}]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "VFIOUSER"}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "$nqn", "allow_any_host": true}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "$nqn", "namespace": {"bdev_name": "Malloc0", "nsid": 1}}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "$nqn", "namespace": {"bdev_name": "Uring0", "nsid": 2}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "$nqn",
      "listen_address": {"trtype": "VFIOUSER", "traddr": "$work/vm"}}}]}]}
JSON

vm_initramfs "$work/initrd.cpio" "$here/vm_upgrade_guest.sh" || exit 1
vnvmed_start "$work/config.json" || exit 1

hot_add() {
  rpc bdev_malloc_create '{"name": "Hot0", "num_blocks": 4096, "block_size": 4096}' &&
    rpc nvmf_subsystem_add_ns "{\"nqn\": \"$nqn\", \"namespace\": {\"bdev_name\": \"Hot0\", \"nsid\": 3}}"
}

vm_start guest "$work/initrd.cpio" "$work/vm/cntrl"
if vm_wait_line guest '@@ FIO RUNNING' 180; then
  host_check "a namespace hot-added before the upgrades" hot_add
  pauses=()
  for n in $(seq "${VNVME_VM_UPGRADES:-3}"); do
    sleep 2
    old=$vnvmed_pid
    if out=$("$VNVME" -s "$work/rpc.sock" upgrade "$VNVMED" 2>&1) && new=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' <<<"$out") && [ -n "$new" ]; then
      vnvmed_pid=$new
      pauses+=("$(sed -n 's/.*"pause_us": *\([0-9]*\).*/\1/p' <<<"$out")")
      for i in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
      wait "$old" 2>/dev/null
      host_check "upgrade $n: pid $old handed over to pid $new and exited" sh -c "! kill -0 $old 2>/dev/null && kill -0 $new"
    else
      host_not_ok "upgrade $n"
      sed 's/^/# /' <<<"$out"
    fi
  done
  echo "# vnvmed's pauses (us): ${pauses[*]}"
  sleep 1
  host_check "the hot-added namespace removed after the upgrades" \
    rpc nvmf_subsystem_remove_ns "{\"nqn\": \"$nqn\", \"nsid\": 3}"
else
  host_not_ok "the guest started fio"
fi
vm_finish guest 600 || host_failed=1
host_check "vnvmed (pid $vnvmed_pid) still answers RPCs" rpc nvmf_get_subsystems
grep -a 'handing over\|serves now\|taken over\|takeover' "$work/vnvmed.log" | sed 's/^/# /'
[ "$host_failed" = 0 ]
