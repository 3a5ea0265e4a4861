"""The compiled accelerator (sockdiff._speedups) against the pure-Python references.

Each fast path returns what its reference returns, or None where it declines
and the reference reads the input: so it must decline whatever the reference
refuses, and must not decline what the kernel writes (or it would be no fast
path). Checked on the kernel's captured replies and files (fixtures/zoo), on
hypothesis-made ones, and on damaged ones; and the records of the captures,
decoded with the extension and with SOCKDIFF_PURE=1, are the same bytes.

The comparisons need the extension: .ci/run builds it in one pass (where these
tests run) and installs without a compiler in the other (where it checks the
extension is absent, and these are skipped).
"""

from __future__ import annotations

import contextlib
import operator
import os
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff import _perf, processes, snapshots, validation
from sockdiff.backends.netlink import framing
from sockdiff.backends.netlink import sockets as netlink
from sockdiff.backends.proc import sockets as procfs
from sockdiff.model import INET_STATE_NAMES, UNIX_STATE_NAMES, Endpoint, Namespace, Process, Socket
from tests.helpers.captured import FIXTURES
from tests.helpers.fuzzing import (
    DONE,
    EDITS,
    INET_MESSAGE,
    INET_ROW,
    NLMSG,
    damaged,
    inet_dump,
    inet_file,
    inet_message,
)
from tests.helpers.made import GOOD

speedups = pytest.importorskip("sockdiff._speedups")

PROC_FILES = [("tcp", "inet"), ("tcp6", "inet6"), ("udp", "inet"), ("udp6", "inet6"), ("raw", "inet")]
NETLINK_FILES = ["tcp4", "tcp6", "udp4", "udp6", "raw4", "raw6", "unix"]


def agree(fast: object, reference: Callable[[], object]) -> None:
    """``fast`` is the reference's result or None; None wherever the reference raises."""
    try:
        expected = reference()
    except Exception:
        assert fast is None
        return
    assert fast is None or fast == expected


def check_datagram(data: bytes, size: int, *, kernel_made: bool, inet: bool = True) -> None:
    """messages on the datagram, then inet_record on each of its sock_diag replies (``inet``)."""
    fast = speedups.messages(data, size)
    agree(fast, lambda: framing.pure_messages(data, size))
    if kernel_made:
        assert fast is not None
    try:
        found = framing.pure_messages(data, min(size, len(data)))
    except framing.DumpFailed:
        return
    for kind, _flags, offset, end in found:
        if inet and kind == netlink.SOCK_DIAG_BY_FAMILY:
            check_inet_message(data, offset, end, kernel_made=kernel_made)


def check_inet_message(data: bytes, offset: int, end: int, *, kernel_made: bool) -> None:
    check_inet_record(data, offset, end, kernel_made=kernel_made)


@contextlib.contextmanager
def reference_loop() -> Iterator[None]:
    """decode_inet without the accelerator's inet_record: the reference's loop body."""
    record = netlink._fast_inet_record
    netlink._fast_inet_record = None
    try:
        yield
    finally:
        netlink._fast_inet_record = record


OWNERS = {4: (Process(7, "server", 3),), 5: (Process(7, "server", 4), Process(8, "worker", 4))}


def check_inet_record(data: bytes, offset: int, end: int, *, kernel_made: bool) -> None:
    """inet_record on one reply does what decode_inet's reference loop does, or nothing."""
    seen, sockets = {1}, [None]  # a cookie decoded already; a record before
    cache: dict[bytes, str] = {}
    fast = speedups.inet_record(
        data, offset, end, cache, seen, sockets, netlink.inet_record_context("udp", OWNERS)
    )
    # The cache the accelerator fills holds what the reference would have put there.
    for packed, text in cache.items():
        assert text == socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)
    expected_seen = {1}
    try:
        with reference_loop():
            expected = netlink.decode_inet([(data, offset, end)], "udp", OWNERS, expected_seen, interfaces={})
    except Exception:
        expected = None
    if fast is None:
        assert (seen, sockets) == ({1}, [None])
        assert not kernel_made or expected is None or expected[0].interface is not None
        return
    assert fast is True
    assert expected is not None
    assert (seen, sockets) == (expected_seen, [None, *expected])


