#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vnvmed --metrics for real: the built daemon, scraped over HTTP while vnvme-perf reads from it.

Every scrape is read with a strict parser of Prometheus' text format (each line a comment or
`name{labels} value`, HELP and TYPE once per family, a family's samples together), and its
figures are checked against the RPC methods that report the same counters. Also: no socket
without --metrics, loopback by default, bad addresses and ports in use refused with a reason,
404/405, and the RPC server answering while metrics clients hold idle connections.
Prints TAP; exits non-zero when a check fails. VNVMED and VNVME_PERF name the binaries.
"""
import ctypes
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vnvme_tap import Run  # noqa: E402

VNVMED = os.environ["VNVMED"]
VNVME_PERF = os.environ["VNVME_PERF"]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NQN = "nqn.2026-11.io.vnvme:nvme0"  # the daemon's embedded default subsystem
WAIT_S = 30  # a sanitizer build starts slowly

_libc = ctypes.CDLL(None, use_errno=True)


def die_with_test():
    # A test killed by its timeout must not leave a daemon holding the runner's pipes.
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---- the daemon ----

class Daemon:
    def __init__(self, work, name, metrics=None, extra=()):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.ep = os.path.join(self.dir, "ep")
        self.rpc_path = os.path.join(self.dir, "rpc.sock")
        self.log_path = os.path.join(self.dir, "vnvmed.log")
        args = [VNVMED, "-L", self.ep, "-r", self.rpc_path, "-m", "0x1"]
        if metrics is not None:
            args += ["--metrics", metrics]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args + list(extra), stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_test)

    def wait_ready(self):
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            if os.path.exists(self.rpc_path) and os.path.exists(os.path.join(self.ep, "cntrl")):
                return
            if self.proc.poll() is not None:
                raise AssertionError("vnvmed exited with %d: %s" % (self.proc.returncode, self.output()))
            time.sleep(0.02)
        raise AssertionError("vnvmed did not create its sockets in %d s" % WAIT_S)

    def wait_exit(self):
        try:
            return self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("vnvmed did not exit in %d s" % WAIT_S)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit()
        self.log.close()
        return rc

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def rpc(self, method, params=None, timeout=10):
        req = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            req["params"] = params
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.rpc_path)
            s.sendall(json.dumps(req).encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply = json.loads(buf)
        if "error" in reply:
            raise AssertionError("rpc %s: %s" % (method, reply["error"]))
        return reply["result"]


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def request(host, port, method="GET", path="/metrics", body=None, timeout=10):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def listening_sockets(pid):
    """(local address, port) of every TCP socket in LISTEN that process pid holds."""
    mine = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            mine.add(m.group(1))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in mine:  # 0A: LISTEN
                    addr, port = fields[1].split(":")
                    found.append((addr, int(port, 16)))
    return found


# ---- a strict reading of the text format ----

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]Inf|NaN")
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def parse_sample(line):
    m = NAME.match(line)
    if not m:
        raise AssertionError("bad metric name: %r" % line)
    name, i, labels = m.group(0), m.end(), {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            m = LABEL_NAME.match(line, i)
            if not m or line[m.end():m.end() + 2] != '="':
                raise AssertionError("bad label: %r" % line)
            key, i, value = m.group(0), m.end() + 2, ""
            while True:
                if i >= len(line):
                    raise AssertionError("unterminated label value: %r" % line)
                c = line[i]
                if c == '"':
                    break
                if c == "\\":
                    if i + 1 >= len(line) or line[i + 1] not in ESCAPES:
                        raise AssertionError("bad escape: %r" % line)
                    value += ESCAPES[line[i + 1]]
                    i += 2
                    continue
                value += c
                i += 1
            if key in labels:
                raise AssertionError("label twice: %r" % line)
            labels[key] = value
            i += 1
            if line[i:i + 1] == ",":
                i += 1
                continue
            if line[i:i + 1] == "}":
                i += 1
                break
            raise AssertionError("bad label list: %r" % line)
    if line[i:i + 1] != " " or not VALUE.fullmatch(line[i + 1:]):
        raise AssertionError("bad value: %r" % line)
    return name, labels, float(line[i + 1:])


class Scrape:
    """A parsed exposition: families with their type, and every sample."""

    def __init__(self, text):
        if not text.endswith("\n"):
            raise AssertionError("the text does not end with a newline")
        self.types, self.samples = {}, {}
        helped, current, pending_help = set(), None, None
        for line in text[:-1].split("\n"):
            if line.startswith("# HELP "):
                name = line[7:].split(" ", 1)[0]
                if name in helped or not NAME.fullmatch(name):
                    raise AssertionError("HELP twice or bad: %r" % line)
                helped.add(name)
                pending_help = name
            elif line.startswith("# TYPE "):
                name, typ = line[7:].split(" ")
                if name in self.types or name != pending_help:
                    raise AssertionError("TYPE twice, or without its HELP: %r" % line)
                if typ not in ("counter", "gauge", "histogram"):
                    raise AssertionError("unexpected type: %r" % line)
                if (typ == "counter") != name.endswith("_total"):
                    raise AssertionError("counters and only they end in _total: %r" % line)
                self.types[name] = typ
                current, pending_help = name, None
            elif line.startswith("#") or not line:
                raise AssertionError("unexpected line: %r" % line)
            else:
                name, labels, value = parse_sample(line)
                family = name
                if self.types.get(current) == "histogram" and name in (
                        current + "_bucket", current + "_sum", current + "_count"):
                    family = current
                if family != current:
                    raise AssertionError("sample outside its family's block: %r" % line)
                key = (name, tuple(sorted(labels.items())))
                if key in self.samples:
                    raise AssertionError("series twice: %r" % line)
                self.samples[key] = value
        self.check_histograms()

    def get(self, name, **labels):
        return self.samples[(name, tuple(sorted(labels.items())))]

    def series(self, name):
        return [(dict(k[1]), v) for k, v in self.samples.items() if k[0] == name]

    def check_histograms(self):
        for fam, typ in self.types.items():
            if typ != "histogram":
                continue
            groups = {}
            for labels, v in self.series(fam + "_bucket"):
                le = labels.pop("le")
                groups.setdefault(tuple(sorted(labels.items())), []).append((float(le), v))
            for key, buckets in groups.items():
                buckets.sort()
                counts = [v for _, v in buckets]
                if counts != sorted(counts) or buckets[-1][0] != math.inf:
                    raise AssertionError("%s%s: buckets not cumulative or no +Inf" % (fam, key))
                if counts[-1] != self.samples[(fam + "_count", key)] or (fam + "_sum", key) not in self.samples:
                    raise AssertionError("%s%s: +Inf differs from _count, or no _sum" % (fam, key))


def scrape(port, host="127.0.0.1", timeout=10):
    status, headers, body = request(host, port, timeout=timeout)
    assert status == 200, status
    assert headers["content-type"] == CONTENT_TYPE, headers["content-type"]
    return Scrape(body)


# ---- the tests ----

def main():
    work = tempfile.mkdtemp(prefix="vnvme-metrics.")
    daemons = []
    run = Run()

    def daemon(name, metrics=None, ready=True):
        d = Daemon(work, name, metrics)
        daemons.append(d)
        if ready:
            d.wait_ready()
        return d

    def stopped_cleanly(d):
        rc = d.stop()
        out = d.output()
        assert rc == 0, "exit status %d: %s" % (rc, out[-2000:])
        assert "runtime error" not in out and "Sanitizer" not in out, out[-4000:]  # UBSan does not fail the exit

    try:
        def help_mentions_metrics():
            out = subprocess.run([VNVMED, "--help"], capture_output=True, text=True, timeout=WAIT_S).stdout
            assert "--metrics [ADDRESS:]PORT" in out, out
        run.check("vnvmed --help describes --metrics", help_mentions_metrics)

        def bad_addresses():
            for arg in ("", "localhost:9477", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:9477",
                        "[::1]", "1.2.3.4.5:80"):
                d = daemon("bad%d" % len(daemons), arg, ready=False)
                rc = d.wait_exit()
                out = d.output()
                assert rc == 2, (arg, rc, out)
                assert ("--metrics '%s': " % arg) in out and "expected [ADDRESS:]PORT" in out, out
        run.check("a malformed --metrics exits 2 and says what is wrong", bad_addresses)

        def port_in_use():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                s.listen()
                port = s.getsockname()[1]
                d = daemon("inuse", "127.0.0.1:%d" % port, ready=False)
                rc = d.wait_exit()
            out = d.output()
            assert rc == 1, (rc, out)
            assert "--metrics 127.0.0.1:%d: cannot listen: Address already in use" % port in out, out
            assert not os.path.exists(d.rpc_path)
        run.check("a port in use: vnvmed exits 1 with the reason", port_in_use)

        def not_local():
            d = daemon("notlocal", "192.0.2.1:%d" % free_port(), ready=False)  # TEST-NET-1: no such interface
            rc = d.wait_exit()
            assert rc == 1 and "cannot listen: Cannot assign requested address" in d.output(), (rc, d.output())
        run.check("an address of no local interface: vnvmed exits 1 with the reason", not_local)

        def off_by_default():
            d = daemon("off")
            assert d.rpc("spdk_get_version")["version"].startswith("vnvme ")
            assert listening_sockets(d.proc.pid) == [], listening_sockets(d.proc.pid)
            assert "metrics at http" not in d.output(), d.output()
            stopped_cleanly(d)
        run.check("without --metrics vnvmed listens on no TCP port", off_by_default)

        def port_alone_is_loopback():
            port = free_port()
            d = daemon("portonly", str(port))
            assert listening_sockets(d.proc.pid) == [("0100007F", port)], listening_sockets(d.proc.pid)
            assert "vnvmed: metrics at http://127.0.0.1:%d/metrics" % port in d.output(), d.output()
            scrape(port)
            stopped_cleanly(d)
        run.check("--metrics PORT listens on 127.0.0.1 only", port_alone_is_loopback)

        def ipv6_loopback():
            port = free_port(socket.AF_INET6, "::1")
            d = daemon("ipv6", "[::1]:%d" % port)
            assert "vnvme_build_info" in scrape(port, "::1").types
            assert listening_sockets(d.proc.pid) == [("00000000000000000000000001000000", port)]
            stopped_cleanly(d)
        if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"):
            run.check("--metrics [::1]:PORT serves over IPv6", ipv6_loopback)

        # The main daemon: default configuration (Malloc0 behind nqn...:nvme0), metrics on a free port.
        port = free_port()
        main_d = daemon("main", "127.0.0.1:%d" % port)
        state = {}

        def first_scrape():
            s = scrape(port)
            version = main_d.rpc("spdk_get_version")["version"]
            assert s.get("vnvme_build_info", version=version.split(" ", 1)[1]) == 1
            assert 0 < s.get("vnvme_uptime_seconds") < 600
            assert abs(s.get("vnvme_start_time_seconds") + s.get("vnvme_uptime_seconds") - time.time()) < 60
            assert s.types["vnvme_bdev_io_ops_total"] == "counter"
            assert s.types["vnvme_bdev_queue_depth"] == "gauge"
            assert s.get("vnvme_reactor_controllers", reactor="0", cpu="0") == 1
            assert s.get("vnvme_controller_connected", subsystem=NQN, cntlid="1") == 0
            assert "vnvme_bdev_qos_limit" not in s.types and "vnvme_bdev_io_latency_seconds" not in s.types
            state["before"] = s
        run.check("GET /metrics: 200, the exposition content type, a well-formed text", first_scrape)

        def other_requests():
            status, headers, body = request("127.0.0.1", port, "HEAD")
            assert status == 200 and body == "" and headers["content-type"] == CONTENT_TYPE, (status, headers)
            status, headers, body = request("127.0.0.1", port, "GET", "/")
            assert status == 200 and "/metrics" in body, (status, body)
            for path in ("/nope", "/metrics/", "/metricsx"):
                status, _, _ = request("127.0.0.1", port, "GET", path)
                assert status == 404, (path, status)
            for method, path in (("POST", "/metrics"), ("PUT", "/"), ("DELETE", "/metrics")):
                status, headers, _ = request("127.0.0.1", port, method, path, body="x=1")
                assert status == 405 and headers.get("allow") == "GET, HEAD", (method, status, headers)
        run.check("HEAD, / , 404 for other paths, 405 for other methods", other_requests)

        def escaped_labels():
            name = 'we"ird\\na\nme'
            main_d.rpc("bdev_malloc_create", {"name": name, "num_blocks": 64, "block_size": 512})
            s = scrape(port)
            assert s.get("vnvme_bdev_queue_depth", bdev=name) == 0
            main_d.rpc("bdev_malloc_delete", {"name": name})
            assert ("vnvme_bdev_queue_depth", (("bdev", name),)) not in scrape(port).samples
        run.check("a bdev name with a quote, a backslash and a newline comes back intact", escaped_labels)

        def io_counted():
            main_d.rpc("bdev_enable_histogram", {"name": "Malloc0", "enable": True})
            main_d.rpc("bdev_set_qos_limit", {"name": "Malloc0", "rw_ios_per_sec": 1000000})
            perf = subprocess.Popen([VNVME_PERF, "-r", "trtype:VFIOUSER traddr:" + main_d.ep, "-c", "0x2",
                                     "-w", "randread", "-o", "4096", "-q", "8", "-t", "2", "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=die_with_test)
            # While it runs: its controller is connected, with I/O queues.
            during = None
            end = time.monotonic() + WAIT_S
            while time.monotonic() < end and perf.poll() is None:
                during = scrape(port)
                if during.get("vnvme_controller_io_qpairs", subsystem=NQN, cntlid="1") >= 1:
                    break
                time.sleep(0.1)
            out, err = perf.communicate(timeout=60)
            assert perf.returncode == 0, err
            ios = json.loads(out)["total"]["ios_all_phases"]
            assert ios > 0
            assert during.get("vnvme_controller_connected", subsystem=NQN, cntlid="1") == 1
            assert during.get("vnvme_reactor_connected_controllers", reactor="0", cpu="0") == 1

            after, stat = scrape(port), main_d.rpc("bdev_get_iostat", {"name": "Malloc0"})
            b, rate = stat["bdevs"][0], stat["tick_rate"]
            before = state["before"]
            reads = after.get("vnvme_bdev_io_ops_total", bdev="Malloc0", op="read")
            assert reads == b["num_read_ops"], (reads, b["num_read_ops"])  # nothing runs now: the same count
            assert reads - before.get("vnvme_bdev_io_ops_total", bdev="Malloc0", op="read") >= ios
            assert after.get("vnvme_bdev_io_bytes_total", bdev="Malloc0", op="read") == b["bytes_read"]
            lat = after.get("vnvme_bdev_io_latency_seconds_total", bdev="Malloc0", op="read")
            assert math.isclose(lat, b["read_latency_ticks"] / rate, rel_tol=1e-9), (lat, b["read_latency_ticks"])
            io_time = after.get("vnvme_bdev_io_time_seconds_total", bdev="Malloc0")
            assert abs(io_time - b["io_time"] / 1e6) < 2e-6, (io_time, b["io_time"])
            assert after.get("vnvme_bdev_queue_depth", bdev="Malloc0") == 0
            assert after.get("vnvme_bdev_qos_limit", bdev="Malloc0", type="rw_ios_per_sec") == 1000000
            count = after.get("vnvme_bdev_io_latency_seconds_count", bdev="Malloc0")
            assert count >= ios and after.get("vnvme_bdev_io_latency_seconds_bucket", bdev="Malloc0",
                                              le="+Inf") == count
            assert after.get("vnvme_bdev_io_latency_seconds_sum", bdev="Malloc0") > 0
            assert after.get("vnvme_controller_commands_total", subsystem=NQN, cntlid="1", op="read") >= ios
            assert after.get("vnvme_reactor_completed_io_total", reactor="0", cpu="0") >= ios
            polls = [s.get("vnvme_reactor_polls_total", reactor="0", cpu="0") for s in (before, after)]
            assert polls[1] > polls[0], polls
        run.check("after vnvme-perf: the counters match bdev_get_iostat and grew by the I/O done", io_counted)

        def rpc_while_clients_idle():
            idle = socket.create_connection(("127.0.0.1", port), timeout=10)
            idle_since = time.monotonic()
            idle.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
            t0 = time.monotonic()
            assert main_d.rpc("spdk_get_version", timeout=5)["version"]
            assert time.monotonic() - t0 < 2
            scrape(port)  # another client is still served
            # More silent clients than the connection limit (16): the rest wait in the listen backlog.
            crowd = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(24)]
            t0 = time.monotonic()
            assert main_d.rpc("bdev_get_iostat", timeout=5)
            assert time.monotonic() - t0 < 2
            # A scrape queued behind them is served once the idle timeout (10 s) has dropped them.
            scrape(port, timeout=WAIT_S)
            assert time.monotonic() - idle_since < 20
            idle.settimeout(WAIT_S)
            try:
                while idle.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            waited = time.monotonic() - idle_since
            assert 9 < waited < 20, waited
            for c in crowd + [idle]:
                c.close()
            scrape(port)
        run.check("RPC answers while metrics clients hold idle connections, which time out", rpc_while_clients_idle)

        run.check("vnvmed with --metrics stops cleanly on SIGTERM", lambda: stopped_cleanly(main_d))
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("1..%d" % run.n)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
