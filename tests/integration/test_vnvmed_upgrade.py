#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vnvmed's live upgrade (framework_upgrade) with clients doing I/O through it.

Three controllers (a RAM and a uring namespace behind one, a RAM namespace behind another, a third
with no client) are served while two vnvme-perf clients write patterns and read them back
(--verify, one polling, one on interrupts); vnvmed is upgraded to its own binary three times in a
row. The clients must finish without an I/O error or a bad read, every upgrade must answer with a
new pid, the old process must exit 0, and the configuration, the idle controller and the RPC socket
must carry on; so must the metrics endpoint, a namespace hot-added before the upgrades (removed
after them) and a controller whose client was killed with SIGKILL. Then two handovers that fail on purpose (a binary that exits at once, one that reads
another state format version) must leave the running process serving. Prints TAP; exits non-zero
when a check fails. VNVMED, VNVME_PERF name the binaries.
"""
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vnvme_tap import Run, call, rpc  # noqa: E402

VNVMED = os.environ["VNVMED"]
VNVME_PERF = os.environ["VNVME_PERF"]
WAIT_S = 30
MiB = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def die_with_test():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a test killed by its timeout leaves no daemon


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def reap(pid, timeout=WAIT_S):
    """Exit status of pid, a child or (we are a subreaper) an orphaned grandchild."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None  # reaped already
        if got == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError("pid %d did not exit in %d s" % (pid, timeout))


