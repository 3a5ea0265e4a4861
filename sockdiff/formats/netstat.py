"""``show -i`` and ``show --route``: interfaces and routes laid out as net-tools 2.10's netstat -i and -rn.

The layouts follow netstat's printf formats (lib/interface.c ``ife_print_short``,
lib/inet_gr.c ``rprint_fib``, lib/inet6_gr.c ``rprint_fib6``) so a netstat user
reads them as before. Names are escaped (control characters as ``\\n``,
``\\xNN``) so an interface is always one line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from ..errors import UsageError
from ..model import (
    ROUTE_TABLES,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTF_GATEWAY,
    RTF_HOST,
    RTF_NONEXTHOP,
    RTF_REJECT,
    RTF_UP,
    UNNUMBERED_TABLE,
    Interface,
    Route,
    netstat_flag_letters,
)
from .notation import escape

__all__ = [
    "interface_flags",
    "interface_table",
    "netstat_routes",
    "parse_table",
    "route_flags",
    "route_tables",
    "select_interfaces",
    "select_routes",
]

# Table 0 is /proc's IPv6 table other than main and local, whose id it does not show.
_TABLE_WORDS = {number: name for name, number in ROUTE_TABLES.items()} | {UNNUMBERED_TABLE: "-"}

_INTERFACE_HEADER = "Iface             MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg"
_ROUTE_HEADER = "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface"
# netstat -rne's: the metric in place of MSS, Window and irtt (Ref and Use, which the
# kernel writes 0 in /proc/net/route, as 0).
_ROUTE_METRIC_HEADER = "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface"
_ROUTE6_HEADER = "Destination                    Next Hop                   Flag Met Ref  Use If"
_REJECT_TYPES = frozenset({"unreachable", "prohibit"})
# IPv6 routes the kernel makes RTF_REJECT | RTF_NONEXTHOP (fib6_is_reject): these
# types, always on the loopback device (/proc writes all four alike, type None,
# as it does a route to a multicast prefix, which is on its own device), and any
# other route on the loopback device but a local or anycast one or one to ::1
# ("we cannot add true routes via loopback here", net/ipv6/route.c).
_IPV6_REJECT_TYPES = frozenset({"blackhole", "unreachable", "prohibit", "throw"})
_IPV6_NOT_REJECTED_ON_LO = frozenset({"local", "anycast"})
_LOOPBACK = ipaddress.IPv6Address("::1")
_LOOPBACK_NAME = "lo"
# The kernel's own local and anycast routes, made for an address (addrconf_f6i_alloc),
# carry RTF_NONEXTHOP; a local route added by hand does not (its protocol is not kernel).
_NONEXTHOP_TYPES = frozenset({"local", "anycast"})
_KERNEL_MADE = frozenset({"kernel", None})
# The root of an IPv6 table holds its default routes or, without one, the kernel's
# null entry, which ipv6_route lists (netstat -6rn shows it) and rtnetlink does not.
_IPV6_DEFAULT = "::/0"
_NULL_METRIC = 0xFFFFFFFF
_TRAILING_DIGITS = re.compile(r"\d*$")


def interface_flags(interface: Interface) -> str:
    """netstat -i's Flg column.

    >>> interface_flags(Interface("lo", 1, ("LOOPBACK", "RUNNING", "UP"), None, 65536, None, (), None))
    'LRU'
    """
    return netstat_flag_letters(interface.flags) or "[NO FLAGS]"


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
    """``netstat -i``: name, MTU, packets, errors, drops and overruns each way, flags.

    The Iface column is netstat's 15, widened to the longest name where an
    escaped one is longer (a 15-byte name of control bytes reads 60), so every
    row keeps its columns under the heading.
    """
    names = [escape(interface.name, backslash=False) for interface in interfaces]
    width = max(15, *map(len, names)) if names else 15
    heading = "Iface".ljust(width) + _INTERFACE_HEADER[15:]
    lines = ["Kernel Interface table", heading] if header else []
    for interface, name in zip(interfaces, names, strict=True):
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
        lines.append(f"{name:<{width}} {_number(interface.mtu, 5)} {figures}{interface_flags(interface)}")
    return "\n".join(lines)


def parse_table(text: str) -> int | None:
    """A ``--table`` word: ``main``, ``local``, ``default``, a number, or ``all`` (None).

    >>> parse_table("main"), parse_table("100"), parse_table("all")
    (254, 100, None)
    """
    if text == "all":
        return None
    if text in ROUTE_TABLES:
        return ROUTE_TABLES[text]
    # ASCII digits, at most a u32's ten: str.isdigit() takes '²', and int() refuses 5000 digits.
    if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) < 1 << 32:
        return int(text)
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise UsageError(f"unknown routing table {shown!r} (main, local, all or a number)")


def select_routes(routes: Iterable[Route], families: Iterable[str], table: int | None) -> list[Route]:
    """The routes of ``families`` in ``table`` (None: every table), IPv4 first, in the kernel's order."""
    chosen = [r for r in routes if table is None or r.table == table]
    return [r for family in ("inet", "inet6") if family in families for r in chosen if r.family == family]


