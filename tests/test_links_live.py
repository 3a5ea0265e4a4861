"""Both interface and route backends against ``ip -j`` and each other, in a private namespace.

The network is tests/linkzoo.py's: a veth pair into a second namespace, IPv4
and IPv6 addresses (one secondary), an MTU change, a tun device, routes via a
gateway, blackhole/unreachable/throw routes, routes in table 100, IPv6 routes.
Counters move whenever the kernel sends something (IPv6 multicast reports),
so they are held between two reads of the reference rather than to equality.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from cli import one_line_error, sockdiff
from linkzoo import ODD_NAME_TEXT, build_network, interfaces_from_ip, ip_json, known_equal, routes_from_ip
from netns import netns_exec_argv, private_netns

from sockdiff.backends import procnet, rtnetlink
from sockdiff.model import COUNTER_NAMES, Counters, Interface, Nexthop, Route
from sockdiff.netns import entered
from sockdiff.snapshots import load


@pytest.fixture(scope="module")
def network(module_netns: str) -> Iterator[str]:
    with private_netns() as peer:
        build_network(module_netns, peer)
        yield module_netns


def between(before: Counters | None, middle: Counters | None, after: Counters | None) -> list[str]:
    """The counters where ``middle`` is not between the two reads around it."""
    assert before is not None and middle is not None and after is not None
    return [
        name
        for name in COUNTER_NAMES
        if not getattr(before, name) <= getattr(middle, name) <= getattr(after, name)
    ]


def without_counters(interfaces: list[Interface]) -> list[Interface]:
    return [msgspec.structs.replace(i, counters=None) for i in interfaces]


def by_name(interfaces: list[Interface]) -> dict[str, Interface]:
    return {i.name: i for i in interfaces}


def route_key(route: Route) -> tuple[str, ...]:
    return tuple(str(getattr(route, name)) for name in route.__struct_fields__)


def test_netlink_interfaces_are_ip_links(network: str) -> None:
    with entered(network):
        before = rtnetlink.read_interfaces()
        shown = interfaces_from_ip(ip_json(network, "-s", "-s", "addr"))
        after = rtnetlink.read_interfaces()
    assert without_counters(before) == without_counters(shown) == without_counters(after)
    for old, ip, new in zip(before, shown, after, strict=True):
        assert between(old.counters, ip.counters, new.counters) == [], ip.name
    interfaces = by_name(before)
    assert set(interfaces) == {"lo", "va", "tun0", ODD_NAME_TEXT}
    va, tun = interfaces["va"], interfaces["tun0"]
    assert va.mtu == 1400 and va.operstate == "UP" and "RUNNING" in va.flags
    assert va.addresses[:2] == ("10.9.0.1/24", "10.9.0.5/24")
    assert "fd00::1/64" in va.addresses
    assert tun.mac is None and "UP" in tun.flags and "RUNNING" not in tun.flags
    assert interfaces["lo"].mac == "00:00:00:00:00:00"


def test_netlink_routes_are_ip_routes(network: str) -> None:
    with entered(network):
        routes = rtnetlink.read_routes()
    shown = routes_from_ip(ip_json(network, "-d", "-4", "route", "show", "table", "all"), "inet")
    shown += routes_from_ip(ip_json(network, "-d", "-6", "route", "show", "table", "all"), "inet6")
    assert sorted(routes, key=route_key) == sorted(shown, key=route_key)
    made = {(r.family, r.table, r.type, r.destination, r.gateway, r.dev) for r in routes}
    assert {
        ("inet", 254, "unicast", "10.20.0.0/16", "10.9.0.2", "va"),
        ("inet", 254, "blackhole", "10.30.0.0/16", None, None),
        ("inet", 100, "unicast", "10.40.0.0/16", "10.9.0.2", "va"),
        ("inet6", 254, "unicast", "fd01::/64", "fd00::2", "va"),
        ("inet6", 100, "unicast", "::/0", "fd00::3", "va"),
    } <= made


def compare_backends(
    proc_interfaces: list[Interface],
    netlink_before: list[Interface],
    netlink_after: list[Interface],
) -> None:
    assert [i.name for i in proc_interfaces] == [i.name for i in netlink_before]
    for proc, old, new in zip(proc_interfaces, netlink_before, netlink_after, strict=True):
        assert known_equal(msgspec.structs.replace(proc, counters=None), old) == [], (proc, old)
        assert between(old.counters, proc.counters, new.counters) == [], proc.name


def check_proc_routes(proc_routes: list[Route], netlink_routes: list[Route]) -> None:
    main = [r for r in netlink_routes if r.table == 254]
    assert len(proc_routes) == len(main)
    for proc, full in zip(proc_routes, main, strict=True):
        assert known_equal(proc, full) == [], (proc, full)
    assert {r.protocol for r in proc_routes} == {None}
    # Only the IPv6 blackhole's type is unknown to /proc; IPv4's come from fib_trie.
    assert [r.destination for r in proc_routes if r.type is None] == ["fd03::/64"]
    assert all(r.scope is not None for r in proc_routes)


def test_proc_backend_in_a_thread_entered_namespace(network: str) -> None:
    """After setns on our thread, sysfs still shows the host: operstate is unknown, not the host's."""
    with entered(network):
        before = rtnetlink.read_interfaces()
        interfaces = procnet.read_interfaces()
        after = rtnetlink.read_interfaces()
        netlink_routes = rtnetlink.read_routes()
        proc_routes = procnet.read_routes()
    compare_backends(interfaces, before, after)
    assert {i.operstate for i in interfaces} == {None}
    assert by_name(interfaces)["va"].mac == by_name(before)["va"].mac
    check_proc_routes(proc_routes, netlink_routes)


