#!/usr/bin/env bash
# vm_rbd: a VM whose disk is a vnvmed namespace on an RBD image of a throw-away one-node Ceph
# cluster (scripts/ceph-test-cluster): fio verify passes, stopping the OSD for 5 s under the
# guest's writes delays them without corrupting any block, and a live upgrade of vnvmed during the
# same writes (the new process opens the image before the switch; the old one closes it after,
# handing over the image's exclusive lock) loses none of them either.
#   vm_rbd.sh VNVMED VNVME
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"

if ! command -v rbd >/dev/null; then
  host_not_ok "rbd command missing (scripts/install-deps installs ceph-common)"
  exit 1
fi
ceph_dir=$work/ceph
mkdir -p "$ceph_dir"
if ! conf=$("$top/scripts/ceph-test-cluster" start "$ceph_dir" 2>"$work/ceph-start.log"); then
  host_not_ok "the test cluster started"
  sed 's/^/# /' "$work/ceph-start.log"
  exit 1
fi
stop_cluster() { "$top/scripts/ceph-test-cluster" stop "$ceph_dir" >/dev/null 2>&1; }
trap 'stop_cluster; cleanup' EXIT
host_check "RBD image created" rbd -c "$conf" create --size 128 rbd/vm

vm_config "$work/config.json" nqn.2026-11.io.vnvme:rbd Rbd0 \
  '{"method": "bdev_rbd_register_cluster", "params": {"name": "ceph", "config_file": "'"$conf"'", "user_id": "admin"}}, {"method": "bdev_rbd_create", "params": {"name": "Rbd0", "pool_name": "rbd", "rbd_name": "vm", "block_size": 4096, "cluster_name": "ceph"}}'
vm_initramfs "$work/initrd.cpio" "$here/vm_rbd_guest.sh" || exit 1
vnvmed_start "$work/config.json" || exit 1
vm_start vm "$work/initrd.cpio" "$work/vm/cntrl"

if vm_wait_line vm '@@ OUTAGE' 240; then
  osd=$(cat "$ceph_dir/osd.pid")
  sleep 2
  host_check "OSD stopped (SIGSTOP) under the guest's writes" kill -STOP "$osd"
  sleep 5
  host_check "OSD resumed after 5 s" kill -CONT "$osd"
  sleep 2
  old=$vnvmed_pid
  if out=$("$VNVME" -s "$work/rpc.sock" upgrade 2>&1) && new=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' <<<"$out") &&
     [ -n "$new" ]; then
    vnvmed_pid=$new
    for i in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    wait "$old" 2>/dev/null
    host_check "vnvmed upgraded under the guest's writes (pid $old to $new; $(sed -n 's/.*"pause_us": *\([0-9]*\).*/\1/p' <<<"$out") us pause)" \
      sh -c "! kill -0 $old 2>/dev/null && kill -0 $new"
  else
    host_not_ok "vnvmed upgraded under the guest's writes"
    sed 's/^/# /' <<<"$out"
  fi
fi
vm_finish vm 300
guest_rc=$?
host_check "vnvmed is still running" kill -0 "$vnvmed_pid"
[ "$guest_rc" = 0 ] && [ "$host_failed" = 0 ]
