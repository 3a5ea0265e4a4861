"""The netlink backend: NETLINK_SOCK_DIAG dumps (inet_diag, unix_diag).

pyroute2 builds the requests (its ``inet_diag_req`` and ``unix_diag_req``
messages, declared by :func:`sockdiff._pyroute2.diag_requests`); the replies
are decoded here with precompiled :mod:`struct` formats straight from the
receive buffer, since building pyroute2's generic message objects costs ~100 us
a socket and a busy host has 100k of them. Decoding our own bytes also keeps
what pyroute2 loses: it reads UNIX_DIAG_NAME as a C string, so an abstract name
(leading NUL) would look like a relative path.
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import errno
import functools
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from socket import AF_INET, AF_INET6, AF_UNIX, inet_ntop

from ... import _pyroute2 as pyroute2
from ..._accel import speedups
from ...errors import BackendUnavailable
from ...model import (
    INET_TYPES,
    NO_PROCESSES,
    SOCK_TYPES,
    TCP_STATES,
    UNIX_DIAG_STATES,
    Endpoint,
    Process,
    Socket,
    escape_name,
    held_by,
    make_socket,
)
from ..netnames import interface_name
from .framing import (
    ATTEMPTS,
    NETLINK_SOCK_DIAG,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    U32,
    Dump,
    DumpFailed,
    Message,
    Messages,
    attributes,
    open_dump_socket,
)

__all__ = [
    "InterfaceNames",
    "NoHandler",
    "Reuse",
    "decode_inet",
    "decode_unix",
    "dump_socket",
    "open_socket",
    "read_protocol",
    "reusing",
]

SOCK_DIAG_BY_FAMILY = 20

IPPROTO = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "raw": socket.IPPROTO_RAW}

# Every TCP state but TCP_BOUND_INACTIVE (bit 13): sockets that are bound but
# neither listening nor connecting. /proc/net/tcp cannot show them and ss asks for
# them only with -B, so leaving them out keeps the two backends telling one story.
INET_STATES = (1 << 13) - 1
UNIX_STATES = 0xFFFFFFFF
UDIAG_SHOW_NAME = 0x01
UDIAG_SHOW_PEER = 0x04
UDIAG_SHOW_RQLEN = 0x10
UDIAG_SHOW_UID = 0x40
UNIX_DIAG_NAME = 0
UNIX_DIAG_PEER = 2
UNIX_DIAG_RQLEN = 4
UNIX_DIAG_UID = 7

# nlmsghdr + struct inet_diag_msg: family, state, (timer, retrans), ports (network
# order, read natively and swapped through _PORTS), src, dst, if, cookie,
# (expires), rqueue, wqueue, uid, inode.
_INET_MSG = struct.Struct("=16xBB2xHH16s16sIQ4xIIII")
# The same for AF_INET, whose addresses are the first 4 bytes of src and dst.
_INET4_MSG = struct.Struct("=16xBB2xHH4s12x4s12xIQ4xIIII")
_INET_ATTRS = 16 + 72  # the attributes follow nlmsghdr and inet_diag_msg
# include/uapi/linux/inet_diag.h: a u8 the kernel adds for every AF_INET6 socket
# in LISTEN or CLOSE (inet_diag_msg_attrs_fill), whatever the request asked.
INET_DIAG_SKV6ONLY = 11
_V6ONLY_STATES = frozenset({7, 10})  # TCP_CLOSE, TCP_LISTEN
_V6ONLY_HEADER = (5, INET_DIAG_SKV6ONLY)  # struct nlattr of a u8
# nlmsghdr + struct unix_diag_msg: family, type, state, ino, cookie.
_UNIX_MSG = struct.Struct("=16xxBBxIQ")
# Where a message (header included) holds its socket's cookie: inet_diag_msg, unix_diag_msg.
_INET_COOKIE_AT = 60
_UNIX_COOKIE_AT = 24
_ATTR = struct.Struct("=HH")
# The least payload length of the unix_diag attributes read here.
_UNIX_ATTR_SIZES = {UNIX_DIAG_PEER: 4, UNIX_DIAG_RQLEN: 8, UNIX_DIAG_UID: 4}
# ntohs as a lookup: entry i is i read in network order. Its memory is every
# 16-bit value in big-endian order, high bytes at even offsets and low bytes at
# odd ones, read natively (swapped where the host is little-endian, i itself
# where it is big-endian). Built from two byte strings: range(65536) made into
# an array costs ~2.5 ms of every start, and 65,536 ntohs calls ~6 ms.
_PORT_BYTES = bytearray(2 * 65536)
_PORT_BYTES[0::2] = b"".join(bytes((high,)) * 256 for high in range(256))
_PORT_BYTES[1::2] = bytes(range(256)) * 256
_PORTS = array.array("H", _PORT_BYTES)
del _PORT_BYTES
_U32_PAIR = struct.Struct("=II")


class InterfaceNames(dict[int, str]):
    """Interface index -> name, looked up on first use in the calling thread's namespace.

    The name is the kernel's bytes made text by :func:`.netnames.interface_name`,
    as the interfaces and routes sections name the same device (so a name that is
    not UTF-8 or holds a backslash is written once, one way). An index with no
    interface (a device deleted under a bound socket) is written ``if7``, as ss
    writes it.
    """

    def __missing__(self, index: int) -> str:
        try:
            # if_indextoname decodes with surrogateescape; fsencode gives its bytes back.
            name = interface_name(os.fsencode(socket.if_indextoname(index)))
        except OSError:
            name = f"if{index}"
        self[index] = name
        return name


@dataclasses.dataclass(slots=True)
class _Stream:
    """One dump of a read (its datagrams' bytes end to end) and its records, for the next
    read to find stretches of it again. ``offsets[i]``: where the message of ``records[i]``
    starts in ``data``; ``clean``: one record a message (no socket repeated, not flagged
    interrupted), else the next read takes nothing of it whole."""

    data: bytes = b""
    offsets: list[int] = dataclasses.field(default_factory=list)
    ends: list[int] = dataclasses.field(default_factory=list)  # where each record's message ends
    records: list[Socket] = dataclasses.field(default_factory=list)
    cookies: list[int] = dataclasses.field(default_factory=list)
    entries: list[tuple[object, Socket]] = dataclasses.field(default_factory=list)
    bound: list[int] = dataclasses.field(default_factory=list)  # records bound to a device
    clean: bool = True
    where: dict[int, int] | None = None  # cookie -> record (made when first asked)
    carried: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # records the next read took


class Reuse:
    """The records of one read, for the next read to take again.

    A watch reads every socket each poll, and most are as they were. A datagram of a
    dump that is byte for byte a stretch of the last read's dump (the kernel packs an
    unchanged table the same way; a socket that came or went before it moves the
    stretch, which is looked for near where it was) stands for that stretch's records
    as they are, if none of their owners changed (:attr:`stale`) and none is bound to a
    device: no message of it is decoded. Elsewhere, a record whose message (less its
    header and timers) is as the last read's, with the same owners and device names, is
    that read's record object. Either way the differ takes them for unchanged at a
    glance. Used through :func:`reusing`; :meth:`delta` says which records came and went.
    """

    def __init__(self) -> None:
        # (namespace, request) -> the dump, as read
        self.last_dumps: dict[tuple[int, bytes], _Stream] = {}
        self.now_dumps: dict[tuple[int, bytes], _Stream] = {}
        #: The inodes whose owners changed since the last read (their records are made again).
        self.stale: set[int] = set()
        # Namespace -> its sock_diag socket, kept from read to read: the kernel's replies then
        # carry the same port id, and an unchanged datagram is byte for byte the last one.
        self.sockets: dict[int, socket.socket] = {}
        self.read: set[int] = set()  # the namespaces whose sockets this read dumped
        self.made: list[Socket] = []  # the records this read decoded (not taken whole from the last)
        self.whole = True  # every dump of this read read once (no attempt given up)

    def delta(self, count: int, last_count: int | None) -> tuple[list[Socket], list[Socket]] | None:
        """The records this read made (decoded) and the last read's records it did not take
        again as they stood: every socket that came or went is among them (a record in both
        lists is one decoded again, unchanged or changed). None where this read or the last
        had records no kept dump holds (``count``, ``last_count``: how many each read gave;
        None: the last read is not known): the caller then compares the reads whole.
        """
        if (
            not self.whole
            or last_count is None
            or _held(self.now_dumps) != count
            or _held(self.last_dumps) != last_count
        ):
            return None
        gone: list[Socket] = []
        for stream in self.last_dumps.values():
            at = 0
            for first, stop in sorted(stream.carried):
                gone += stream.records[at:first]
                at = max(at, stop)
            gone += stream.records[at:]
        return self.made, gone

    def close(self) -> None:
        """Close the sockets kept (the watch ends)."""
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


_REUSE: ContextVar[Reuse | None] = ContextVar("sockdiff_reuse", default=None)


def _held(dumps: Mapping[tuple[int, bytes], _Stream]) -> int:
    return sum(len(stream.records) for stream in dumps.values())


@contextmanager
def reusing(reuse: Reuse) -> Iterator[None]:
    """The decoders, in the body (one read), take again the records of ``reuse``'s last read.

    A read that dumps no socket (interfaces or routes alone) leaves ``reuse`` as it was:
    the next read of sockets takes from the last one, its stale owners still said.
    """
    kept = reuse.last_dumps, reuse.now_dumps, reuse.made, reuse.whole
    reuse.last_dumps, reuse.now_dumps = reuse.now_dumps, {}
    reuse.read = set()  # the namespaces whose sockets this read dumps
    reuse.made = []
    reuse.whole = True
    token = _REUSE.set(reuse)
    try:
        yield
    finally:
        _REUSE.reset(token)
        if not reuse.read:  # no socket dumped
            reuse.last_dumps, reuse.now_dumps, reuse.made, reuse.whole = kept
        else:
            reuse.stale.clear()  # the datagrams that held them were decoded again
            for namespace in reuse.sockets.keys() - reuse.read:  # gone, or not read: let it go
                reuse.sockets.pop(namespace).close()


@contextmanager
def dump_socket() -> Iterator[socket.socket]:
    """A NETLINK_SOCK_DIAG socket for one read in the calling thread's network namespace;
    reusing (:func:`reusing`), the namespace's socket kept from the last read (held, a
    namespace lives on, so its inode names no other). A read that fails closes it."""
    reuse = _REUSE.get()
    if reuse is None:
        with open_socket() as sock:
            yield sock
        return
    namespace = os.stat("/proc/thread-self/ns/net").st_ino
    sock = reuse.sockets.pop(namespace) if namespace in reuse.sockets else open_socket()
    try:
        yield sock
    except BaseException:
        sock.close()  # replies of a dump cut short may wait in it
        raise
    reuse.sockets[namespace] = sock


def _v6only(buffer: bytes | bytearray, position: int, end: int) -> bool | None:
    """INET_DIAG_SKV6ONLY among a message's attributes, None when absent."""
    for attr_type, payload, stop in attributes(buffer, position, end):
        if attr_type == INET_DIAG_SKV6ONLY and stop > payload:
            return bool(buffer[payload])
    return None


