"""``snapshot --all-netns`` against a shell loop of ``ss -N NS`` over the same namespaces.

Makes N namespaces (``ip netns``, named with the benchmark's prefix), opens S
sockets in each (half TCP listeners, half UDP, held by this one process, which
enters each namespace to open them and comes back), then times, R times each:

- ``sockdiff snapshot --all-netns --no-processes --sections sockets -o /dev/null``
  against ``for ns in ...; do ss -N $ns -tuwxan; done`` (goal: <= 0.3x);
- the same with processes against ``ss -N $ns -tuwxanp`` (goal: <= 0.1x: one
  scan of /proc instead of N).

The host may hold other namespaces (other tests'): sockdiff reads those too,
the loop does not, and the figures say how many there were. Medians and
ratios are printed side by side. Run as root: ``python benchmarks/all_netns.py``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # the namespace helper lives with the tests, as tests.helpers.netns
    sys.path.append(_ROOT)

from tests.helpers.netns import BENCH_PREFIX, create_netns, delete_netns  # noqa: E402

_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def _populate(names: list[str], per_namespace: int) -> list[socket.socket]:
    """``per_namespace`` sockets in each namespace, opened from here."""
    held: list[socket.socket] = []
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        for name in names:
            target = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                _setns(target)
                for index in range(per_namespace):
                    if index % 2:
                        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        sock.bind(("0.0.0.0", 0))
                    else:
                        sock = socket.socket()
                        sock.bind(("0.0.0.0", 0))
                        sock.listen()
                    held.append(sock)
            finally:
                _setns(home)
                os.close(target)
    finally:
        os.close(home)
    return held


def _time(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sockdiff = shutil.which("sockdiff", path=str(Path(sys.executable).parent)) or "sockdiff"
    names: list[str] = []
    try:
        for _ in range(args.namespaces):
            names.append(create_netns(BENCH_PREFIX))
        held = _populate(names, args.sockets)
        others = len(os.listdir("/run/netns")) - len(names)
        loop = "for ns in " + " ".join(names) + "; do ss -N $ns -tuwxan%s; done"
        snapshot = [sockdiff, "snapshot", "--all-netns", "--sections", "sockets", "-o", "/dev/null"]
        print(
            f"{len(names)} namespaces x {args.sockets} sockets ({len(held)} held here);"
            f" {others} other ip netns on the host; median of {args.runs} runs"
        )
        for label, ours, theirs, goal in (
            ("no processes", [*snapshot, "--no-processes"], ["sh", "-c", loop % ""], 0.3),
            ("processes", snapshot, ["sh", "-c", loop % "p"], 0.1),
        ):
            mine = _time(ours, args.runs)
            loop_time = _time(theirs, args.runs)
            ratio = mine / loop_time
            verdict = "met" if ratio <= goal else "missed"
            print(
                f"{label:<13} sockdiff {mine:7.3f} s   ss loop {loop_time:7.3f} s"
                f"   ratio {ratio:5.2f}x (goal <= {goal}x: {verdict})"
            )
    finally:
        for name in names:
            delete_netns(name)


if __name__ == "__main__":
    main()
