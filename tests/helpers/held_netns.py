"""Namespaces held as the runtimes hold them, for the ``--all-netns`` tests.

A listener in the namespace it runs in (``ip netns exec``, ``unshare -n``), a
process placed in a cgroup named as Docker or Kubernetes/containerd name
theirs (cgroup v2), a namespace held by a descriptor only, and the cgroups
removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CGROUP_ROOT",
    "HOLDER",
    "LISTENER",
    "Contained",
    "inode_of",
    "listen_in",
    "remove_cgroups",
    "start",
    "stop",
]


def _cgroup2_root() -> Path:
    """Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host."""
    # Mount points are any bytes but "\n" (another test's namespace may be named so).
    text = Path("/proc/self/mountinfo").read_bytes().decode("utf-8", "surrogateescape")
    for line in text.split("\n"):
        fields, _, tail = line.partition(" - ")
        if tail.startswith("cgroup2 "):
            return Path(fields.split(" ")[4])
    return Path("/sys/fs/cgroup")


CGROUP_ROOT = _cgroup2_root()

# Listens on 0.0.0.0:PORT (no loopback needed; 0: a port the kernel chooses), bound
# to device argv[2] when given, in the namespace it runs in; says "ready PORT", waits.
LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if len(sys.argv) > 2:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[2].encode())
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
print("ready", s.getsockname()[1], flush=True); sys.stdin.read()
"""
# Makes a namespace, opens a listener in it, goes back home holding the
# namespace's descriptor and the socket: a namespace no process lives in.
HOLDER = """
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
assert libc.unshare(0x40000000) == 0
held = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
assert libc.setns(home, 0x40000000) == 0
print("ready", os.fstat(held).st_ino, flush=True); sys.stdin.read()
"""


def start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``argv`` and wait for its "ready" line; the process and that line."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), line
    return proc, line


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate()  # waits, and closes its pipes


def listen_in(name: str, port: int = 0, device: str | None = None) -> tuple[subprocess.Popen[str], int]:
    """A listener in ``ip netns`` namespace ``name``: the process and its port."""
    argv = ["ip", "netns", "exec", name, sys.executable, "-c", LISTENER, str(port)]
    proc, line = start([*argv, device] if device is not None else argv)
    return proc, int(line.split()[1])


def inode_of(path: str) -> int:
    return os.stat(path).st_ino


@dataclass
class Contained:
    """A process in a namespace of its own, inside a cgroup named as a runtime names it."""

    cgroup: Path
    proc: subprocess.Popen[str]
    inode: int

    @classmethod
    def start(cls, cgroup: Path, port: int) -> Contained:
        proc, _ = start(["unshare", "-n", sys.executable, "-c", LISTENER, str(port)])
        for _ in range(5):  # a parent shared with another test may go between mkdir and the write
            for path in (*reversed(cgroup.parents), cgroup):
                if CGROUP_ROOT in path.parents and not path.exists():
                    try:
                        path.mkdir()
                        _MADE.add(path)
                    except FileExistsError:
                        pass  # another test's, made just now
                    except FileNotFoundError:
                        break  # its parent went: again
            try:
                (cgroup / "cgroup.procs").write_text(str(proc.pid))
                break
            except FileNotFoundError:
                continue
        else:
            stop(proc)
            raise AssertionError(f"{cgroup} went each time it was made")
        return cls(cgroup, proc, inode_of(f"/proc/{proc.pid}/ns/net"))

    def stop(self) -> None:
        stop(self.proc)


# The cgroups this process's tests made: only those are removed (a runtime's parent,
# system.slice..., may be the host's own).
_MADE: set[Path] = set()


def remove_cgroups(leaf: Path) -> None:
    """The leaf and each parent our tests made, deepest first (only empty ones go: another
    test may be using a parent still)."""
    for path in (leaf, *leaf.parents):
        if path not in _MADE:
            break
        try:
            path.rmdir()
            _MADE.discard(path)
        except OSError:
            break  # not empty: someone else's, or ours still holding a process
