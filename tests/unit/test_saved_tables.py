"""Saved ``netstat -i`` and ``-r`` tables (sockdiff.saved.tables), and how the differ treats what they lack.

Generated rows read back exactly; damaged tables read or fail naming line and
column (the fixtures in fixtures/saved/ are damaged by test_saved_fuzz.py too).
What a table cannot hold (a metric without -e, addresses, flags netstat has no
letter for, down interfaces without -a) is never a change.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import socket
import warnings
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sockdiff import BadSnapshot, diff
from sockdiff.model import Counters, Interface, Route
from sockdiff.saved import SavedListingNote, read_listing
from sockdiff.snapshots import Snapshot, dumps, loads
from tests.helpers.fuzzing import EDITS, damaged
from tests.helpers.made import sections_snap

WHEN = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
ROUTE_HEADER = (
    "Kernel IP routing table\nDestination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
)
ROUTE6_HEADER = (
    "Kernel IPv6 routing table\n"
    "Destination                    Next Hop                   Flag Met Ref  Use If\n"
)
INTERFACE_HEADER = (
    "Kernel Interface table\n"
    "Iface             MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg\n"
)
DEVICE = st.text(st.sampled_from("abcxyz019-_.@\x01"), min_size=1, max_size=15).filter(
    lambda n: n not in (".", "..", "-")  # "-" (and "*") is netstat's "no device"
)


def canonical(network: ipaddress.IPv6Network) -> str:
    """As inet_ntop writes it (``::ffff:0.0.0.0/96``, where Python writes ``::ffff:0:0/96``)."""
    return f"{socket.inet_ntop(socket.AF_INET6, network.network_address.packed)}/{network.prefixlen}"


def read(text: str, lenient: bool = False) -> Snapshot:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SavedListingNote)
        return read_listing(text, "t.txt", WHEN, lenient=lenient)


@given(
    st.lists(
        st.tuples(
            st.ip_addresses(v=4), st.integers(0, 32), st.ip_addresses(v=4), st.integers(0, 2**32 - 1), DEVICE
        ),
        max_size=5,
    )
)
def test_ipv4_rows_read_back_exactly(rows: list[Any]) -> None:
    lines = []
    for address, length, gateway, metric, dev in rows:
        network = ipaddress.IPv4Network(f"{address}/{length}", strict=False)
        flags = "UG" if gateway != ipaddress.IPv4Address(0) else "U"
        lines.append(f"{network.network_address} {gateway} {network.netmask} {flags} {metric} 0 0 {dev}")
    routes = read(ROUTE_HEADER + "\n".join(lines) + "\n").routes
    assert routes is not None
    got = [(r.destination, r.gateway, r.metric, r.dev) for r in routes]
    assert got == [
        (
            str(ipaddress.IPv4Network(f"{a}/{n}", strict=False)),
            None if g == ipaddress.IPv4Address(0) else str(g),
            m,
            d,
        )
        for a, n, g, m, d in rows
    ]


@given(st.lists(st.tuples(st.ip_addresses(v=6), st.integers(1, 128), st.integers(0, 2**31 - 1)), max_size=5))
def test_ipv6_rows_read_back_exactly(rows: list[Any]) -> None:
    lines = [f"{ipaddress.IPv6Network(f'{a}/{n}', strict=False)} fd00::2 UG {m} 1 0 va" for a, n, m in rows]
    routes = read(ROUTE6_HEADER + "\n".join(lines) + "\n").routes
    assert routes is not None
    assert [(r.destination, r.metric, r.gateway) for r in routes] == [
        (canonical(ipaddress.IPv6Network(f"{a}/{n}", strict=False)), m, "fd00::2") for a, n, m in rows
    ]


@given(
    st.lists(
        st.tuples(
            DEVICE, st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**63 - 1), min_size=8, max_size=8)
        ),
        max_size=4,
        unique_by=lambda row: row[0],
    )
)
def test_interface_rows_read_back_exactly(rows: list[Any]) -> None:
    lines = [f"{name} {mtu} {' '.join(map(str, counts))} BMRU" for name, mtu, counts in rows]
    interfaces = read(INTERFACE_HEADER + "\n".join(lines) + "\n").interfaces
    assert interfaces is not None
    assert [(i.name, i.mtu, i.counters) for i in interfaces] == [
        (name, mtu, Counters(*counts)) for name, mtu, counts in rows
    ]
    assert {i.flags for i in interfaces} <= {("BROADCAST", "MULTICAST", "RUNNING", "UP")}


@given(
    st.sampled_from(
        [
            ROUTE_HEADER + "10.0.0.0 10.0.0.1 255.0.0.0 UG 5 0 0 eth0\n",
            ROUTE6_HEADER + "fd00::/64 :: U 256 1 0 eth0\n::/0 :: !n -1 1 0 lo\n",
            INTERFACE_HEADER + "eth0 1500 1 2 3 4 5 6 7 8 BMRU\n",
        ]
    ),
    EDITS,
    st.booleans(),
)
def test_damaged_tables_read_or_fail_with_a_place(
    text: str, edits: list[tuple[int, int, int]], lenient: bool
) -> None:
    data = damaged(text.encode(), edits).decode("utf-8", "surrogateescape")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SavedListingNote)
            snap = read_listing(data, "t.txt", WHEN, "netstat", lenient)
    except BadSnapshot as err:
        assert str(err).startswith("t.txt: line ")
        return
    assert loads(dumps(snap), "again") == snap


def test_resolved_names_and_what_cannot_be_read() -> None:
    text = ROUTE_HEADER.replace("Metric Ref    Use", "  MSS Window  irtt") + (
        "default         _gateway        0.0.0.0         UG        0 0          0 eth0\n"
    )
    with pytest.warns(SavedListingNote, match="1 address was saved as host name"):
        route = read_listing(text, "r.txt", WHEN).routes or ()
    assert [(r.destination, r.gateway, r.metric, r.flags) for r in route] == [("0.0.0.0/0", None, None, 3)]
    null = "[::]/0 [::] !n -1 1 0 lo\n"  # netstat -6r: [::] for ::, a null entry ending each table
    six = read(ROUTE6_HEADER + "fd00::/64 [::] U 256 1 0 v\n" + null + "::1/128 [::] Un 0 1 0 lo\n" + null)
    assert [(r.destination, r.gateway, r.table) for r in six.routes or ()] == [
        ("fd00::/64", None, 254),
        ("::1/128", None, 255),
    ]
    for line, where in (
        ("link-net 0.0.0.0 255.255.0.0 U 0 0 0 eth0", "column 1: .*'link-net' is not an IPv4 network"),
        ("10.0.0.0 0.0.0.0 255.0.0.0 UZ 0 0 0 eth0", "column 1: .*'Z' is not a letter of netstat -r's Flags"),
    ):
        with pytest.raises(BadSnapshot, match=f"^t.txt: line 3, {where}"):
            read_listing(ROUTE_HEADER + line + "\n", "t.txt", WHEN)
    with pytest.raises(BadSnapshot, match=r"^t.txt: line 2, .*header is missing"):
        read_listing("Kernel Interface table\nIface MTU\n", "t.txt", WHEN)


def _snapshot(
    sources: dict[str, str], interfaces: tuple[Interface, ...] = (), routes: tuple[Route, ...] = ()
) -> Snapshot:
    snap = sections_snap(interfaces, routes)
    return dataclasses.replace(snap, header=msgspec.structs.replace(snap.header, sources=sources))


def test_what_a_table_cannot_hold_is_never_a_change() -> None:
    live_route = Route("inet", 254, "unicast", "10.0.0.0/8", "10.0.0.1", "eth0", 20, "boot", "universe")
    saved_route = Route("inet", 254, None, "10.0.0.0/8", "10.0.0.1", "eth0", None, None, None, flags=3)
    moved = msgspec.structs.replace(saved_route, gateway="10.0.0.2")
    words = {"routes": "netstat-text (IPv4 main table only)"}
    found = diff(
        _snapshot(words, routes=(saved_route, moved)), _snapshot({"routes": "netlink"}, routes=(live_route,))
    )
    assert found.routes is not None
    # One pairs (metric and type unknown: any), the other is left over, removed.
    assert (len(found.routes.changed), found.routes.removed, found.routes.added) == (0, (moved,), ())
    up = Interface(
        "eth0",
        2,
        ("BROADCAST", "LOWER_UP", "MULTICAST", "RUNNING", "UP"),
        "UP",
        1500,
        "02:00:00:00:00:01",
        ("10.0.0.9/8",),
        None,
    )
    saved_up = Interface(
        "eth0", None, ("BROADCAST", "MULTICAST", "RUNNING", "UP"), None, 1500, None, None, None
    )
    down = Interface("eth1", 3, ("BROADCAST", "MULTICAST"), "DOWN", 1500, None, (), None)
    tun = Interface("tun0", 4, ("MULTICAST", "NOARP", "POINTOPOINT", "UP"), "UNKNOWN", 1500, None, (), None)
    # netstat 2.10's P, read as POINTOPOINT, would match PROMISC too: one letter.
    saved_tun = msgspec.structs.replace(saved_up, name="tun0", flags=("MULTICAST", "NOARP", "PROMISC", "UP"))
    saved = _snapshot({"interfaces": "netstat-text (up only)"}, interfaces=(saved_up, saved_tun))
    live = _snapshot({"interfaces": "netlink"}, interfaces=(up, down, tun))
    found = diff(saved, live)
    assert found.interfaces is not None
    assert (found.interfaces.added, found.interfaces.removed, found.interfaces.changed) == ((), (), ())
    # Listed with -a, the down interface is new; a flag netstat shows is compared.
    every = _snapshot(
        {"interfaces": "netstat-text"}, interfaces=(msgspec.structs.replace(saved_up, flags=("UP",)),)
    )
    found = diff(every, live)
    assert found.interfaces is not None
    assert [i.name for i in found.interfaces.added] == ["eth1", "tun0"]
    assert [c.fields for c in found.interfaces.changed] == [("flags",)]
