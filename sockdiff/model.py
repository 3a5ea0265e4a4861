"""The socket record both backends build, and the one table of state names.

Records are frozen :class:`msgspec.Struct` types rather than frozen dataclasses:
just as immutable, typed and hashable, built in C (a frozen dataclass pays an
``object.__setattr__`` per field), and msgspec writes and reads them as JSON
directly: encoding 100k records takes ~0.03 s instead of ~0.3 s through dicts,
and reading them back checks every field's type on the way.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Literal

import msgspec

__all__ = [
    "COUNTER_NAMES",
    "DEVICE_NAME_RULE",
    "FAMILIES",
    "IFNAMSIZ",
    "INET_TYPES",
    "IPV6_ROUTE_FLAGS",
    "NETSTAT_FLAG_LETTERS",
    "PROTOS",
    "ROUTE_PROTOCOLS",
    "ROUTE_SCOPES",
    "ROUTE_TABLES",
    "ROUTE_TYPES",
    "RT_TABLE_DEFAULT",
    "RT_TABLE_LOCAL",
    "RT_TABLE_MAIN",
    "SOCK_TYPES",
    "TCP_STATES",
    "UNIX_DIAG_STATES",
    "UNIX_SS_STATES",
    "UNNUMBERED_TABLE",
    "Container",
    "Counters",
    "Endpoint",
    "Holder",
    "Interface",
    "Leak",
    "Namespace",
    "Nexthop",
    "PortHolder",
    "Process",
    "Route",
    "RunReport",
    "Socket",
    "decode_leaks",
    "encode_leaks",
    "escape_name",
    "from_name_text",
    "gateway_known",
    "inet",
    "make_socket",
    "name_text",
    "namespace_description",
    "namespace_label",
    "namespace_labels",
    "namespace_pairing",
    "namespace_pairings",
    "netns_of",
    "netstat_flag_letters",
    "nexthop_order",
    "unescape_name",
    "unix_name",
    "unix_peer",
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
# The one table of a UNIX socket's states, used by both backends: the kernel keeps
# sk_state, a TCP state number, which unix_diag reports and /proc/net/unix's
# columns are derived from (see the proc backend). net/unix/af_unix.c sets only
# CLOSE, ESTABLISHED and LISTEN: a stream connect() waiting for room in a full
# backlog stays CLOSE (UNCONNECTED). Number 2 is kept for the name ss gives it
# (state words pair SYN-SENT with CONNECTING); no socket with an inode has it.
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


# The ranges and forms a record's values keep, each declared once with the words
# an error about it uses (``description``, read back by :mod:`sockdiff.snapshots`
# through msgspec.inspect). msgspec checks them as it reads a file (building a
# record does not), so a snapshot is checked in its one typed pass; what a type
# cannot say (an address's canonical form, a CIDR's host bits, a state of the
# right protocol, a device name the kernel allows) is checked by the *_problem
# functions of :mod:`sockdiff.validation`.
Port = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF, description="a port number from 0 to 65535")]
U32 = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF, description="a number from 0 to 2**32-1")]
Uid = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF, description="a uid from 0 to 2**32-1")]
QueueSize = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF_FFFF, description="a queue size from 0 to 2**32-1")]
# 64-bit counts and inode numbers, up to int64's top: msgspec bounds no further.
U64 = Annotated[int, msgspec.Meta(ge=0, le=0x7FFF_FFFF_FFFF_FFFF, description="a number from 0 to 2**63-1")]
Inode = Annotated[
    int, msgspec.Meta(ge=0, le=0x7FFF_FFFF_FFFF_FFFF, description="an inode number from 0 to 2**63-1")
]
Pid = Annotated[
    int, msgspec.Meta(ge=1, le=4_194_304, description="a process id from 1 to 4194304")
]  # PID_MAX_LIMIT
Fd = Annotated[int, msgspec.Meta(ge=0, le=0x7FFF_FFFF, description="a descriptor number from 0 to 2**31-1")]
IfIndex = Annotated[
    int, msgspec.Meta(ge=1, le=0x7FFF_FFFF, description="an interface index from 1 to 2**31-1")
]
Weight = Annotated[int, msgspec.Meta(ge=1, le=256, description="a next hop weight from 1 to 256")]
# Text forms: an address (its form checked below), a UNIX name or process name
# (escaped bytes), a device name (the kernel's rule, :func:`~sockdiff.validation.device_name_problem`:
# escaped bytes make it longer than IFNAMSIZ), a name from a kernel table
# (flags, operstate, route type, protocol and scope, or a number where unnamed),
# a CIDR, a link-layer address as ip link prints it.
# 253: a host name a saved listing kept as written (validation.is_host_name).
AddressText = Annotated[str, msgspec.Meta(max_length=253, description="an address")]
NameText = Annotated[str, msgspec.Meta(max_length=4096, description="a name of at most 4096 characters")]
# dev_valid_name (net/core/dev.c) on the name's bytes: 1 to IFNAMSIZ-1 (15) of
# them, not "." or "..", and none of '/', ':' or what the kernel's isspace holds
# (lib/ctype.c: \t \n \v \f \r, space and 0xA0); NUL ends a C string. Any
# other byte is allowed: control characters, U+0085 and U+2028 (whose UTF-8
# bytes are none of those), bytes that are not UTF-8 (written \xNN).
IFNAMSIZ = 16
DEVICE_NAME_RULE = (
    "a device name (1 to 15 bytes; not '.' or '..'; no '/', ':', NUL, whitespace"
    " (tab, newline, vertical tab, form feed, carriage return, space) or byte 0xA0)"
)
DeviceName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=4 * (IFNAMSIZ - 1), description=DEVICE_NAME_RULE)
]
TableWord = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+\Z", description="a word from a kernel table"
    ),
]
CidrText = Annotated[
    str,
    msgspec.Meta(max_length=49, pattern=r"^[0-9a-f.:]+/[0-9]{1,3}\Z", description="an address/prefix text"),
]
LinkAddress = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[0-9a-f.:]+\Z",
        description="a link-layer address such as 02:00:00:00:00:01",
    ),
]


# A record's namespace in a snapshot of every namespace; UNSET (left out) otherwise.
NetnsInode = Inode | msgspec.UnsetType


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

    address: AddressText | msgspec.UnsetType = msgspec.UNSET
    port: Port | msgspec.UnsetType = msgspec.UNSET
    path: NameText | msgspec.UnsetType | None = msgspec.UNSET
    peer_inode: Inode | msgspec.UnsetType = msgspec.UNSET


def inet(address: str, port: int) -> Endpoint:
    """An IP endpoint; for raw sockets ``port`` is the protocol number."""
    return Endpoint(address, port)


def unix_name(path: str | None) -> Endpoint:
    """A UNIX socket's name: a path, ``@name`` when abstract, None when unnamed."""
    return Endpoint(path=path)


