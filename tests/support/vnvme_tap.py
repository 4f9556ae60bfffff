# SPDX-License-Identifier: MIT
"""What the Python integration tests share: TAP checks and JSON-RPC calls to vnvmed."""
import json
import socket
import sys
import traceback


class Run:
    """Numbered TAP lines; a check that raises is "not ok" with its traceback as comments."""

    def __init__(self):
        self.n = 0
        self.failed = False

    def check(self, description, fn):
        self.n += 1
        try:
            fn()
            print("ok %d - %s" % (self.n, description), flush=True)
        except Exception:
            self.failed = True
            print("not ok %d - %s" % (self.n, description))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            sys.stdout.flush()


def rpc(path, method, params=None, timeout=60):
    """The whole JSON-RPC reply (result or error) of one call on vnvmed's socket at path."""
    req = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        req["params"] = params
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(req).encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def call(path, method, params=None, timeout=60):
    """The result of one call; an error reply raises AssertionError."""
    reply = rpc(path, method, params, timeout)
    if "error" in reply:
        raise AssertionError("rpc %s: %s" % (method, reply["error"]))
    return reply["result"]