def _table_word(table: int) -> str:
    return _TABLE_WORDS.get(table, str(table))


def _ipv6_rejected(route: Route) -> bool:
    if route.type in _IPV6_REJECT_TYPES:
        return True
    if route.dev != _LOOPBACK_NAME or route.type in _IPV6_NOT_REJECTED_ON_LO:
        return False
    if route.type is None:
        return True  # /proc's reject route, whatever its destination
    return ipaddress.ip_network(route.destination, strict=False).network_address != _LOOPBACK


def route_flags(route: Route) -> str:
    """netstat -rn's Flags: U (up), G (via a gateway), H (a host), ! (rejected); IPv6 adds n (no next hop).

    IPv4's are /proc/net/route's (fib_flag_trans): a reject route's flags are
    "!" (netstat writes it over U and G) and H. IPv6's are the RTF_* flags of
    /proc/net/ipv6_route (net/ipv6/route.c): a rejected route is "!n", never
    U; the kernel's local and anycast routes "Un"; no RTF_HOST on a /128.
    Flags a route record does not keep (A, D, e, the RA-learned routes'
    marks; C of cached routes, which are left out) are not shown.

    >>> route_flags(Route("inet", 254, "unicast", "10.0.0.1/32", "10.0.0.9", "eth0", 0, None, None))
    'UGH'
    >>> route_flags(Route("inet6", 254, "unicast", "fd99::1/128", None, "lo", 256, "kernel", None))
    '!n'
    >>> route_flags(Route("inet6", 255, "local", "::1/128", None, "lo", 0, "kernel", None))
    'Un'
    """
    if route.family == "inet6":
        if route.flags is not None:  # as a saved netstat -6rn showed them
            return (
                ("!" if route.flags & RTF_REJECT else "U" if route.flags & RTF_UP else "")
                + ("G" if route.flags & RTF_GATEWAY else "")
                + ("n" if route.flags & RTF_NONEXTHOP else "")
            )
        if _ipv6_rejected(route):
            return "!" + ("G" if route.gateway else "") + "n"
        nonexthop = route.type in _NONEXTHOP_TYPES and route.protocol in _KERNEL_MADE
        return "U" + ("G" if route.gateway else "") + ("n" if nonexthop else "")
    if route.flags is not None:  # /proc/net/route's, as netstat prints them (lib/inet_gr.c)
        flags = "!" if route.flags & RTF_REJECT else "U" + ("G" if route.flags & RTF_GATEWAY else "")
        return flags + ("H" if route.flags & RTF_HOST else "")
    flags = "!" if route.type in _REJECT_TYPES else "U" + ("G" if route.gateway else "")
    return flags + ("H" if ipaddress.ip_network(route.destination, strict=False).prefixlen == 32 else "")


def _ipv4_rejected(route: Route) -> bool:
    return route.type in _REJECT_TYPES if route.flags is None else bool(route.flags & RTF_REJECT)


def _ipv4_line(route: Route, metric: bool = False) -> str:
    """netstat -rn's row of ``route``; ``metric``: -rne's (Metric, Ref, Use before Iface)."""
    network = ipaddress.ip_network(route.destination, strict=False)
    flags = route_flags(route)
    if _ipv4_rejected(route) and not metric:
        unknown = "    - -          - -"  # netstat's figures for a rejected route
        return f"{network.network_address!s:<15} {'-':<15} {network.netmask!s:<15} {flags:<5} {unknown}"
    # An IPv6 gateway (RFC 5549) is 0.0.0.0 in /proc/net/route, and so in netstat -rn.
    gateway = route.gateway if route.gateway and ":" not in route.gateway else "0.0.0.0"
    dev = "*" if route.dev is None else escape(route.dev, backslash=False)
    if metric:
        return (
            f"{network.network_address!s:<15} {gateway:<15} {network.netmask!s:<15} {flags:<5} "
            f"{_number(route.metric, 6, left=True)} {0:<2} {0:>7} {dev}"
        )
    return (
        f"{network.network_address!s:<15} {gateway:<15} {network.netmask!s:<15} {flags:<5} "
        f"{_number(route.mss, 5)} {_number(route.window, 5, left=True)} {_number(route.irtt, 6)} {dev}"
    )


def _metric_layout(routes: Sequence[Route]) -> bool:
    """Whether IPv4 ``routes`` are printed as netstat -rne printed them: each with a metric
    and none with an MSS, window or irtt (what a saved -rne listing knows)."""
    return bool(routes) and all(
        r.metric is not None and r.mss is None and r.window is None and r.irtt is None for r in routes
    )


def _ipv6_line(route: Route) -> str:
    # netstat -6rn's "%-30s %-26s %-4s %-3d %-1d %6d %s": the metric as a C int
    # (the null entry's 0xffffffff is -1), then Ref, which a record does not
    # keep (a reference count, not part of the route), and Use, which the
    # kernel writes as 0.
    dev = "" if route.dev is None else escape(route.dev, backslash=False)
    gateway = route.gateway or "::"
    if route.metric is None:
        metric = "-"
    else:
        metric = str(route.metric - (1 << 32) if route.metric >= 1 << 31 else route.metric)
    return f"{route.destination:<30} {gateway:<26} {route_flags(route):<4} {metric:<3} - {0:>6} {dev}"