def unix_peer(peer_inode: int) -> Endpoint:
    """The inode of a UNIX socket's peer, 0 when it has none."""
    return Endpoint(peer_inode=peer_inode)


class Process(msgspec.Struct, frozen=True, order=True, gc=False):
    """A process holding a socket: its pid, ``comm`` name and descriptor number (None:
    unknown, as in a saved netstat -p listing, which shows none) (no cycle possible:
    not tracked by the collector)."""

    pid: Pid
    name: NameText
    fd: Fd | None


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
    inode: Inode
    uid: Uid | None
    recv_q: QueueSize | None
    send_q: QueueSize | None
    processes: tuple[Process, ...]
    interface: DeviceName | None = None
    v6only: bool | None = None
    # The inode of the network namespace the socket lives in, in a snapshot of
    # every namespace (``--all-netns``); left out of the file (UNSET) otherwise,
    # so a one-namespace snapshot keeps its bytes. Part of identity.
    netns: NetnsInode = msgspec.UNSET


NO_PROCESSES: tuple[Process, ...] = ()


class Holder(msgspec.Struct, frozen=True, gc=False):
    """A process holding a leaked socket: its pid, its command line (each argument escaped
    as any name), and how long it had run, in seconds, when the leak was found (None:
    it could not be read)."""

    pid: Pid
    command: tuple[str, ...]
    seconds: float | None


