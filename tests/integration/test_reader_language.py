"""The reader takes exactly what sockdiff writes: UNIX names and process names as
escape_name makes them, one interface of a name, and routes the kernel may repeat.

Real sockets, processes and routes in a private namespace are written and read
back; text sockdiff could not have written is refused in one line naming its place.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sockdiff.errors import BadSnapshot
from sockdiff.model import escape_name
from sockdiff.snapshots import loads
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.made import GOOD
from tests.helpers.netns import netns_exec_argv

# Process names (comm: 15 bytes at most) and UNIX names the kernel keeps: a backslash, a
# quote, a byte that is not UTF-8, NEL; an abstract name with an inner NUL, one of 107 bytes.
COMMS = (b'b"x', b"a\\b", b"c\xffd", b"nel\xc2\x85")
ABSTRACT = (b"\0odd\\\0\xfe", b"\0" + b"z" * 107)

# Holds a UNIX listener per name (argv: a directory, then hex names), renamed (comm) to each of COMMS
# in turn by a child per name, each waiting on stdin.
_CHILD = r"""
import os, socket, sys
directory, comm, names = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3:]
with open("/proc/self/comm", "wb") as f:
    f.write(comm)
held = []
for index, text in enumerate(names):
    raw = bytes.fromhex(text)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(raw if raw[:1] == b"\0" else os.path.join(os.fsencode(directory), raw))
    sock.listen()
    held.append(sock)
print("ready", flush=True)
sys.stdin.read()
"""


def test_odd_unix_and_process_names_read_back(netns: str, tmp_path: Path) -> None:
    """Written by snapshot, read back by show and compare (with itself and with live)."""
    children = []
    try:
        for number, comm in enumerate(COMMS):
            names = [b"p%d\\q\xff" % number] + ([*ABSTRACT] if number == 0 else [])
            child = subprocess.Popen(
                netns_exec_argv(
                    netns,
                    [sys.executable, "-c", _CHILD, str(tmp_path), comm.hex(), *(n.hex() for n in names)],
                ),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            children.append(child)
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        path = tmp_path / "odd.json"
        for backend in ("netlink", "proc"):
            taken = sockdiff("snapshot", "-b", backend, "-o", str(path), netns=netns)
            assert taken.returncode == 0, taken.stderr
            snapshot = loads(path.read_bytes(), "odd.json")
            owners = {p.name for s in snapshot.sockets or () for p in s.processes}
            assert {escape_name(comm) for comm in COMMS} <= owners
            paths = {s.local.path for s in snapshot.sockets or () if s.proto == "unix"}
            assert {escape_name(name) for name in ABSTRACT} <= paths
            assert escape_name(bytes(tmp_path) + b"/p1\\q\xff") in paths
            for argv in (("show", "-a", "-p", str(path)), ("compare", str(path), str(path))):
                shown = sockdiff(*argv)
                assert shown.returncode == 0, (argv, shown.stderr)
            live = sockdiff("compare", str(path), f"live:{backend}", netns=netns)
            assert live.returncode == 0, (live.stdout, live.stderr)
    finally:
        for child in children:
            child.communicate("", timeout=60)


@pytest.mark.parametrize(
    ("old", "new", "place", "words"),
    [
        (
            b'"/run/a b.sock"',
            b'"a\\\\b"',
            "$.sockets[2].local.path",
            "not a UNIX socket name as sockdiff writes",
        ),
        (
            b'"/run/a b.sock"',
            b'"a\\\\x41"',
            "$.sockets[2].local.path",
            "not a UNIX socket name as sockdiff writes",
        ),
        (b'"/run/a b.sock"', b'""', "$.sockets[2].local.path", "0 bytes (1 to 108)"),
        (b'"/run/a b.sock"', b'"/a\\u0000b"', "$.sockets[2].local.path", "a path ends at its first NUL"),
        (b'"/run/a b.sock"', b'"/' + b"a" * 108 + b'"', "$.sockets[2].local.path", "109 bytes (1 to 108)"),
        (b'"name":"srv"', b'"name":"b\\\\x22"', "$.sockets[0].processes[0].name", "not a process name"),
        (b'"name":"srv"', b'"name":"a\\\\b"', "$.sockets[0].processes[0].name", "not a process name"),
        (b'"name":"srv"', b'"name":"a\\u0000"', "$.sockets[0].processes[0].name", "ends at its first NUL"),
        (b'"name":"tun0"', b'"name":"lo"', "$.interfaces[1].name", "interface 'lo' is listed twice"),
    ],
)
def test_what_sockdiff_could_not_have_written_is_refused(
    old: bytes, new: bytes, place: str, words: str, tmp_path: Path
) -> None:
    assert old in GOOD
    data = GOOD.replace(old, new, 1)
    with pytest.raises(BadSnapshot, match=re.escape(f"at {place}")):
        loads(data, "bad.json")
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    message = one_line_error(sockdiff("show", "-a", str(path)))
    assert words in message and place in message, message


def test_names_sockdiff_writes_are_read() -> None:
    for old, new in (
        (b'"/run/a b.sock"', b'"a\\\\\\\\b"'),  # a backslash, doubled
        (b'"/run/a b.sock"', b'"/a\\\\xff"'),
        (b'"/run/a b.sock"', b'"@"'),
        (b'"name":"srv"', b'"name":""'),  # prctl may leave a name empty
        (b'"name":"srv"', b'"name":"nel\\u0085x\\\\xfe"'),
    ):
        loads(GOOD.replace(old, new, 1), "good.json")


def test_routes_the_kernel_repeats_are_read(netns: str, tmp_path: Path) -> None:
    """`ip route append` (same destination, metric and device; another gateway) and two routes
    apart only by TOS (which no record holds) are the kernel's: written, so read."""

    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", netns, *args], check=True, timeout=30)

    ip("link", "add", "ra", "type", "veth", "peer", "name", "rb")
    ip("link", "set", "ra", "up")
    ip("addr", "add", "10.61.0.1/24", "dev", "ra")
    ip("route", "add", "10.62.0.0/16", "via", "10.61.0.2", "dev", "ra")
    ip("route", "append", "10.62.0.0/16", "via", "10.61.0.3", "dev", "ra")
    ip("route", "add", "10.63.0.0/16", "tos", "0x10", "dev", "ra")
    ip("route", "add", "10.63.0.0/16", "dev", "ra")
    path = tmp_path / "routes.json"
    for backend in ("netlink", "proc"):
        assert sockdiff("snapshot", "-b", backend, "-o", str(path), netns=netns).returncode == 0
        routes = loads(path.read_bytes(), "routes.json").routes or ()
        assert len([r for r in routes if r.destination in ("10.62.0.0/16", "10.63.0.0/16")]) == 4
        assert sockdiff("compare", str(path), f"live:{backend}", netns=netns).returncode == 0