def _ipv6_table_order(routes: Iterable[Route]) -> list[tuple[int, list[Route]]]:
    """IPv6 routes by table, in the order the kernel walks tables; main and local always.

    Routes come table by table (rtnetlink and /proc list them so). /proc does
    not number tables other than main and local: a run of them is cut where a
    table's walk ends, after its default routes (the last it visits, by rising
    metric), as :func:`sockdiff.routetables.ipv6_tables` cuts the file.
    """
    tables: list[tuple[int, list[Route]]] = []
    previous: Route | None = None
    for route in routes:
        if route.family != "inet6":
            continue
        at_root = previous is not None and previous.destination == _IPV6_DEFAULT
        if (
            previous is None
            or route.table != previous.table
            or (route.table == UNNUMBERED_TABLE and at_root and route.destination != _IPV6_DEFAULT)
            or (route.table == UNNUMBERED_TABLE and at_root and (route.metric or 0) < (previous.metric or 0))
        ):
            tables.append((route.table, []))
        tables[-1][1].append(route)
        previous = route
    tables += [
        (table, []) for table in (RT_TABLE_MAIN, RT_TABLE_LOCAL) if table not in {t for t, _ in tables}
    ]
    # By slot (id modulo 256), stable: rtnetlink's and /proc's order within a
    # slot; main and local, the first tables made, last in theirs.
    return sorted(tables, key=lambda pair: (pair[0] & 0xFF, pair[0] in (RT_TABLE_MAIN, RT_TABLE_LOCAL)))


def netstat_routes(routes: Iterable[Route], families: Iterable[str]) -> list[Route]:
    """The routes ``netstat -rn`` (IPv4) and ``netstat -6rn`` (IPv6) list, in their order.

    IPv4: the main table, as /proc/net/route. IPv6: every table, as
    /proc/net/ipv6_route, in the order the kernel walks them (by table id
    modulo 256, the newest first in a slot, so main and local last) and, in a
    table, in the order rtnetlink and /proc list its routes. (The null entries
    netstat also lists are no routes: :func:`route_tables` writes them.)
    """
    wanted = set(families)
    routes = list(routes)
    chosen = [r for r in routes if "inet" in wanted and r.family == "inet" and r.table == RT_TABLE_MAIN]
    if "inet6" in wanted:
        chosen += [r for _, rows in _ipv6_table_order(routes) for r in rows]
    return chosen


def _with_null_entries(routes: Sequence[Route]) -> list[Route]:
    """IPv6 ``routes`` (netstat's order) with the null entry ending each table that has no default route.

    The root of such a table holds the kernel's null entry, which ipv6_route
    lists (netstat -6rn shows ``::/0 :: !n -1 lo``) and rtnetlink does not.
    Main and local always exist; another table with no route left cannot be
    told from none, nor, read from /proc, two unnumbered tables in a row that
    have no default route from one.
    """
    rows = []
    for table, routes_of in _ipv6_table_order(routes):
        rows += routes_of
        if not any(r.destination == _IPV6_DEFAULT for r in routes_of):
            rows.append(
                Route("inet6", table, None, _IPV6_DEFAULT, None, _LOOPBACK_NAME, _NULL_METRIC, None, None)
            )
    return rows


def route_tables(
    routes: Sequence[Route],
    families: Iterable[str] = ("inet", "inet6"),
    all_tables: bool = False,
    header: bool = True,
    null_entries: bool = False,
    from_text: bool = False,
) -> str:
    """``netstat -rn`` for IPv4 routes, ``netstat -6rn`` for IPv6 (Ref, which a record does not keep, as -).

    ``from_text``: routes of a saved netstat listing, printed back in its layout
    (-rne's Metric, Ref and Use when it showed a metric and no MSS).

    Each of ``families`` gets its table, headed even when empty (as netstat's).
    With routes of several tables (``all_tables``), each line ends in its table
    and type, which netstat has no column for: the Iface column is padded so
    they line up under their headings. With ``null_entries`` (netstat's view),
    each IPv6 table without a default route ends in the kernel's null entry.
    """
    sections = []
    for family, title, heading, render_line in (
        ("inet", "Kernel IP routing table", _ROUTE_HEADER, _ipv4_line),
        ("inet6", "Kernel IPv6 routing table", _ROUTE6_HEADER, _ipv6_line),
    ):
        if family not in families:
            continue
        chosen = [r for r in routes if r.family == family]
        if null_entries and family == "inet6":
            chosen = _with_null_entries(chosen)
        column = heading
        if family == "inet" and from_text and _metric_layout(chosen):
            column = _ROUTE_METRIC_HEADER
            rows = [_ipv4_line(route, metric=True) for route in chosen]
        else:
            rows = [render_line(route) for route in chosen]
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