def check_proc_file(data: bytes, proto: str, family: str, *, kernel_made: bool) -> None:
    fast = speedups.proc_inet_rows(data, 8 if family == "inet" else 32, Endpoint)
    agree(fast, lambda: procfs.inet_rows(data, proto, family))
    if kernel_made:
        assert fast is not None


@pytest.mark.parametrize("name", NETLINK_FILES)
def test_captured_netlink_replies(name: str) -> None:
    data = (FIXTURES / "netlink" / f"{name}.bin").read_bytes()
    check_datagram(data, len(data), kernel_made=True, inet=name != "unix")


@pytest.mark.parametrize(("name", "family"), PROC_FILES)
def test_captured_proc_files(name: str, family: str) -> None:
    data = (FIXTURES / "proc" / name).read_bytes()
    check_proc_file(data, name.rstrip("6"), family, kernel_made=True)


# A u8 attribute, as INET_DIAG_SKV6ONLY is (type 11), or any other.
ATTRIBUTE = st.tuples(st.sampled_from([1, 8, 11, 11 | 0x8000, 0x400B]), st.binary(max_size=9))


def with_attributes(message: bytes, attributes: list[tuple[int, bytes]]) -> bytes:
    """``message`` with netlink attributes after its inet_diag_msg, its length fixed."""
    body = message[16:]
    for kind, payload in attributes:
        body += struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)
    return NLMSG.pack(16 + len(body), netlink.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


# Messages in the kernel's layout; listeners and closed IPv6 sockets (where the v6only
# attribute is read) and families the decoder refuses made often.
KERNEL_MESSAGE = st.tuples(
    st.sampled_from([socket.AF_INET, socket.AF_INET6]),
    st.sampled_from([1, 7, 10, 12]),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.lists(ATTRIBUTE, max_size=3),
    st.integers(0, 2**64 - 1),
)


def kernel_message(fields: tuple[int, int, bytes, bytes, list[tuple[int, bytes]], int]) -> bytes:
    family, state, src, dst, attributes, cookie = fields
    numbers = (cookie, 1, 2, 3, 4)
    return with_attributes(inet_message(family, state, 80, 443, src, dst, numbers), attributes)


@given(st.lists(KERNEL_MESSAGE, max_size=4))
def test_made_netlink_replies(messages: list[Any]) -> None:
    data = b"".join(kernel_message(fields) for fields in messages) + DONE
    check_datagram(data, len(data), kernel_made=True)


@given(st.lists(INET_MESSAGE, min_size=1, max_size=3), st.lists(KERNEL_MESSAGE, max_size=2), EDITS)
def test_damaged_netlink_replies(
    messages: list[Any], more: list[Any], edits: list[tuple[int, int, int]]
) -> None:
    data = damaged(inet_dump(messages) + b"".join(kernel_message(fields) for fields in more), edits)
    check_datagram(data, len(data), kernel_made=False)


# Offsets near a buffer, and at the ends of a C Py_ssize_t (where end - offset overflows).
PLACES = st.one_of(st.integers(-8, 210), st.sampled_from([2**63 - 1, -(2**63), 2**62, -(2**62), -2]))


@given(st.binary(max_size=200), PLACES, PLACES)
def test_any_bytes_anywhere(data: bytes, offset: int, end: int) -> None:
    check_datagram(data, end, kernel_made=False)
    check_inet_record(data, offset, end, kernel_made=False)


@given(st.lists(INET_ROW, max_size=5), st.booleans(), st.sampled_from(["tcp", "udp", "raw"]))
def test_made_proc_files(rows: list[Any], v6: bool, proto: str) -> None:
    check_proc_file(inet_file(rows, v6), proto, "inet6" if v6 else "inet", kernel_made=True)


# What the reference reads or refuses but the kernel does not write: lower-case hex,
# other blanks, signs, underscores, a missing or extra column, values past their width.
ODD_TEXT = st.sampled_from(
    [b"a", b"f", b"\t", b"\r", b"\x0b", b" ", b"-", b"+", b"_", b"0x", b":", b"\n", b"99999999999", b"\xff"]
)


@given(
    st.lists(INET_ROW, min_size=1, max_size=3),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 2**31), ODD_TEXT), min_size=1, max_size=3),
    EDITS,
)
def test_odd_proc_files(
    rows: list[Any], v6: bool, insertions: list[tuple[int, bytes]], edits: list[tuple[int, int, int]]
) -> None:
    data = inet_file(rows, v6)
    for where, text in insertions:
        place = where % len(data)
        data = data[:place] + text + data[place:]
    family = "inet6" if v6 else "inet"
    check_proc_file(data, "tcp", family, kernel_made=False)
    check_proc_file(damaged(data, edits), "tcp", family, kernel_made=False)


