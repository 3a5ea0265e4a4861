"""What a saved ss or netstat listing shows otherwise than the kernel is no change (sockdiff.saved, differ).

netstat -p names a process by its argv[0] and shows no fd; ss -p cuts a comm at
its first ")"; netstat -x cuts a UNIX path at its first blank; ss prints a UNIX
name with a line break as two lines; a listing's bytes that are not UTF-8 end up
in error messages. Each case against a snapshot holding what the kernel holds.
"""

from __future__ import annotations

import dataclasses
import datetime
import warnings

import msgspec
import pytest

from sockdiff import BadSnapshot, diff
from sockdiff.model import Process, Socket, inet, unix_name, unix_peer
from sockdiff.saved import SavedListingNote, read_listing
from sockdiff.snapshots import Snapshot

WHEN = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
NETSTAT_P = (
    "Active Internet connections (only servers)\n"
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name\n"
)
SS_HEADER = "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"


def read(text: str, lenient: bool = False) -> Snapshot:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SavedListingNote)
        return read_listing(text, "saved.txt", WHEN, lenient=lenient)


def live(saved: Snapshot, *sockets: Socket) -> Snapshot:
    """What the kernel holds, read through netlink, in the saved listing's scope."""
    header = msgspec.structs.replace(
        saved.header, backend="netlink", sources=dict.fromkeys(saved.header.sources, "netlink")
    )
    return dataclasses.replace(saved, header=header, sockets=sockets, origin="live")


def listener(port: int, *owners: Process) -> Socket:
    return Socket(
        "tcp", "inet", "stream", "LISTEN", inet("0.0.0.0", port), inet("0.0.0.0", 0), 0, None, 0, 128, owners
    )


def unchanged(old: Snapshot, new: Snapshot) -> bool:
    found = diff(old, new)
    return (found.opened, found.closed, found.changed) == ((), (), ())


def test_netstat_names_a_process_by_its_argv0() -> None:
    saved = read(
        NETSTAT_P
        + "tcp  0  0 0.0.0.0:80     0.0.0.0:*  LISTEN      1234/nginx: master  \n"
        + "tcp  0  0 0.0.0.0:5432   0.0.0.0:*  LISTEN      77/postgres: checkp \n"
        + "tcp  0  0 0.0.0.0:8080   0.0.0.0:*  LISTEN      9/./bin/app         \n"
    )
    assert saved.sockets is not None
    assert [p.fd for s in saved.sockets for p in s.processes] == [None, None, None]  # netstat shows none
    kernel = live(
        saved,
        listener(80, Process(1234, "nginx", 6)),
        listener(5432, Process(77, "postgres", 5)),
        listener(8080, Process(9, "app", 3)),
    )
    assert unchanged(saved, kernel) and unchanged(kernel, saved)
    other = live(saved, listener(80, Process(1234, "nginz", 6)), *(kernel.sockets or ())[1:])
    assert [c.fields for c in diff(saved, other).changed] == [("processes",)]


def test_ss_cuts_a_name_at_its_first_parenthesis() -> None:
    saved = read(SS_HEADER + 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("a b",pid=7,fd=3))\n')
    kernel = live(saved, listener(22, Process(7, "a b)c", 3)))
    assert unchanged(saved, kernel)
    assert not unchanged(saved, live(saved, listener(22, Process(7, "a bc", 3))))


def test_netstat_cuts_a_unix_path_at_its_first_blank() -> None:
    saved = read(
        "Active UNIX domain sockets (only servers)\n"
        "Proto RefCnt Flags       Type       State         I-Node   Path\n"
        "unix  2      [ ACC ]     STREAM     LISTENING     5550     /run/my\n"
    )
    sock = Socket(
        "unix",
        "unix",
        "stream",
        "LISTENING",
        unix_name("/run/my app.sock"),
        unix_peer(0),
        5550,
        None,
        0,
        0,
        (),
    )
    assert unchanged(saved, live(saved, sock))
    moved = msgspec.structs.replace(sock, local=unix_name("/run/other app.sock"))
    found = diff(saved, live(saved, moved))
    assert (len(found.opened), len(found.closed)) == (1, 1)


def test_a_unix_name_with_a_line_break_plants_no_row() -> None:
    text = (
        "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        "u_str LISTEN 0      128    @s2n\n"
        'u_str LISTEN 0 128 /run/fake 999 * 0 3360383            * 0    users:(("python3",pid=18956,fd=3))\n'
        "u_str LISTEN 0      128    /run/real.sock 4242 * 0\n"
    )
    with pytest.raises(BadSnapshot, match=r"^saved.txt: line 2, "):
        read(text)
    with pytest.warns(SavedListingNote, match="2 unreadable line"):
        saved = read_listing(text, "saved.txt", WHEN, lenient=True)
    assert [(s.local.path, s.inode) for s in saved.sockets or ()] == [("/run/real.sock", 4242)]


def test_bytes_that_are_not_utf8_are_written_as_such_in_errors() -> None:
    data = (
        b"Kernel IP routing table\nDestination Gateway Genmask Flags MSS Window irtt Iface\n"
        b"10.0.0.0 0.0.0.0 255.\xff.0.0 U 0 0 0 eth0\n"
    )
    origin = b"r\xfe.txt".decode("utf-8", "surrogateescape")
    with pytest.raises(BadSnapshot) as caught:
        read_listing(data.decode("utf-8", "surrogateescape"), origin, WHEN)
    message = str(caught.value)
    assert message.encode("utf-8")  # no lone surrogate: any output can carry it
    assert message.startswith("r\\xfe.txt: line 3, column 1: ") and "255.\\xff.0.0" in message
    bad_port = SS_HEADER + "tcp ESTAB 0 0 1.2.3.4:22 5.6.7.8:x\udcff\n"
    with pytest.raises(BadSnapshot, match=r"'x\\xff' is neither"):
        read_listing(bad_port, "p.txt", WHEN)
