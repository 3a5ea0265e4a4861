"""The socket record both backends build, and the one table of state names.

Records are frozen :class:`msgspec.Struct` types rather than frozen dataclasses:
just as immutable, typed and hashable, built in C (a frozen dataclass pays an
``object.__setattr__`` per field), and msgspec writes and reads them as JSON
directly: encoding 100k records takes ~0.03 s instead of ~0.3 s through dicts,
and reading them back checks every field's type on the way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

import msgspec

__all__ = [
    "CONNECTED_STATES",
    "COUNTER_NAMES",
    "FAMILIES",
    "INET_TYPES",
    "PROTOS",
    "SOCK_TYPES",
    "TCP_STATES",
    "UNIX_DIAG_STATES",
    "UNIX_SS_STATES",
    "Counters",
    "Endpoint",
    "Inet",
    "Interface",
    "Process",
    "Route",
    "Socket",
    "UnixName",
    "UnixPeer",
    "escape_name",
    "is_listening",
    "make_socket",
    "ss_kinds",
    "ss_view",
]

PROTOS: tuple[ProtoName, ...] = ("tcp", "udp", "raw", "unix")
FAMILIES = ("inet", "inet6", "unix")

# Kernel socket states, include/net/tcp_states.h. UDP and raw sockets reuse
# them (ESTABLISHED once connected, CLOSE otherwise). TCP_NEW_SYN_RECV (12) is a
# request socket, which ss and /proc both show as SYN_RECV. TCP_BOUND_INACTIVE
# (13) is never asked for: see the netlink backend.
TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",
}
INET_STATE_NAMES = frozenset(TCP_STATES.values()) | {"UNKNOWN"}

# /proc/net/unix's "St" column is the socket's SS_* code (include/uapi/linux/net.h);
# netstat shows SS_UNCONNECTED as an empty state and a socket with the accept
# flag as LISTENING.
UNIX_SS_STATES: dict[int, str] = {
    0: "FREE",
    1: "UNCONNECTED",
    2: "CONNECTING",
    3: "CONNECTED",
    4: "DISCONNECTING",
}
# unix_diag reports sk_state, a TCP state number, for UNIX sockets too.
UNIX_DIAG_STATES: dict[int, str] = {
    1: "CONNECTED",
    2: "CONNECTING",
    7: "UNCONNECTED",
    10: "LISTENING",
}
UNIX_STATE_NAMES = frozenset(UNIX_SS_STATES.values()) | {"LISTENING", "UNKNOWN"}

# SOCK_* numbers (include/linux/net.h), the same in /proc/net/unix and unix_diag.
SOCK_TYPES: dict[int, str] = {1: "stream", 2: "dgram", 3: "raw", 5: "seqpacket"}
# The socket type of each inet protocol.
INET_TYPES = {"tcp": "stream", "udp": "dgram", "raw": "raw"}


ProtoName = Literal["tcp", "udp", "raw", "unix"]
FamilyName = Literal["inet", "inet6", "unix"]
TypeName = Literal["stream", "dgram", "seqpacket", "raw", "unknown"]


class Endpoint(msgspec.Struct, frozen=True, omit_defaults=True, repr_omit_defaults=True, gc=False):
    """One end of a socket, in the shape of the snapshot file.

    inet: ``address`` and ``port`` (for raw sockets the protocol number). UNIX
    local: ``path`` (``@name`` when abstract, None when unnamed). UNIX remote:
    ``peer_inode`` (0: no peer). Fields that do not apply are UNSET and left
    out of the file. One type rather than three: msgspec reads a union of
    structs only when a tag field tells them apart, and SPEC.md's shapes have none.
    ``gc=False``, as for every record: it holds only strings and integers, so
    it can be in no cycle, and the collector need not track 200k of them.
    """

    address: str | msgspec.UnsetType = msgspec.UNSET
    port: int | msgspec.UnsetType = msgspec.UNSET
    path: str | msgspec.UnsetType | None = msgspec.UNSET
    peer_inode: int | msgspec.UnsetType = msgspec.UNSET


def Inet(address: str, port: int) -> Endpoint:
    """An IP endpoint; for raw sockets ``port`` is the protocol number."""
    return Endpoint(address, port)


def UnixName(path: str | None) -> Endpoint:
    """A UNIX socket's name: a path, ``@name`` when abstract, None when unnamed."""
    return Endpoint(path=path)


