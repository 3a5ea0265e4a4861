"""Routes the way net-tools reads them: /proc/net/route, fib_trie and ipv6_route.

IPv4's main table (/proc/net/route shows nothing else) and every IPv6 table
(/proc/net/ipv6_route, what netstat -6rn lists). ipv6_route shows no table ids:
main and local are told by where the kernel writes them (see
:func:`ipv6_tables`), other tables get table 0 (:data:`UNNUMBERED_TABLE`). IPv4
route types and scopes come from /proc/net/fib_trie, which /proc/net/route lacks
(for tables of up to :data:`FIB_TRIE_MAX_ROUTES` routes: the kernel writes
fib_trie slowly).

What /proc cannot know is None: every route's protocol; the type of an IPv6
blackhole, unreachable, prohibit or throw route (all alike in ipv6_route); IPv6
routes' MSS, window and RTT; IPv4 types and scopes past FIB_TRIE_MAX_ROUTES.

Parsers are pure functions over a file's bytes, fed captured files in tests.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from socket import AF_INET, AF_INET6

from ...errors import BackendUnavailable
from ...model import (
    IPV4_ROUTE_FLAGS,
    RT_TABLE_MAIN,
    RTF_NONEXTHOP,
    RTF_REJECT,
    Route,
)
from ...routetables import ipv6_table_runs, ipv6_tables
from ..netnames import ROUTE_SCOPES, ROUTE_TYPES, interface_name, make_route
from .sockets import DEFAULT_NET_DIR, read_file, read_optional

__all__ = [
    "FIB_TRIE_MAX_ROUTES",
    "Ipv6RouteRow",
    "RouteRow",
    "ipv6_main_table",
    "ipv6_tables",
    "parse_fib_trie",
    "parse_ipv6_route",
    "parse_route",
    "read_routes",
    "routes_from",
]

# Route flags, include/uapi/linux/route.h and ipv6_route.h.
RTF_ANYCAST = 0x100000
RTF_LOCAL = 0x80000000
_NULL_ENTRY_FLAGS = RTF_REJECT | RTF_NONEXTHOP

# ---------------------------------------------------------------- parsers


def _ipv4_word(word: bytes) -> bytes:
    # /proc/net/route prints addresses as one host-order 32-bit word.
    return int(word, 16).to_bytes(4, sys.byteorder)


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One row of /proc/net/route (the main table, IPv4)."""

    dev: bytes | None  # None where the kernel writes "*": no device
    destination: bytes
    prefix_length: int
    gateway: str | None
    flags: int
    metric: int
    mss: int
    window: int
    irtt: int


def parse_route(data: bytes) -> list[RouteRow]:
    """The rows of /proc/net/route.

    >>> parse_route(b"Iface\\tDestination\\tGateway \\tFlags\\tRefCnt\\tUse\\tMetric\\tMask\\t\\tMTU\\t"
    ...     b"Window\\tIRTT\\nva\\t0000140A\\t0200090A\\t0003\\t0\\t0\\t0\\t0000FFFF\\t0\\t0\\t0\\n")
    ... # doctest: +NORMALIZE_WHITESPACE
    [RouteRow(dev=b'va', destination=b'\\n\\x14\\x00\\x00', prefix_length=16, gateway='10.9.0.2',
              flags=3, metric=0, mss=0, window=0, irtt=0)]
    """
    rows = []
    for line in data.split(b"\n")[1:]:
        fields = line.split()
        if len(fields) < 11:
            continue
        mask = int.from_bytes(_ipv4_word(fields[7]), "big")
        rows.append(
            RouteRow(
                dev=None if fields[0] == b"*" else fields[0],
                destination=_ipv4_word(fields[1]),
                prefix_length=mask.bit_count(),
                gateway=socket.inet_ntop(AF_INET, _ipv4_word(fields[2])),
                flags=int(fields[3], 16),
                metric=int(fields[6]),
                mss=int(fields[8]),
                window=int(fields[9]),
                irtt=int(fields[10]),
            )
        )
    return rows


def _trie_scope(word: str) -> str:
    # fib_trie writes a scope without a name as "scope=N"; ip route as "N".
    return word.removeprefix("scope=")