# Column texts the kernel does not write; some the reference still reads, some it refuses.
ODD_COLUMN = st.sampled_from(
    [
        b"4294967295",
        b"4294967296",
        b"18446744073709551615",
        b"18446744073709551616",
        b"007",
        b"+5",
        b"-1",
        b"1_0",
        b"0x1A",
        b"1a",
        b"FFFFFFFFF",
        b"0100007f:0016",
        b"0100007F:16",
        b"0100007F:0016:",
        b"0100007F0016",
        b"00000000000000000000000001000000:0016",
        b"1:2",
        b"1:",
        b":1",
        b"",
    ]
)


@given(st.lists(INET_ROW, min_size=1, max_size=2), st.booleans(), st.integers(1, 9), ODD_COLUMN)
def test_odd_columns(rows: list[Any], v6: bool, column: int, text: bytes) -> None:
    title, *lines = inet_file(rows, v6).splitlines(keepends=True)
    fields = lines[-1].split(b" ")
    words = [i for i, field in enumerate(fields) if field]
    fields[words[column]] = text
    lines[-1] = b" ".join(fields)
    check_proc_file(b"".join([title, *lines]), "tcp", "inet6" if v6 else "inet", kernel_made=False)


_DECODE_CAPTURES = f"""
import sys
from pathlib import Path
import msgspec
from sockdiff import _accel
from sockdiff.backends.netlink import framing, sockets as netlink
from sockdiff.backends.proc import sockets as procfs
fixtures = Path({str(FIXTURES)!r})
records = []
for name in {NETLINK_FILES!r}:
    data = (fixtures / "netlink" / (name + ".bin")).read_bytes()
    dump = framing.Dump([(data, len(data))])
    try:
        if name == "unix":
            records += netlink.decode_unix(dump, {{}}, set())
        else:
            records += netlink.decode_inet(dump, name[:3], {{}}, set(), {{}})
    except framing.DumpFailed as failure:
        records.append(failure.code)
for name, family in {PROC_FILES!r}:
    records += procfs.parse_inet((fixtures / "proc" / name).read_bytes(), name.rstrip("6"), family, {{}})
sys.stdout.buffer.write(msgspec.json.encode([_accel.speedups is not None, records]))
"""


def test_both_paths_give_the_same_bytes() -> None:
    """The records of every capture, decoded in a process with the extension and in one with
    SOCKDIFF_PURE=1 (which must not load it): the same bytes."""
    outputs = {}
    for pure in ("0", "1"):
        env = {**os.environ, "SOCKDIFF_PURE": pure}
        done = subprocess.run(
            [sys.executable, "-c", _DECODE_CAPTURES], env=env, capture_output=True, check=True
        )
        outputs[pure] = done.stdout
    assert outputs["0"].startswith(b"[true,")
    assert outputs["1"].startswith(b"[false,")
    assert outputs["0"][len(b"[true,") :] == outputs["1"][len(b"[false,") :]
    assert b'"address"' in outputs["1"]  # records, not only errors


# Records two reads share (the same objects), and edits that make the second read differ:
# an item dropped, one put in (from the pool, an equal copy of one, or new), one moved far.
_POOL = [msgspec.Raw(b'{"n":%d}' % (n % 7)) for n in range(12)]
_EDIT = st.tuples(st.sampled_from(["drop", "put", "copy", "new", "move"]), st.integers(0), st.integers(0))


