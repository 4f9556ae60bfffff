# Sourced by the guest test scripts (busybox sh, installed as /tests/tap.sh): TAP output and
# waiting helpers. Each check prints "ok N - ..." or "not ok N - ..."; $failed ends up 1 when
# any check failed, for the script's exit status.
failed=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
# check DESCRIPTION COMMAND...: runs COMMAND with its output in /tmp/out.txt, shown on failure.
check() {
  desc=$1
  shift
  if "$@" >/tmp/out.txt 2>&1; then
    ok "$desc"
  else
    not_ok "$desc"
    sed 's/^/# /' /tmp/out.txt
  fi
}
# wait_for TEST PATH PID: up to 10 s for `test TEST PATH` while PID lives.
wait_for() {
  tries=0
  while ! test "$1" "$2" && [ $tries -lt 100 ] && kill -0 "$3" 2>/dev/null; do
    sleep 0.1
    tries=$((tries + 1))
  done
  test "$1" "$2"
}
# gone PATH: up to 10 s for PATH to disappear.
gone() {
  tries=0
  while [ -e "$1" ] && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
  [ ! -e "$1" ]
}