def open_socket() -> socket.socket:
    """A NETLINK_SOCK_DIAG socket in the calling thread's network namespace."""
    return open_dump_socket(NETLINK_SOCK_DIAG)


# include/uapi/linux/inet_diag.h: the older request (TCPDIAG_GETSOCK, struct
# inet_diag_req), which the kernel still answers, dumping both families at once
# (inet_diag_dump_compat sets AF_UNSPEC). A TCP dump walks the host's whole
# established hash whatever namespace asks (~1 ms at 262,144 buckets), so one
# dump for both families halves what reading a namespace costs the kernel.
TCPDIAG_GETSOCK = 18
# nlmsghdr; inet_diag_req: family, src_len, dst_len, ext, sockid (48 bytes), states, dbs.
_TCP_COMPAT_REQUEST = struct.Struct("=IHHII BBBB 48x II")


@functools.cache
def tcp_request(seq: int) -> bytes:
    """A dump request for every TCP socket of both families (TCPDIAG_GETSOCK)."""
    return _TCP_COMPAT_REQUEST.pack(
        _TCP_COMPAT_REQUEST.size,
        TCPDIAG_GETSOCK,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        0,
        0,
        0,
        0,
        0,
        INET_STATES,
        0,
    )


@functools.cache
def inet_request(family: int, proto: str, seq: int) -> bytes:
    """A dump request for every inet socket of one family and protocol."""
    request = pyroute2.diag_requests()[0]()
    request["header"]["type"] = SOCK_DIAG_BY_FAMILY
    request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
    request["header"]["sequence_number"] = seq
    request["sdiag_family"] = family
    request["sdiag_protocol"] = IPPROTO[proto]
    request["idiag_states"] = INET_STATES
    # raw_diag reads the pad byte as sdiag_raw_protocol: IPPROTO_RAW asks for
    # raw sockets of every protocol.
    request["__pad"] = socket.IPPROTO_RAW if proto == "raw" else 0
    request.encode()
    return bytes(request.data)


