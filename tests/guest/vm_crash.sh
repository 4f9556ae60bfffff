#!/usr/bin/env bash
# vm_crash: vnvmed dies with SIGKILL while a guest's own nvme driver runs fio with crc32c verify at
# iodepth 32 on a RAM namespace. A supervisor plays systemd's part (tests/support/
# fdstore_supervisor.py: the notify socket, the file descriptor store, Restart=on-failure), so the
# restarted vnvmed --fd-store gets the VM's socket, memory, interrupt eventfds and doorbell page back
# and reports a controller fatal status. The guest's driver times out (nvme_core.io_timeout=5 here;
# 30 s by default), sees CSTS.CFS, resets the controller and retries: fio must finish with no I/O
# error and verify clean, and the data written before the crash must read back intact.
#   vm_crash.sh VNVMED VNVME
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"

vm_config "$work/config.json" nqn.2026-12.io.vnvme:crash Malloc0 \
  '{"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 32768, "block_size": 4096}}'
vm_initramfs "$work/initrd.cpio" "$here/vm_crash_guest.sh" || exit 1

python3 "$top/tests/support/fdstore_supervisor.py" "$work" "$VNVMED" -c "$work/config.json" -r "$work/rpc.sock" \
  --fd-store --log-level info >>"$work/vnvmed.log" 2>&1 &
supervisor=$!
vnvmed_pid=$supervisor
for i in $(seq 100); do [ -S "$work/rpc.sock" ] && break; sleep 0.1; done
current() { cat "$work/vnvmed.pid"; }

VM_APPEND="nvme_core.io_timeout=5" vm_start guest "$work/initrd.cpio" "$work/vm/cntrl"
if vm_wait_line guest '@@ FIO RUNNING' 180; then
  sleep 2
  victim=$(current)
  kill -9 "$victim"
  host_ok "vnvmed (pid $victim) killed with SIGKILL while fio ran"
  for i in $(seq 100); do [ "$(cat "$work/starts")" = 2 ] && [ -S "$work/rpc.sock" ] && break; sleep 0.1; done
  host_check "the supervisor restarted vnvmed (pid $(current))" sh -c "kill -0 $(current) && [ \"$(cat "$work/starts")\" = 2 ]"
  for i in $(seq 100); do grep -q 'recovered 1 controller' "$work/vnvmed.log" && break; sleep 0.1; done
  host_check "the restarted vnvmed recovered the controller" grep -q 'recovered 1 controller' "$work/vnvmed.log"
else
  host_not_ok "the guest started fio"
fi
vm_finish guest 600 || host_failed=1
host_check "vnvmed still answers RPCs" rpc nvmf_get_subsystems
kill -TERM "$(current)" 2>/dev/null
for i in $(seq 100); do kill -0 "$supervisor" 2>/dev/null || break; sleep 0.1; done
host_check "a clean stop ends the supervised vnvmed and removes its socket" sh -c "! kill -0 $supervisor 2>/dev/null && [ ! -e '$work/vm/cntrl' ]"
grep -a 'recovered\|fatal\|CSTS' "$work/vnvmed.log" | sed 's/^/# /' | tail -8
[ "$host_failed" = 0 ]