@given(
    st.lists(st.sampled_from(_POOL), max_size=60),
    st.lists(_EDIT, max_size=12),
    st.booleans(),
    st.sampled_from([list, tuple]),
    st.sampled_from([operator.is_, operator.eq]),
)
def test_in_step_compiled(
    theirs: list[object], edits: list[Any], same_start: bool, kind: Any, same: Any
) -> None:
    """_perf.in_step by identity (the differ's walk over two reads sharing records) and by
    equality (two files' records as written, msgspec.Raw): the compiled walk gives the
    reference's three lists, for lists and tuples alike, two reads in step or out of it;
    it declines what is neither."""
    mine = list(theirs) if same_start else list(reversed(theirs))
    for edit, at, value in edits:
        place = at % (len(mine) + 1)
        if edit == "drop" and mine:
            del mine[place % len(mine)]
        elif edit in ("put", "copy"):
            item = _POOL[value % len(_POOL)]
            mine.insert(place, item if edit == "put" else msgspec.Raw(bytes(item)))
        elif edit == "new":
            mine.insert(place, msgspec.Raw(b'{"new":%d}' % value))
        elif edit == "move" and mine:
            mine.insert(value % (len(mine) + 1), mine.pop(place % len(mine)))
    by_identity = same is operator.is_
    fast = speedups.in_step(kind(theirs), kind(mine), _perf.LOOKAHEAD, by_identity)
    assert fast is not None
    assert fast == _reference_in_step(theirs, mine, same)
    assert speedups.in_step(iter(theirs), mine, _perf.LOOKAHEAD, by_identity) is None
    assert speedups.in_step(theirs, mine, 0, by_identity) is None
    assert speedups.in_step(theirs, mine, _perf.LOOKAHEAD, 1) is None


def _reference_in_step(
    theirs: list[object], mine: list[object], same: Callable[[object, object], object]
) -> tuple[list[int], list[int], list[int]]:
    fast, _perf._fast_in_step = _perf._fast_in_step, None
    try:
        return _perf.in_step(theirs, mine, same)
    finally:
        _perf._fast_in_step = fast


class _Meddler:
    """An item whose == empties the lists being walked, then raises once told to."""

    def __init__(self, lists: list[list[object]], fail: bool) -> None:
        self.lists, self.fail = lists, fail

    def __eq__(self, other: object) -> bool:
        for items in self.lists:
            items.clear()
        if self.fail:
            raise ZeroDivisionError("from __eq__")
        return False

    __hash__ = object.__hash__


def test_in_step_by_equality_survives_an_eq_that_changes_the_lists() -> None:
    """By equality == may run Python code: one that empties both lists mid-walk leaves the walk
    on the items it started with, and an error it raises comes out as raised."""
    theirs: list[object] = []
    mine: list[object] = []
    theirs.extend([_Meddler([theirs, mine], False), 1, 2, 3])
    mine.extend([_Meddler([theirs, mine], False), 1, 2, 3])
    assert speedups.in_step(theirs, mine, _perf.LOOKAHEAD, False) == ([-1, 1, 2, 3], [0], [0])
    theirs[:] = [_Meddler([theirs], True), 1]
    mine[:] = [2, 1]
    with pytest.raises(ZeroDivisionError):
        speedups.in_step(theirs, mine, _perf.LOOKAHEAD, False)


def links_of(directory: str) -> tuple[object, Callable[[], object]]:
    """fd_links's fast result on ``directory`` and a call of its reference there."""

    def read(links: Callable[[int], object]) -> object:
        fd_dir = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return links(fd_dir)
        finally:
            os.close(fd_dir)

    return read(speedups.fd_links), lambda: read(processes.fd_links)


def test_fd_links_of_every_process() -> None:
    # This process holds sockets and its network namespace, so each kind of link is read.
    held = [socket.socket(), socket.socket(socket.AF_UNIX)]
    namespace = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        fast, reference = links_of("/proc/self/fd")
        assert fast == reference()
        assert isinstance(fast, tuple)
        numbers, inodes, netns = fast
        mine = {sock.fileno(): os.fstat(sock.fileno()).st_ino for sock in held}
        found = dict(zip(numbers, inodes, strict=True))
        assert {number: found[number] for number in mine} == mine
        assert (str(namespace), os.stat("/proc/self/ns/net").st_ino) in netns
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fast, reference = links_of(f"/proc/{entry}/fd")
                except OSError:
                    continue  # exited, or a kernel thread's
                assert fast is not None
                # Another process may have opened or closed a descriptor in between.
                if fast != reference():
                    fast, reference = links_of(f"/proc/{entry}/fd")
                    assert fast == reference()
    finally:
        os.close(namespace)
        for sock in held:
            sock.close()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["3", "12", "007", "x", "-1", "99999999999", "1 "]),
            st.sampled_from(["socket:[", "net:[", "pipe:[", "/dev/null", "socket:", ""]),
            st.sampled_from(["42]", "18446744073709551615]", "18446744073709551616]", "]", "4", "+4]", " 4]"])
            | st.text("0123456789]", max_size=70),
        ),
        max_size=6,
        unique_by=lambda link: link[0],
    )
)
def test_fd_links_of_odd_links(links: list[tuple[str, str, str]]) -> None:
    # Symbolic links in a plain directory: whatever name and target, the accelerator gives
    # the reference's result or declines (so the reference reads, and refuses, itself); it
    # does not decline descriptors' names as the kernel writes them, whatever they hold.
    with tempfile.TemporaryDirectory() as directory:
        for name, prefix, rest in links:
            os.symlink(prefix + rest or "0", os.path.join(directory, name))
        fast, reference = links_of(directory)
        agree(fast, reference)
        if all(name.isdigit() and int(name) < 2**31 for name, _, _ in links) and not any(
            prefix in ("socket:[", "net:[") for _, prefix, _ in links
        ):
            assert fast is not None