@functools.cache
def unix_request(seq: int) -> bytes:
    """A dump request for every UNIX socket, with names, peers, queues and owners."""
    request = pyroute2.diag_requests()[1]()
    request["header"]["type"] = SOCK_DIAG_BY_FAMILY
    request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
    request["header"]["sequence_number"] = seq
    request["sdiag_family"] = AF_UNIX
    request["udiag_states"] = UNIX_STATES
    request["udiag_show"] = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID
    request.encode()
    return bytes(request.data)


def _v6only_of(buffer: bytes | bytearray, offset: int, end: int) -> bool | None:
    """INET_DIAG_SKV6ONLY of the AF_INET6 inet_diag reply in ``buffer[offset:end]``, None when
    absent: looked for first where the kernel puts it, right after INET_DIAG_SHUTDOWN (8 bytes)."""
    quick = offset + _INET_ATTRS + 8
    if quick + 5 <= end and _ATTR.unpack_from(buffer, quick) == _V6ONLY_HEADER:
        return buffer[quick + 4] != 0
    return _v6only(buffer, offset + _INET_ATTRS, end)


_fast_inet_record = None if speedups is None else speedups.inet_record


def inet_record_context(proto: str, owners: Mapping[int, tuple[Process, ...]]) -> tuple[object, ...]:
    """What the accelerator's ``inet_record`` makes records with, in its order: what
    :func:`decode_inet` gives :func:`~sockdiff.model.make_socket` besides the reply's fields."""
    return (
        proto,
        INET_TYPES[proto],
        TCP_STATES,
        owners,
        NO_PROCESSES,
        Endpoint,
        Socket,
        "inet",
        "inet6",
        "UNKNOWN",
    )


