# Host side of the VM tests (bash, sourced): vnvmed runs on this machine, QEMU's vfio-user-pci
# (built by scripts/build-qemu) connects a TCG guest to it, and the guest's own nvme driver
# does the work, checked by a busybox script in the guest (/tests/run, TAP lines).
#
# A test script sources this after setting nothing, with its arguments
#   VNVMED VNVME
# and uses:
#   vm_initramfs OUT GUEST_SCRIPT      initramfs with GUEST_SCRIPT as /tests/run, tap.sh, fio
#   vm_config OUT NQN BDEV BDEV_ENTRIES [SUBSYSTEM_PARAMS]   a one-namespace vnvmed config
#   vnvmed_start CONFIG_JSON           vnvmed -c CONFIG on $work/rpc.sock, log $work/vnvmed.log
#   rpc METHOD [JSON]                  vnvme rpc through that socket
#   vm_start NAME INITRAMFS SOCKET [QEMU ARGS...]   QEMU in the background; console $work/NAME.log;
#                                     SOCKET - starts it without a vnvmed device;
#                                     $VM_ROLE, when set, reaches the guest as vnvme.role=ROLE,
#                                     $VM_APPEND is added to its kernel command line;
#                                     VM_NO_KERNEL=1 boots from disks (SeaBIOS), VM_BOOTINDEX=N
#                                     makes the vnvmed controller boot device N
#   vm_wait_line NAME PATTERN [SECONDS]             until the guest prints PATTERN
#   vm_finish NAME [SECONDS]           wait for the guest to power off; print its TAP output
#   host_ok / host_not_ok / host_check  TAP lines for what the host sees
# Every QEMU and vnvmed is killed on exit. Exits 77 (skipped) when QEMU cannot be had.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
VNVMED=$1
VNVME=$2

work=$(mktemp -d /tmp/vnvme-vm.XXXXXX)
declare -A vm_pid=()
vnvmed_pid=
host_failed=0

cleanup() {
  local p
  # A supervised vnvmed (vm_crash) writes its current pid there.
  for p in "${vm_pid[@]}" $vnvmed_pid $(cat "$work/vnvmed.pid" 2>/dev/null); do
    kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "$host_failed" != 0 ] || [ "${VNVME_VM_KEEP:-0}" = 1 ]; then
    echo "# logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# Guest TAP lines are numbered by the guest; the host's carry on from 1000 so both are unique.
host_n=1000
host_ok() { host_n=$((host_n + 1)); echo "ok $host_n - host: $*"; }
host_not_ok() { host_n=$((host_n + 1)); echo "not ok $host_n - host: $*"; host_failed=1; }
host_check() {
  local desc=$1
  shift
  if "$@" >"$work/check.out" 2>&1; then
    host_ok "$desc"
  else
    host_not_ok "$desc"
    sed 's/^/# /' "$work/check.out"
  fi
}

if ! qemu_dir=${VNVME_QEMU_DIR:-$("$top/scripts/build-qemu")}; then
  echo "vm: SKIP: no QEMU with vfio-user-pci (scripts/build-qemu failed)"
  exit 77
fi
qemu=$qemu_dir/qemu-system-x86_64
kernel_dir=${VNVME_GUEST_KERNEL_DIR:-$("$here/prepare-kernel.sh")} || exit 1
export VNVME_GUEST_KERNEL_DIR=$kernel_dir

vm_initramfs() {
  local out=$1 script=$2
  shift 2
  "$here/build-initramfs.sh" "$out" "$script" "$here/tap.sh:/tests/tap.sh" "$(command -v fio)" "$@"
}

# vm_config OUT NQN BDEV BDEV_ENTRIES [SUBSYSTEM_PARAMS]: a vnvmed config whose bdev subsystem has
# BDEV_ENTRIES (JSON method objects, comma-separated) and one subsystem NQN (SUBSYSTEM_PARAMS:
# extra "key": value pairs) with BDEV as namespace 1, served at $work/vm/cntrl.
vm_config() {
  local out=$1 nqn=$2 bdev=$3 bdevs=$4 extra=${5:-}
  mkdir -p "$work/vm"
  cat >"$out" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [$bdevs]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "VFIOUSER"}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "$nqn", "allow_any_host": true${extra:+, $extra}}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "$nqn", "namespace": {"bdev_name": "$bdev", "nsid": 1}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "$nqn",
      "listen_address": {"trtype": "VFIOUSER", "traddr": "$work/vm"}}}]}]}