def test_fd_links_of_what_is_no_directory() -> None:
    assert speedups.fd_links(-1) is None
    assert speedups.fd_links(2**40) is None
    assert speedups.fd_links("3") is None
    with tempfile.TemporaryFile() as plain:
        assert speedups.fd_links(plain.fileno()) is None
        with pytest.raises(OSError):
            processes.fd_links(plain.fileno())


def test_inet_record_declines_what_python_must_do() -> None:
    message = kernel_message((socket.AF_INET, 1, bytes(16), bytes(16), [], 9))
    context = netlink.inet_record_context("tcp", OWNERS)
    bound = bytearray(message)
    bound[56:60] = (2).to_bytes(4, sys.byteorder)  # bound to device 2: its name is Python's to look up
    proxied = netlink.inet_record_context("tcp", MappingProxyType(OWNERS))
    cases: list[tuple[Any, ...]] = [
        (bytes(bound), 0, len(bound), {}, set(), [], context),
        (message, 0, len(message), {}, frozenset(), [], context),  # not a set
        (message, 0, len(message), {}, set(), (), context),  # not a list
        (message, 0, len(message), {}, set(), [], context[:-1]),  # not the context
        (message, 0, len(message), {}, set(), [], proxied),  # owners not a dict
    ]
    for args in cases:
        seen, sockets = args[4], args[5]
        assert speedups.inet_record(*args) is None
        assert not seen and not sockets
    seen, sockets = set(), []
    assert speedups.inet_record(message, 0, len(message), {}, seen, sockets, context) is True
    with reference_loop():
        expected = netlink.decode_inet([(message, 0, len(message))], "tcp", OWNERS, set(), interfaces={})
    assert (seen, sockets) == ({9}, expected)
    assert speedups.inet_record(message, 0, len(message), {}, seen, sockets, context) is True  # seen: skipped
    assert sockets == expected


# Socket records the snapshot reader must pass or refuse: each field from a few values,
# some a backend writes and some it never does (shapes of the wrong family, a bad name,
# address, device or state, a namespace not listed).
_ENDS = [
    Endpoint("127.0.0.1", 80),
    Endpoint("::ffff:127.0.0.1", 80),
    Endpoint("127.000.0.1", 1),
    Endpoint("localhost", 1),
    Endpoint(path="/run/a b.sock"),
    Endpoint(path=None),
    Endpoint(path="bad\n"),
    Endpoint(peer_inode=0),
    Endpoint("1.2.3.4", 1, path="/x"),
    Endpoint(),
]
_GOOD_RECORDS = [
    Socket("tcp", "inet", "stream", "LISTEN", _ENDS[0], _ENDS[0], 1, 0, 0, 0, ()),
    Socket("unix", "unix", "stream", "LISTENING", _ENDS[4], _ENDS[7], 2, 0, 0, 0, (Process(1, "ok", 3),)),
    Socket("unix", "unix", "dgram", "UNCONNECTED", _ENDS[5], None, 4, None, None, None, ()),
    Socket("udp", "inet6", "dgram", "UNCONNECTED", _ENDS[1], _ENDS[1], 3, 0, 0, 0, (), None, True),
]
_CHANGES = st.sampled_from(
    [
        *(("proto", value) for value in ("tcp", "udp", "raw", "unix")),
        *(("family", value) for value in ("inet", "inet6", "unix")),
        *(("state", value) for value in ("LISTEN", "ESTABLISHED", "LISTENING", "CONNECTED", "BOGUS")),
        *(("local", end) for end in _ENDS),
        *(("remote", end) for end in [None, *_ENDS]),
        *(("processes", value) for value in [(), (Process(2, "bad\x1b", None), Process(1, "ok", 3))]),
        *(("interface", value) for value in ("eth0", "bad/name", None)),
        ("v6only", True),
        ("v6only", None),
        *(("netns", value) for value in (5, 6, msgspec.UNSET)),
    ]
)
# A record a backend writes, with none, one or two of its fields changed.
_RECORD = st.builds(
    lambda base, changes: msgspec.structs.replace(base, **dict(changes)),
    st.sampled_from(_GOOD_RECORDS),
    st.lists(_CHANGES, max_size=2),
)


