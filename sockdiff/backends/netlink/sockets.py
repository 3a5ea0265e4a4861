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
from typing import NamedTuple

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
    "inet_fields",
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
_INET_ATTRS = 16 + 72  # the attributes follow nlmsghdr and inet_diag_msg
# include/uapi/linux/inet_diag.h: a u8 the kernel adds for every AF_INET6 socket
# in LISTEN or CLOSE (inet_diag_msg_attrs_fill), whatever the request asked.
INET_DIAG_SKV6ONLY = 11
_V6ONLY_STATES = frozenset({7, 10})  # TCP_CLOSE, TCP_LISTEN
_V6ONLY_HEADER = (5, INET_DIAG_SKV6ONLY)  # struct nlattr of a u8
# nlmsghdr + struct unix_diag_msg: family, type, state, ino, cookie.
_UNIX_MSG = struct.Struct("=16xxBBxIQ")
_ATTR = struct.Struct("=HH")
# The least payload length of the unix_diag attributes read here.
_UNIX_ATTR_SIZES = {UNIX_DIAG_PEER: 4, UNIX_DIAG_RQLEN: 8, UNIX_DIAG_UID: 4}
# Every 16-bit value byte-swapped where the host is little-endian: ntohs as a
# lookup, built in C (65,536 ntohs calls would add ~6 ms to every start).
_PORTS = array.array("H", range(65536))
if sys.byteorder == "little":
    _PORTS.byteswap()
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


class _Datagram(NamedTuple):
    """One datagram of a dump, as read and as decoded."""

    raw: bytes
    records: list[Socket]
    by_cookie: dict[int, tuple[object, Socket]]  # its records' entries of Reuse.now
    inodes: frozenset[int]
    done: bool  # it ended the dump
    interrupted: bool  # flagged NLM_F_DUMP_INTR
    bound: bool  # it holds a socket bound to a device (whose name may change)


class Reuse:
    """The records of one read, for the next read to take again.

    A watch reads every socket each poll, and most are as they were. A datagram of a
    dump byte for byte as the last read's at the same place (the kernel packs an
    unchanged table the same way), whose sockets' owners did not change (:attr:`stale`)
    and that names no device, stands for that read's records as they are: no message
    of it is decoded. Elsewhere, a record whose message (less its header and timers) is
    as the last read's, with the same owners and device names, is that read's record
    object. Either way the differ takes them for unchanged at a glance. Used through
    :func:`reusing`.
    """

    def __init__(self) -> None:
        self.last: dict[int, tuple[object, Socket]] = {}  # cookie -> (message, record)
        self.now: dict[int, tuple[object, Socket]] = {}
        # (namespace, request) -> the dump's datagrams, in order
        self.last_dumps: dict[tuple[int, bytes], list[_Datagram]] = {}
        self.now_dumps: dict[tuple[int, bytes], list[_Datagram]] = {}
        #: The inodes whose owners changed since the last read (their records are made again).
        self.stale: set[int] = set()
        # Namespace -> its sock_diag socket, kept from read to read: the kernel's replies then
        # carry the same port id, and an unchanged datagram is byte for byte the last one.
        self.sockets: dict[int, socket.socket] = {}
        self.read: set[int] = set()  # the namespaces this read dumped

    def close(self) -> None:
        """Close the sockets kept (the watch ends)."""
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


_REUSE: ContextVar[Reuse | None] = ContextVar("sockdiff_reuse", default=None)


@contextmanager
def reusing(reuse: Reuse) -> Iterator[None]:
    """The decoders, in the body (one read), take again the records of ``reuse``'s last read."""
    if reuse.now:
        reuse.last, reuse.now = reuse.now, {}
    reuse.last_dumps, reuse.now_dumps = reuse.now_dumps, {}
    reuse.read = set()
    token = _REUSE.set(reuse)
    try:
        yield
    finally:
        _REUSE.reset(token)
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
    reuse.read.add(namespace)
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


# What :func:`inet_fields` reads from one inet_diag reply.
InetFields = tuple[int, int, int, int, str, str, int, int, int, int, int, int, bool | None]


