"""watch's polls take again the records of the last read where a socket is as it was
(sockets.Reuse, sockets.reusing): the same records as a read from nothing, always."""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff.backends.netlink import framing
from sockdiff.backends.netlink import sockets as netlink
from sockdiff.model import Process, Socket
from tests.helpers.captured import FIXTURES, OWNERS

DUMPS = {name: (FIXTURES / "netlink" / f"{name}.bin").read_bytes() for name in ("tcp4", "tcp6", "unix")}


class _Names(dict[int, str]):
    """Device names as the decoders take them, the same on every machine."""

    def __missing__(self, index: int) -> str:
        return f"dev{index}"


NAMES = _Names()


Entries = dict[int, tuple[object, Socket]]


def _read(
    name: str,
    data: bytes,
    owners: Mapping[int, tuple[Process, ...]],
    into: Entries | None = None,
    known: Entries | None = None,
) -> list[Socket] | str:
    dump = framing.Dump([(data, len(data))])
    try:
        if name == "unix":
            return netlink.decode_unix(dump, owners, set(), into=into, known=known)
        return netlink.decode_inet(dump, "tcp", owners, set(), NAMES, into=into, known=known)
    except framing.DumpFailed as err:
        return f"DumpFailed {err.code}"


class _Entries:
    """The decoders' entries of one read, for the next (what ``into`` gives, ``known`` takes)."""

    def __init__(self) -> None:
        self.last: Entries = {}


def _read_reusing(
    reuse: _Entries, name: str, data: bytes, owners: Mapping[int, tuple[Process, ...]] = OWNERS
) -> list[Socket] | str:
    now: Entries = {}
    read = _read(name, data, owners, into=now, known=reuse.last)
    reuse.last = now
    return read


def test_a_second_read_takes_the_first_reads_records() -> None:
    for name, data in DUMPS.items():
        reuse = _Entries()
        first, second = _read_reusing(reuse, name, data), _read_reusing(reuse, name, data)
        assert isinstance(first, list) and isinstance(second, list) and first
        assert first == second == _read(name, data, OWNERS)
        kept = [a is b for a, b in zip(first, second, strict=True)]
        # All but IPv6 listeners (their v6only is in the attributes, which are not compared).
        rebuilt = [s for s, same in zip(second, kept, strict=True) if not same]
        assert all(s.family == "inet6" and s.state in ("LISTEN", "CLOSE") for s in rebuilt), rebuilt
        assert sum(kept) > len(kept) // 2


def test_owners_that_changed_make_the_record_again() -> None:
    for name, data in DUMPS.items():
        reuse = _Entries()
        first = _read_reusing(reuse, name, data)
        assert isinstance(first, list)
        inode = next(s.inode for s in first if s.inode and s.processes)
        owners = {**OWNERS, inode: (Process(1, "someone-else", 4),)}
        second = _read_reusing(reuse, name, data, owners)
        assert second == _read(name, data, owners)
        assert isinstance(second, list)
        (changed,) = [s for s in second if s.inode == inode]
        assert changed.processes == (Process(1, "someone-else", 4),)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(DUMPS)),
    edits=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=4),
)
def test_any_bytes_changed_read_as_from_nothing(name: str, edits: list[tuple[int, int]]) -> None:
    """A dump with bytes changed anywhere (a queue, a state, a timer, an attribute, a
    header), read after the dump as it was: the records a first read makes of it."""
    data = DUMPS[name]
    changed = bytearray(data)
    for position, value in edits:
        changed[position % len(data)] = value
    reuse = _Entries()
    _read_reusing(reuse, name, data)
    assert _read_reusing(reuse, name, bytes(changed)) == _read(name, bytes(changed), OWNERS)


