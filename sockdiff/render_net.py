"""Text renderings of interfaces and routes, laid out as net-tools 2.10's netstat -i and -rn.

The layouts follow netstat's printf formats (lib/interface.c ``ife_print_short``,
lib/inet_gr.c ``rprint_fib``, lib/inet6_gr.c ``rprint_fib6``) so a netstat user
reads them as before. Names are escaped (control characters as ``\\n``,
``\\xNN``) so an interface is always one line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from .errors import UsageError
from .model import Interface, Route
from .render import escape

__all__ = [
    "TABLE_NAMES",
    "interface_flags",
    "interface_table",
    "parse_table",
    "route_flags",
    "route_tables",
    "select_interfaces",
    "select_routes",
]

TABLE_NAMES = {"main": 254, "local": 255, "default": 253}
_TABLE_WORDS = {number: name for name, number in TABLE_NAMES.items()}

# netstat -i's Flg letters, in its order (net-tools 2.10 writes P for both PROMISC
# and POINTOPOINT; later versions write p for the second).
_FLAG_LETTERS = (
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

_INTERFACE_HEADER = "Iface             MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg"
_ROUTE_HEADER = "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface"
_ROUTE6_HEADER = "Destination                    Next Hop                   Flag Met If"
_REJECT_TYPES = frozenset({"unreachable", "prohibit"})
_IPV6_REJECT_TYPES = frozenset({"blackhole", "unreachable", "prohibit", "throw", None})
_TRAILING_DIGITS = re.compile(r"\d*$")


def interface_flags(interface: Interface) -> str:
    """netstat -i's Flg column.

    >>> interface_flags(Interface("lo", 1, ("LOOPBACK", "RUNNING", "UP"), None, 65536, None, (), None))
    'LRU'
    """
    letters = "".join(letter for name, letter in _FLAG_LETTERS if name in interface.flags)
    return letters or "[NO FLAGS]"


def _netstat_order(name: str) -> tuple[str, int, str]:
    # net-tools sorts interfaces by nstrcmp: the name without its trailing number,
    # then that number (eth2 before eth10).
    digits = _TRAILING_DIGITS.search(name)
    start = digits.start() if digits else len(name)
    return name[:start], int(name[start:] or 0), name


def select_interfaces(interfaces: Iterable[Interface], everything: bool) -> list[Interface]:
    """What netstat -i lists: the interfaces that are up (all with -a), in its order."""
    chosen = [i for i in interfaces if everything or "UP" in i.flags]
    return sorted(chosen, key=lambda interface: _netstat_order(interface.name))


def _number(value: int | None, width: int, left: bool = False) -> str:
    text = "-" if value is None else str(value)
    return text.ljust(width) if left else text.rjust(width)


def interface_table(interfaces: Sequence[Interface], header: bool = True) -> str:
    """``netstat -i``: name, MTU, packets, errors, drops and overruns each way, flags."""
    lines = ["Kernel Interface table", _INTERFACE_HEADER] if header else []
    for interface in interfaces:
        counters = interface.counters
        if counters is None:
            figures = f"{'     - no statistics available -':<56}"
        else:
            figures = (
                f"{_number(counters.rx_packets, 8)} {_number(counters.rx_errors, 6)} "
                f"{_number(counters.rx_dropped, 6)} {_number(counters.rx_overruns, 6, left=True)} "
                f"{_number(counters.tx_packets, 8)} {_number(counters.tx_errors, 6)} "
                f"{_number(counters.tx_dropped, 6)} {_number(counters.tx_overruns, 6)} "
            )
        name = escape(interface.name, backslash=False)
        lines.append(f"{name:<15} {_number(interface.mtu, 5)} {figures}{interface_flags(interface)}")
    return "\n".join(lines)


def parse_table(text: str) -> int | None:
    """A ``--table`` word: ``main``, ``local``, ``default``, a number, or ``all`` (None).

    >>> parse_table("main"), parse_table("100"), parse_table("all")
    (254, 100, None)
    """
    if text == "all":
        return None
    if text in TABLE_NAMES:
        return TABLE_NAMES[text]
    if text.isdigit() and 0 < int(text) < 1 << 32:
        return int(text)
    raise UsageError(f"unknown routing table {text!r} (main, local, all or a number)")


def select_routes(routes: Iterable[Route], families: Iterable[str], table: int | None) -> list[Route]:
    """The routes of ``families`` in ``table`` (None: every table), IPv4 first, in the kernel's order."""
    chosen = [r for r in routes if table is None or r.table == table]
    return [r for family in ("inet", "inet6") if family in families for r in chosen if r.family == family]


