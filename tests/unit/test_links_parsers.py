"""The interface and route parsers and the rtnetlink decoder, on captured fixtures.

``fixtures/capture_links.py`` recorded them from tests/helpers/linkzoo.py's network:
the /proc/net files, the kernel's rtnetlink replies, and ``ip -j``'s account of
the same moment, which the decoded records are held against.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import msgspec

from sockdiff.backends.netlink import framing
from sockdiff.backends.netlink import links as rtnetlink
from sockdiff.backends.netlink import routes as rtnetlink_routes
from sockdiff.backends.netnames import interface_name
from sockdiff.backends.proc import links as procnet
from sockdiff.backends.proc import routes as procnet_routes
from sockdiff.model import (
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTF_NONEXTHOP,
    RTF_REJECT,
    RTF_UP,
    UNNUMBERED_TABLE,
    Interface,
    Route,
)
from tests.helpers.linkzoo import ODD_NAME_TEXT, interfaces_from_ip, known_equal, routes_from_ip

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "links"


def recorded(name: str) -> framing.Dump:
    data = (FIXTURES / "netlink" / f"{name}.bin").read_bytes()
    return framing.Dump([(data, len(data))])


def proc_file(name: str) -> bytes:
    return (FIXTURES / "proc" / name).read_bytes()


def oracle(name: str) -> Any:
    return json.loads((FIXTURES / "ip" / f"{name}.json").read_text())


def route_key(route: Route) -> tuple[str, ...]:
    return tuple(str(getattr(route, name)) for name in route.__struct_fields__)


def netlink_interfaces() -> list[Interface]:
    links = rtnetlink.decode_links(recorded("links"))
    addresses = rtnetlink.decode_addresses(recorded("addresses4"))
    for index, texts in rtnetlink.decode_addresses(recorded("addresses6")).items():
        addresses.setdefault(index, []).extend(texts)
    return rtnetlink.build_interfaces(links, addresses)


def netlink_routes() -> list[Route]:
    names = {link.index: link.name for link in rtnetlink.decode_links(recorded("links"))}
    return rtnetlink_routes.decode_routes(recorded("routes4"), names) + rtnetlink_routes.decode_routes(
        recorded("routes6"), names
    )


def test_rtnetlink_decoder_reads_links_and_addresses_as_ip_shows_them() -> None:
    assert netlink_interfaces() == interfaces_from_ip(oracle("addr"))


def test_rtnetlink_decoder_reads_every_route_of_every_table() -> None:
    expected = routes_from_ip(oracle("route4"), "inet") + routes_from_ip(oracle("route6"), "inet6")
    decoded = netlink_routes()
    assert sorted(decoded, key=route_key) == sorted(expected, key=route_key)
    assert {r.table for r in decoded} == {100, 254, 255}


def test_proc_dev_counters_are_the_kernels() -> None:
    counters = {i.name: i.counters for i in netlink_interfaces()}
    assert ODD_NAME_TEXT in counters  # a name with a control character and a byte not UTF-8
    parsed = {interface_name(name): figures for name, figures in procnet.parse_dev(proc_file("dev"))}
    assert parsed == counters


def test_if_inet6_holds_the_ipv6_addresses() -> None:
    expected = sorted(
        (i.name, a) for i in netlink_interfaces() for a in i.addresses or () if ":" in a.partition("/")[0]
    )
    assert (
        sorted((interface_name(d), a) for d, a in procnet.parse_if_inet6(proc_file("if_inet6"))) == expected
    )


def test_proc_routes_are_ipv4_main_and_every_ipv6_table_with_what_proc_knows() -> None:
    routes = procnet_routes.routes_from(proc_file("route"), proc_file("fib_trie"), proc_file("ipv6_route"))
    netlink = netlink_routes()
    # /proc/net/route: the main table; ipv6_route: every table, only main and local told by number.
    seen = [r for r in netlink if r.family == "inet" and r.table == 254]
    seen += [
        msgspec.structs.replace(
            r, table=r.table if r.table in (RT_TABLE_MAIN, RT_TABLE_LOCAL) else UNNUMBERED_TABLE
        )
        for r in netlink
        if r.family == "inet6"
    ]
    assert len(routes) == len(seen)
    for proc, full in zip(routes, seen, strict=True):
        assert known_equal(proc, full) == [], (proc, full)
    assert [r.table for r in routes if r.destination == "fd02::/64"] == [UNNUMBERED_TABLE]
    assert [r.type for r in routes if r.destination == "10.30.0.0/16"] == ["blackhole"]
    assert [r.type for r in routes if r.destination == "fd03::/64"] == [None]


def test_ipv6_tables_split_where_defaults_and_null_entries_end_them() -> None:
    def row(text: str, metric: int, flags: int = RTF_UP) -> procnet_routes.Ipv6RouteRow:
        net, _, length = text.partition("/")
        return procnet_routes.Ipv6RouteRow(
            socket.inet_pton(socket.AF_INET6, net), int(length), None, metric, flags, b"va"
        )

    null = row("::/0", 0xFFFFFFFF, RTF_REJECT | RTF_NONEXTHOP)
    # table 7 holds only a default route; main two default routes; local nothing.
    rows = [row("::/0", 2048), row("fd01::/64", 1024), row("::/0", 100), row("::/0", 1024), null]
    assert procnet_routes.ipv6_main_table(rows) == rows[1:4]
    # Two tables of default routes only, told apart by the metric falling back.
    rows = [row("::/0", 2048), row("::/0", 100), null]
    assert procnet_routes.ipv6_main_table(rows) == rows[1:2]


def test_fib_trie_is_read_only_for_tables_it_can_be_read_quickly(tmp_path: Path) -> None:
    """Past FIB_TRIE_MAX_ROUTES IPv4 routes, fib_trie (quadratic to read) is left alone: types unknown."""
    small = procnet_routes.read_routes(str(FIXTURES / "proc"))
    assert all(r.type is not None and r.scope is not None for r in small if r.family == "inet")
    header, first = proc_file("route").split(b"\n")[:2]
    (tmp_path / "route").write_bytes(
        header + b"\n" + (first + b"\n") * (procnet_routes.FIB_TRIE_MAX_ROUTES + 1)
    )
    for name in ("fib_trie", "ipv6_route"):
        (tmp_path / name).write_bytes(proc_file(name))
    big = [r for r in procnet_routes.read_routes(str(tmp_path)) if r.family == "inet"]
    assert len(big) == procnet_routes.FIB_TRIE_MAX_ROUTES + 1
    assert {(r.type, r.scope) for r in big} == {(None, None)}