class Leak(msgspec.Struct, frozen=True, gc=False):
    """A socket a watched process tree left open (:mod:`sockdiff.leaks`), and whom it is blamed on.

    ``socket``: the socket, its holders in ``socket.processes``. ``owner``: the window
    (a test's id, a fixture's label, a command) that left it, of ``kind`` test,
    fixture or command, defined at ``file``:``line`` when known (``file`` empty
    otherwise). ``late``: opened by a process or thread the owner started, after the
    owner ended. ``created``: where the watching process created it (``path:line``,
    when tracemalloc knew); ``thread``: the name of the thread of the watching process
    that made it, when not the main one. ``appeared``: seconds after watching began
    that the socket was first seen, when the watcher polled. ``holders``: the command
    line and age of each process holding it. ``netns``: for a socket that lives in
    another network namespace than the watcher's, that namespace's label (its
    ``ip netns`` name, else ``net:[INODE]``; ``socket.netns`` is its inode); left
    out (UNSET) for one in the watcher's own.
    """

    socket: Socket
    owner: str
    kind: Literal["test", "fixture", "command"]
    file: str = ""
    line: int = 0
    late: bool = False
    created: str | None = None
    thread: str | None = None
    appeared: float | None = None
    holders: tuple[Holder, ...] = ()
    netns: NameText | msgspec.UnsetType = msgspec.UNSET


class PortHolder(msgspec.Struct, frozen=True, gc=False):
    """A socket bound to a port another bind wanted (EADDRINUSE): its processes, and
    ``opened_by``, the test or fixture that opened it when the pytest plugin saw it."""

    socket: Socket
    holders: tuple[Holder, ...]
    opened_by: str | None


class RunReport(msgspec.Struct, frozen=True, gc=False):
    """What ``sockdiff run -- CMD`` found: the command, how it ended, what its tree left open.

    ``exit_code``: CMD's (128 + N when signal N ended it); ``started_at``: when it
    started (UTC, ISO 8601), ``seconds``: how long it ran; ``fail_on``: the kinds
    counted; ``leaks``: the sockets counted that the tree still held; ``left_running``:
    the processes of the tree still running when CMD exited.
    """

    command: tuple[str, ...]
    exit_code: int
    started_at: str
    seconds: float
    fail_on: tuple[str, ...]
    leaks: tuple[Leak, ...]
    left_running: tuple[Holder, ...]


_LEAKS_ENCODER = msgspec.json.Encoder()


@functools.cache
def _leaks_decoder() -> msgspec.json.Decoder[tuple[tuple[Leak, ...], ...]]:
    # Made on first use: building it resolves every type a Leak holds (~1.3 ms of
    # every start of every command, and only run and the pytest plugin decode leaks).
    return msgspec.json.Decoder(tuple[tuple[Leak, ...], ...])


def encode_leaks(groups: Sequence[Sequence[Leak]]) -> str:
    """Groups of leaks as JSON text: what carries them between processes (pytest-xdist's
    workers, a teardown report)."""
    return _LEAKS_ENCODER.encode(groups).decode()


def decode_leaks(text: str | bytes) -> tuple[tuple[Leak, ...], ...]:
    """The groups of leaks :func:`encode_leaks` wrote."""
    return _leaks_decoder().decode(text)


# The flags fib_flag_trans (net/ipv4/fib_trie.c) writes in /proc/net/route.
RTF_UP, RTF_GATEWAY, RTF_HOST, RTF_REJECT = 0x1, 0x2, 0x4, 0x200
IPV4_ROUTE_FLAGS = RTF_UP | RTF_GATEWAY | RTF_HOST | RTF_REJECT
# include/uapi/linux/ipv6_route.h: netstat -6rn's n.
RTF_NONEXTHOP = 0x200000
IPV6_ROUTE_FLAGS = RTF_UP | RTF_GATEWAY | RTF_REJECT | RTF_NONEXTHOP

