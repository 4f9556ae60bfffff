#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vnvmed --fd-store: restarted after SIGKILL by a supervisor that plays systemd's file descriptor
store (tests/support/fdstore_supervisor.py), vnvmed gets back every controller's socket: the socket
files stay the same sockets, RAM namespaces keep their data layout and contents, namespaces added
by RPC are still there, and clients attach and verify data again. The same after a live upgrade
(the new process stores its own records). A clean stop leaves nothing to recover.
Prints TAP; exits non-zero when a check fails. VNVMED, VNVME_PERF, SUPERVISOR name the programs.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vnvme_tap import Run, call  # noqa: E402

VNVMED = os.environ["VNVMED"]
VNVME_PERF = os.environ["VNVME_PERF"]
SUPERVISOR = os.environ["SUPERVISOR"]
WAIT_S = 30


def verify(sock, seconds=1):
    p = subprocess.run([VNVME_PERF, "-r", sock, "-q", "8", "-o", "4096", "-w", "randwrite", "-t", str(seconds),
                        "--verify", "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-1500:] + p.stderr[-1500:]
    total = json.loads(p.stdout)["total"]
    assert total["io_errors"] == 0 and total["verify_failures"] == 0 and total["verified"] > 0, total


def main():
    work = tempfile.mkdtemp(prefix="vnvme-crash.")
    run = Run()
    rpc_path = os.path.join(work, "rpc.sock")
    socks = {n: os.path.join(work, n, "cntrl") for n in "abc"}
    cfg = {"subsystems": [
        {"subsystem": "bdev", "config": [
            {"method": "bdev_malloc_create", "params": {"name": "M0", "num_blocks": 16384, "block_size": 4096}},
            {"method": "bdev_malloc_create", "params": {"name": "M1", "num_blocks": 1024, "block_size": 4096}}]},
        {"subsystem": "nvmf", "config": [{"method": "nvmf_create_transport", "params": {"trtype": "VFIOUSER"}}] + [
            c for n, b in (("a", "M0"), ("b", None), ("c", "M1")) for c in (
                [{"method": "nvmf_create_subsystem", "params": {"nqn": "nqn.2026-12.io.vnvme:" + n,
                                                                 "allow_any_host": True}}]
                + ([{"method": "nvmf_subsystem_add_ns", "params": {"nqn": "nqn.2026-12.io.vnvme:" + n,
                                                                    "namespace": {"bdev_name": b}}}] if b else [])
                + [{"method": "nvmf_subsystem_add_listener", "params": {
                    "nqn": "nqn.2026-12.io.vnvme:" + n,
                    "listen_address": {"trtype": "VFIOUSER", "traddr": os.path.join(work, n)}}}])]}]}
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(work, "supervisor.log"), "w")
    sup = subprocess.Popen([sys.executable, SUPERVISOR, work, VNVMED, "-c", os.path.join(work, "config.json"), "-r",
                            rpc_path, "-m", "0x1", "--fd-store"], stdout=log, stderr=subprocess.STDOUT)

    def pid():
        with open(os.path.join(work, "vnvmed.pid")) as f:
            return int(f.read())

    def starts():
        with open(os.path.join(work, "starts")) as f:
            return int(f.read())

    def output():
        with open(os.path.join(work, "supervisor.log")) as f:
            return f.read()

    def wait_for(cond, what):
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            try:
                if cond():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError("%s did not happen: %s" % (what, output()[-3000:]))

    def crash_and_recover(n):
        victim = pid()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: starts() == n and os.path.exists(rpc_path) and output().count("recovered 3 controllers") == n - 1,
                 "restart %d" % n)
        assert pid() != victim
        call(rpc_path, "nvmf_get_subsystems")

    try:
        wait_for(lambda: os.path.exists(rpc_path) and os.path.exists(socks["b"]), "the first start")

        def before():
            verify(socks["a"])
            call(rpc_path, "bdev_malloc_create", {"name": "Hot0", "num_blocks": 4096, "block_size": 4096})
            call(rpc_path, "nvmf_subsystem_add_ns", {"nqn": "nqn.2026-12.io.vnvme:b", "namespace": {"bdev_name": "Hot0"}})
            verify(socks["b"])
        run.check("clients verify data, and a namespace is added by RPC", before)
        saved = call(rpc_path, "save_config")
        ino = {n: os.stat(socks[n]).st_ino for n in "ab"}
        # A client that stays connected through the crashes, on interrupts: its DMA windows and
        # interrupt eventfds are in controller c's record every time.
        idle = subprocess.Popen([VNVME_PERF, "-r", socks["c"], "-q", "1", "-o", "4096", "-w", "read", "-t", "120",
                                 "--idle", "-I"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)

        run.check("vnvmed killed with SIGKILL is restarted and recovers every controller", lambda: crash_and_recover(2))

        def same_sockets_and_config():
            assert {n: os.stat(socks[n]).st_ino for n in "ab"} == ino, "the socket files were made again"
            assert call(rpc_path, "save_config") == saved
        run.check("the same socket files and the same configuration, RPC changes included", same_sockets_and_config)

        run.check("clients attach to both recovered controllers and verify data", lambda: (verify(socks["a"]),
                                                                                            verify(socks["b"])))

        def second_crash():
            # The recovered process keeps the store's names for what it adopted: it recovers again, the
            # connected client's memory and eventfds included.
            crash_and_recover(3)
            verify(socks["a"])
            assert {n: os.stat(socks[n]).st_ino for n in "ab"} == ino
            assert "not recovered" not in output() and "not passed back" not in output(), output()[-3000:]
            assert idle.poll() is None
        run.check("a recovered vnvmed killed again recovers again", second_crash)

        def upgrade_then_crash():
            res = call(rpc_path, "framework_upgrade")
            wait_for(lambda: pid() == res["pid"], "MAINPID of the new process")
            verify(socks["a"])
            crash_and_recover(4)
            verify(socks["a"])
            verify(socks["b"])
            assert call(rpc_path, "save_config") == saved
        run.check("after a live upgrade the new process's records recover it from SIGKILL too", upgrade_then_crash)

        def clean_stop():
            os.kill(pid(), signal.SIGTERM)
            assert sup.wait(WAIT_S) == 0, output()[-3000:]
            for n in "ab":
                assert not os.path.exists(socks[n])
            assert "ERROR: AddressSanitizer" not in output() and "LeakSanitizer" not in output(), output()[-3000:]
        run.check("a clean stop ends the service (nothing restarted) and removes its sockets", clean_stop)
    except Exception:
        run.check("setup", lambda: (_ for _ in ()).throw(sys.exc_info()[1]))
    finally:
        if "idle" in locals() and idle.poll() is None:
            idle.kill()
            idle.wait()
        if sup.poll() is None:
            sup.kill()
        try:
            os.kill(pid(), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        sup.wait()
        log.close()
        if run.failed:
            print("# logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % run.n)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
