#!/usr/bin/env bash
# `vnvme top` for real: a daemon under load (vnvme-perf reading a rate-limited Malloc0), the view
# in a tmux pane read back with capture-pane after each key. TAP lines; exits non-zero on failure.
#   test_vnvme_top.sh   (VNVMED, VNVME, VNVME_PERF name the binaries)
set -uo pipefail
command -v tmux >/dev/null || { echo "1..0 # SKIP tmux not installed (scripts/install-deps installs it)"; exit 77; }
work=$(mktemp -d /tmp/vnvme-top.XXXXXX)
session=vnvme-top-$$
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null
  [ -n "${perf_pid:-}" ] && kill "$perf_pid" 2>/dev/null
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ep"
"$VNVMED" -L "$work/ep" -r "$work/rpc.sock" -m 0x1 >"$work/vnvmed.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$work/ep/cntrl" ] && [ -S "$work/rpc.sock" ] && break; sleep 0.1; done
"$VNVME" -s "$work/rpc.sock" rpc bdev_set_qos_limit '{"name": "Malloc0", "rw_ios_per_sec": 5000}' >/dev/null
"$VNVME" -s "$work/rpc.sock" rpc bdev_enable_histogram '{"name": "Malloc0", "enable": true}' >/dev/null
"$VNVME_PERF" -r "trtype:VFIOUSER traddr:$work/ep" -c 0x2 -w randread -o 4096 -q 8 -t 20 -I >/dev/null 2>&1 &
perf_pid=$!
sleep 1

screen() { tmux capture-pane -p -t "$session"; }
# wait_screen PATTERN: up to 10 s for the pane to show it.
wait_screen() {
  for _ in $(seq 100); do screen | grep -q -- "$1" && return 0; sleep 0.1; done
  return 1
}
tmux new-session -d -s "$session" -x 120 -y 30 "'$VNVME' -s '$work/rpc.sock' top -i 0.5"

if wait_screen '^Malloc0 '; then
  row=$(screen | grep '^Malloc0 ')
  # bdev IOPS MiB/s await p99 qd limit(2 words) used
  read -r _ iops mib await p99 qd lim unit used <<<"$row"
  if [ "${iops%.*}" -gt 1000 ] && [ "$lim $unit" = "5000 IOPS" ] && [ "${used%\%}" -gt 20 ] && [ "$p99" != - ]; then
    ok "bdev view: Malloc0 reads under its 5000 IOPS limit ($row)"
  else
    not_ok "bdev view: Malloc0 reads under its 5000 IOPS limit"
    screen | sed 's/^/# /'
  fi
else
  not_ok "bdev view shows Malloc0"
  screen | sed 's/^/# /'
fi
if screen | grep -qE '^0 +[0-9]+ +[0-9.]+%'; then ok "reactor row with its busy %"; else not_ok "reactor row with its busy %"; fi

tmux send-keys -t "$session" c
if wait_screen 'nqn.2026-11.io.vnvme:nvme0 .* yes '; then
  ok "controllers view: the connected, enabled controller"
else
  not_ok "controllers view: the connected, enabled controller"
  screen | sed 's/^/# /'
fi
tmux send-keys -t "$session" s
if wait_screen '\[s\]ort: name'; then ok "s switches the sort"; else not_ok "s switches the sort"; fi
tmux send-keys -t "$session" b
if wait_screen '^bdev '; then ok "b comes back to the bdevs"; else not_ok "b comes back to the bdevs"; fi
tmux send-keys -t "$session" q
for _ in $(seq 50); do tmux has-session -t "$session" 2>/dev/null || break; sleep 0.1; done
if tmux has-session -t "$session" 2>/dev/null; then not_ok "q quits"; else ok "q quits"; fi
echo "1..$n"
exit $failed