# netstat -i's Flg letters, in its order (lib/interface.c; net-tools 2.10 writes P
# for both PROMISC and POINTOPOINT, later versions p for the second).
NETSTAT_FLAG_LETTERS = (
    ("ALLMULTI", "A"),
    ("BROADCAST", "B"),
    ("DEBUG", "D"),
    ("LOOPBACK", "L"),
    ("MULTICAST", "M"),
    ("PROMISC", "P"),
    ("NOTRAILERS", "N"),
    ("NOARP", "O"),
    ("POINTOPOINT", "P"),
    ("SLAVE", "s"),
    ("MASTER", "m"),
    ("RUNNING", "R"),
    ("UP", "U"),
)


def netstat_flag_letters(flags: Iterable[str]) -> str:
    """netstat -i's Flg letters for IFF_* names (empty when none shows).

    >>> netstat_flag_letters(("LOOPBACK", "LOWER_UP", "RUNNING", "UP"))
    'LRU'
    """
    names = set(flags)
    return "".join(letter for name, letter in NETSTAT_FLAG_LETTERS if name in names)


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


def held_by(owners: Mapping[int, tuple[Process, ...]], inode: int) -> tuple[Process, ...]:
    """The processes ``owners`` says hold socket ``inode``, as :func:`make_socket` attributes
    them (which writes it in line, for speed): inode 0, a socket no descriptor holds, has none."""
    return owners.get(inode, NO_PROCESSES) if inode else NO_PROCESSES


def attributed(sockets: Sequence[Socket], owners: Mapping[int, tuple[Process, ...]]) -> list[Socket]:
    """``sockets`` (read without owners) with the processes ``owners`` says hold them."""
    replace = msgspec.structs.replace
    return [
        sock if not (holders := held_by(owners, sock.inode)) else replace(sock, processes=holders)
        for sock in sockets
    ]