def decode_inet(
    messages: Messages,
    proto: str,
    owners: Mapping[int, tuple[Process, ...]],
    seen: set[int],
    interfaces: Mapping[int, str] | None = None,
    into: dict[int, tuple[object, Socket]] | None = None,
    known: Mapping[int, tuple[object, Socket]] | None = None,
) -> list[Socket]:
    """Records from inet_diag replies; ``seen`` holds the cookies already decoded.

    A dump can repeat a socket while the tables churn; the socket cookie tells.
    ``interfaces`` names the devices sockets are bound to (default: looked up
    in the calling thread's namespace). Given ``into``, each record's entry (its
    fields, less the timers, and the record) goes into it by cookie; ``known``: entries
    of a last read by cookie, whose record is taken again where the entry is as it was.
    """
    sock_type = INET_TYPES[proto]
    states = TCP_STATES
    names = InterfaceNames() if interfaces is None else interfaces
    addresses: dict[bytes, str] = {}
    last = {} if known is None else known
    sockets: list[Socket] = []
    # The accelerator's whole loop body, where no entries are kept (every read but watch's).
    record = _fast_inet_record if into is None else None
    context = inet_record_context(proto, owners)
    for buffer, offset, end in messages:
        if record is not None and record(buffer, offset, end, addresses, seen, sockets, context):
            continue
        # The reply's fields (as the accelerator's inet_record reads them): an AF_INET one is
        # unpacked with its addresses, the first 4 bytes of src and dst, as they stand.
        if end - offset < _INET_ATTRS:
            raise DumpFailed(errno.EBADMSG)  # shorter than an inet_diag_msg
        layout = _INET4_MSG if buffer[offset + 16] == AF_INET else _INET_MSG
        family, state, sport, dport, src, dst, index, cookie, rqueue, wqueue, uid, inode = layout.unpack_from(
            buffer, offset
        )
        v6only = None
        if family == AF_INET6:
            if state in _V6ONLY_STATES:
                v6only = _v6only_of(buffer, offset, end)
        elif family != AF_INET:
            raise DumpFailed(errno.EBADMSG)  # an inet_diag reply of another family
        local = addresses.get(src)
        if local is None:
            local = addresses[src] = inet_ntop(family, src)
        remote = addresses.get(dst)
        if remote is None:
            remote = addresses[dst] = inet_ntop(family, dst)
        if cookie in seen:
            continue
        seen.add(cookie)
        sport, dport = _PORTS[sport], _PORTS[dport]
        if into is not None:
            # Every field but the timers: a record whose fields, owners and device name
            # are the last read's is that read's record.
            fields = (
                family,
                state,
                sport,
                dport,
                local,
                remote,
                index,
                cookie,
                rqueue,
                wqueue,
                uid,
                inode,
                v6only,
            )
            before = last.get(cookie)
            if (
                before is not None
                and before[0] == fields
                and before[1].processes == held_by(owners, inode)
                and (not index or before[1].interface == names[index])  # a device renamed since
            ):
                into[cookie] = before
                sockets.append(before[1])
                continue
        sockets.append(
            make_socket(
                proto,
                "inet" if family == AF_INET else "inet6",
                sock_type,
                states.get(state, "UNKNOWN"),
                Endpoint(local, sport),
                Endpoint(remote, dport),
                inode,
                uid,
                rqueue,
                wqueue,
                owners,
                names[index] if index else None,
                v6only,
            )
        )
        if into is not None:
            into[cookie] = (fields, sockets[-1])
    return sockets