JSON
}

vnvmed_start() {
  local config=$1
  "$VNVMED" -c "$config" -r "$work/rpc.sock" --log-level info >>"$work/vnvmed.log" 2>&1 &
  vnvmed_pid=$!
  local i
  for i in $(seq 100); do
    [ -S "$work/rpc.sock" ] && return 0
    kill -0 "$vnvmed_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "# vnvmed did not start:"
  sed 's/^/# /' "$work/vnvmed.log"
  return 1
}

rpc() {
  "$VNVME" -s "$work/rpc.sock" rpc "$@"
}

# The guest runs under TCG only: /dev/kvm here is a nested PVM that cannot run ordinary guests.
# Its memory is a shared memfd, which vfio-user needs to hand the guest's RAM to vnvmed.
vm_start() {
  local name=$1 initrd=$2 socket=$3
  shift 3
  local dev=() boot=()
  # SOCKET "-": no vnvmed device (a VM on QEMU's own devices, for comparisons).
  [ "$socket" = - ] ||
    dev=(-device "$(printf '{"driver":"vfio-user-pci","socket":{"type":"unix","path":"%s"},"x-msg-timeout":5000%s}' \
      "$socket" "${VM_BOOTINDEX:+,\"bootindex\":$VM_BOOTINDEX}")")
  if [ -z "${VM_NO_KERNEL:-}" ]; then
    boot=(-kernel "$kernel_dir/vmlinux" -initrd "$initrd"
          -append "console=ttyS0 panic=-1 quiet${VM_ROLE:+ vnvme.role=$VM_ROLE}${VM_APPEND:+ $VM_APPEND}")
  fi
  # Not under timeout(1): $! must be QEMU itself, so that killing it (the test does, with
  # SIGKILL) kills the VM. vm_wait_line and vm_finish bound the time; cleanup kills the rest.
  "$qemu" -L "$qemu_dir/firmware" \
    -accel tcg -cpu max -smp 2 -m 1G \
    -object memory-backend-memfd,id=mem,size=1G,share=on -machine q35,memory-backend=mem \
    -nodefaults -display none -serial stdio -no-reboot \
    "${boot[@]}" "${dev[@]}" "$@" </dev/null >"$work/$name.log" 2>&1 &
  vm_pid[$name]=$!
}

vm_wait_line() {
  local name=$1 pattern=$2 secs=${3:-120} i
  for i in $(seq $((secs * 10))); do
    grep -aq -- "$pattern" "$work/$name.log" 2>/dev/null && return 0
    kill -0 "${vm_pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  grep -aq -- "$pattern" "$work/$name.log" 2>/dev/null
}

# The guest's TAP output between init.sh's markers; the guest's exit status.
vm_finish() {
  local name=$1 secs=${2:-300} i
  for i in $(seq $((secs * 10))); do
    kill -0 "${vm_pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "${vm_pid[$name]}" 2>/dev/null || true
  wait "${vm_pid[$name]}" 2>/dev/null
  unset "vm_pid[$name]"
  local log=$work/$name.log
  if ! grep -aq '==== VNVME-GUEST-END rc=' "$log"; then
    host_not_ok "$name: the guest ended without its result markers"
    tr -d '\r' <"$log" | tail -n 80 | sed 's/^/# /'
    # What vnvmed saw of it: whether the guest stopped submitting or vnvmed stopped answering.
    echo "# $name: vnvmed's view (nvmf_get_stats, queue pairs, last log lines):"
    { rpc nvmf_get_stats
      for nqn in $(rpc nvmf_get_subsystems | grep -o '"nqn": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'); do
        rpc nvmf_subsystem_get_qpairs "{\"nqn\": \"$nqn\"}"
      done
      tail -n 20 "$work/vnvmed.log"; } 2>&1 | sed 's/^/# /'
    return 1
  fi
  sed -n '/==== VNVME-GUEST-BEGIN ====/,/==== VNVME-GUEST-END rc=/p' "$log" |
    grep -av '==== VNVME-GUEST-' | tr -d '\r'
  local rc
  rc=$(grep -ao '==== VNVME-GUEST-END rc=[0-9]*' "$log" | tail -n1 | sed 's/.*rc=//')
  if [ "$rc" != 0 ]; then
    host_failed=1
    echo "# $name: guest console (last lines):"
    tr -d '\r' <"$log" | sed -n '/---- dmesg ----/,$p' | sed 's/^/# /'
  fi
  return "$rc"
}
