#!/usr/bin/env bash
# vm_nvme: a guest on QEMU's vfio-user-pci uses a vnvmed namespace with its own nvme driver:
# identify, queues and MSI-X vectors, fio verify, dd, discard, write-zeroes, out-of-range reads,
# reset, namespace hot add and remove over RPC, PCI remove (controller shutdown) and rescan.
#   vm_nvme.sh VNVMED VNVME
here=$(cd "$(dirname "$0")" && pwd)
. "$here/vm-lib.sh"

vm_config "$work/config.json" nqn.2026-11.io.vnvme:vm Malloc0 \
  '{"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 262144, "block_size": 512}}' \
  '"serial_number": "VNVMEVM0001", "model_number": "vnvme guest VM"'

vm_initramfs "$work/initrd.cpio" "$here/vm_nvme_guest.sh" || exit 1
vnvmed_start "$work/config.json" || exit 1
vm_start vm "$work/initrd.cpio" "$work/vm/cntrl"

if vm_wait_line vm '@@ HOTADD' 240; then
  host_check "namespace 2 hot-added over RPC" sh -c "
    '$VNVME' -s '$work/rpc.sock' rpc bdev_malloc_create '{\"name\": \"Malloc1\", \"num_blocks\": 4096, \"block_size\": 4096}' &&
    '$VNVME' -s '$work/rpc.sock' rpc nvmf_subsystem_add_ns '{\"nqn\": \"nqn.2026-11.io.vnvme:vm\", \"namespace\": {\"bdev_name\": \"Malloc1\", \"nsid\": 2}}'"
fi
if vm_wait_line vm '@@ HOTREMOVE' 120; then
  host_check "namespace 2 hot-removed over RPC" \
    rpc nvmf_subsystem_remove_ns '{"nqn": "nqn.2026-11.io.vnvme:vm", "nsid": 2}'
fi
if vm_wait_line vm '@@ REMOVED' 120; then
  # Linux's PCI remove shuts the controller down: CC.SHN, then CSTS.SHST = complete (CSTS 0x9).
  host_check "vnvmed saw the driver's shutdown complete (CSTS.SHST) on PCI remove" \
    grep -q 'CSTS now 0x9' "$work/vnvmed.log"
fi
vm_finish vm
guest_rc=$?
host_check "vnvmed is still running" kill -0 "$vnvmed_pid"
[ "$guest_rc" = 0 ] && [ "$host_failed" = 0 ]