def decode_unix(
    messages: Messages,
    owners: Mapping[int, tuple[Process, ...]],
    seen: set[int],
    into: dict[int, tuple[object, Socket]] | None = None,
    known: Mapping[int, tuple[object, Socket]] | None = None,
) -> list[Socket]:
    """Records from unix_diag replies (``into`` and ``known`` as :func:`decode_inet`'s).

    unix_diag reports sk_state, named by :data:`~sockdiff.model.UNIX_DIAG_STATES`
    as the proc backend names /proc/net/unix's rows.
    """
    unpack = _UNIX_MSG.unpack_from
    least = _UNIX_ATTR_SIZES
    unix_states = UNIX_DIAG_STATES
    unpack_u32 = U32.unpack_from
    unpack_pair = _U32_PAIR.unpack_from
    last = {} if known is None else known
    sockets = []
    for buffer, offset, end in messages:
        if end - offset < _UNIX_MSG.size:
            raise DumpFailed(errno.EBADMSG)  # shorter than a unix_diag_msg
        type_number, state, inode, cookie = unpack(buffer, offset)
        if cookie in seen:
            continue
        seen.add(cookie)
        message = None
        if into is not None:
            message = bytes(buffer[offset + 16 : end])  # no timers in unix_diag
            before = last.get(cookie)
            if before is not None and before[0] == message and before[1].processes == held_by(owners, inode):
                into[cookie] = before
                sockets.append(before[1])
                continue
        name = None
        peer = 0
        uid = recv_q = send_q = None
        for attr_type, payload, stop in attributes(buffer, offset + 32, end):
            if stop - payload < least.get(attr_type, 0):
                raise DumpFailed(errno.EBADMSG)  # an attribute too short for its type
            if attr_type == UNIX_DIAG_NAME:
                name = escape_name(bytes(buffer[payload:stop]))
            elif attr_type == UNIX_DIAG_PEER:
                peer = unpack_u32(buffer, payload)[0]
            elif attr_type == UNIX_DIAG_RQLEN:
                recv_q, send_q = unpack_pair(buffer, payload)
            elif attr_type == UNIX_DIAG_UID:
                uid = unpack_u32(buffer, payload)[0]
        sockets.append(
            make_socket(
                "unix",
                "unix",
                SOCK_TYPES.get(type_number, "unknown"),
                unix_states.get(state, "UNKNOWN"),
                Endpoint(path=name),
                Endpoint(peer_inode=peer),
                inode,
                uid,
                recv_q,
                send_q,
                owners,
            )
        )
        if into is not None:
            into[cookie] = (message, sockets[-1])
    return sockets