def escape_name(raw: bytes) -> str:
    r"""Text for a UNIX socket name as the kernel holds it, in the notation of /proc/net/unix.

    Bytes that are not UTF-8 become ``\xNN`` and a backslash ``\\``, so no
    two paths collide. An abstract name (leading NUL) becomes ``@name`` with
    inner NULs as ``@``, as /proc/net/unix and ss show it (SPEC.md): there,
    ``\0a\0b`` and ``\0a@b`` are both ``@a@b``, since /proc cannot tell them
    apart and both backends must give one socket the same name. Such sockets
    still never merge: a UNIX socket is matched by its inode as well.

    >>> escape_name(b"\0svc\0x"), escape_name(b"\0svc@x")
    ('@svc@x', '@svc@x')
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


_ESCAPED = re.compile(r"(\\\\|\\x[0-9a-f]{2})")


def unescape_name(text: str) -> bytes | None:
    r"""The bytes :func:`escape_name` made ``text`` from, or None when it could not have.

    >>> unescape_name("t\x01\\xffx"), unescape_name("a\\\\b"), unescape_name("a\\b")
    (b't\x01\xffx', b'a\\b', None)
    """
    pieces: list[bytes] = []
    for index, part in enumerate(_ESCAPED.split(text)):
        if index % 2:
            pieces.append(b"\\" if part == "\\\\" else bytes.fromhex(part[2:]))
        elif "\\" in part:
            return None
        else:
            try:
                pieces.append(part.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate: no bytes give it
                return None
    raw = b"".join(pieces)
    return raw if escape_name(raw) == text else None


def name_text(name: str) -> str:
    r"""A name the system gave as text (a host name, a namespace's name from the command
    line: bytes that are not UTF-8 held as surrogates) in the records' notation (:func:`escape_name`).

    >>> name_text("ab\udcffcd"), name_text("a\\b")
    ('ab\\xffcd', 'a\\\\b')
    """
    return escape_name(os.fsencode(name))


def from_name_text(text: str) -> str:
    r"""The name :func:`name_text` wrote as ``text`` (as the system takes it), or ``text``
    itself where no name gives it (a file written before names were escaped).

    >>> from_name_text("ab\\xffcd") == "ab\udcffcd", from_name_text("a\\b")
    (True, 'a\\b')
    """
    raw = unescape_name(text)
    return text if raw is None else os.fsdecode(raw)


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

    rx_packets: U64
    rx_errors: U64
    rx_dropped: U64
    rx_overruns: U64
    tx_packets: U64
    tx_errors: U64
    tx_dropped: U64
    tx_overruns: U64
    # None where unknown: netstat -i shows packets, not bytes.
    rx_bytes: U64 | None = None
    tx_bytes: U64 | None = None


class Interface(msgspec.Struct, frozen=True, gc=False):
    """One network interface (``ip link`` and ``ip addr``, ``netstat -i``).

    ``flags`` are IFF_* names sorted alphabetically; ``addresses`` sorted CIDR
    texts; ``mac`` is None where the link has no hardware address (tun). A
    field a backend cannot know is None (``addresses`` too: netstat -i shows none).
    """

    name: DeviceName
    index: IfIndex | None
    flags: tuple[TableWord, ...]
    operstate: TableWord | None
    mtu: U32 | None
    mac: LinkAddress | None
    addresses: tuple[CidrText, ...] | None
    counters: Counters | None
    netns: NetnsInode = msgspec.UNSET  # as Socket.netns


class Nexthop(msgspec.Struct, frozen=True, gc=False):
    """One next hop of a multipath route (``ip route``'s ``nexthop via A dev D weight W``)."""

    gateway: AddressText | None
    dev: DeviceName | None
    weight: Weight


def nexthop_order(hop: Nexthop) -> tuple[str, str, int]:
    """The order a route's ``nexthops`` are kept in."""
    return (hop.gateway or "", hop.dev or "", hop.weight)


# RTN_* (include/uapi/linux/rtnetlink.h), named as ip route names them.
ROUTE_TYPES = (
    "unspec",
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "throw",
    "nat",
    "xresolve",
)
# RT_SCOPE_* (rtnetlink.h); ip route prints other numbers as they are.
ROUTE_SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
# RTPROT_* (rtnetlink.h), with iproute2's names (lib/rt_names.c and its
# rt_protos file); other numbers as ip prints them, in decimal (17, mrouted, too).
ROUTE_PROTOCOLS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    18: "keepalived",
    42: "babel",
    99: "openr",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}

# The routing tables the kernel names (include/uapi/linux/rtnetlink.h, enum rt_class_t),
# as ``ip route`` and ``--table`` write them.
RT_TABLE_DEFAULT = 253
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
ROUTE_TABLES = {"main": RT_TABLE_MAIN, "local": RT_TABLE_LOCAL, "default": RT_TABLE_DEFAULT}
# The table of an IPv6 route read from /proc in a table other than main and
# local: ipv6_route does not say which (0, RT_TABLE_UNSPEC, holds no route).
UNNUMBERED_TABLE = 0


