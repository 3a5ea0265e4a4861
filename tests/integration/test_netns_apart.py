"""sockdiff enters other namespaces on a thread of its own: its main thread never seems to
live in one (to ``ip netns pids``, to another sockdiff --all-netns, to a script that kills
what lives in a namespace before deleting it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sockdiff import acquire
from sockdiff.backends.netlink.events import Listener
from tests.helpers.netns import private_netns, require_netns

# Another process reads our main thread's namespace (/proc/PID/ns/net) until its
# standard input closes, then prints each it saw.
_LOOKER = """
import os, sys, threading
path, seen, done = sys.argv[1], set(), threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
print("ready", flush=True)
while not done.is_set():
    try:
        seen.add(os.readlink(path))
    except OSError:
        pass
print("\\n".join(sorted(seen)))
"""


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    require_netns()


def test_the_main_thread_stays_in_its_namespace_while_others_are_read_and_listened_to() -> None:
    home = os.readlink("/proc/self/ns/net")
    with private_netns() as first, private_netns() as second:
        looker = subprocess.Popen(
            [sys.executable, "-c", _LOOKER, f"/proc/{os.getpid()}/ns/net"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert looker.stdin is not None and looker.stdout is not None
        assert looker.stdout.readline() == "ready\n"
        try:
            for _ in range(3):
                acquire.take(all_netns=True, processes=False, sections=["sockets", "interfaces"])
            listener = Listener(["tcp", "udp"], routes=True, inode=os.stat("/proc/self/ns/net").st_ino)
            try:
                for _ in range(200):
                    for name in (first, second):
                        path = f"/run/netns/{name}"
                        inode = os.stat(path).st_ino
                        assert listener.join(path, inode)
                        listener.leave(inode)
            finally:
                listener.close()
        finally:
            seen, _ = looker.communicate("", timeout=30)
    assert seen.split() == [home]