def _dump_protocol(
    sock: socket.socket,
    proto: str,
    owners: Mapping[int, tuple[Process, ...]],
    interfaces: Mapping[int, str] | None = None,
) -> list[Socket]:
    """One protocol's sockets (both families for inet), redone if interrupted.

    After the last attempt the result is kept as it is, duplicates dropped: a
    table that never stops churning still gets a snapshot, as ss gives one.
    """
    sockets: list[Socket] = []
    reuse = _REUSE.get()
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1 and reuse is not None:
            reuse.whole = False  # records made or taken by an attempt given up: no delta
        seen: set[int] = set()
        sockets = []
        interrupted = False
        if proto == "unix":
            request = unix_request(attempt)
            dump = Dump.request(sock, request)
            sockets += _decoded(
                dump, request, seen, functools.partial(decode_unix, owners=owners), _UNIX_COOKIE_AT
            )
            interrupted = dump.interrupted
        else:
            requests = (
                [tcp_request(attempt)]
                if proto == "tcp" and _TCP_BOTH_FAMILIES[0]
                else [inet_request(family, proto, attempt) for family in (AF_INET, AF_INET6)]
            )
            for request in requests:
                dump = Dump.request(sock, request)
                decode = functools.partial(decode_inet, proto=proto, owners=owners, interfaces=interfaces)
                try:
                    sockets += _decoded(dump, request, seen, decode, _INET_COOKIE_AT)
                except DumpFailed as failure:
                    if request is not tcp_request(attempt) or failure.code not in _NO_HANDLER or sockets:
                        raise
                    _TCP_BOTH_FAMILIES[0] = False  # a kernel without the older request: one a family
                    if reuse is not None:
                        reuse.whole = False
                    return _dump_protocol(sock, proto, owners, interfaces)
                interrupted = interrupted or dump.interrupted
        if not interrupted:
            break
    return sockets


def _decoded(
    dump: Dump,
    request: bytes,
    seen: set[int],
    decode: Callable[..., list[Socket]],
    cookie_at: int,
) -> list[Socket]:
    """``decode(messages, seen=, into=)`` of ``dump``; reusing (:func:`reusing`), each run of
    messages that is byte for byte a run of the last read's dump stands for its records.
    ``cookie_at``: where a message holds its socket's cookie."""
    reuse = _REUSE.get()
    if reuse is None:
        return decode(dump, seen=seen, into=None)
    key = (os.stat("/proc/thread-self/ns/net").st_ino, request)
    reuse.read.add(key[0])
    last = reuse.last_dumps.get(key)
    if last is not None and not last.clean:
        last = None
    now = _Stream()
    sockets: list[Socket] = []
    raws: list[bytes] = []
    at = 0  # where the datagram starts in the dump
    moved = 0  # how far the last run taken moved since the last read (sockets came or went before it)
    for buffer, size in dump.datagrams:
        raw = bytes(memoryview(buffer)[:size])
        whole = None if last is None else _stretch(last, raw, 0, size, at, cookie_at, seen, reuse.stale)
        if last is not None and whole is not None:  # the usual datagram: taken as it stands
            done = whole[2] + size == len(last.data)  # then NLMSG_DONE, which ends it, is in it
            pieces: list[_Piece] = [whole]
        else:
            interrupted = dump.interrupted
            dump.interrupted = False
            messages, done = dump.split(buffer, size)
            now.clean = now.clean and not dump.interrupted  # the kernel's tables moved under it
            dump.interrupted = interrupted or dump.interrupted
            pieces = (
                [messages] if last is None else _pieces(last, raw, at, messages, cookie_at, seen, reuse.stale)
            )
        for piece in pieces:
            if isinstance(piece, list):
                known = None if last is None else _known(last, piece, at - moved, cookie_at)
                sockets += _made(piece, at, now, decode, seen, reuse, known)
            elif last is not None:
                sockets += _taken(last, piece, at, now, seen)
                moved = at + piece[3] - piece[2]
        raws.append(raw)
        at += size
        if done:
            if now.clean:
                now.data = b"".join(raws)
                reuse.now_dumps[key] = now
            return sockets
    raise DumpFailed(errno.ENODATA)  # the replies ended without NLMSG_DONE