class Route(msgspec.Struct, frozen=True, gc=False):
    """One route (``ip route show table all``, ``netstat -rn``).

    ``table``: 254 is main, 255 local. ``destination`` is CIDR text
    (``0.0.0.0/0``); ``type``, ``protocol`` and ``scope`` are None where
    unknown (/proc writes IPv6 blackhole, unreachable, prohibit and throw routes
    alike; it never tells a route's protocol).
    """

    family: Literal["inet", "inet6"]
    table: U32
    type: TableWord | None
    destination: CidrText
    gateway: AddressText | None
    dev: DeviceName | None
    # None where unknown: netstat -rn shows no metric (-rne does).
    metric: U32 | None
    protocol: TableWord | None
    scope: TableWord | None
    # netstat -rn's MSS, Window and irtt columns: the advertised MSS plus 40 (0
    # when not set), the window clamp, the initial RTT in ms; None where unknown.
    mss: U32 | None = None
    window: U32 | None = None
    irtt: U32 | None = None
    # Every next hop of an IPv4 multipath route, sorted (``gateway`` and ``dev``
    # are the first one's); None for a single-path route and where a backend
    # cannot know (/proc/net/route shows only the first hop). IPv6 keeps each
    # next hop as a route of its own.
    nexthops: tuple[Nexthop, ...] | None = None
    # IPv4: the RTF_* flags /proc/net/route writes (fib_flag_trans), netstat -rn's
    # Flags: U always, G via a gateway of either family (its address /proc does
    # not show when it is IPv6's), H a /32, ! (0x200) unreachable or prohibit;
    # what /proc knows of a route it cannot type. IPv6: only from a saved
    # netstat -6rn, the U, G, ! and n (RTF_NONEXTHOP) it showed. None otherwise,
    # and in older files.
    flags: U32 | None = None
    netns: NetnsInode = msgspec.UNSET  # as Socket.netns


def gateway_known(route: Route) -> bool:
    """Whether ``route.gateway`` is known: None is no gateway (the route reaches its link
    directly), known, unless the route's flags say G: via a gateway its source did not
    show (/proc's IPv4 route via an IPv6 neighbour, a gateway netstat -r printed as a
    host name), unknown.

    >>> gateway_known(Route("inet", 254, None, "10.0.0.0/8", None, "br0", None, None, None, flags=RTF_UP))
    True
    >>> gateway_known(Route("inet", 254, None, "10.0.0.0/8", None, "br0", None, None, None, flags=0x3))
    False
    """
    return route.gateway is not None or route.flags is None or not route.flags & RTF_GATEWAY


# The runtimes a container's cgroup path names (see sockdiff.namespaces).
RuntimeName = Literal["docker", "containerd", "crio", "podman", "nspawn", "lxc"]
ContainerText = Annotated[str, msgspec.Meta(max_length=256, description="a text of at most 256 characters")]


class Container(msgspec.Struct, frozen=True, gc=False):
    """The container a namespace's processes run in, as its runtime named their cgroup.

    ``id``: the runtime's id (64 hex for Docker, containerd, CRI-O and Podman;
    the machine or container name for systemd-nspawn and LXC); ``name``: the
    name the runtime keeps on disk (Docker's config.v2.json), None where unknown;
    ``pod``: a Kubernetes pod's UID, None outside Kubernetes.
    """

    runtime: RuntimeName
    id: ContainerText
    name: ContainerText | None
    pod: ContainerText | None


class Namespace(msgspec.Struct, frozen=True, gc=False):
    """One network namespace of a snapshot of every namespace.

    ``names``: its ``ip netns`` names, sorted; ``pids``: up to 8 processes that
    live in it, sorted; ``container``: None where no runtime's cgroup pattern matches.
    """

    inode: Inode
    names: tuple[NameText, ...]
    pids: tuple[Pid, ...]
    container: Container | None


def netns_of(record: Socket | Interface | Route) -> int | None:
    """The inode of a record's namespace; None in a snapshot of one namespace."""
    netns = record.netns
    return None if netns is msgspec.UNSET else netns


def namespace_label(namespace: Namespace) -> str:
    """A namespace as people name it: its ``ip netns`` name, else its container's name,
    else ``runtime:id[:12]``, else ``net:[INODE]``.

    >>> namespace_label(Namespace(4026532241, (), (), Container("docker", "3f2a9c1b0d4e77", None, None)))
    'docker:3f2a9c1b0d4e'
    >>> namespace_label(Namespace(4026532241, (), (), None))
    'net:[4026532241]'
    """
    if namespace.names:
        return namespace.names[0]
    container = namespace.container
    if container is not None:
        return container.name if container.name else f"{container.runtime}:{container.id[:12]}"
    return f"net:[{namespace.inode}]"