_BOTH = """
import sys, msgspec
from sockdiff.backends import procnet, rtnetlink
sys.stdout.buffer.write(msgspec.json.encode(
    [rtnetlink.read_interfaces(), procnet.read_interfaces(), rtnetlink.read_interfaces(),
     rtnetlink.read_routes(), procnet.read_routes()]))
"""


def test_proc_backend_where_sysfs_is_the_namespace(network: str) -> None:
    """Under ip netns exec, sysfs is remounted for the namespace: operstate is known and agrees."""
    done = subprocess.run(
        netns_exec_argv(network, [sys.executable, "-c", _BOTH]), capture_output=True, check=True, timeout=60
    )
    before, interfaces, after, netlink_routes, proc_routes = msgspec.json.decode(
        done.stdout,
        type=tuple[list[Interface], list[Interface], list[Interface], list[Route], list[Route]],
    )
    compare_backends(interfaces, before, after)
    assert [i.operstate for i in interfaces] == [i.operstate for i in before]
    check_proc_routes(proc_routes, netlink_routes)


# ---------------------------------------------------------------- show -i / --route against netstat


def netstat(network: str, *argv: str) -> str:
    return subprocess.run(
        netns_exec_argv(network, ["netstat", *argv]), capture_output=True, text=True, check=True, timeout=30
    ).stdout


def show(network: str, *argv: str) -> str:
    done = sockdiff("show", *argv, netns=network)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


_COUNTER_COLUMNS = range(2, 10)  # RX-OK .. TX-OVR


def test_show_interfaces_is_netstat_i(network: str) -> None:
    before = show(network, "-i").splitlines()
    shown = netstat(network, "-i").splitlines()
    after = show(network, "-i").splitlines()
    assert before[:2] == shown[:2] and shown[0] == "Kernel Interface table"
    assert len(before) == len(shown) == len(after) == 5  # lo, tun0 (up, no carrier), va
    for ours, theirs, later in zip(before[2:], shown[2:], after[2:], strict=True):
        words, netstat_words, later_words = ours.split(), theirs.split(), later.split()
        masked = [w for i, w in enumerate(words) if i not in _COUNTER_COLUMNS]
        assert masked == [w for i, w in enumerate(netstat_words) if i not in _COUNTER_COLUMNS]
        for column in _COUNTER_COLUMNS:
            assert int(words[column]) <= int(netstat_words[column]) <= int(later_words[column]), theirs
        if ours == later:  # no packet in between: the very same line, to the character
            assert ours == theirs
    assert [line.split()[-1] for line in shown[2:]] == ["LRU", "MOPU", "BMRU"]