#: A run of messages taken from the last read (its records [first, stop), where the run
#: starts in that dump and in this datagram), or messages to decode.
_Piece = tuple[int, int, int, int] | list[Message]


def _pieces(
    last: _Stream,
    raw: bytes,
    at: int,
    messages: list[Message],
    cookie_at: int,
    seen: set[int],
    stale: set[int],
) -> list[_Piece]:
    """A datagram's messages as runs taken from ``last`` (:func:`_stretch`) and runs to decode,
    in order: a socket that changed, came or went costs its own message, not its datagram's."""
    pieces: list[_Piece] = []
    run: list[Message] = []
    end = messages[-1][2] if messages else 0
    index = 0
    while index < len(messages):
        offset = messages[index][1]
        found = _stretch(last, raw, offset, end, at, cookie_at, seen, stale)
        if found is None:
            run.append(messages[index])
            index += 1
            continue
        if run:
            pieces.append(run)
            run = []
        pieces.append(found)
        index += found[1] - found[0]
    if run:
        pieces.append(run)
    return pieces


def _stretch(
    last: _Stream, raw: bytes, lo: int, hi: int, at: int, cookie_at: int, seen: set[int], stale: set[int]
) -> tuple[int, int, int, int] | None:
    """The longest run of ``last``'s records whose messages are byte for byte those of
    ``raw`` from ``lo`` (a message's start) on, up to ``hi`` (all of it, for a whole
    datagram: ``hi - lo`` bytes or nothing), as (first, stop, its start in ``last``'s dump,
    ``lo``); None when the message at ``lo`` is not one of them, or the run is not to take
    as it stands: a socket this dump showed already, an owner changed (``stale``), a device.
    The message is looked for where it was, then by its socket's cookie (at ``cookie_at``)."""
    data, offsets, ends = last.data, last.offsets, last.ends
    whole = lo == 0 and hi == len(raw)
    near = at + lo
    size = int.from_bytes(raw[lo : lo + 4], sys.byteorder) if hi - lo >= 4 else 0
    if size < cookie_at + 8 or lo + size > hi:
        return None  # NLMSG_DONE, or no message of a socket
    message = raw[lo : lo + size]
    if data[near : near + size] == message:
        start = near  # where it was: nothing came or went before it
    else:  # the same socket, by its cookie, wherever it was
        if last.where is None:
            last.where = dict(zip(last.cookies, range(len(last.cookies)), strict=True))
        index = last.where.get(int.from_bytes(message[cookie_at : cookie_at + 8], sys.byteorder))
        if index is None:
            return None
        start = offsets[index]
        if data[start : start + size] != message:
            return None
    first = bisect.bisect_left(offsets, start)
    if first == len(offsets) or offsets[first] != start:
        return None  # not a socket's message there (NLMSG_DONE), or inside one
    if whole:
        if data[start : start + hi] != raw:
            return None
        stop = bisect.bisect_right(ends, start + hi)
    else:
        length = _common(raw, lo, data, start, min(hi - lo, len(data) - start))
        stop = bisect.bisect_right(ends, start + length)
    if (
        not seen.isdisjoint(last.cookies[first:stop])
        or (stale and any(record.inode in stale for record in last.records[first:stop]))
        or bisect.bisect_left(last.bound, first) != bisect.bisect_left(last.bound, stop)
    ):
        return None
    return first, stop, start, lo


def _common(a: bytes, i: int, b: bytes, j: int, limit: int) -> int:
    """How many bytes ``a`` from ``i`` and ``b`` from ``j`` have in common, ``limit`` at most."""
    if a[i : i + limit] == b[j : j + limit]:
        return limit
    low, high = 0, limit  # a[i:i+low] is common, a[i:i+high] is not
    while high - low > 1:
        middle = (low + high) // 2
        if a[i + low : i + middle] == b[j + low : j + middle]:
            low = middle
        else:
            high = middle
    return low