def parse_fib_trie(data: bytes, section: str = "Main") -> dict[tuple[str, int], list[tuple[str, str]]]:
    """(prefix, length) -> [(type, scope), ...] of one table of /proc/net/fib_trie.

    A leaf line ``|-- 10.9.0.0`` names a prefix; the lines under it, one per
    route in the kernel's order (that of /proc/net/route too), its length, scope
    and type. While no policy rule asks for another table, the kernel keeps the
    main and local tables in one trie and shows both under each heading.

    >>> parse_fib_trie(b"Main:\\n  |-- 10.30.0.0\\n     /16 universe BLACKHOLE\\n"
    ...                b"Local:\\n  |-- 10.9.0.1\\n     /32 host LOCAL\\n")
    {('10.30.0.0', 16): [('blackhole', 'universe')]}
    """
    found: dict[tuple[str, int], list[tuple[str, str]]] = {}
    inside = False
    prefix = ""
    for raw in data.decode("ascii", "replace").split("\n"):
        if raw and not raw.startswith(" "):
            inside = raw.rstrip(":") == section
            continue
        if not inside:
            continue
        words = raw.split()
        if len(words) == 2 and words[0] == "|--":
            prefix = words[1]
        elif len(words) >= 3 and words[0].startswith("/"):
            route_type = words[2].lower()
            found.setdefault((prefix, int(words[0][1:])), []).append(
                (route_type if route_type in ROUTE_TYPES else words[2], _trie_scope(words[1]))
            )
    return found


@dataclass(frozen=True, slots=True)
class Ipv6RouteRow:
    """One row of /proc/net/ipv6_route."""

    destination: bytes
    prefix_length: int
    gateway: str | None
    metric: int
    flags: int
    dev: bytes | None

    def is_default(self) -> bool:
        return self.prefix_length == 0

    def is_null_entry(self) -> bool:
        """The kernel's placeholder at the root of a table with no default route (ip route hides it)."""
        return self.prefix_length == 0 and self.flags == _NULL_ENTRY_FLAGS and self.metric == 0xFFFFFFFF


def parse_ipv6_route(data: bytes) -> list[Ipv6RouteRow]:
    """The rows of /proc/net/ipv6_route: destination, length, source, length,
    next hop, metric, references, use, flags, device (all hex but the device).

    >>> parse_ipv6_route(b"fd010000000000000000000000000000 40 " + b"0" * 32 + b" 00 "
    ...     b"fd000000000000000000000000000002 00000400 00000001 00000000 00000003       va\\n")
    ... # doctest: +NORMALIZE_WHITESPACE
    [Ipv6RouteRow(destination=b'\\xfd\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00',
                  prefix_length=64, gateway='fd00::2', metric=1024, flags=3, dev=b'va')]
    """
    rows = []
    for line in data.split(b"\n"):
        fields = line.split()
        if len(fields) < 9:
            continue
        rows.append(
            Ipv6RouteRow(
                destination=bytes.fromhex(fields[0].decode()),
                prefix_length=int(fields[1], 16),
                gateway=socket.inet_ntop(AF_INET6, bytes.fromhex(fields[4].decode())),
                metric=int(fields[5], 16),
                flags=int(fields[8], 16),
                dev=fields[9] if len(fields) > 9 else None,
            )
        )
    return rows


def ipv6_main_table(rows: Sequence[Ipv6RouteRow]) -> list[Ipv6RouteRow]:
    """The main table's rows of /proc/net/ipv6_route.

    The kernel visits tables by the bucket of their id in a 256-slot hash
    (ipv6_route_seq_next_table), so main (254) and local (255) come last, local
    after main. A kernel without multiple-table support has one table, main.
    A table added to a bucket goes first in it, so one sharing main's (510, ...)
    comes before main and is skipped, but one sharing local's (511, 767, ...)
    comes between main and local and would be taken for main.

    >>> def row(text, metric, flags=1):
    ...     net, _, length = text.partition("/")
    ...     return Ipv6RouteRow(socket.inet_pton(AF_INET6, net), int(length), None, metric, flags, b"va")
    >>> null = row("::/0", 0xFFFFFFFF, RTF_REJECT | RTF_NONEXTHOP)
    >>> [r.prefix_length for r in ipv6_main_table([  # table 100, main, local
    ...     row("fd02::/64", 1024), null, row("fd01::/64", 1024), row("::/0", 1024),
    ...     row("::1/128", 0, RTF_LOCAL), null])]
    [64, 0]
    """
    tables = ipv6_table_runs(rows)
    if len(tables) >= 2:
        return tables[-2]
    return tables[0] if tables else []