def namespace_pairing(namespace: Namespace) -> tuple[str, ...]:
    """What pairs a namespace with the other snapshot's: its ``ip netns`` name, else its
    container (runtime and name, else runtime and id), else its inode, which a
    restarted container does not keep. Within a snapshot two namespaces may
    share it (a process inside a container made a namespace of its own):
    :func:`namespace_pairings` tells them apart.

    >>> namespace_pairing(Namespace(7, (), (), Container("docker", "3f2a", "web", None)))
    ('container', 'docker', 'web')
    """
    if namespace.names:
        return ("name", namespace.names[0])
    container = namespace.container
    if container is not None:
        return ("container", container.runtime, container.name or container.id)
    return ("inode", str(namespace.inode))


def _first_pid(namespace: Namespace) -> int:
    """The lowest pid inside (a container's init comes first), past any pid when none lives in it."""
    return namespace.pids[0] if namespace.pids else 1 << 62


def namespace_pairings(namespaces: tuple[Namespace, ...] | None) -> dict[int, tuple[str, ...]]:
    """Inode -> :func:`namespace_pairing`, unique within the snapshot.

    Namespaces that claim one container (one runtime and id: a process inside
    made a namespace of its own, or someone placed a process in the container's
    cgroup) pair by neither: each pairs by its inode, which only the same
    namespace keeps, rather than one of them taking the container's records
    (see :func:`_contested`). Where namespaces of several containers share one,
    the first by container id, then by lowest pid, keeps it; each other one adds
    its container id (two Docker daemons, each with a container ``web``).

    >>> web, web2 = Container("docker", "3f2a", "web", None), Container("docker", "77b1", "web", None)
    >>> sorted(namespace_pairings((Namespace(7, (), (40,), web), Namespace(9, (), (12,), web2))).items())
    [(7, ('container', 'docker', 'web')), (9, ('container', 'docker', 'web', '77b1'))]
    >>> sorted(namespace_pairings((Namespace(7, (), (40,), web), Namespace(9, (), (12,), web))).items())
    [(7, ('inode', '7')), (9, ('inode', '9'))]
    """
    contested = _contested(namespaces)
    groups: dict[tuple[str, ...], list[Namespace]] = {}
    for namespace in namespaces or ():
        unnamed = not namespace.names and namespace.inode in contested
        pairing = ("inode", str(namespace.inode)) if unnamed else namespace_pairing(namespace)
        groups.setdefault(pairing, []).append(namespace)
    pairings: dict[int, tuple[str, ...]] = {}
    for key, group in groups.items():
        group.sort(key=_container_order)
        pairings[group[0].inode] = key
        taken = {key}
        for namespace in group[1:]:
            pairing = (*key, namespace.container.id if namespace.container is not None else "")
            if pairing in taken:
                pairing = (*pairing, f"net:[{namespace.inode}]")
            pairings[namespace.inode] = pairing
            taken.add(pairing)
    return pairings


def _contested(namespaces: tuple[Namespace, ...] | None) -> set[int]:
    """The inodes of namespaces that claim a container (runtime and id) another one claims too.

    A container has one namespace; a second claim is a namespace made inside it, or
    a process placed in its cgroup by someone who could: the claims cannot be told
    apart, so none is believed to be the container's (labels and pairings set
    them apart by inode).
    """
    claims: dict[tuple[str, str], list[int]] = {}
    for namespace in namespaces or ():
        container = namespace.container
        if container is not None:
            claims.setdefault((container.runtime, container.id), []).append(namespace.inode)
    return {inode for inodes in claims.values() if len(inodes) > 1 for inode in inodes}


def _container_order(namespace: Namespace) -> tuple[str, int, int]:
    """Which of several namespaces of one label keeps it: by container id, then lowest pid."""
    container = namespace.container
    return (container.id if container is not None else "", _first_pid(namespace), namespace.inode)