def _known(last: _Stream, run: list[Message], at: int, cookie_at: int) -> dict[int, tuple[object, Socket]]:
    """The entries of ``last`` for the sockets of the messages of ``run`` (a datagram's, which
    starts at ``at`` in ``last``'s dump as far as the sockets before it came and went), by
    cookie: looked for where each message was, or by cookie when ``last``'s index is made."""
    found: dict[int, tuple[object, Socket]] = {}
    offsets, cookies, where = last.offsets, last.cookies, last.where
    for buffer, offset, end in run:
        if end - offset < cookie_at + 8:
            continue  # not a socket's message: the decoder says what it is
        cookie = int.from_bytes(buffer[offset + cookie_at : offset + cookie_at + 8], sys.byteorder)
        if where is not None:
            index = where.get(cookie, -1)
        else:
            index = bisect.bisect_left(offsets, at + offset)
            if index == len(cookies) or cookies[index] != cookie:
                index = -1
        if index >= 0:
            found[cookie] = last.entries[index]
    return found


def _made(
    run: list[Message],
    at: int,
    now: _Stream,
    decode: Callable[..., list[Socket]],
    seen: set[int],
    reuse: Reuse,
    known: Mapping[int, tuple[object, Socket]] | None,
) -> list[Socket]:
    """The records of messages decoded (``known``: entries of the last read by cookie, for
    :func:`decode_inet`); ``now`` takes them, one a message, or is no more clean."""
    made: dict[int, tuple[object, Socket]] = {}
    records = decode(run, seen=seen, into=made, known=known)
    reuse.made += records
    if len(made) != len(run):
        now.clean = False  # a message repeated a socket
    elif now.clean:
        now.bound += [len(now.records) + i for i, r in enumerate(records) if r.interface is not None]
        now.offsets += [at + offset for _, offset, _ in run]
        now.ends += [at + end for _, _, end in run]
        now.records += records
        now.cookies += made.keys()
        now.entries += made.values()
    return records


def _taken(
    last: _Stream, piece: tuple[int, int, int, int], at: int, now: _Stream, seen: set[int]
) -> list[Socket]:
    """The records of a run of messages as the last read made them; ``now`` takes them."""
    first, stop, start, lo = piece
    records = last.records[first:stop]
    cookies = last.cookies[first:stop]
    entries = last.entries[first:stop]
    seen.update(cookies)
    last.carried.append((first, stop))
    if now.clean:
        moved = at + lo - start  # where the run moved (the sockets that came or went before it)
        now.offsets += map(moved.__add__, last.offsets[first:stop]) if moved else last.offsets[first:stop]
        now.ends += map(moved.__add__, last.ends[first:stop]) if moved else last.ends[first:stop]
        now.records += records
        now.cookies += cookies
        now.entries += entries
    return records


# Whether this kernel answers TCPDIAG_GETSOCK (set False at its first refusal).
_TCP_BOTH_FAMILIES = [True]
# Errors with which a kernel says it has no sock_diag handler for a protocol.
_NO_HANDLER = {errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL, errno.EPROTONOSUPPORT}


class NoHandler(Exception):
    """The kernel has no sock_diag handler for a protocol (raw sockets without raw_diag).

    What to read instead is the backends registry's choice, not this module's.
    """


def read_protocol(
    sock: socket.socket,
    proto: str,
    owners: Mapping[int, tuple[Process, ...]],
    interfaces: Mapping[int, str] | None = None,
) -> list[Socket]:
    """Every socket of ``proto``, dumped through ``sock`` (see :func:`open_socket`).

    Raises :class:`NoHandler` when the kernel cannot dump that protocol (the dump
    ends with -ENOENT in NLMSG_DONE), :class:`BackendUnavailable` on any other failure.
    ``interfaces`` names the devices sockets are bound to (default: an
    :class:`InterfaceNames` for this call, in the calling thread's namespace).
    """
    try:
        return _dump_protocol(sock, proto, owners, InterfaceNames() if interfaces is None else interfaces)
    except DumpFailed as failure:
        if failure.code in _NO_HANDLER:
            raise NoHandler(proto) from failure
        raise BackendUnavailable(
            f"sock_diag dump of {proto} sockets failed: {os.strerror(failure.code)}"
        ) from failure
