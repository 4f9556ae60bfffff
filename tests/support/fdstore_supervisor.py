#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Plays systemd's part for vnvmed --fd-store in tests: a notify socket, the file descriptor store,
and Restart=on-failure.

  fdstore_supervisor.py WORKDIR VNVMED [ARGS...]

Runs VNVMED ARGS with $NOTIFY_SOCKET at WORKDIR/notify.sock and keeps what it stores as systemd
does: FDSTORE=1 with FDNAME= adds descriptors (one copy per open file: a file already kept keeps
its first name), FDSTOREREMOVE=1 with FDNAME= drops every descriptor of that name, MAINPID=
changes which process is the service. When the service process dies by a signal, it is started
again after 0.5 s with the stored descriptors from fd 3 on (LISTEN_FDS, LISTEN_FDNAMES,
LISTEN_PID). WORKDIR/vnvmed.pid always holds the service's pid, WORKDIR/starts the number of
starts. SIGTERM is passed on to the service; the supervisor exits when the service exits 0.
"""
import array
import ctypes
import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import time

SYS_KCMP = 312  # x86-64
KCMP_FILE = 0
_libc = ctypes.CDLL(None, use_errno=True)


def same_file(a, b):
    pid = os.getpid()
    return _libc.syscall(SYS_KCMP, pid, pid, KCMP_FILE, a, b) == 0


def main():
    work, argv = sys.argv[1], sys.argv[2:]
    _libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: a live upgrade's new process stays ours
    notify_path = os.path.join(work, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    store = []  # [name, fd]
    stop = {"term": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(term=True))
    starts = 0
    main_pid = None
    children = set()

    def start():
        nonlocal starts, main_pid
        fds = [fd for _, fd in store]
        names = ":".join(name for name, _ in store)

        def place_fds():
            # Move every stored fd out of the way, then down to 3, 4, ... in order.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1000) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i, inheritable=True)
            for fd in high:
                os.close(fd)

        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        if fds:
            env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=names)
        # LISTEN_PID must be the service's own pid: the shell that execs it has it.
        p = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + argv, env=env,
                             preexec_fn=place_fds, close_fds=False)
        starts += 1
        main_pid = p.pid
        children.add(p.pid)
        with open(os.path.join(work, "starts"), "w") as f:
            f.write("%d\n" % starts)
        with open(os.path.join(work, "vnvmed.pid"), "w") as f:
            f.write("%d\n" % main_pid)
        print("supervisor: started pid %d with %d stored descriptors" % (main_pid, len(fds)), flush=True)

    def handle(data, fds):
        nonlocal main_pid
        fields = dict(line.split("=", 1) for line in data.decode(errors="replace").splitlines() if "=" in line)
        name = fields.get("FDNAME", "stored")
        if fields.get("FDSTOREREMOVE") == "1":
            for entry in [e for e in store if e[0] == name]:
                os.close(entry[1])
                store.remove(entry)
        if fields.get("FDSTORE") == "1":
            for fd in fds:
                if any(same_file(fd, kept) for _, kept in store):
                    os.close(fd)
                else:
                    store.append([name, fd])
            fds = []
        for fd in fds:
            os.close(fd)
        if "MAINPID" in fields:
            main_pid = int(fields["MAINPID"])
            with open(os.path.join(work, "vnvmed.pid"), "w") as f:
                f.write("%d\n" % main_pid)

    start()
    while True:
        if stop["term"]:
            try:
                os.kill(main_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            stop["term"] = False
        r, _, _ = select.select([sock], [], [], 0.05)
        if r:
            fds = array.array("i")
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(253 * fds.itemsize))
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
            handle(data, list(fds))
        # Reap every child (upgraded processes are reparented here); act on the service's death.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid != main_pid:
                continue
            if os.WIFSIGNALED(status) or (os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0):
                print("supervisor: pid %d died (%s); restarting" % (pid, status), flush=True)
                time.sleep(0.5)
                start()
            else:
                print("supervisor: pid %d exited 0" % pid, flush=True)
                return 0


if __name__ == "__main__":
    sys.exit(main())