# ---------------------------------------------------------------- routes


def _ipv4_route_type(
    row: RouteRow, trie: dict[tuple[str, int], list[tuple[str, str]]]
) -> tuple[str | None, str | None]:
    """The type and scope fib_trie gives the route in this row; None, None if it does not.

    A candidate is taken once: the next row with the same prefix gets the next.
    """
    if row.flags & RTF_REJECT:
        fits = {"unreachable", "prohibit"}
    elif row.dev is None:
        fits = {"blackhole", "throw"}
    else:
        fits = set(ROUTE_TYPES) - {"blackhole", "throw", "unreachable", "prohibit", "broadcast", "multicast"}
    candidates = trie.get((socket.inet_ntop(AF_INET, row.destination), row.prefix_length), [])
    for position, (route_type, scope) in enumerate(candidates):
        if route_type in fits:
            del candidates[position]
            return route_type, scope
    return None, None


def _ipv6_route_type(row: Ipv6RouteRow) -> str | None:
    if row.flags & RTF_REJECT:
        return None  # blackhole, unreachable, prohibit or throw: ipv6_route writes them alike
    if row.flags & RTF_LOCAL:
        return "local"
    if row.flags & RTF_ANYCAST:
        return "anycast"
    # A route to a multicast prefix may be of type multicast (addrconf's ff00::/8)
    # or unicast (ip -6 route add ff05::/16 dev eth0): ipv6_route writes them alike.
    return None if row.destination[0] == 0xFF else "unicast"


def _device(raw: bytes | None) -> str | None:
    return None if raw is None else interface_name(raw)


def routes_from(route: bytes, fib_trie: bytes, ipv6_route: bytes) -> list[Route]:
    """IPv4's main table and every IPv6 table from the text of the three files, IPv4 then IPv6.

    IPv4 types and scopes are matched from fib_trie: per prefix, in the order
    both files list routes, among the types the row's flags allow. A row fib_trie
    does not account for (the files read a moment apart, or fib_trie not read:
    empty) has type and scope None.
    """
    trie = parse_fib_trie(fib_trie)
    routes = []
    for row in parse_route(route):
        route_type, scope = _ipv4_route_type(row, trie)
        routes.append(
            make_route(
                AF_INET,
                RT_TABLE_MAIN,
                route_type,
                row.destination,
                row.prefix_length,
                row.gateway,
                _device(row.dev),
                row.metric,
                None,
                scope,
                row.mss,
                row.window,
                row.irtt,
                flags=row.flags & IPV4_ROUTE_FLAGS,
            )
        )
    for table, row6 in (
        (table, row6) for table, rows in ipv6_tables(parse_ipv6_route(ipv6_route)) for row6 in rows
    ):
        routes.append(
            make_route(
                AF_INET6,
                table,
                _ipv6_route_type(row6),
                row6.destination,
                row6.prefix_length,
                row6.gateway,
                _device(row6.dev),
                row6.metric,
                None,
                # The kernel gives every IPv6 route universe scope (rt6_fill_node).
                ROUTE_SCOPES[0],
                None,  # ipv6_route does not show MSS, window or RTT
                None,
                None,
            )
        )
    return routes


# /proc hands a seq_file out 4 KB a read, and the kernel finds where fib_trie's
# next 4 KB start by walking the tries from the top: reading it takes time
# quadratic in the routes (~1.8 s at 100k, minutes for a full BGP table), where
# /proc/net/route remembers its place. Past this many IPv4 routes fib_trie is not
# read, and their types and scopes are None.
FIB_TRIE_MAX_ROUTES = 10_000


def read_routes(net_dir: str = DEFAULT_NET_DIR) -> list[Route]:
    """IPv4's main routing table and every IPv6 table of the calling thread's namespace.

    IPv6 routes are read from ipv6_route whatever their number, as netstat -6rn
    does, though the kernel writes that file in quadratic time too: nothing else
    in /proc has them.
    """
    try:
        route = read_file(f"{net_dir}/route")
    except OSError as err:
        raise BackendUnavailable(f"cannot read {net_dir}/route: {err.strerror}") from err
    few = route.count(b"\n") <= FIB_TRIE_MAX_ROUTES + 1
    fib_trie = read_optional(f"{net_dir}/fib_trie") if few else b""
    return routes_from(route, fib_trie, read_optional(f"{net_dir}/ipv6_route"))
