"""watch through its API in other namespaces: one named (``--netns``), and every one (``--all-netns``).

Each test drives :class:`~sockdiff.watching.Watch` report by report and acts
between two reports, so what a poll saw and what happened after it are known.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sockdiff.backends.netlink.events import RESERVE
from sockdiff.formats import WATCH_FORMATS, event_format, parse_format
from sockdiff.formats.notation import socket_line
from sockdiff.model import Socket
from sockdiff.watching import Report, Watch, watch
from tests.helpers.cli import TIMEOUT, one_line_error, sockdiff, sockdiff_command
from tests.helpers.netns import netns_exec_argv, private_netns
from tests.integration.test_watch import CONNECT

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


# A TCP listener on 127.0.0.1, kept until stdin closes; prints its port.
LISTENER = """
import socket, sys
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
print(sock.getsockname()[1], flush=True)
sys.stdin.read()
"""


def moved(kind: str, inode: int) -> Callable[[Report], bool]:
    """Whether a report's diff has namespace ``inode`` among those that ``kind`` (appeared, gone)."""

    def found(report: Report) -> bool:
        spaces = report.diff.namespaces if report.diff is not None else None
        return spaces is not None and any(space.inode == inode for space in getattr(spaces, kind))

    return found


def rendered(report: Report, output: str) -> list[str]:
    """``report`` as watch's ``output`` format writes it (text lines less their time; jsonl objects)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    event_format(parse_format(output, WATCH_FORMATS)).poll(
        out, "T", report.diff, report.short_lived, report.namespaces
    )
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    return [line.removeprefix("T ") for line in buffer.getvalue().decode().splitlines()]


def about(label: str, lines: list[str]) -> list[str]:
    """The lines about namespace ``label``: text ``[label]`` or ``netns label``, jsonl ``"label"``."""
    marks = (f"[{label}]", f"netns {label} ", f'"{label}"')
    return [line for line in lines if any(mark in line for mark in marks)]


def test_all_netns_labels_every_namespace_and_follows_those_that_come_and_go(netns: str) -> None:
    """watch --all-netns: a namespace made after the first read is one line when a poll finds it;
    its sockets' destroy events are heard from then on (a connection no poll saw comes out
    short-lived, labelled); a listener opened in it is reported with its label (text ``[label]``,
    jsonl ``netns``); and when it is deleted, one line again, its listener counted under it.
    ``netns`` (made before the watch) is watched from the first read."""
    watcher = watch(0.05, all_netns=True, protos=("tcp",), sections=("sockets",))
    reports = iter(watcher)
    seen: list[Report] = []
    try:
        baseline = next(reports).baseline
        assert baseline is not None and baseline.namespaces is not None
        assert netns in {name for space in baseline.namespaces for name in space.names}
        with running(netns, LISTENER) as (_, line):
            port = int(line)
            report = until(reports, seen, lambda r: r.diff is not None and on_port(port, r.diff.opened))
            assert report.diff is not None
            [sock] = on_port(port, report.diff.opened)
            assert sock.netns == os.stat(f"/run/netns/{netns}").st_ino
            assert about(netns, rendered(report, "text")) == [f"+ [{netns}] {socket_line(sock)}"]

        with private_netns() as second:
            inode = os.stat(f"/run/netns/{second}").st_ino

            report = until(reports, seen, moved("appeared", inode))
            assert about(second, rendered(report, "text")) == [f"+ netns {second} (net:[{inode}])  0 sockets"]
            [event] = [json.loads(text) for text in about(second, rendered(report, "jsonl"))]
            assert (event["section"], event["kind"], event["netns"], event["sockets"]) == (
                "namespaces",
                "appeared",
                second,
                0,
            )
            assert event["namespace"]["inode"] == inode
            # Between two polls (watch waits for us): heard only through its destroy events.
            ports = json.loads(
                subprocess.run(
                    netns_exec_argv(second, [sys.executable, "-c", CONNECT]),
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=TIMEOUT,
                ).stdout
            )
            short: list[Socket] = []
            for _ in range(200):
                report = next(reports)
                seen.append(report)
                short += (s for s in report.short_lived if s.local.port in ports.values())
                if len(short) >= 3:
                    break
            assert {s.netns for s in short} == {inode}, short
            assert {(s.local.port, s.remote.port if s.remote else 0) for s in short} == {
                (ports["server"], 0),
                (ports["server"], ports["client"]),
                (ports["client"], ports["server"]),
            }
            alone = Report("T", short_lived=tuple(short), namespaces=report.namespaces)
            labelled = about(second, rendered(alone, "text"))
            assert len(labelled) == 3, labelled
            assert all(text.startswith(f"- [{second}] tcp CLOSE") for text in labelled), labelled

            holder = subprocess.Popen(
                netns_exec_argv(second, [sys.executable, "-c", LISTENER]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None
            kept = int(holder.stdout.readline())
            report = until(reports, seen, lambda r: r.diff is not None and on_port(kept, r.diff.opened))
            events = [json.loads(text) for text in about(second, rendered(report, "jsonl"))]
            [event] = [event for event in events if event["socket"]["local"]["port"] == kept]
            assert (event["kind"], event["netns"]) == ("new", second), events
        # Deleted with the listener still open in it (the namespace's processes are killed).
        holder.wait(TIMEOUT)
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                stream.close()

        report = until(reports, seen, moved("gone", inode))
        # Its listener, and the TIME_WAIT end of the connection if it still lingers.
        [line] = about(second, rendered(report, "text"))
        assert re.fullmatch(rf"- netns {second} \(net:\[{inode}\]\)  [12] sockets?", line), line
    finally:
        watcher.close()
    assert watcher.counts["namespaces"] >= 2
    assert "namespaces: " in watcher.summary()


def test_all_netns_on_the_command_line(netns: str) -> None:
    """``watch --all-netns``: polls every namespace and counts those that come and go; with
    ``--netns``, one clear line and exit 2, before anything is opened."""
    done = sockdiff("watch", "--all-netns", "-i", "0.05", "--count", "2", "--sections", "sockets,interfaces")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done
    summary = done.stderr.splitlines()[-1]
    assert re.fullmatch(
        r"sockdiff: 2 polls, \d+ differences? \(.*; interfaces: \d+; namespaces: \d+\)", summary
    )
    refused = sockdiff("watch", "--all-netns", "--netns", netns, "--count", "1")
    assert "exclude each other" in one_line_error(refused)


@contextmanager
def descriptor_limit(spare: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE at the descriptors open now plus ``spare``, for the body."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + spare, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_namespaces_past_the_descriptor_limit_are_polled_not_listened_to(netns: str) -> None:
    """With no descriptors to spare for its event sockets, a namespace is not listened to: the
    watch counts it (:attr:`~sockdiff.watching.Watch.unheard`) and its polls go on reading it.
    Joined up to the limit, the next poll's own reads had no descriptor left."""
    # Room for our namespace's one event socket, and the reserve the polls read with.
    with descriptor_limit(RESERVE + 1):
        watcher = watch(0.05, all_netns=True, protos=("tcp",), sections=("sockets",), processes=False)
        reports = iter(watcher)
        seen: list[Report] = []
        try:
            assert next(reports).baseline is not None
            assert watcher.unheard >= 1  # netns at least
            with running(netns, LISTENER) as (_, line):
                port = int(line)
                report = until(reports, seen, lambda r: r.diff is not None and on_port(port, r.diff.opened))
        finally:
            watcher.close()
    assert report.diff is not None
    [sock] = on_port(port, report.diff.opened)
    assert sock.netns == os.stat(f"/run/netns/{netns}").st_ino