@settings(max_examples=600)
@given(st.lists(_RECORD, max_size=6), st.sampled_from([None, (), (5,), (5, 6)]))
def test_socket_checks_compiled(sockets: list[Socket], listed: tuple[int, ...] | None) -> None:
    """The reader's one compiled pass over socket records (snapshots._sockets_fine) passes
    them exactly when the references (each record's checks, then the namespaces') find
    nothing; its facts are the distinct values the references check."""
    namespaces = None if listed is None else tuple(Namespace(inode, (), (), None) for inode in listed)
    document = msgspec.convert(
        {**msgspec.to_builtins(msgspec.json.decode(GOOD)), "sockets": None, "namespaces": None},
        snapshots._Document,
    )
    document = msgspec.structs.replace(
        document, sockets=tuple(sockets), interfaces=None, routes=None, namespaces=namespaces
    )
    reference = (
        snapshots._records_problem(document, sockets) is None
        and snapshots._namespace_problem(document) is None
    )
    module = vars(snapshots)
    held, module["speedups"] = module["speedups"], speedups  # as under SOCKDIFF_PURE=0
    try:
        assert snapshots._sockets_fine(sockets, namespaces) is reference
    finally:
        module["speedups"] = held
    facts = speedups.socket_facts(
        tuple(sockets), Socket, Endpoint, Process, msgspec.UNSET, INET_STATE_NAMES, UNIX_STATE_NAMES
    )
    assert facts is not None
    unlike = [index for index, sock in enumerate(sockets) if validation.record_problem(sock) is not None]
    assert facts == (
        unlike[0] if unlike else -1,
        {s.local.path for s in sockets if isinstance(s.local.path, str)},
        {p.name for s in sockets for p in s.processes},
        {
            e.address
            for s in sockets
            for e in (s.local, s.remote)
            if s.proto != "unix" and s.family == "inet" and e is not None and isinstance(e.address, str)
        },
        {
            e.address
            for s in sockets
            for e in (s.local, s.remote)
            if s.proto != "unix" and s.family == "inet6" and e is not None and isinstance(e.address, str)
        },
        {s.interface for s in sockets if s.interface is not None},
        {s.netns for s in sockets},
    )


def test_socket_checks_compiled_decline_what_a_file_never_holds() -> None:
    """Records of other types, or fields holding what msgspec never reads into them: declined."""
    sock = Socket("tcp", "inet", "stream", "LISTEN", _ENDS[0], _ENDS[0], 1, 0, 0, 0, ())
    number: Any = 7
    kinds = (Socket, Endpoint, Process, msgspec.UNSET, INET_STATE_NAMES, UNIX_STATE_NAMES)
    assert speedups.socket_facts([sock], *kinds) is not None
    for odd in (
        [sock, "x"],
        [msgspec.structs.replace(sock, interface=7)],
        [msgspec.structs.replace(sock, state=None)],
        [msgspec.structs.replace(sock, processes=[])],
        [msgspec.structs.replace(sock, netns="5")],
        [msgspec.structs.replace(sock, local=Endpoint(number, 80))],
        [msgspec.structs.replace(sock, processes=(Process(1, number, 3),))],
    ):
        assert speedups.socket_facts(odd, *kinds) is None
    assert speedups.socket_facts(iter([sock]), *kinds) is None