def _plain_label(namespace: Namespace, contested: set[int]) -> str:
    """:func:`namespace_label`, with ``@net:[INODE]`` for a namespace whose container another claims."""
    label = namespace_label(namespace)
    unnamed = not namespace.names and namespace.inode in contested
    return f"{label}@net:[{namespace.inode}]" if unnamed else label


def _label_candidates(namespace: Namespace, contested: set[int]) -> list[str]:
    """The labels a namespace may take, the plainest first (see :func:`namespace_labels`)."""
    inode = f"net:[{namespace.inode}]"
    if not namespace.names and namespace.inode in contested:
        return [_plain_label(namespace, contested)]
    if namespace.names:
        return [namespace.names[0], f"{namespace.names[0]}@{inode}"]
    container = namespace.container
    if container is None:
        return [inode]
    ids = [f"{container.runtime}:{container.id[:12]}", f"{container.runtime}:{container.id}"]
    named = [container.name, f"{container.runtime}:{container.name}"] if container.name else []
    return [*named, *ids, f"{ids[-1]}@{inode}"]


def _label_rank(namespace: Namespace) -> tuple[int, str, int, int]:
    """Who keeps a label several namespaces would take: an ``ip netns`` name, then a
    container's name, then a container's id, then an inode; then as pairing ranks them."""
    container = namespace.container
    kind = 0 if namespace.names else 3 if container is None else 1 if container.name else 2
    return (kind, *_container_order(namespace))


def namespace_description(namespace: Namespace) -> str:
    """What a namespace is, beside its label: ``docker 3f2a9c1b0d4e``, or ``net:[INODE]``.

    >>> namespace_description(Namespace(7, ("web",), (), None))
    'net:[7]'
    """
    container = namespace.container
    if container is None:
        return f"net:[{namespace.inode}]"
    return f"{container.runtime} {container.id[:12]}"


def namespace_labels(namespaces: tuple[Namespace, ...] | None) -> dict[int, str]:
    """Inode -> the label of each namespace, unique within the snapshot (empty for a
    one-namespace snapshot); a record's label is
    ``namespace_labels(snapshot.namespaces).get(netns_of(record))``.

    Each takes :func:`namespace_label` unless another namespace takes it first:
    an ``ip netns`` name first, then a container's name, then a container's id,
    then an inode; among containers, by id, then by lowest pid. One that loses
    its label takes the next of ``runtime:name``, ``runtime:id[:12]``,
    ``runtime:id``, then that with ``@net:[INODE]`` (an ``ip netns`` name:
    ``name@net:[INODE]``), so that the same namespaces on both sides of a
    comparison get the same labels. Namespaces that claim one container
    (:func:`_contested`) are each labelled ``LABEL@net:[INODE]``: none is the
    container's.

    >>> web = Container("docker", "3f2a9c1b0d4e77", "web", None)
    >>> sorted(namespace_labels((Namespace(7, (), (30,), web), Namespace(9, ("web",), (), None))).values())
    ['docker:web', 'web']
    >>> sorted(namespace_labels((Namespace(7, (), (30,), web), Namespace(9, (), (12,), web))).values())
    ['web@net:[7]', 'web@net:[9]']
    """
    ordered = sorted(namespaces or (), key=_label_rank)
    contested = _contested(namespaces)
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for namespace in ordered:  # the plain labels first, so a qualified one never takes one
        label = _plain_label(namespace, contested)
        if label not in taken:
            labels[namespace.inode] = label
            taken.add(label)
    for namespace in ordered:
        if namespace.inode in labels:
            continue
        candidates = _label_candidates(namespace, contested)
        free = [text for text in candidates if text not in taken]
        count = 2
        while not free:  # only names written to take another's labels get here
            free = [f"{candidates[-1]}#{count}"] if f"{candidates[-1]}#{count}" not in taken else []
            count += 1
        labels[namespace.inode] = free[0]
        taken.add(free[0])
    return {namespace.inode: labels[namespace.inode] for namespace in namespaces or ()}  # their order
