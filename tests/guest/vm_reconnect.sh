#!/usr/bin/env bash
# vm_reconnect: VMs come and go on one vnvmed controller. A second VM process (a new vfio-user
# connection) reads what the first wrote; a VM whose QEMU is killed with SIGKILL under fio at
# iodepth 32 leaves vnvmed running and logging the disconnect; the next VM attaches and passes
# fio verify.
#   vm_reconnect.sh VNVMED VNVME
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"

vm_config "$work/config.json" nqn.2026-11.io.vnvme:vm Malloc0 \
  '{"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 32768, "block_size": 4096}}'

vm_initramfs "$work/initrd.cpio" "$here/vm_reconnect_guest.sh" || exit 1
vnvmed_start "$work/config.json" || exit 1
rc=0

VM_ROLE=write vm_start write "$work/initrd.cpio" "$work/vm/cntrl"
vm_finish write || rc=1
VM_ROLE=read vm_start read "$work/initrd.cpio" "$work/vm/cntrl"
vm_finish read || rc=1

disconnects() { grep -c 'client disconnected' "$work/vnvmed.log"; }
before=$(disconnects)
VM_ROLE=killed vm_start killed "$work/initrd.cpio" "$work/vm/cntrl"
if vm_wait_line killed '@@ FIO RUNNING' 120; then
  sleep 1
  kill -9 "${vm_pid[killed]}"
  wait "${vm_pid[killed]}" 2>/dev/null
  unset "vm_pid[killed]"
  host_ok "QEMU killed with SIGKILL while fio ran at iodepth 32"
  for i in $(seq 50); do [ "$(disconnects)" -gt "$before" ] && break; sleep 0.1; done
  host_check "vnvmed logged the disconnect" test "$(disconnects)" -gt "$before"
  host_check "vnvmed is still running after the kill" kill -0 "$vnvmed_pid"
  host_check "vnvmed still answers RPCs" rpc nvmf_get_subsystems
else
  host_not_ok "the killed VM started fio"
  sed 's/^/# /' "$work/killed.log" | tail -40
fi

VM_ROLE=after vm_start after "$work/initrd.cpio" "$work/vm/cntrl"
vm_finish after || rc=1
host_check "vnvmed is still running" kill -0 "$vnvmed_pid"
[ "$rc" = 0 ] && [ "$host_failed" = 0 ]
