"""Netlink plumbing every netlink module shares: the socket, message framing, attributes.

One error policy for everything the kernel sends: a message header or an
attribute that does not fit where it stands (shorter than its own header, or
running past its datagram or message) raises :class:`DumpFailed` with EBADMSG;
nothing read after it could be trusted. What that means to a user (a failed
dump, lost events) is the caller's to say.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import socket
import struct
import sys
from collections.abc import Iterable, Iterator, Sequence

from ..._accel import speedups
from ...errors import BackendUnavailable

__all__ = [
    "ATTEMPTS",
    "HEADER_SIZE",
    "NETLINK_ROUTE",
    "NETLINK_SOCK_DIAG",
    "NLMSG_DONE",
    "NLMSG_ERROR",
    "NLM_F_DUMP",
    "NLM_F_DUMP_INTR",
    "NLM_F_REQUEST",
    "RECV_SIZE",
    "U32",
    "Dump",
    "DumpFailed",
    "Messages",
    "align",
    "attributes",
    "messages",
    "open_dump_socket",
    "open_socket",
    "pure_messages",
    "receive",
]

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_DUMP_INTR = 0x10
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = 33  # asm-generic/socket.h; the socket module does not name it

# The receive buffer must hold the largest message the kernel will build: it
# sizes dump messages after our reads, capped at 32 KiB.
RECV_SIZE = 64 * 1024
ATTEMPTS = 3  # dumps redone while the kernel flags them NLM_F_DUMP_INTR

HEADER_SIZE = 16
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_ERRNO = struct.Struct("=i")
_ATTR = struct.Struct("=HH")  # struct nlattr
U32 = struct.Struct("=I")  # a u32 attribute's payload, in host order


class DumpFailed(Exception):
    """The kernel ended a dump with an error (NLMSG_ERROR, NLMSG_DONE), or sent bytes that do not parse."""

    def __init__(self, code: int) -> None:
        try:
            text = os.strerror(code)
        except (ValueError, OverflowError):  # past a C int (NLMSG_DONE's INT_MIN, negated)
            text = f"Unknown error {code}"
        super().__init__(code, text)
        self.code = code


def align(length: int) -> int:
    """``length`` rounded up to netlink's 4-byte alignment (NLMSG_ALIGN, NLA_ALIGN).

    >>> align(5), align(8)
    (8, 8)
    """
    return (length + 3) & ~3


# Netlink protocols (include/uapi/linux/netlink.h), named as an error names them.
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
_PROTOCOL_NAMES = {NETLINK_ROUTE: "NETLINK_ROUTE", NETLINK_SOCK_DIAG: "NETLINK_SOCK_DIAG"}


def open_dump_socket(protocol: int) -> socket.socket:
    """:func:`open_socket` for dumps; :class:`BackendUnavailable` where this kernel has none to give."""
    try:
        return open_socket(protocol)
    except OSError as err:
        name = _PROTOCOL_NAMES.get(protocol, f"netlink protocol {protocol}")
        raise BackendUnavailable(f"cannot open a {name} socket: {err.strerror}") from err


def open_socket(
    protocol: int, *, buffer_size: int = 1 << 20, groups: Sequence[int] = (), force: bool = False
) -> socket.socket:
    """A netlink socket of ``protocol`` in the calling thread's network namespace, bound.

    ``buffer_size``: SO_RCVBUF asked for (with ``force``, SO_RCVBUFFORCE first, which
    root may take past net.core.rmem_max). ``groups``: multicast groups joined; the
    socket is then non-blocking. Raises OSError, the socket closed.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE if force else socket.SO_RCVBUF, buffer_size)
        except PermissionError:  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
        sock.bind((0, 0))
        for group in groups:
            sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        if groups:
            sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def receive(sock: socket.socket) -> Iterator[tuple[bytearray, int]]:
    """The datagrams of a reply as (buffer, size); the buffer is reused."""
    buffer = bytearray(RECV_SIZE)
    while True:
        yield buffer, sock.recv_into(buffer)


_fast_messages = None if speedups is None else speedups.messages


def messages(buffer: bytes | bytearray, size: int) -> list[tuple[int, int, int, int]]:
    """(type, flags, offset, end) of each netlink message in one datagram of ``size`` bytes.

    A list, not a generator: a dump's decoders take every message of a datagram,
    and resuming a generator for each would cost more than the header's unpacking.
    """
    if _fast_messages is not None:
        fast: list[tuple[int, int, int, int]] | None = _fast_messages(buffer, size)
        if fast is not None:
            return fast
    return pure_messages(buffer, size)


