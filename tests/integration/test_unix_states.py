"""One UNIX state table for both backends, held against a connecting socket and ss.

A connecting UNIX socket is the state-2 case: /proc/net/unix's St column has
SS_CONNECTING and the TCP numbers unix_diag reports have SYN_SENT, but
net/unix/af_unix.c never sets SYN_SENT, and prints SS_CONNECTING only for a
socket without a file (inode 0: an accepted connection not yet taken by
accept(), which neither backend lists). A stream socket waiting in connect()
for room in a full backlog keeps sk_state CLOSE: both backends, and ss, call
it unconnected.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path

from sockdiff import snapshot
from sockdiff.netns import entered
from tests.helpers.netns import run_in_netns

NAME = b"\0sockdiff-test-connecting"


def _connect(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # refused once the listener is closed: the test is over
        sock.connect(NAME)


def _wait_until_blocked_in_connect(thread: threading.Thread) -> None:
    """Until the kernel has the thread asleep in unix_wait_for_peer (a bounded wait, not a timing)."""
    wchan = Path(f"/proc/self/task/{thread.native_id}/wchan")
    for _ in range(5000):
        if wchan.read_text() == "unix_wait_for_peer":
            return
        time.sleep(0.002)
    raise AssertionError(f"connect() never waited for the backlog: wchan {wchan.read_text()!r}")


def test_a_unix_socket_waiting_in_connect_is_unconnected_from_both_backends(netns: str) -> None:
    with entered(netns):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    thread = threading.Thread(target=_connect, args=(waiting,))
    try:
        listener.bind(NAME)
        listener.listen(0)
        first.connect(NAME)  # the backlog of 0 is now full: the next connect() waits
        thread.start()
        _wait_until_blocked_in_connect(thread)
        inodes = {os.fstat(s.fileno()).st_ino: what for s, what in ((listener, "listener"), (first, "first"))}
        inodes[os.fstat(waiting.fileno()).st_ino] = "waiting"
        shown = run_in_netns(netns, ["ss", "-xan"]).stdout.splitlines()
        for backend in ("netlink", "proc"):
            found = {
                inodes[s.inode]: s.state
                for s in snapshot(backend=backend, netns=netns, processes=False).sockets or ()
                if s.proto == "unix" and s.inode in inodes
            }
            assert found == {"listener": "LISTENING", "first": "CONNECTED", "waiting": "UNCONNECTED"}, backend
        waiting_inode = os.fstat(waiting.fileno()).st_ino
        [row] = [
            line.split() for line in shown if len(line.split()) > 5 and line.split()[5] == str(waiting_inode)
        ]
        assert row[:2] == ["u_str", "UNCONN"], row
    finally:
        listener.close()  # wakes the waiting connect(), which is then refused
        if thread.ident is not None:
            thread.join()
        first.close()
        waiting.close()
