"""What a snapshot covers, as its header's ``sources`` says it: the sections, the backends, the route tables.

``sources`` maps each protocol and section to the word of what read it
(SPEC.md's file format keeps those words: ``"netlink"``, ``"proc"``, and for
routes read from /proc ``"proc (IPv4 main table only)"``). What such a word
means for the routing tables a routes section holds is stated once, here:
:data:`ROUTE_SOURCES`, read through :func:`route_coverage` by the differ, the
CLI and the notes. The backends registry (:mod:`sockdiff.backends`) names the
:class:`RouteCoverage` each route reader has; nothing here reads the kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .model import RT_TABLE_LOCAL, RT_TABLE_MAIN, UNNUMBERED_TABLE

__all__ = [
    "EVERY_TABLE",
    "NETSTAT_INTERFACES",
    "NETSTAT_ROUTES",
    "NETSTAT_UP_INTERFACES",
    "PROC_MAIN_TABLES",
    "PROC_ROUTES",
    "ROUTE_SOURCES",
    "SECTIONS",
    "SOURCE_NAMES",
    "BackendName",
    "RouteCoverage",
    "route_coverage",
]

# The sections of a snapshot, in file order.
SECTIONS = ("sockets", "interfaces", "routes")
# What a snapshot says it was read with: auto resolved.
# A saved listing (sockdiff.saved) names the tool whose text it was.
BackendName = Literal["netlink", "proc", "ss-text", "netstat-text"]


@dataclass(frozen=True, slots=True)
class RouteCoverage:
    """The routing tables a routes section holds, per family (None: every table, each numbered).

    ``source`` is the word ``sources`` writes for it; ``older``: a file written
    before /proc's every IPv6 table was read (its IPv6 main table only).
    """

    source: str
    inet: frozenset[int] | None
    inet6: frozenset[int] | None
    older: bool = False

    def tables(self, family: str) -> frozenset[int] | None:
        """The tables of ``family`` (``inet`` or ``inet6``) this section holds; None: every one."""
        return self.inet if family == "inet" else self.inet6

    @property
    def every_table(self) -> bool:
        """Whether the section holds every table of both families, numbered."""
        return self.inet is None and self.inet6 is None


_MAIN = frozenset({RT_TABLE_MAIN})
# rtnetlink: every table of both families, by number.
EVERY_TABLE = RouteCoverage("netlink", None, None)
# /proc: IPv4's main table (all /proc/net/route shows); every IPv6 table, main
# and local by number and the others as UNNUMBERED_TABLE (ipv6_route does not
# say which).
PROC_ROUTES = RouteCoverage(
    "proc (IPv4 main table only)", _MAIN, frozenset({UNNUMBERED_TABLE, RT_TABLE_MAIN, RT_TABLE_LOCAL})
)
# Files written before /proc's other IPv6 tables were read: both main tables only.
PROC_MAIN_TABLES = RouteCoverage("proc (main table)", _MAIN, _MAIN, older=True)
# A saved netstat listing: -r's IPv4 main table (as /proc/net/route), -6r's every
# IPv6 table numbered as /proc's are; a family it did not list, no table.
_PROC_IPV6 = PROC_ROUTES.inet6
_NONE: frozenset[int] = frozenset()
NETSTAT_ROUTES = {
    ("inet",): RouteCoverage("netstat-text (IPv4 main table only)", _MAIN, _NONE),
    ("inet6",): RouteCoverage("netstat-text (IPv6 only)", _NONE, _PROC_IPV6),
    ("inet", "inet6"): RouteCoverage("netstat-text (IPv4 main table, IPv6)", _MAIN, _PROC_IPV6),
}
# Each word ``sources`` may say of routes, and what it covers.
ROUTE_SOURCES: dict[str, RouteCoverage] = {
    coverage.source: coverage
    for coverage in (EVERY_TABLE, PROC_ROUTES, PROC_MAIN_TABLES, *NETSTAT_ROUTES.values())
}
# A saved netstat -i: its Flg letters of the flags, no addresses; without -a the
# interfaces that were up only.
NETSTAT_INTERFACES = "netstat-text"
NETSTAT_UP_INTERFACES = "netstat-text (up only)"
# Every value ``sources`` may hold.
SOURCE_NAMES = frozenset(
    {"netlink", "proc", "ss-text", "netstat-text", NETSTAT_UP_INTERFACES, *ROUTE_SOURCES}
)


def route_coverage(sources: Mapping[str, str]) -> RouteCoverage:
    """What a snapshot's routes section covers, by its header's ``sources``.

    >>> route_coverage({"routes": "proc (IPv4 main table only)"}).tables("inet")
    frozenset({254})
    >>> route_coverage({"routes": "netlink"}).every_table, route_coverage({}).every_table
    (True, True)
    """
    return ROUTE_SOURCES.get(sources.get("routes", "netlink"), EVERY_TABLE)