def inet_fields(buffer: bytes | bytearray, offset: int, end: int, addresses: dict[bytes, str]) -> InetFields:
    """The fields of the inet_diag reply in ``buffer[offset:end]``: family, state,
    local and remote port, local and remote address (text), interface index,
    cookie, receive and send queue, uid, inode, and INET_DIAG_SKV6ONLY (None
    unless the kernel sends it). ``addresses`` caches address texts by their bytes.

    The reference for the accelerator's ``inet_fields``; DumpFailed when the
    reply is too short or of another family.
    """
    if end - offset < _INET_ATTRS:
        raise DumpFailed(errno.EBADMSG)  # shorter than an inet_diag_msg
    family, state, sport, dport, src, dst, index, cookie, rqueue, wqueue, uid, inode = _INET_MSG.unpack_from(
        buffer, offset
    )
    v6only = None
    if family == AF_INET:
        src = src[:4]
        dst = dst[:4]
    elif family == AF_INET6:
        if state in _V6ONLY_STATES:
            # Where the kernel puts it: right after INET_DIAG_SHUTDOWN (8 bytes).
            quick = offset + _INET_ATTRS + 8
            if quick + 5 <= end and _ATTR.unpack_from(buffer, quick) == _V6ONLY_HEADER:
                v6only = buffer[quick + 4] != 0
            else:
                v6only = _v6only(buffer, offset + _INET_ATTRS, end)
    else:
        raise DumpFailed(errno.EBADMSG)  # an inet_diag reply of another family
    local = addresses.get(src)
    if local is None:
        local = addresses[src] = inet_ntop(family, src)
    remote = addresses.get(dst)
    if remote is None:
        remote = addresses[dst] = inet_ntop(family, dst)
    return (
        family,
        state,
        _PORTS[sport],
        _PORTS[dport],
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


_fast_inet_fields = None if speedups is None else speedups.inet_fields


def decode_inet(
    messages: Messages,
    proto: str,
    owners: Mapping[int, tuple[Process, ...]],
    seen: set[int],
    interfaces: Mapping[int, str] | None = None,
    into: dict[int, tuple[object, Socket]] | None = None,
) -> list[Socket]:
    """Records from inet_diag replies; ``seen`` holds the cookies already decoded.

    A dump can repeat a socket while the tables churn; the socket cookie tells.
    ``interfaces`` names the devices sockets are bound to (default: looked up
    in the calling thread's namespace). Reusing (:func:`reusing`), each record's entry
    goes into ``into`` (default: the read's :attr:`Reuse.now`).
    """
    sock_type = INET_TYPES[proto]
    states = TCP_STATES
    names = InterfaceNames() if interfaces is None else interfaces
    addresses: dict[bytes, str] = {}
    fast = _fast_inet_fields
    reuse = _REUSE.get()
    last = reuse.last if reuse is not None else {}
    now = reuse.now if into is None and reuse is not None else into if into is not None else {}
    sockets = []
    for buffer, offset, end in messages:
        fields: InetFields | None = None if fast is None else fast(buffer, offset, end, addresses)
        if fields is None:
            fields = inet_fields(buffer, offset, end, addresses)
        family, state, sport, dport, src, dst, index, cookie, rqueue, wqueue, uid, inode, v6only = fields
        if cookie in seen:
            continue
        seen.add(cookie)
        if reuse is not None:
            # Every field but the timers: a record whose fields, owners and device name
            # are the last read's is that read's record.
            before = last.get(cookie)
            if (
                before is not None
                and before[0] == fields
                and before[1].processes == (owners.get(inode, NO_PROCESSES) if inode else NO_PROCESSES)
                and (not index or before[1].interface == names[index])  # a device renamed since
            ):
                now[cookie] = before
                sockets.append(before[1])
                continue
        sockets.append(
            make_socket(
                proto,
                "inet" if family == AF_INET else "inet6",
                sock_type,
                states.get(state, "UNKNOWN"),
                Endpoint(src, sport),
                Endpoint(dst, dport),
                inode,
                uid,
                rqueue,
                wqueue,
                owners,
                names[index] if index else None,
                v6only,
            )
        )
        if reuse is not None:
            now[cookie] = (fields, sockets[-1])
    return sockets


def decode_unix(
    messages: Messages,
    owners: Mapping[int, tuple[Process, ...]],
    seen: set[int],
    into: dict[int, tuple[object, Socket]] | None = None,
) -> list[Socket]:
    """Records from unix_diag replies (``into`` as :func:`decode_inet`'s).

    unix_diag reports sk_state, named by :data:`~sockdiff.model.UNIX_DIAG_STATES`
    as the proc backend names /proc/net/unix's rows.
    """
    unpack = _UNIX_MSG.unpack_from
    least = _UNIX_ATTR_SIZES
    unix_states = UNIX_DIAG_STATES
    unpack_u32 = U32.unpack_from
    unpack_pair = _U32_PAIR.unpack_from
    reuse = _REUSE.get()
    last = reuse.last if reuse is not None else {}
    now = reuse.now if into is None and reuse is not None else into if into is not None else {}
    sockets = []
    for buffer, offset, end in messages:
        if end - offset < _UNIX_MSG.size:
            raise DumpFailed(errno.EBADMSG)  # shorter than a unix_diag_msg
        type_number, state, inode, cookie = unpack(buffer, offset)
        if cookie in seen:
            continue
        seen.add(cookie)
        message = None
        if reuse is not None:
            message = bytes(buffer[offset + 16 : end])  # no timers in unix_diag
            before = last.get(cookie)
            if (
                before is not None
                and before[0] == message
                and before[1].processes == (owners.get(inode, NO_PROCESSES) if inode else NO_PROCESSES)
            ):
                now[cookie] = before
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
        if reuse is not None:
            now[cookie] = (message, sockets[-1])
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
    for attempt in range(1, ATTEMPTS + 1):
        seen: set[int] = set()
        sockets = []
        interrupted = False
        if proto == "unix":
            request = unix_request(attempt)
            dump = Dump.request(sock, request)
            sockets += _decoded(dump, request, seen, functools.partial(decode_unix, owners=owners))
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
                    sockets += _decoded(dump, request, seen, decode)
                except DumpFailed as failure:
                    if request is not tcp_request(attempt) or failure.code not in _NO_HANDLER or sockets:
                        raise
                    _TCP_BOTH_FAMILIES[0] = False  # a kernel without the older request: one a family
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
) -> list[Socket]:
    """``decode(messages, seen=, into=)`` of ``dump``; reusing (:func:`reusing`), datagram
    by datagram, each one as the last read's at its place taken whole (:class:`Reuse`)."""
    reuse = _REUSE.get()
    if reuse is None:
        return decode(dump, seen=seen, into=None)
    namespace = os.stat("/proc/thread-self/ns/net").st_ino
    last = reuse.last_dumps.get((namespace, request), [])
    taken: list[_Datagram] = []
    reuse.now_dumps[(namespace, request)] = taken
    stale = reuse.stale
    sockets: list[Socket] = []
    for buffer, size in dump.datagrams:
        raw = bytes(memoryview(buffer)[:size])
        before = last[len(taken)] if len(taken) < len(last) else None
        if (
            before is not None
            and before.raw == raw
            and not before.bound
            and seen.isdisjoint(before.by_cookie)
            and stale.isdisjoint(before.inodes)
        ):
            datagram = before
            seen.update(before.by_cookie)
            dump.interrupted = dump.interrupted or before.interrupted
        else:
            interrupted = dump.interrupted
            dump.interrupted = False
            found, done = dump.split(buffer, size)
            into: dict[int, tuple[object, Socket]] = {}
            records = decode(found, seen=seen, into=into)
            datagram = _Datagram(
                raw,
                records,
                into,
                frozenset(r.inode for r in records),
                done,
                dump.interrupted,
                any(r.interface is not None for r in records),
            )
            dump.interrupted = interrupted or dump.interrupted
        reuse.now.update(datagram.by_cookie)
        taken.append(datagram)
        sockets += datagram.records
        if datagram.done:
            return sockets
    raise DumpFailed(errno.ENODATA)  # the replies ended without NLMSG_DONE


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