def UnixPeer(peer_inode: int) -> Endpoint:
    """The inode of a UNIX socket's peer, 0 when it has none."""
    return Endpoint(peer_inode=peer_inode)


class Process(msgspec.Struct, frozen=True, order=True, gc=False):
    """A process holding a socket: its pid, ``comm`` name and descriptor number (no
    cycle possible: not tracked by the collector)."""

    pid: int
    name: str
    fd: int


class Socket(msgspec.Struct, frozen=True, gc=False):
    """One socket, normalized the same way by every backend.

    A field a backend cannot know is None (``remote`` included for UNIX
    sockets read from /proc). ``gc=False``: records hold no cycles, so the
    collector need not track 100k of them.

    ``interface``: the device the socket is bound to (SO_BINDTODEVICE, or the
    scope of a link-local connection), None when unbound or unknown (/proc).
    ``v6only``: IPV6_V6ONLY as the kernel reports it (inet_diag's
    INET_DIAG_SKV6ONLY, sent for IPv6 sockets in LISTEN or CLOSE), None
    elsewhere; it is what tells ss's ``[::]:80`` (IPv6 only) from ``*:80``
    (IPv4 too). Both come last, with defaults, so files written before them load.
    """

    proto: ProtoName
    family: FamilyName
    type: TypeName
    state: str
    local: Endpoint
    remote: Endpoint | None
    inode: int
    uid: int | None
    recv_q: int | None
    send_q: int | None
    processes: tuple[Process, ...]
    interface: str | None = None
    v6only: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as it stands in a snapshot file."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        result["processes"] = list(result["processes"])
        return result


NO_PROCESSES: tuple[Process, ...] = ()


_UNSET = msgspec.UNSET


def _is_inet(end: Endpoint | None) -> bool:
    return (
        end is not None
        and end.address is not _UNSET
        and end.port is not _UNSET
        and end.path is _UNSET
        and end.peer_inode is _UNSET
    )


def record_problem(sock: Socket) -> str | None:
    """What makes a record read from a file unlike any a backend builds, or None.

    msgspec has checked each field's type; this checks what types cannot say:
    the endpoint shapes of SPEC.md for the record's family, and a state name
    from the table of its protocol.
    """
    local, remote = sock.local, sock.remote
    if sock.proto == "unix":
        if sock.family != "unix":
            return f"a unix socket's family is 'unix', not {sock.family!r}"
        if sock.state not in UNIX_STATE_NAMES:
            return f"{sock.state!r} is not a UNIX state"
        if (
            local.path is _UNSET
            or local.address is not _UNSET
            or local.port is not _UNSET
            or local.peer_inode is not _UNSET
        ):
            return '`local` of a unix socket is {"path": ...}'
        if remote is not None and (
            remote.peer_inode is _UNSET
            or remote.path is not _UNSET
            or remote.address is not _UNSET
            or remote.port is not _UNSET
        ):
            return '`remote` of a unix socket is {"peer_inode": N} or null'
        if sock.interface is not None or sock.v6only is not None:
            return "`interface` and `v6only` of a unix socket are null"
        return None
    if sock.family == "unix":
        return f"a {sock.proto} socket's family is 'inet' or 'inet6', not 'unix'"
    if sock.v6only is not None and sock.family != "inet6":
        return "`v6only` is for inet6 sockets (null for the others)"
    if sock.state not in INET_STATE_NAMES:
        return f"{sock.state!r} is not a {sock.proto.upper()} state"
    if not _is_inet(local):
        return '`local` of an inet socket is {"address": ..., "port": N}'
    if not _is_inet(remote):
        return '`remote` of an inet socket is {"address": ..., "port": N}'
    return None


