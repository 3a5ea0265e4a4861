"""What net-tools' ``netstat -i`` and ``netstat -r`` printed, read back into interfaces and routes.

``netstat -i`` (``-a``: down interfaces too; net-tools 1.60's ``Met`` column
too) gives an interface's name, MTU, packet counters and its Flg letters: no
index, operational state, hardware or IP address (None), no byte counts, and
of the flags only those netstat has a letter for (see
:func:`sockdiff.model.netstat_flag_letters`; net-tools 2.10 writes ``P`` for
PROMISC and POINTOPOINT alike, read as POINTOPOINT). ``netstat -r`` is the
IPv4 main table: no metric without ``-e`` (None), no MSS, window or RTT with
one ``-e`` only (None); types, protocols and scopes are never shown (None).
``netstat -6r`` is every IPv6 table, numbered as the proc backend numbers
/proc/net/ipv6_route's (:mod:`sockdiff.routetables`: main, local, the others
unnumbered), its Flag kept as the route's flags. Host names netstat printed
for gateways (without ``-n``) are unknown gateways; a network name cannot be
read.

>>> routes = Routes()
>>> read_row(routes, "inet", ["Destination", "Gateway", "Genmask", "Flags", "MSS", "Window", "irtt", "Iface"],
...          "10.20.0.0       10.9.0.2        255.255.0.0     UG        0 0          0 va")
>>> route = routes.inet[0]
>>> route.destination, route.gateway, route.metric, route.dev
('10.20.0.0/16', '10.9.0.2', None, 'va')
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass, field

import msgspec

from ..model import (
    NETSTAT_FLAG_LETTERS,
    RT_TABLE_MAIN,
    RTF_GATEWAY,
    RTF_HOST,
    RTF_NONEXTHOP,
    RTF_REJECT,
    RTF_UP,
    Counters,
    Interface,
    Route,
    escape_name,
)
from ..routetables import ipv6_tables
from ..validation import device_name_problem, interface_problem, is_host_name, route_problem
from .common import Unreadable, is_number

__all__ = ["TITLES", "Routes", "interface_row", "read_row", "routes_of", "table_columns"]

# The tables' titles, and which each is.
TITLES = {
    "Kernel Interface table": "interfaces",
    "Kernel IP routing table": "inet",
    "Kernel IPv6 routing table": "inet6",
}
# Each letter of Flg, and the flag it is (P as POINTOPOINT: see the module's docstring).
_LETTERS = {letter: name for name, letter in NETSTAT_FLAG_LETTERS} | {"p": "POINTOPOINT"}
_NO_FLAGS = "[NO FLAGS]"
_NO_STATISTICS = re.compile(r" +- no statistics available - +")
_WORD = re.compile(r"[^ ]+")  # netstat pads with spaces; a name may hold any other byte
# netstat -r's and -6r's Flags letters a record keeps (the others: D, M, R, A, C, e, ...).
_ROUTE_LETTERS = {"U": RTF_UP, "G": RTF_GATEWAY, "H": RTF_HOST, "!": RTF_REJECT | RTF_UP}
_ROUTE6_LETTERS = {"U": RTF_UP, "G": RTF_GATEWAY, "!": RTF_REJECT, "n": RTF_NONEXTHOP}
_ROUTE_FLAG_LETTERS = frozenset("UGHRDMACe!n")
_NULL_METRIC = 0xFFFFFFFF
_NULL_ENTRY_FLAGS = RTF_REJECT | RTF_NONEXTHOP
_INTERFACE_COUNTERS = ("RX-OK", "RX-ERR", "RX-DRP", "RX-OVR", "TX-OK", "TX-ERR", "TX-DRP", "TX-OVR")


# The columns each table's header must name (others, such as -e's Ref and Use, are read past).
_NEEDED = {
    "interfaces": frozenset({"Iface", "MTU", *_INTERFACE_COUNTERS}),
    "inet": frozenset({"Destination", "Gateway", "Genmask", "Flags", "Iface"}),
    "inet6": frozenset({"Destination", "Next Hop", "Flag", "Met", "If"}),
}


def table_columns(table: str, line: str) -> list[str] | None:
    """The header line of ``table`` (``interfaces``, ``inet``, ``inet6``) as its column names;
    None when ``line`` is not one."""
    words = line.replace("Next Hop", "Next\0Hop").split()
    words = [word.replace("\0", " ") for word in words]
    if words[:1] != [("Iface" if table == "interfaces" else "Destination")] or len(set(words)) != len(words):
        return None
    return words if _NEEDED[table] <= set(words) else None


@functools.lru_cache(maxsize=1024)  # a table names a few devices, on every row
def _device(text: str) -> str:
    name = escape_name(text.encode("utf-8", "surrogateescape"))
    problem = device_name_problem(name)
    if problem is not None:
        raise Unreadable(f"{name!r}: {problem}")
    return name


def _number(text: str, what: str, limit: int = 0x7FFF_FFFF_FFFF_FFFF) -> int:
    if not is_number(text) or int(text) > limit:
        raise Unreadable(f"{what} {text!r} is not a number netstat prints")
    return int(text)


def interface_row(line: str, columns: list[str]) -> tuple[Interface, bool]:
    """One row of ``netstat -i``; and whether it shows an interface that is down (so -a was given)."""
    statistics = _NO_STATISTICS.search(line)
    body = line[: statistics.start()] + " " + line[statistics.end() :] if statistics else line
    no_flags = body.rstrip(" ").endswith(_NO_FLAGS)
    if no_flags:
        body = body.rstrip(" ")[: -len(_NO_FLAGS)]
    words = [match.group() for match in _WORD.finditer(body)]
    wanted = [
        name for name in columns if name != "Flg" and (statistics is None or name not in _INTERFACE_COUNTERS)
    ]
    values = dict(zip(wanted, words, strict=False))
    if len(words) != len(wanted) + (0 if no_flags else 1):
        raise Unreadable(f"an interface row holds {' '.join(columns)}")
    flags = set()
    if not no_flags:
        for letter in words[-1]:
            if letter not in _LETTERS:
                raise Unreadable(f"{letter!r} is not a letter of netstat -i's Flg")
            flags.add(_LETTERS[letter])
    counters = None
    if statistics is None:
        counters = Counters(*(_number(values[name], name) for name in _INTERFACE_COUNTERS))
    mtu = _number(values["MTU"], "MTU", 0xFFFF_FFFF)
    interface = Interface(
        _device(values["Iface"]), None, tuple(sorted(flags)), None, mtu, None, None, counters
    )
    problem = interface_problem(interface)
    if problem is not None:
        raise Unreadable(problem)
    return interface, "UP" not in flags


@dataclass(frozen=True, slots=True)
class _Row6:
    """One row of ``netstat -6r``, as :mod:`sockdiff.routetables` cuts them into tables."""

    route: Route
    metric: int
    flags: int

    def is_default(self) -> bool:
        return self.route.destination == "::/0"

    def is_null_entry(self) -> bool:
        return self.is_default() and self.flags == _NULL_ENTRY_FLAGS and self.metric == _NULL_METRIC


@dataclass
class Routes:
    """The routes of a listing's routing tables, each family's in the order printed."""

    inet: list[Route] = field(default_factory=list)
    inet6: list[_Row6] = field(default_factory=list)
    families: set[str] = field(default_factory=set)
    host_names: set[str] = field(default_factory=set)


def routes_of(routes: Routes) -> list[Route]:
    """IPv4's routes, then IPv6's, each in the table it is in."""
    found = list(routes.inet)
    for table, rows in ipv6_tables(routes.inet6):
        for row in rows:
            found.append(msgspec.structs.replace(row.route, table=table))
    return found


def _route_flags(text: str, letters: dict[str, int]) -> int:
    flags = 0
    for letter in text:
        if letter not in _ROUTE_FLAG_LETTERS:
            raise Unreadable(f"{letter!r} is not a letter of netstat -r's Flags")
        flags |= letters.get(letter, 0)
    return flags


def _address(text: str, version: int) -> str:
    """An address in canonical form (inet_ntop's, as the backends write them); "" if not one."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text.strip("[]")))
    except (OSError, ValueError):
        return ""


def _gateway(text: str, version: int, routes: Routes) -> str | None:
    """A gateway column: None for none (``0.0.0.0``, ``::``, ``*``, ``-``) and for a host name."""
    if text in ("*", "-"):
        return None
    address = _address(text, version)
    if address:
        return None if address in ("0.0.0.0", "::") else address
    if is_host_name(text):
        routes.host_names.add(text)  # netstat -r named it: unknown, as the note says
        return None
    raise Unreadable(f"{text!r} is neither an address nor a host name")


def _optional(values: dict[str, str], name: str) -> int | None:
    text = values.get(name)
    return None if text is None or text == "-" else _number(text, name, 0xFFFF_FFFF)


def read_row(routes: Routes, family: str, columns: list[str], line: str) -> None:
    """One row of ``netstat -r`` (``family`` inet) or ``-6r`` (inet6) into ``routes``."""
    words = [match.group() for match in _WORD.finditer(line)]
    if len(words) != len(columns):
        raise Unreadable(f"a route row holds {' '.join(columns)}")
    values = dict(zip(columns, words, strict=True))
    if family == "inet":
        route = _ipv4_route(values, routes)
        routes.inet.append(route)
    else:
        route, metric, flags = _ipv6_route(values, routes)
        routes.inet6.append(_Row6(route, metric, flags))
    problem = route_problem(route)
    if problem is not None:
        raise Unreadable(problem)
    routes.families.add(family)


def _ipv4_route(values: dict[str, str], routes: Routes) -> Route:
    destination = "0.0.0.0" if values["Destination"] == "default" else _address(values["Destination"], 4)
    if not destination:
        raise Unreadable(f"{values['Destination']!r} is not an IPv4 network (a name: take netstat -rn)")
    length = _mask_length(values["Genmask"])
    bits = int.from_bytes(socket.inet_pton(socket.AF_INET, destination))
    if length is None or bits & ((1 << (32 - length)) - 1):
        raise Unreadable(f"{values['Destination']}/{values['Genmask']} is not a network and its mask")
    dev = values["Iface"]
    return Route(
        "inet",
        RT_TABLE_MAIN,
        None,  # netstat shows no type
        f"{destination}/{length}",
        _gateway(values["Gateway"], 4, routes),
        None if dev in ("*", "-") else _device(dev),
        _optional(values, "Metric"),
        None,
        None,
        _optional(values, "MSS"),
        _optional(values, "Window"),
        _optional(values, "irtt"),
        flags=_route_flags(values["Flags"], _ROUTE_LETTERS),
    )


@functools.lru_cache(maxsize=64)
def _mask_length(text: str) -> int | None:
    """A netmask's prefix length (``255.255.240.0``: 20); None when it is not a netmask."""
    try:
        bits = int.from_bytes(socket.inet_pton(socket.AF_INET, text))
    except (OSError, UnicodeError, ValueError):  # UnicodeError: a byte that is not UTF-8
        return None
    length = bin(bits).count("1")
    return length if bits == (0xFFFF_FFFF << (32 - length)) & 0xFFFF_FFFF else None


def _ipv6_route(values: dict[str, str], routes: Routes) -> tuple[Route, int, int]:
    text = values["Destination"]
    prefix, slash, length = text.partition("/")
    destination = _address(prefix, 6)
    try:
        network = ipaddress.IPv6Network(f"{destination}/{length}") if destination and slash else None
    except ValueError:
        network = None
    if network is None:
        raise Unreadable(f"{text!r} is not an IPv6 network")
    canonical = f"{_address(str(network.network_address), 6)}/{network.prefixlen}"
    flags = _route_flags(values["Flag"], _ROUTE6_LETTERS)
    metric = -1 if values["Met"] == "-1" else _number(values["Met"], "metric", _NULL_METRIC)
    metric &= _NULL_METRIC  # netstat prints the metric as a C int: the null entry's is -1
    route_type = None  # rejected (blackhole, unreachable, ...), local or anycast: not told apart
    if not flags & (RTF_REJECT | RTF_NONEXTHOP) and not network.is_multicast:
        route_type = "unicast"
    dev = values["If"]
    route = Route(
        "inet6",
        RT_TABLE_MAIN,  # numbered once its table is known (routes_of)
        route_type,
        canonical,
        _gateway(values["Next Hop"], 6, routes),
        _device(dev) if dev else None,
        metric,
        None,
        None,
        flags=flags,
    )
    return route, metric, flags