def _datagrams(data: bytes, parts: int = 3) -> list[tuple[bytes, int]]:
    """``data`` (a dump) cut into ``parts`` datagrams at message boundaries, as the kernel packs one."""
    bounds = [offset for _, _, offset, _ in framing.pure_messages(data, len(data))]
    cuts = [0, *(bounds[len(bounds) * n // parts] for n in range(1, parts)), len(data)]
    return [(data[a:b], b - a) for a, b in itertools.pairwise(cuts) if b > a]


def _read_datagrams(
    reuse: netlink.Reuse,
    name: str,
    datagrams: list[tuple[bytes, int]],
    owners: Mapping[int, tuple[Process, ...]] = OWNERS,
    names: Mapping[int, str] = NAMES,
    decoded: list[int] | None = None,
) -> list[Socket] | str:
    """A read through the dump's own path (sockets._decoded), reusing; ``decoded`` gets the
    number of messages handed to the decoder, a call an item."""
    if name == "unix":
        inner = functools.partial(netlink.decode_unix, owners=owners)
    else:
        inner = functools.partial(netlink.decode_inet, proto="tcp", owners=owners, interfaces=names)

    def decode(messages: framing.Messages, **kwargs: Any) -> list[Socket]:
        found = list(messages)
        if decoded is not None:
            decoded.append(len(found))
        return inner(found, **kwargs)

    with netlink.reusing(reuse):
        try:
            cookie_at = netlink._UNIX_COOKIE_AT if name == "unix" else netlink._INET_COOKIE_AT
            return netlink._decoded(framing.Dump(datagrams), name.encode(), set(), decode, cookie_at)
        except framing.DumpFailed as err:
            return f"DumpFailed {err.code}"


def test_a_datagram_as_it_was_stands_for_its_records() -> None:
    """Unchanged datagrams are not decoded: the last read's records come back, every one."""
    for name, data in DUMPS.items():
        reuse = netlink.Reuse()
        datagrams = _datagrams(data)
        first = _read_datagrams(reuse, name, datagrams)
        second = _read_datagrams(reuse, name, datagrams)
        assert isinstance(first, list) and isinstance(second, list) and first
        assert first == second == _read(name, data, OWNERS)
        assert all(a is b for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("between", [False, True], ids=["next-read", "after-a-read-of-no-socket"])
def test_a_datagram_holding_an_owner_that_changed_is_decoded_again(between: bool) -> None:
    """The owner tracker says which owners changed; their records are made again, the rest taken.
    ``between``: watch read interfaces and routes meanwhile, under the same reuse (no socket
    dumped): the last read is still there to take from, and the stale owners still said."""
    for name, data in DUMPS.items():
        reuse = netlink.Reuse()
        datagrams = _datagrams(data)
        first = _read_datagrams(reuse, name, datagrams)
        assert isinstance(first, list)
        inode = next(s.inode for s in first if s.inode and s.processes)
        owners = {**OWNERS, inode: (Process(1, "someone-else", 4),)}
        reuse.stale.add(inode)  # as watch says after its owner tracker heard it
        if between:
            with netlink.reusing(reuse):
                pass
        decoded: list[int] = []
        second = _read_datagrams(reuse, name, datagrams, owners, decoded=decoded)
        assert second == _read(name, data, owners)
        assert sum(decoded) < len(first) // 2, decoded  # the rest taken from the first read


def test_a_device_renamed_is_named_anew() -> None:
    """A datagram with a socket bound to a device is decoded again: the device may have a new name."""
    bound_first = bytearray(DUMPS["tcp4"])
    struct.pack_into("=I", bound_first, 16 + 40, 2)  # the first message's idiag_if: device 2
    data = bytes(bound_first)
    bound = _read("tcp4", data, OWNERS)
    assert isinstance(bound, list) and bound[0].interface == "dev2"
    reuse = netlink.Reuse()
    _read_datagrams(reuse, "tcp4", _datagrams(data))
    renamed = _Names({index: f"renamed{index}" for index in range(1, 64)})
    second = _read_datagrams(reuse, "tcp4", _datagrams(data), names=renamed)
    assert isinstance(second, list)
    assert {s.interface for s in second if s.interface} == {
        s.interface.replace("dev", "renamed") for s in bound if s.interface
    }


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(DUMPS)),
    parts=st.integers(1, 4),
    edits=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=4),
)
def test_any_datagram_changed_reads_as_from_nothing(
    name: str, parts: int, edits: list[tuple[int, int]]
) -> None:
    """Bytes changed in any datagram (or their packing changed): the records a first read makes."""
    data = DUMPS[name]
    changed = bytearray(data)
    for position, value in edits:
        changed[position % len(data)] = value
    reuse = netlink.Reuse()
    _read_datagrams(reuse, name, _datagrams(data, parts))
    again = _read_datagrams(reuse, name, _datagrams(data, parts))  # kept whole, and so taken
    assert again == _read(name, data, OWNERS)
    try:
        datagrams = _datagrams(bytes(changed), parts)
    except framing.DumpFailed:
        datagrams = [(bytes(changed), len(changed))]
    assert _read_datagrams(reuse, name, datagrams) == _read(name, bytes(changed), OWNERS)


def test_a_stretch_moved_by_a_socket_gone_or_come_is_found() -> None:
    """A socket gone from the front of the dump moves every later message, and the kernel
    packs the rest into datagrams cut elsewhere: each is still a stretch of the last dump,
    and stands for its records (none decoded). One come at the front: the same, after it."""
    for name, data in DUMPS.items():
        bounds = [offset for _, _, offset, _ in framing.pure_messages(data, len(data))]
        reuse = netlink.Reuse()
        first = _read_datagrams(reuse, name, _datagrams(data, 3))
        assert isinstance(first, list)
        gone = data[bounds[1] :]  # the first socket closed
        decoded: list[int] = []
        second = _read_datagrams(reuse, name, _datagrams(gone, 4), decoded=decoded)
        assert second == _read(name, gone, OWNERS)
        assert isinstance(second, list) and all(a is b for a, b in zip(first[1:], second, strict=True))
        assert sum(decoded) == 0, decoded  # not one message decoded
        come = data[: bounds[1]] + gone  # it again: a socket that came (a record made anew)
        decoded.clear()
        third = _read_datagrams(reuse, name, _datagrams(come, 2), decoded=decoded)
        assert third == _read(name, come, OWNERS)
        assert isinstance(third, list) and all(a is b for a, b in zip(second, third[1:], strict=True))
        assert decoded == [1]  # its own message alone


def test_a_socket_changed_costs_its_own_message() -> None:
    """One message changed in the middle of a datagram (a queue grew): that message is decoded,
    the runs before and after it are taken."""
    for name, data in DUMPS.items():
        messages = framing.pure_messages(data, len(data))
        reuse = netlink.Reuse()
        _read_datagrams(reuse, name, _datagrams(data, 1))
        middle = messages[len(messages) // 2]
        changed = bytearray(data)
        changed[middle[3] - 1] ^= 0xFF  # the last byte of its last attribute
        decoded: list[int] = []
        again = _read_datagrams(reuse, name, _datagrams(bytes(changed), 1), decoded=decoded)
        assert again == _read(name, bytes(changed), OWNERS)
        assert decoded == [1], decoded


def _inodes(records: list[Socket]) -> set[int]:
    return {s.inode for s in records} - {0}


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(sorted(DUMPS)),
    dropped=st.sets(st.integers(0, 200), max_size=3),
    edits=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=2),
    parts=st.integers(1, 4),
)
def test_the_delta_names_every_socket_that_came_or_went(
    name: str, dropped: set[int], edits: list[tuple[int, int]], parts: int
) -> None:
    """What watch feeds its owner tracker: the inodes that came and went, told by
    Reuse.delta (the records a read made, those of the last it did not take), are those
    of every socket of the two reads compared, whatever was dropped or changed."""
    data = DUMPS[name]
    messages = framing.pure_messages(data, len(data))
    gone = {d % len(messages) for d in dropped}
    kept = [m for i, m in enumerate(messages) if i not in gone]
    second = bytearray(b"".join(data[offset:end] for _, _, offset, end in kept) + data[messages[-1][3] :])
    bounds = framing.pure_messages(bytes(second), len(second))
    for position, value in edits:  # within a message, past its header: the framing stays
        _, _, offset, end = bounds[position % len(bounds)]
        second[offset + 16 + position % (end - offset - 16)] = value
    reuse = netlink.Reuse()
    first = _read_datagrams(reuse, name, _datagrams(data, parts))
    assert isinstance(first, list)
    assert reuse.delta(len(first), None) is None  # no read before it
    again = _read_datagrams(reuse, name, _datagrams(bytes(second), parts))
    delta = reuse.delta(len(again), len(first)) if isinstance(again, list) else None
    if delta is None:  # a dump that does not parse, or not clean: watch compares every inode
        return
    assert isinstance(again, list)
    inodes = [s.inode for s in again if s.inode]
    if len(set(inodes)) != len(inodes):  # an edit gave a socket another's inode: the kernel never does
        return
    made, gone = _inodes(delta[0]), _inodes(delta[1])
    assert (made - gone, gone - made) == (_inodes(again) - _inodes(first), _inodes(first) - _inodes(again))
