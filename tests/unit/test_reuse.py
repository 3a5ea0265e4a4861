"""watch's polls take again the records of the last read where a socket is as it was
(sockets.Reuse, sockets.reusing): the same records as a read from nothing, always."""

from __future__ import annotations

from collections.abc import Mapping

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


def _read(name: str, data: bytes, owners: Mapping[int, tuple[Process, ...]]) -> list[Socket] | str:
    dump = framing.Dump([(data, len(data))])
    try:
        if name == "unix":
            return netlink.decode_unix(dump, owners, set())
        return netlink.decode_inet(dump, "tcp", owners, set(), NAMES)
    except framing.DumpFailed as err:
        return f"DumpFailed {err.code}"


def _read_reusing(
    reuse: netlink.Reuse, name: str, data: bytes, owners: Mapping[int, tuple[Process, ...]] = OWNERS
) -> list[Socket] | str:
    with netlink.reusing(reuse):
        return _read(name, data, owners)


def test_a_second_read_takes_the_first_reads_records() -> None:
    for name, data in DUMPS.items():
        reuse = netlink.Reuse()
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
        reuse = netlink.Reuse()
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
    reuse = netlink.Reuse()
    _read_reusing(reuse, name, data)
    assert _read_reusing(reuse, name, bytes(changed)) == _read(name, bytes(changed), OWNERS)