def test_show_route_is_netstat_rn_from_both_backends(network: str) -> None:
    expected = netstat(network, "-rn")
    assert show(network, "--route", "-4") == expected
    assert show(network, "live:proc", "--route", "-4") == expected
    assert show(network, "--route", "-4", "-H") == "".join(expected.splitlines(keepends=True)[2:])
    assert "10.70.0.0       10.9.0.2        255.255.0.0     UG     1440 65535     80 va\n" in expected


def test_show_route_6_rows_are_netstat_6rn_rows(network: str) -> None:
    """netstat -6rn shows every table, without saying which; each main-table row of ours is among them."""
    theirs = {}
    for line in netstat(network, "-6rn").splitlines()[2:]:
        destination, hop, flags, metric, _ref, _use, dev = line.split()
        theirs[destination, hop, metric, dev] = flags
    lines = show(network, "--route", "-6").splitlines()
    assert lines[0] == "Kernel IPv6 routing table"
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == [
        "fd00::/64",
        "fd01::/64",
        "fd03::/64",
        "fd09::/64",
        "fd09::/64",
        "fe80::/64",
    ]
    for destination, gateway, flags, metric, dev in rows:
        netstat_flags = theirs[(destination, gateway, metric, dev)]
        assert set(flags) <= set(netstat_flags), (destination, flags, netstat_flags)