def make_socket(
    proto: str,
    family: str,
    sock_type: str,
    state: str,
    local: Endpoint,
    remote: Endpoint | None,
    inode: int,
    uid: int | None,
    recv_q: int | None,
    send_q: int | None,
    owners: Mapping[int, tuple[Process, ...]],
    interface: str | None = None,
    v6only: bool | None = None,
) -> Socket:
    """Build a record; every backend goes through here so all agree on shape.

    ``owners`` maps socket inodes to their processes (see
    :mod:`sockdiff.processes`); inode 0 never has an owner.
    """
    return Socket(
        proto,  # type: ignore[arg-type]
        family,  # type: ignore[arg-type]
        sock_type,  # type: ignore[arg-type]
        state,
        local,
        remote,
        inode,
        uid,
        recv_q,
        send_q,
        owners.get(inode, NO_PROCESSES) if inode else NO_PROCESSES,
        interface,
        v6only,
    )


def escape_name(raw: bytes) -> str:
    r"""Text for a UNIX socket name as the kernel holds it, unambiguously.

    An abstract name (leading NUL) becomes ``@name`` with inner NULs as ``@``, as
    /proc/net/unix shows it; bytes that are not UTF-8 become ``\xNN`` and a
    backslash ``\\``, so no two names collide.

    >>> escape_name(b"\0svc\0x")
    '@svc@x'
    >>> escape_name(b"/run/a.sock\0")
    '/run/a.sock'
    >>> escape_name(b"/tmp/a\\b\xff")
    '/tmp/a\\\\b\\xff'
    """
    if raw[:1] == b"\0":
        raw = b"@" + raw[1:].replace(b"\0", b"@")
    else:
        # A path is a C string: unix_diag counts its terminating NUL.
        raw = raw.split(b"\0", 1)[0]
    if b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


def is_listening(sock: Socket) -> bool:
    """Whether a socket waits for peers, as ``ss -l`` lists it (less unnamed UNIX).

    TCP LISTEN; UDP and raw CLOSE; UNIX LISTENING, and UNCONNECTED datagram
    sockets bound to a name.
    """
    if sock.proto == "tcp":
        return sock.state == "LISTEN"
    if sock.proto == "unix":
        if sock.state == "LISTENING":
            return True
        return sock.state == "UNCONNECTED" and sock.type == "dgram" and isinstance(sock.local.path, str)
    return sock.state == "CLOSE"


# What ss lists without -a or -l: connected sockets only (its SS_CONN).
# ss's SS_CONN (ss.c): every TCP state but LISTEN, CLOSE, TIME_WAIT and SYN_RECV,
# and the UNIX states ss shows as connected or connecting. What ss lists without
# -l or -a, and its filter word "connected".
CONNECTED_STATES = frozenset(TCP_STATES.values()) - {"LISTEN", "CLOSE", "TIME_WAIT", "SYN_RECV"} | {
    "CONNECTED",
    "CONNECTING",
    "DISCONNECTING",
}
# What ss -l lists: sockets waiting for peers, unnamed UNIX ones included.
_WAITING = frozenset({"LISTEN", "CLOSE", "LISTENING", "UNCONNECTED"})


def ss_view(listening: bool, everything: bool) -> frozenset[str] | None:
    """The states ss would list with ``-l`` / ``-a`` / neither; None for all.

    >>> sorted(ss_view(listening=True, everything=False))
    ['CLOSE', 'LISTEN', 'LISTENING', 'UNCONNECTED']
    """
    if everything:
        return None
    if listening:
        return _WAITING
    return CONNECTED_STATES


