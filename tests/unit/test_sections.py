"""Interfaces and routes compared on hand-built snapshots: identity, changed fields, counters, --fail-on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sockdiff import Snapshot, Socket, inet, save
from sockdiff.differ import Diff, diff, parse_fail_on, parse_fields, renamed_links
from sockdiff.errors import BadSnapshot
from sockdiff.formats import report
from sockdiff.formats.notation import summary_line
from sockdiff.model import Nexthop
from sockdiff.snapshots import EVERYTHING, Scope, load
from tests.helpers.made import HEADER, LISTENER, counters, eth, route
from tests.helpers.made import sections_snap as snap


def diff_lines(result: Diff) -> list[str]:
    """The text report's difference lines (the last line is the summary)."""
    return report(result, "text").splitlines()[:-1]


def test_interfaces_added_removed_and_changed_by_name() -> None:
    old = snap((eth("eth0"), eth("eth1"), eth("lo", index=1)))
    new = snap(
        (
            eth("eth0", operstate="DOWN", flags=("BROADCAST", "MULTICAST")),
            eth("lo", index=1),
            eth("veth9", index=9, addresses=()),
        )
    )
    result = diff(old, new)
    assert result.interfaces is not None
    assert [i.name for i in result.interfaces.added] == ["veth9"]
    assert [i.name for i in result.interfaces.removed] == ["eth1"]
    [change] = result.interfaces.changed
    assert (change.old.name, change.new.operstate, change.fields) == ("eth0", "DOWN", ("flags", "operstate"))
    assert result.interfaces.summary == {"added": 1, "removed": 1, "changed": 1}
    # The sockets did not change, and the routes section is there, empty.
    assert result.summary == {"new": 0, "closed": 0, "changed": 0}
    assert result.routes is not None and len(result.routes) == 0


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"mtu": 9000}, ("mtu",)),
        ({"mac": "02:00:00:00:00:02"}, ("mac",)),
        ({"index": 12}, ("index",)),
        ({"addresses": ("10.0.0.1/24", "10.0.0.2/24", "fe80::1/64")}, ("addresses",)),
        ({"mtu": 9000, "operstate": "DOWN"}, ("operstate", "mtu")),
        # A value a backend cannot know (None) is never a change.
        ({"mtu": None, "index": None, "operstate": None}, ()),
        # Counters move all the time: compared only when asked.
        ({"counters": counters(50, 70)}, ()),
    ],
)
def test_interface_fields_that_change(changes: dict[str, Any], fields: tuple[str, ...]) -> None:
    result = diff(snap((eth(),)), snap((eth(**changes),)))
    assert result.interfaces is not None
    assert [c.fields for c in result.interfaces.changed] == ([fields] if fields else [])


def test_counters_only_when_asked_and_as_deltas() -> None:
    old, new = snap((eth(),)), snap((eth(counters=counters(15, 12)),))
    assert diff(old, new).counted(["any"]) == 0
    result = diff(old, new, fields=parse_fields("+counters"))
    assert result.interfaces is not None
    [change] = result.interfaces.changed
    assert change.fields == ("counters",)
    assert diff_lines(result) == [
        "~ interface eth0 <BROADCAST,MULTICAST,RUNNING,UP> UP mtu 1500 link 02:00:00:00:00:01"
        " 10.0.0.1/24 fe80::1/64  counters: rx_packets +5, tx_packets +2, rx_bytes +500, tx_bytes +200"
    ]
    # A side that cannot know the counters is no change.
    assert diff(snap((eth(counters=None),)), new, fields=parse_fields("+counters")).counted(["any"]) == 0


def test_routes_by_identity() -> None:
    """Keyed by family, table, type, destination, metric, dev: a new gateway is a change, a new metric not."""
    old = snap(
        routes=(
            route(),
            route("10.2.0.0/24"),
            route("10.3.0.0/24"),
            route("fe80::/64", family="inet6", gateway=None, dev="eth0", metric=256, protocol="kernel"),
            route("fe80::/64", family="inet6", gateway=None, dev="eth1", metric=256, protocol="kernel"),
        )
    )
    new = snap(
        routes=(
            route(gateway="10.0.0.253"),
            route("10.2.0.0/24", metric=10),
            route("10.3.0.0/24", table=100),
            route("10.9.0.0/16", type="blackhole", gateway=None, dev=None, protocol=None, scope=None),
            route("fe80::/64", family="inet6", gateway=None, dev="eth0", metric=256, protocol="kernel"),
        )
    )
    result = diff(old, new)
    assert result.routes is not None
    # Sorted by family, table, destination, metric.
    assert [(r.destination, r.metric, r.table) for r in result.routes.added] == [
        ("10.3.0.0/24", 0, 100),
        ("10.2.0.0/24", 10, 254),
        ("10.9.0.0/16", 0, 254),
    ]
    assert [(r.destination, r.dev, r.table) for r in result.routes.removed] == [
        ("10.2.0.0/24", "eth0", 254),
        ("10.3.0.0/24", "eth0", 254),
        ("fe80::/64", "eth1", 254),
    ]
    assert [(c.new.destination, c.fields) for c in result.routes.changed] == [("10.1.0.0/24", ("gateway",))]
    # A route whose protocol or scope one side cannot know is not changed.
    unknown = diff(snap(routes=(route(),)), snap(routes=(route(protocol=None, scope=None),)))
    assert unknown.counted(["routes"]) == 0