def test_show_route_tables_and_saved_snapshots(network: str, tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    assert sockdiff("snapshot", "-o", str(saved), "--no-processes", netns=network).returncode == 0
    everything = show(network, str(saved), "--route", "--table", "all")
    assert (
        "10.40.0.0       10.9.0.2        255.255.0.0     UG        0 0          0 va     100   unicast"
        in everything
    )
    assert "fd00::1/128" in everything and "local local" in everything
    assert show(network, str(saved), "--route", "--table", "100", "-6").splitlines()[1:] == [
        "Destination                    Next Hop                   Flag Met If   Table Type",
        "fd02::/64                      fd00::2                    UG   1024 va  100   unicast",
        "::/0                           fd00::3                    UG   1024 va  100   unicast",
    ]
    # Table and Type stand under their headings, whatever the Iface column holds.
    for table in ("all", "local", "100"):
        lines = show(network, str(saved), "--route", "--table", table).splitlines()
        heads = [i for i, line in enumerate(lines) if line.startswith("Destination")]
        assert len(heads) == 2, lines
        for start, stop in zip(heads, [*heads[1:], len(lines) + 1], strict=True):
            heading, rows = lines[start], lines[start + 1 : stop - 1]
            assert rows, (table, heading)
            for name in ("Table", "Type"):
                column = heading.index(name)
                assert all(row[column - 1] == " " != row[column] for row in rows), (
                    name,
                    rows,
                )
    # A table that holds no route: the headings still, as netstat prints them for an empty table.
    assert show(network, str(saved), "--route", "--table", "300") == (
        "Kernel IP routing table\n"
        "Destination     Gateway         Genmask         Flags   MSS Window  irtt Iface  Table Type\n"
        "Kernel IPv6 routing table\n"
        "Destination                    Next Hop                   Flag Met If  Table Type\n"
    )
    assert show(network, "--route", "--table", "300", "-4", "-H") == ""
    live = show(network, "-i", "-a").splitlines()
    # The awkward name on one line, its control character escaped; down, so -a only.
    assert [line.split()[0] for line in live[2:]] == ["lo", "t\\x01\\xffx", "tun0", "va"]
    assert [line.split()[:2] for line in show(network, str(saved), "-i", "-a").splitlines()] == [
        line.split()[:2] for line in live
    ]
    from_proc = sockdiff("show", "live:proc", "--route", "--table", "all", netns=network)
    assert from_proc.stderr == "sockdiff: note: these routes come from proc (main table)\n"
    cells = [line.split() for line in from_proc.stdout.splitlines() if line[0].isdigit() or ":" in line]
    assert cells and {words[-2] for words in cells} == {"main"}
    sockets_only = tmp_path / "sockets.json"
    assert (
        sockdiff("snapshot", "-o", str(sockets_only), "--sections", "sockets", netns=network).returncode == 0
    )
    assert "no interfaces section" in one_line_error(sockdiff("show", str(sockets_only), "-i"))
    assert "routing table 'nine'" in one_line_error(sockdiff("show", "--route", "--table", "nine"))


def test_compare_reports_exactly_the_network_changes(netns: str, tmp_path: Path) -> None:
    """A link set down, an address added, a route added and one deleted: compare says just that."""
    with private_netns() as peer:
        build_network(netns, peer)
        before = tmp_path / "before.json"
        taken = sockdiff("snapshot", "-o", str(before), "--sections", "interfaces,routes", netns=netns)
        assert taken.returncode == 0, taken.stderr
        subprocess.run(
            ["ip", "-n", netns, "-batch", "-"],
            input="link set tun0 down\naddr add 10.9.0.99/24 dev va\n"
            "route add 10.90.0.0/16 via 10.9.0.2\nroute del 10.20.0.0/16\n",
            text=True,
            check=True,
        )
        for source, local_table_seen in (("live:netlink", True), ("live:proc", False)):
            done = sockdiff(
                "compare",
                str(before),
                source,
                "--format",
                "json",
                "--fail-on",
                "interfaces,routes",
                netns=netns,
            )
            assert done.returncode == 1, done.stderr
            report = json.loads(done.stdout)
            changed = {c["new"]["name"]: c["fields"] for c in report["interfaces"]["changed"]}
            assert changed == {"tun0": ["flags"], "va": ["addresses"]}
            assert report["interfaces"]["added"] == report["interfaces"]["removed"] == []
            routes = report["routes"]
            added = {(r["destination"], r["table"]) for r in routes["added"]}
            # The kernel adds the new address's local route; /proc cannot see the local table.
            assert added == {("10.90.0.0/16", 254)} | ({("10.9.0.99/32", 255)} if local_table_seen else set())
            # A link going down takes its routes with it: 10.54.0.0/16 was on tun0.
            assert {(r["destination"], r["table"]) for r in routes["removed"]} == {
                ("10.20.0.0/16", 254),
                ("10.54.0.0/16", 254),
            }
            assert routes["changed"] == []


def test_compare_sees_a_change_to_any_next_hop_of_a_multipath_route(netns: str, tmp_path: Path) -> None:
    """Every next hop of an IPv4 multipath route counts, not only the first (which /proc shows)."""
    for command in (
        "link add d0 type veth peer name d1",
        "addr add 10.9.0.1/24 dev d0",
        "link set d1 up",
        "link set d0 up",
        "route add 192.168.70.0/24 nexthop via 10.9.0.2 weight 1 nexthop via 10.9.0.3 weight 1",
    ):
        subprocess.run(netns_exec_argv(netns, ["ip", *command.split()]), check=True, timeout=30)
    before = tmp_path / "mp1.json"
    assert sockdiff("snapshot", "-o", str(before), netns=netns).returncode == 0
    replace = "route replace 192.168.70.0/24 nexthop via 10.9.0.2 weight 1 nexthop via 10.9.0.99 weight 5"
    subprocess.run(netns_exec_argv(netns, ["ip", *replace.split()]), check=True, timeout=30)
    done = sockdiff("compare", str(before), "live", "--fail-on", "routes", netns=netns)
    assert done.returncode == 1, (done.stdout, done.stderr)
    [line] = [line for line in done.stdout.splitlines() if "192.168.70.0/24" in line]
    assert (
        "nexthops: nexthop via 10.9.0.2 dev d0 weight 1 nexthop via 10.9.0.3 dev d0 weight 1"
        " → nexthop via 10.9.0.2 dev d0 weight 1 nexthop via 10.9.0.99 dev d0 weight 5"
    ) in line
    # The route as the file keeps it: the first hop as gateway and dev, every hop listed.
    [kept] = [r for r in load(str(before)).routes or () if r.destination == "192.168.70.0/24"]
    assert (kept.gateway, kept.dev) == ("10.9.0.2", "d0")
    assert kept.nexthops == (Nexthop("10.9.0.2", "d0", 1), Nexthop("10.9.0.3", "d0", 1))
