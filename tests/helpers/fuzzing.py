"""The parsers' property tests' inputs: /proc rows and netlink replies as the kernel writes them
(``inet_file``, ``inet_dump`` and their strategies), and ``damaged`` with the strategy of its edits."""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sockdiff.backends.netlink import framing
from sockdiff.backends.netlink import sockets as netlink

# The profiles of every property test (each test module imports this one): ``ci``, the
# default, and ``thorough``, chosen with SOCKDIFF_FUZZ=thorough.
for _name, _examples in (("ci", 200), ("thorough", 10_000)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
settings.load_profile(os.environ.get("SOCKDIFF_FUZZ", "ci"))


def damaged(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """``data`` with bytes flipped, cut or inserted at generated places."""
    buffer = bytearray(data)
    for kind, where, value in edits:
        if not buffer:
            break
        place = where % len(buffer)
        if kind == 0:
            buffer[place] ^= value or 1
        elif kind == 1:
            del buffer[place:]
        elif kind == 2:
            buffer.insert(place, value)
        else:
            del buffer[place]
    return bytes(buffer)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8
)


U32 = st.integers(0, 2**32 - 1)
PORT = st.integers(0, 65535)
IPV4 = st.binary(min_size=4, max_size=4)
IPV6 = st.one_of(
    st.binary(min_size=16, max_size=16),
    IPV4.map(lambda v4: b"\0" * 10 + b"\xff\xff" + v4),  # IPv4-mapped
    IPV4.map(lambda v4: b"\0" * 12 + v4),  # IPv4-compatible, printed differently by some
)


# -- /proc/net/{tcp,udp,raw}{,6} ----------------------------------------------

INET_TITLE = (
    b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)


def proc_address(packed: bytes, port: int) -> bytes:
    """ADDRESS:PORT as the kernel prints it: host-order 32-bit words in hex."""
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return b"".join(b"%08X" % word for word in words) + b":%04X" % port


INET_ROW = st.tuples(IPV4 | IPV6, PORT, PORT, st.integers(1, 12), U32, U32, U32, st.integers(1, 2**40))


def fit(packed: bytes, v6: bool) -> bytes:
    """A generated address made the file's family: zero-extended or cut to its low bytes."""
    return (b"\0" * 12 + packed)[-16 if v6 else -4 :]


_INET_ROW = (
    b"%4d: %s %s %02X %08X:%08X 00:00000000 00000000 %5d        0 %d 1 0000000000000000 100 0 0 10 0\n"
)


def inet_file(rows: list[tuple[bytes, int, int, int, int, int, int, int]], v6: bool) -> bytes:
    lines = [INET_TITLE]
    for number, (generated, sport, dport, state, tx, rx, uid, inode) in enumerate(rows):
        packed = fit(generated, v6)
        lines.append(
            _INET_ROW
            % (
                number,
                proc_address(packed, sport),
                proc_address(packed[::-1], dport),
                state,
                tx,
                rx,
                uid,
                inode,
            )
        )
    return b"".join(lines)


# -- netlink sock_diag replies -------------------------------------------------

NLMSG = struct.Struct("=IHHII")
DONE = NLMSG.pack(20, framing.NLMSG_DONE, 2, 1, 0) + b"\0" * 4


def inet_message(
    family: int, state: int, sport: int, dport: int, src: bytes, dst: bytes, numbers: tuple[int, ...]
) -> bytes:
    """One inet_diag_msg as the kernel lays it out (include/uapi/linux/inet_diag.h)."""
    cookie, rqueue, wqueue, uid, inode = numbers
    body = struct.pack("=BBBB", family, state, 0, 0) + struct.pack("!HH", sport, dport)
    body += src.ljust(16, b"\0") + dst.ljust(16, b"\0") + struct.pack("=IQ", 0, cookie)
    body += struct.pack("=IIIII", 0, rqueue, wqueue, uid, inode)
    return NLMSG.pack(16 + len(body), netlink.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


INET_MESSAGE = st.one_of(
    st.tuples(st.just(socket.AF_INET), IPV4, IPV4), st.tuples(st.just(socket.AF_INET6), IPV6, IPV6)
).flatmap(
    lambda addresses: st.tuples(
        st.just(addresses),
        st.integers(1, 12),
        PORT,
        PORT,
        st.tuples(st.integers(0, 2**64 - 1), U32, U32, U32, U32),
    )
)


def inet_dump(messages: list[Any]) -> bytes:
    return (
        b"".join(
            inet_message(family, state, sport, dport, src, dst, numbers)
            for (family, src, dst), state, sport, dport, numbers in messages
        )
        + DONE
    )