def test_text_lines_and_summary_tail() -> None:
    old = snap((eth(),), (route(),))
    new = snap(
        (eth(operstate="DOWN", addresses=("10.0.0.2/24",)),), (route("10.9.0.0/16", type="blackhole"),)
    )
    result = diff(old, new)
    assert diff_lines(result) == [
        "~ interface eth0 <BROADCAST,MULTICAST,RUNNING,UP> DOWN mtu 1500 link 02:00:00:00:00:01 10.0.0.2/24"
        "  operstate: UP → DOWN; addresses: +10.0.0.2/24 -10.0.0.1/24 -fe80::1/64",
        "+ route blackhole 10.9.0.0/16 via 10.0.0.254 dev eth0 table main proto static scope universe"
        " metric 0",
        "- route 10.1.0.0/24 via 10.0.0.254 dev eth0 table main proto static scope universe metric 0",
    ]
    assert summary_line(result) == (
        "0 new, 0 closed, 0 changed; interfaces: 0 added, 0 removed, 1 changed;"
        " routes: 1 added, 1 removed, 0 changed"
    )
    assert summary_line(diff(old, old)) == "0 new, 0 closed, 0 changed"


def test_a_section_not_taken_is_never_compared() -> None:
    taken = snap((eth(),), (route(),))
    for other in (snap(None, None), snap((), None), snap(None, ())):
        for result in (diff(taken, other), diff(other, taken)):
            assert (result.interfaces is None) == (other.interfaces is None)
            assert (result.routes is None) == (other.routes is None)
            expected = (other.interfaces is not None) + (other.routes is not None)
            assert result.counted(["any"]) == expected
    # Sockets too: a side without them compares no sockets and no scope.
    bare = Snapshot(HEADER, None, (eth(),), (route(),))
    result = diff(bare, snap((eth(),), (route(),)))
    assert (result.summary, result.scope, result.counted(["any"])) == (
        {"new": 0, "closed": 0, "changed": 0},
        None,
        0,
    )


def test_fail_on_counts_sections() -> None:
    old = snap((eth(),), (route(),))
    new = snap((eth(mtu=9000), eth("eth1")), (route(),))
    new = Snapshot(HEADER, (), new.interfaces, new.routes)  # the listener closed too
    result = diff(old, new)
    assert result.counted(parse_fail_on("interfaces")) == 2
    assert result.counted(parse_fail_on("routes")) == 0
    assert result.counted(parse_fail_on("closed")) == 1
    assert result.counted(parse_fail_on("closed,interfaces")) == 3
    assert result.counted(parse_fail_on("any")) == 3
    assert result.counted(parse_fail_on("new,changed,listening")) == 0


def test_scope_narrows_sockets_of_both_sides() -> None:
    """One side covered TCP on port 80: the other's UDP sockets and other TCP ports are not compared."""
    udp = Socket("udp", "inet", "dgram", "CLOSE", inet("127.0.0.1", 53), inet("0.0.0.0", 0), 8, 0, 0, 0, ())
    other = msgspec.structs.replace(LISTENER, local=inet("127.0.0.1", 81), inode=9)
    narrow = msgspec.structs.replace(HEADER, scope=Scope(("tcp", "unix"), "sport = :80"))
    old = Snapshot(narrow, (LISTENER,), (), ())
    new = Snapshot(HEADER, (LISTENER, udp, other), (), ())
    for result in (diff(old, new), diff(new, old)):
        assert result.scope == Scope(("tcp", "unix"), "sport = :80")
        assert result.narrowed and result.counted(["any"]) == 0
    everything = diff(new, new)
    assert everything.scope == EVERYTHING and not everything.narrowed


@pytest.mark.parametrize("proc_source", ["proc (IPv4 main table only)", "proc (main table)"])
def test_routes_proc_cannot_see_are_not_compared(proc_source: str) -> None:
    """/proc shows IPv4's main table only, IPv6's other tables unnumbered (0), and not the type of
    IPv6 blackhole routes: none is a difference (files that say "proc (main table)" too)."""
    netlink = snap(
        routes=(
            route(),
            route("127.0.0.1/32", table=255, type="local", gateway=None, dev="lo", scope="host"),
            route("2001:db8::/32", family="inet6", type="blackhole", gateway=None, dev="lo", metric=1024),
        )
    )
    proc_header = msgspec.structs.replace(HEADER, sources={"routes": proc_source})
    proc = Snapshot(
        proc_header,
        (LISTENER,),
        (),
        (
            route(protocol=None),
            route(
                "2001:db8::/32", family="inet6", type=None, gateway=None, dev="lo", metric=1024, protocol=None
            ),
            route("fd02::/64", family="inet6", table=0, gateway="fd00::2", metric=1024, protocol=None),
        ),
    )
    for result in (diff(netlink, proc), diff(proc, netlink)):
        assert result.routes is not None and len(result.routes) == 0, result.routes
    # What /proc can see still counts: a main-table route gone, a new untyped one.
    fewer = Snapshot(proc_header, (LISTENER,), (), (route("10.8.0.0/24", type=None, protocol=None),))
    result = diff(netlink, fewer)
    assert result.routes is not None
    assert [r.destination for r in result.routes.added] == ["10.8.0.0/24"]
    assert [r.destination for r in result.routes.removed] == ["10.1.0.0/24", "2001:db8::/32"]