def _table_word(table: int) -> str:
    return _TABLE_WORDS.get(table, str(table))


def route_flags(route: Route) -> str:
    """netstat -rn's Flags: U (up), G (via a gateway), H (a host), ! (rejected).

    netstat -6rn also shows flags a route record does not keep (n, A, e, ...).

    >>> route_flags(Route("inet", 254, "unicast", "10.0.0.1/32", "10.0.0.9", "eth0", 0, None, None))
    'UGH'
    """
    if route.family == "inet6":
        # The kernel sets neither RTF_UP on IPv6 reject routes nor RTF_HOST on /128s.
        return "!" if route.type in _IPV6_REJECT_TYPES else "U" + ("G" if route.gateway else "")
    flags = "!" if route.type in _REJECT_TYPES else "U" + ("G" if route.gateway else "")
    return flags + ("H" if ipaddress.ip_network(route.destination, strict=False).prefixlen == 32 else "")


def _ipv4_line(route: Route) -> str:
    network = ipaddress.ip_network(route.destination, strict=False)
    flags = route_flags(route)
    if route.type in _REJECT_TYPES:
        unknown = "    - -          - -"  # netstat's figures for a rejected route
        return f"{network.network_address!s:<15} {'-':<15} {network.netmask!s:<15} {flags:<5} {unknown}"
    gateway = route.gateway or "0.0.0.0"
    dev = "*" if route.dev is None else escape(route.dev, backslash=False)
    return (
        f"{network.network_address!s:<15} {gateway:<15} {network.netmask!s:<15} {flags:<5} "
        f"{_number(route.mss, 5)} {_number(route.window, 5, left=True)} {_number(route.irtt, 6)} {dev}"
    )


def _ipv6_line(route: Route) -> str:
    dev = "" if route.dev is None else escape(route.dev, backslash=False)
    gateway = route.gateway or "::"
    return f"{route.destination:<30} {gateway:<26} {route_flags(route):<4} {route.metric:<3d} {dev}"


def route_tables(
    routes: Sequence[Route],
    families: Iterable[str] = ("inet", "inet6"),
    all_tables: bool = False,
    header: bool = True,
) -> str:
    """``netstat -rn`` for IPv4 routes, ``netstat -6rn`` (less Ref and Use) for IPv6.

    Each of ``families`` gets its table, headed even when empty (as netstat's).
    With routes of several tables (``all_tables``), each line ends in its table
    and type, which netstat, knowing only the main table, has no column for:
    the Iface column is padded so they line up under their headings.
    """
    sections = []
    for family, title, heading, render_line in (
        ("inet", "Kernel IP routing table", _ROUTE_HEADER, _ipv4_line),
        ("inet6", "Kernel IPv6 routing table", _ROUTE6_HEADER, _ipv6_line),
    ):
        if family not in families:
            continue
        chosen = [r for r in routes if r.family == family]
        rows = [render_line(route) for route in chosen]
        column = heading
        if all_tables:
            width = max(len(text) for text in [column, *rows])
            words = [_table_word(route.table) for route in chosen]
            table_width = max(len(word) for word in ["Table", *words])
            column = f"{column:<{width}}  {'Table':<{table_width}} Type"
            rows = [
                f"{row:<{width}}  {word:<{table_width}} {route.type or '-'}"
                for row, word, route in zip(rows, words, chosen, strict=True)
            ]
        lines = [title, column, *rows] if header else rows
        if lines:
            sections.append("\n".join(lines))
    return "\n".join(sections)