def test_namespaces_not_listened_to_are_said_once(netns: str) -> None:
    """``watch --all-netns`` under ``ulimit -n``: one warning line says how many namespaces are
    not listened to, and the watch polls on (exit 0); the summary counts them at the end."""
    command, env = sockdiff_command("watch", "--all-netns", "-i", "0.05", "--count", "2", "--no-processes")
    limit = 40  # the interpreter's few descriptors, our namespace's event sockets, the reserve
    done = subprocess.run(
        ["prlimit", f"--nofile={limit}", "--", *command],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )
    assert done.returncode == 0, done
    warnings = [line for line in done.stderr.splitlines() if line.startswith("sockdiff: warning: ")]
    assert len(warnings) == 1 and re.fullmatch(
        rf"sockdiff: warning: \d+ namespaces? not listened to: descriptor limit {limit} \(ulimit -n\);"
        " their sockets that open and close between two polls go unseen, the polls still read them",
        warnings[0],
    ), done.stderr
    assert re.fullmatch(
        r"sockdiff: 2 polls, .*; \d+ namespaces? not listened to \(descriptor limit\)",
        done.stderr.splitlines()[-1],
    ), done.stderr


def test_a_namespace_line_comes_first_with_its_interfaces_and_routes_counted(netns: str) -> None:
    """A namespace made while watched: its interfaces are counted under its ``+ netns`` line,
    not listed, even when an rtnetlink event elsewhere has the interfaces read before the
    poll that finds the namespace (they came out first, each ``+ [label] interface ...``)."""
    watcher = watch(2, all_netns=True, protos=("tcp",), processes=False)
    reports = iter(watcher)
    seen: list[Report] = []
    try:
        assert next(reports).baseline is not None
        with private_netns() as second:
            inode = os.stat(f"/run/netns/{second}").st_ino
            ip(second, "link", "add", "w3br0", "type", "bridge")
            ip(netns, "link", "add", "w3ev0", "type", "bridge")  # heard: interfaces read at once
            report = until(reports, seen, moved("appeared", inode))
            assert [about(second, rendered(r, "text")) for r in seen[:-1]] == [[]] * (len(seen) - 1), seen
            [line] = about(second, rendered(report, "text"))
            counted = re.fullmatch(
                rf"\+ netns {second} \(net:\[{inode}\]\)  0 sockets, 2 interfaces, (\d+) routes?", line
            )
            assert counted is not None, line
            [event] = [json.loads(text) for text in about(second, rendered(report, "jsonl"))]
            assert (event["kind"], event["sockets"], event["interfaces"]) == ("appeared", 0, 2), event
            assert event["routes"] == int(counted[1]), event
    finally:
        watcher.close()