HOPS = (Nexthop("10.0.0.2", "eth0", 1), Nexthop("10.0.0.3", "eth0", 1))


def test_multipath_next_hops_are_a_changed_field(tmp_path: Path) -> None:
    """Any next hop counts; a side that cannot know them (null) changes nothing; files keep them."""
    old = snap(routes=(route(gateway="10.0.0.2", nexthops=HOPS), route("10.2.0.0/24", nexthops=HOPS)))
    moved = (HOPS[0], Nexthop("10.0.0.99", "eth0", 5))
    new = snap(routes=(route(gateway="10.0.0.2", nexthops=moved), route("10.2.0.0/24")))
    result = diff(old, new)
    assert result.routes is not None
    assert [(c.new.destination, c.fields) for c in result.routes.changed] == [("10.1.0.0/24", ("nexthops",))]
    assert diff_lines(result) == [
        "~ route 10.1.0.0/24 table main proto static scope universe metric 0"
        " nexthop via 10.0.0.2 dev eth0 weight 1 nexthop via 10.0.0.99 dev eth0 weight 5"
        "  nexthops: nexthop via 10.0.0.2 dev eth0 weight 1 nexthop via 10.0.0.3 dev eth0 weight 1"
        " → nexthop via 10.0.0.2 dev eth0 weight 1 nexthop via 10.0.0.99 dev eth0 weight 5"
    ]
    path = tmp_path / "mp.json"
    save(old, str(path))
    assert load(str(path)).routes == old.routes


@pytest.mark.parametrize(
    ("hops", "words"),
    [
        ((HOPS[1], HOPS[0]), "`nexthops` is not sorted"),
        (HOPS[:1], "`nexthops` has 1 next hop(s): a multipath route has two or more"),
        ((HOPS[0], Nexthop("10.0.0.03", "eth0", 1)), "`nexthops` gateway '10.0.0.03' is not an address"),
    ],
)
def test_the_reader_checks_next_hops(tmp_path: Path, hops: tuple[Nexthop, ...], words: str) -> None:
    path = tmp_path / "bad.json"
    save(snap(routes=(route(nexthops=hops),)), str(path))
    with pytest.raises(BadSnapshot, match=re.escape(words)):
        load(str(path))


def test_older_files_without_next_hops_load(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    save(snap(routes=(route(),)), str(path))
    path.write_text(path.read_text().replace(',"nexthops":null', ""))
    assert "nexthops" not in path.read_text()
    assert load(str(path)).routes == (route(),)


def test_renamed_link_is_one_change_with_its_routes() -> None:
    """A device renamed between two reads (same index): one link changed, its routes changed
    by device only; an index that stays removed or added elsewhere stays so."""
    old = snap(
        (eth("eth0"), eth("lan0", index=5), eth("gone0", index=7)),
        (route(), route("10.2.0.0/24", gateway=None, dev="lan0"), route("10.3.0.0/24", dev="lan0")),
    )
    new = snap(
        (eth("eth0"), eth("wan0", index=5, mtu=9000), eth("new0", index=8)),
        (route(), route("10.2.0.0/24", gateway=None, dev="wan0"), route("10.4.0.0/24", dev="wan0")),
    )
    plain = diff(old, new)
    assert plain.interfaces is not None and len(plain.interfaces.added) == 2  # diff alone: by name
    result = renamed_links(plain)
    assert result.interfaces is not None and result.routes is not None
    assert [i.name for i in result.interfaces.added] == ["new0"]
    assert [i.name for i in result.interfaces.removed] == ["gone0"]
    [link] = result.interfaces.changed
    assert (link.old.name, link.new.name, link.fields) == ("lan0", "wan0", ("name", "mtu"))
    [moved] = result.routes.changed
    assert (moved.old.dev, moved.new.dev, moved.new.destination, moved.fields) == (
        "lan0",
        "wan0",
        "10.2.0.0/24",
        ("dev",),
    )
    assert [r.destination for r in result.routes.removed] == ["10.3.0.0/24"]
    assert [r.destination for r in result.routes.added] == ["10.4.0.0/24"]
    lines = diff_lines(result)
    assert [line for line in lines if line.startswith("~")] == [
        "~ interface wan0 <BROADCAST,MULTICAST,RUNNING,UP> UP mtu 9000 link 02:00:00:00:00:01"
        " 10.0.0.1/24 fe80::1/64  name: lan0 → wan0; mtu: 1500 → 9000",
        "~ route 10.2.0.0/24 dev wan0 table main proto static scope universe metric 0  dev: lan0 → wan0",
    ], lines
    assert renamed_links(diff(old, old)) == diff(old, old)