_PROTO_FAMILIES = {
    "tcp": {"inet", "inet6"},
    "udp": {"inet", "inet6"},
    "raw": {"inet", "inet6"},
    "unix": {"unix"},
}
_FAMILY_PROTOS = {"inet": {"tcp", "udp", "raw"}, "inet6": {"tcp", "udp", "raw"}, "unix": {"unix"}}


def ss_kinds(protos: Collection[str], families: Collection[str]) -> frozenset[tuple[str, str]]:
    """The (proto, family) pairs ss lists for its flags: -t -u -w name protocols,
    -4 -6 -x families (none of either: every kind).

    As ss merges them (misc/ss.c, filter_merge_defaults): a protocol none of whose
    families is named brings all of them, a family none of whose protocols is
    named brings all of its own. So ``-t -4`` is TCP over IPv4, ``-t -x`` TCP
    and UNIX, ``-4`` every IPv4 protocol.

    >>> sorted(ss_kinds(["tcp"], ["inet", "unix"]))
    [('tcp', 'inet'), ('unix', 'unix')]
    """
    chosen_protos, chosen_families = set(protos), set(families)
    if not chosen_protos and not chosen_families:
        chosen_protos = set(PROTOS)
    for proto in list(chosen_protos):
        if not _PROTO_FAMILIES[proto] & chosen_families:
            chosen_families |= _PROTO_FAMILIES[proto]
    for family in list(chosen_families):
        if not _FAMILY_PROTOS[family] & chosen_protos:
            chosen_protos |= _FAMILY_PROTOS[family]
    return frozenset(
        (proto, family)
        for proto in chosen_protos
        for family in chosen_families
        if family in _PROTO_FAMILIES[proto]
    )


# The figures of ``netstat -i`` (and the byte counts beside them), as both
# backends report them: rtnetlink's IFLA_STATS64, /proc/net/dev's columns.
COUNTER_NAMES = (
    "rx_packets",
    "rx_errors",
    "rx_dropped",
    "rx_overruns",
    "tx_packets",
    "tx_errors",
    "tx_dropped",
    "tx_overruns",
    "rx_bytes",
    "tx_bytes",
)


class Counters(msgspec.Struct, frozen=True, gc=False):
    """An interface's traffic counters (``netstat -i``); compared only when asked."""

    rx_packets: int
    rx_errors: int
    rx_dropped: int
    rx_overruns: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int
    tx_overruns: int
    rx_bytes: int
    tx_bytes: int


class Interface(msgspec.Struct, frozen=True, gc=False):
    """One network interface (``ip link`` and ``ip addr``, ``netstat -i``).

    ``flags`` are IFF_* names sorted alphabetically; ``addresses`` sorted CIDR
    texts; ``mac`` is None where the link has no hardware address (tun). A
    field a backend cannot know is None.
    """

    name: str
    index: int | None
    flags: tuple[str, ...]
    operstate: str | None
    mtu: int | None
    mac: str | None
    addresses: tuple[str, ...]
    counters: Counters | None


class Route(msgspec.Struct, frozen=True, gc=False):
    """One route (``ip route show table all``, ``netstat -rn``).

    ``table``: 254 is main, 255 local. ``destination`` is CIDR text
    (``0.0.0.0/0``); ``type``, ``protocol`` and ``scope`` are None where
    unknown (/proc writes IPv6 blackhole, unreachable, prohibit and throw routes
    alike; it never tells a route's protocol).
    """

    family: Literal["inet", "inet6"]
    table: int
    type: str | None
    destination: str
    gateway: str | None
    dev: str | None
    metric: int
    protocol: str | None
    scope: str | None
    # netstat -rn's MSS, Window and irtt columns: the advertised MSS plus 40 (0
    # when not set), the window clamp, the initial RTT in ms; None where unknown.
    mss: int | None = None
    window: int | None = None
    irtt: int | None = None