def pure_messages(buffer: bytes | bytearray, size: int) -> list[tuple[int, int, int, int]]:
    """:func:`messages` in Python: the reference for the accelerator's ``messages``."""
    found = []
    offset = 0
    unpack = _HEADER.unpack_from
    while offset + HEADER_SIZE <= size:
        length, kind, flags, _seq, _pid = unpack(buffer, offset)
        if length < HEADER_SIZE or offset + length > size:
            raise DumpFailed(errno.EBADMSG)  # a message past its datagram
        found.append((kind, flags, offset, offset + length))
        offset += align(length)
    return found


def attributes(buffer: bytes | bytearray, start: int, end: int) -> list[tuple[int, int, int]]:
    """(type, payload start, payload end) of each netlink attribute in [start, end).

    The type is without NLA_F_NESTED and NLA_F_NET_BYTEORDER. A list, as :func:`messages`.
    """
    found = []
    unpack = _ATTR.unpack_from
    while start + 4 <= end:
        length, kind = unpack(buffer, start)
        if length < 4 or start + length > end:
            raise DumpFailed(errno.EBADMSG)  # an attribute past its message
        found.append((kind & 0x3FFF, start + 4, start + length))
        start += align(length)
    return found


def _uniform(buffer: bytes | bytearray, size: int) -> int:
    """The length of each message when the datagram ``buffer[:size]`` is messages of one
    length, type and flags, not NLMSG_DONE or NLMSG_ERROR nor flagged NLM_F_DUMP_INTR (a
    dump's usual datagram: its sockets' messages are mostly alike); else 0. Their headers
    are read by C (struct), each message's place then known without walking them."""
    length = int.from_bytes(buffer[:4], sys.byteorder) if size >= HEADER_SIZE else 0
    if length < HEADER_SIZE or length % 4 or size % length:
        return 0
    headers = set(_headers(length).iter_unpack(memoryview(buffer)[:size]))
    if len(headers) != 1:
        return 0
    ((_, kind, flags),) = headers
    return 0 if kind in (NLMSG_DONE, NLMSG_ERROR) or flags & NLM_F_DUMP_INTR else length


@functools.lru_cache(maxsize=64)
def _headers(length: int) -> struct.Struct:
    """A message of ``length`` bytes as its header's length, type and flags."""
    return struct.Struct(f"=IHH{length - 8}x")


#: A message: its datagram's buffer, where it starts and where it ends.
Message = tuple[bytes | bytearray, int, int]
Messages = Iterable[Message]


class Dump:
    """The replies to one dump request, as (buffer, offset, end) per message.

    ``datagrams`` are what the socket received (:func:`receive`), or recorded
    bytes in tests. A message is decoded before the next is taken: the buffer
    is reused. Iteration stops at NLMSG_DONE; an error in NLMSG_DONE or
    NLMSG_ERROR raises :class:`DumpFailed`, and ``interrupted`` tells whether the
    kernel flagged the dump NLM_F_DUMP_INTR (its tables changed under it).
    """

    def __init__(self, datagrams: Iterable[tuple[bytes | bytearray, int]]) -> None:
        self.datagrams = datagrams
        self.interrupted = False

    @classmethod
    def request(cls, sock: socket.socket, request: bytes) -> Dump:
        sock.send(request)
        return cls(receive(sock))

    def __iter__(self) -> Iterator[tuple[bytes | bytearray, int, int]]:
        # A datagram's list at a time, its messages taken from it by C (not a generator's
        # step each): the next datagram is received once this one's are all taken.
        return itertools.chain.from_iterable(self._datagrams())

    def _datagrams(self) -> Iterator[list[tuple[bytes | bytearray, int, int]]]:
        for buffer, size in self.datagrams:
            found, done = self.split(buffer, size)
            yield found
            if done:
                return
        raise DumpFailed(errno.ENODATA)  # the replies ended without NLMSG_DONE

    def split(
        self, buffer: bytes | bytearray, size: int
    ) -> tuple[list[tuple[bytes | bytearray, int, int]], bool]:
        """One datagram's messages before NLMSG_DONE, and whether NLMSG_DONE came (the dump's end)."""
        length = _uniform(buffer, size)
        if length:
            return [(buffer, offset, offset + length) for offset in range(0, size, length)], False
        found: list[tuple[bytes | bytearray, int, int]] = []
        for kind, flags, offset, end in messages(buffer, size):
            if flags & NLM_F_DUMP_INTR:
                self.interrupted = True
            if kind == NLMSG_DONE:
                # A dump can end in error: the code is in NLMSG_DONE's payload.
                code = _ERRNO.unpack_from(buffer, offset + 16)[0] if end - offset >= 20 else 0
                if code < 0:
                    raise DumpFailed(-code)
                return found, True
            if kind == NLMSG_ERROR:
                code = _ERRNO.unpack_from(buffer, offset + 16)[0] if end - offset >= 20 else -errno.EPROTO
                raise DumpFailed(-code if code < 0 else errno.EPROTO)
            found.append((buffer, offset, end))
        return found, False