class Daemon:
    def __init__(self, work, name, config, env=None, extra=()):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.rpc_path = os.path.join(self.dir, "rpc.sock")
        self.log_path = os.path.join(self.dir, "vnvmed.log")
        cfg_path = os.path.join(self.dir, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(config, f)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([VNVMED, "-c", cfg_path, "-r", self.rpc_path, "-m", "0x1"] + list(extra), stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_test,
                                     env=dict(os.environ, **(env or {})))
        self.pid = self.proc.pid
        end = time.monotonic() + WAIT_S
        while not os.path.exists(self.rpc_path):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError("vnvmed did not start: %s" % self.output())
            time.sleep(0.02)

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def upgrade(self, params=None):
        """framework_upgrade; returns its result and checks that the old process is gone."""
        old = self.pid
        res = call(self.rpc_path, "framework_upgrade", params)
        assert res["pid"] != old and alive(res["pid"]), res
        status = reap(old)
        assert status in (0, None), "old vnvmed exited with %s" % status
        self.pid = res["pid"]
        return res

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
        return reap(self.pid)

    def kill(self):
        if alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
            reap(self.pid)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read().decode()
        assert r.status == 200, (r.status, body[:500])
        return body
    finally:
        conn.close()


def perf(sock, seconds, depth, *extra):
    return subprocess.Popen([VNVME_PERF, "-r", sock, "-q", str(depth), "-o", "4096", "-w", "randwrite", "-t",
                             str(seconds), "--verify", "--json"] + list(extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=die_with_test)


def perf_result(p):
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, "vnvme-perf exited %d: %s %s" % (p.returncode, out[-1500:], err[-1500:])
    res = json.loads(out)
    total = res["total"]
    assert total["io_errors"] == 0 and total["verify_failures"] == 0, total
    assert total["verified"] > 0, total
    return total


def config(work, name):
    d = os.path.join(work, name)
    img = os.path.join(work, name + "-uring.img")
    with open(img, "wb") as f:
        f.truncate(64 * MiB)

    def subsys(nqn, bdevs, listener):
        calls = [{"method": "nvmf_create_subsystem", "params": {"nqn": nqn, "allow_any_host": True}}]
        calls += [{"method": "nvmf_subsystem_add_ns", "params": {"nqn": nqn, "namespace": {"bdev_name": b}}}
                  for b in bdevs]
        calls += [{"method": "nvmf_subsystem_add_listener",
                   "params": {"nqn": nqn, "listen_address": {"trtype": "VFIOUSER", "traddr": os.path.join(d, listener)}}}]
        return calls

    bdevs = [{"method": "bdev_malloc_create", "params": {"name": "M0", "num_blocks": 65536, "block_size": 512}},
             {"method": "bdev_malloc_create", "params": {"name": "M1", "num_blocks": 16384, "block_size": 4096}},
             {"method": "bdev_uring_create", "params": {"name": "U0", "filename": img}},
             {"method": "bdev_null_create", "params": {"name": "N0", "num_blocks": 16384, "block_size": 4096}},
             {"method": "bdev_malloc_create", "params": {"name": "M2", "num_blocks": 4096, "block_size": 4096}},
             # Holds every I/O 1.5 s before its base sees it: a stuck backend, as far as a handover is concerned.
             {"method": "bdev_delay_create", "params": {"name": "D0", "base_bdev_name": "M2",
              "avg_read_latency": 1500000, "p99_read_latency": 1500000,
              "avg_write_latency": 1500000, "p99_write_latency": 1500000}}]
    nvmf = [{"method": "nvmf_create_transport", "params": {"trtype": "VFIOUSER"}}]
    nvmf += subsys("nqn.2026-12.io.vnvme:a", ["M0", "U0"], "a")
    nvmf += subsys("nqn.2026-12.io.vnvme:b", ["M1"], "b")
    nvmf += subsys("nqn.2026-12.io.vnvme:c", ["N0"], "c")
    nvmf += subsys("nqn.2026-12.io.vnvme:d", ["D0"], "d")
    return {"subsystems": [{"subsystem": "bdev", "config": bdevs}, {"subsystem": "nvmf", "config": nvmf}]}


def main():
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    work = tempfile.mkdtemp(prefix="vnvme-upgrade.")
    run = Run()
    daemons = []
    try:
        port = free_port()
        d = Daemon(work, "d", config(work, "d"), extra=["--metrics", "127.0.0.1:%d" % port])
        daemons.append(d)
        sock = {n: os.path.join(d.dir, n, "cntrl") for n in "abcd"}
        state = {}

        def killed_client_leaves_queues():
            # Its queues stay created with their memory gone: the state carries them quiesced.
            p = perf(sock["c"], 30, 8)
            time.sleep(1.5)
            p.kill()
            p.wait()
            end = time.monotonic() + 10
            while "client disconnected" not in d.output() and time.monotonic() < end:
                time.sleep(0.05)
            assert "client disconnected" in d.output()
        run.check("a client of controller c killed with SIGKILL (its queues stay, unmapped)", killed_client_leaves_queues)

        def hot_add():
            call(d.rpc_path, "bdev_malloc_create", {"name": "Hot0", "num_blocks": 8192, "block_size": 4096})
            call(d.rpc_path, "nvmf_subsystem_add_ns", {"nqn": "nqn.2026-12.io.vnvme:b", "namespace": {"bdev_name": "Hot0"}})
            state["saved_before"] = call(d.rpc_path, "save_config")
        run.check("a namespace is hot-added by RPC before the upgrades", hot_add)

        def three_upgrades_under_io():
            pa = perf(sock["a"], 8, 32)
            pb = perf(sock["b"], 8, 8, "-I")
            time.sleep(1.5)
            pids = [d.pid]
            for _ in range(3):
                res = d.upgrade()
                assert res["controllers"] == 4, res
                pids.append(res["pid"])
                state.setdefault("pauses", []).append(res["pause_us"])
                time.sleep(1.5)
            state["a"] = perf_result(pa)
            state["b"] = perf_result(pb)
            assert len(set(pids)) == 4, pids
            print("# pauses (us): %s; client a verified %d, b %d" % (state["pauses"], state["a"]["verified"],
                                                                      state["b"]["verified"]), flush=True)
        run.check("three upgrades in a row while two clients write and read back: no error, no bad data",
                  three_upgrades_under_io)

        def same_configuration():
            after = call(d.rpc_path, "save_config")
            assert after == state["saved_before"], json.dumps(after)[:2000]
        run.check("the new process runs the same configuration, RPC changes included (save_config is equal)",
                  same_configuration)

        def stuck_backend_carried():
            # Every command of this client waits 1.5 s in the delay bdev: the upgrade recalls them and the
            # new process runs them again, so it neither waits for them nor fails them.
            p = perf(sock["d"], 6, 4)
            time.sleep(2)
            res = d.upgrade({"timeout_ms": 1000})
            assert res["commands_carried"] > 0, res
            assert res["pause_us"] < 1000000, res
            total = perf_result(p)
            assert total["io_errors"] == 0, total
            print("# carried %d commands; pause %d us" % (res["commands_carried"], res["pause_us"]), flush=True)
        run.check("commands a stuck bdev holds are carried over and run again in the new process",
                  stuck_backend_carried)

        def hot_remove():
            subs = {s["nqn"]: s for s in call(d.rpc_path, "nvmf_get_subsystems")}
            assert [n["bdev_name"] for n in subs["nqn.2026-12.io.vnvme:b"]["namespaces"]] == ["M1", "Hot0"], subs
            call(d.rpc_path, "nvmf_subsystem_remove_ns", {"nqn": "nqn.2026-12.io.vnvme:b", "nsid": 2})
            call(d.rpc_path, "bdev_malloc_delete", {"name": "Hot0"})
        run.check("the hot-added namespace is there after the upgrades and is removed", hot_remove)

        def metrics_served():
            body = scrape(port)
            assert "vnvme_build_info" in body, body[:500]
        run.check("the metrics endpoint answers from the new process on the same port", metrics_served)

        def idle_controller_accepts():
            p = subprocess.run([VNVME_PERF, "-r", sock["c"], "-q", "1", "-o", "4096", "-w", "read", "-t", "1"], capture_output=True, text=True, timeout=60, preexec_fn=die_with_test)
            assert p.returncode == 0, p.stdout + p.stderr
        run.check("the controller that had no client takes a new one after the upgrades", idle_controller_accepts)

        def data_carried():
            p = perf(sock["b"], 2, 4)
            perf_result(p)
            iostat = call(d.rpc_path, "bdev_get_iostat")
            names = {b["name"]: b for b in iostat["bdevs"]}
            # bdev statistics start again in each process: this client's I/O is what the last one counted.
            assert names["M1"]["num_write_ops"] > 0 and names["M1"]["num_read_ops"] > 0, names["M1"]
        run.check("a new client works after the upgrades, and the last process counts its I/O", data_carried)

        def failing_binary_leaves_it_serving():
            pb = perf(sock["b"], 4, 8)
            time.sleep(1)
            reply = rpc(d.rpc_path, "framework_upgrade", {"binary": "/bin/false"})
            assert "error" in reply and "still serves" in reply["error"]["message"], reply
            assert alive(d.pid)
            perf_result(pb)
            call(d.rpc_path, "nvmf_get_subsystems")
        run.check("a new binary that exits at once: the error says why, the running vnvmed keeps serving",
                  failing_binary_leaves_it_serving)

        def other_version_refused():
            d2 = Daemon(work, "d2", config(work, "d2"), env={"VNVME_TEST_HANDOVER_READS": "99"})
            daemons.append(d2)
            pa = perf(os.path.join(d2.dir, "a", "cntrl"), 4, 16)
            time.sleep(1)
            reply = rpc(d2.rpc_path, "framework_upgrade")
            msg = reply.get("error", {}).get("message", "")
            assert "state format version 1 is not one this vnvmed reads (it reads 99)" in msg, reply
            assert alive(d2.pid)
            perf_result(pa)
            assert d2.stop() == 0
        run.check("a binary that reads another state format version refuses; the running vnvmed keeps serving",
                  other_version_refused)

        def stops_cleanly():
            assert d.stop() == 0, d.output()[-3000:]
            for n in "abcd":
                assert not os.path.exists(sock[n]), sock[n]
            assert not os.path.exists(d.rpc_path)
        run.check("the last process stops on SIGTERM and removes every socket it took over", stops_cleanly)
    except Exception:
        run.check("setup", lambda: (_ for _ in ()).throw(sys.exc_info()[1]))
    finally:
        for x in daemons:
            x.kill()
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % run.n)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
