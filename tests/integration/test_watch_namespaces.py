"""watch through its API in other namespaces: one named (``--netns``), and every one (``--all-netns``).

Each test drives :class:`~sockdiff.watching.Watch` report by report and acts
between two reports, so what a poll saw and what happened after it are known.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sockdiff.model import Socket
from sockdiff.watching import Report, Watch, watch
from tests.helpers.cli import TIMEOUT
from tests.helpers.netns import netns_exec_argv

# A TCP listener bound to device argv[1] (SO_BINDTODEVICE), kept until stdin closes; prints its port.
BOUND_LISTENER = """
import socket, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
sock.bind(("0.0.0.0", 0))
sock.listen()
print(sock.getsockname()[1], flush=True)
sys.stdin.read()
"""


def ip(netns: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", netns, *argv], check=True, capture_output=True, timeout=TIMEOUT)


@contextmanager
def running(netns: str, script: str, *argv: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``script`` running in ``netns``: the process and the first line it printed."""
    with subprocess.Popen(
        netns_exec_argv(netns, [sys.executable, "-c", script, *argv]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        try:
            yield process, process.stdout.readline().strip()
        finally:
            if process.poll() is None:
                process.kill()


def until(reports: Iterator[Report], seen: list[Report], done: object, limit: int = 200) -> Report:
    """The next report for which ``done(report)`` holds; every report read is kept in ``seen``."""
    for _ in range(limit):
        report = next(reports)
        seen.append(report)
        if done(report):  # type: ignore[operator]
            return report
    raise AssertionError(f"not seen within {limit} reports: {seen}")


def on_port(port: int, sockets: tuple[Socket, ...]) -> list[Socket]:
    return [s for s in sockets if s.local.port == port]


def test_destroy_event_device_named_in_the_watched_namespace(netns: str) -> None:
    """A listener bound to a device of the watched namespace closes: one close, not short-lived.

    Its destroy event names the device by index, which in our own namespace is
    another device or none: named there, the event matched no socket the poll
    saw, so it came out as a spurious short-lived close beside the poll's close.
    """
    ip(netns, "link", "add", "w2br0", "type", "bridge")
    watcher: Watch = watch(0.1, netns=netns, protos=("tcp",), sections=("sockets",), processes=False)
    reports = iter(watcher)
    seen: list[Report] = []
    try:
        assert next(reports).baseline is not None
        with running(netns, BOUND_LISTENER, "w2br0") as (process, line):
            port = int(line)
            until(reports, seen, lambda r: r.diff is not None and on_port(port, r.diff.opened))
            assert process.stdin is not None
            process.stdin.close()
            assert process.wait(TIMEOUT) == 0
        until(reports, seen, lambda r: r.diff is not None and on_port(port, r.diff.closed))
        for _ in range(5):  # time for a late event to come
            seen.append(next(reports))
    finally:
        watcher.close()
    closed = [s for r in seen if r.diff is not None for s in on_port(port, r.diff.closed)]
    short = [s for r in seen for s in on_port(port, r.short_lived)]
    assert [s.interface for s in closed] == ["w2br0"], seen
    assert short == [], short
    assert watcher.counts["closed"] == 1 and watcher.counts["short_lived"] == 0, watcher.counts


def test_renamed_device_is_one_change(netns: str) -> None:
    """A device renamed while watched is the same link (its index) with a new name: one change."""
    ip(netns, "link", "add", "w2old", "type", "veth", "peer", "name", "w2peer")
    watcher = watch(3600, netns=netns, sections=("interfaces", "routes"), processes=False)
    reports = iter(watcher)
    seen: list[Report] = []
    try:
        assert next(reports).baseline is not None
        ip(netns, "link", "set", "w2old", "name", "w2new")
        # rtnetlink says so: read at once, an hour before the next poll.
        report = until(reports, seen, lambda r: r.diff is not None and r.diff.interfaces)
    finally:
        watcher.close()
    assert report.diff is not None and report.diff.interfaces is not None
    interfaces = report.diff.interfaces
    assert (interfaces.added, interfaces.removed) == ((), ()), interfaces
    [change] = interfaces.changed
    assert (change.old.name, change.new.name, change.fields[0]) == ("w2old", "w2new", "name"), change
    assert watcher.counts["interfaces"] == 1, watcher.counts
