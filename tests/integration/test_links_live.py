"""Both interface and route backends against ``ip -j`` and each other, in a private namespace.

The network is tests/helpers/linkzoo.py's: a veth pair into a second namespace, IPv4
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

from sockdiff.backends.netlink import links as rtnetlink
from sockdiff.backends.netlink import routes as rtnetlink_routes
from sockdiff.backends.proc import links as procnet
from sockdiff.backends.proc import routes as procnet_routes
from sockdiff.model import (
    COUNTER_NAMES,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    UNNUMBERED_TABLE,
    Counters,
    Interface,
    Nexthop,
    Route,
)
from sockdiff.netns import entered
from sockdiff.snapshots import load
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.linkzoo import (
    ODD_NAME_TEXT,
    build_network,
    interfaces_from_ip,
    ip_json,
    known_equal,
    routes_from_ip,
)
from tests.helpers.netns import netns_exec_argv, private_netns


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
    assert va.addresses is not None and va.addresses[:2] == ("10.9.0.1/24", "10.9.0.5/24")
    assert "fd00::1/64" in va.addresses
    assert tun.mac is None and "UP" in tun.flags and "RUNNING" not in tun.flags
    assert interfaces["lo"].mac == "00:00:00:00:00:00"


def test_netlink_routes_are_ip_routes(network: str) -> None:
    with entered(network):
        routes = rtnetlink_routes.read_routes()
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
    """/proc: IPv4's main table; every IPv6 table, in the kernel's order, unnumbered but main and local."""
    seen = [r for r in netlink_routes if r.family == "inet" and r.table == 254]
    seen += [
        msgspec.structs.replace(
            r, table=r.table if r.table in (RT_TABLE_MAIN, RT_TABLE_LOCAL) else UNNUMBERED_TABLE
        )
        for r in netlink_routes
        if r.family == "inet6"
    ]
    assert {r.table for r in seen if r.family == "inet6"} == {0, 254, 255}
    assert len(proc_routes) == len(seen)
    for proc, full in zip(proc_routes, seen, strict=True):
        assert known_equal(proc, full) == [], (proc, full)
    assert {r.protocol for r in proc_routes} == {None}
    # Only IPv6 reject routes' types are unknown to /proc (blackhole, unreachable,
    # prohibit, and the routes on lo the kernel makes so), and a multicast prefix's
    # (multicast or unicast, written alike); IPv4's come from fib_trie.
    assert sorted(r.destination for r in proc_routes if r.type is None) == [
        "fd03::/64",
        "fd04::/64",
        "fd05::/64",
        "fd06::/64",
        "fd99::1/128",
        "ff00::/8",
    ]
    assert all(r.scope is not None for r in proc_routes)


def test_proc_backend_in_a_thread_entered_namespace(network: str) -> None:
    """After setns on our thread, sysfs still shows the host: operstate is unknown, not the host's."""
    with entered(network):
        before = rtnetlink.read_interfaces()
        interfaces = procnet.read_interfaces()
        after = rtnetlink.read_interfaces()
        netlink_routes = rtnetlink_routes.read_routes()
        proc_routes = procnet_routes.read_routes()
    compare_backends(interfaces, before, after)
    assert {i.operstate for i in interfaces} == {None}
    assert by_name(interfaces)["va"].mac == by_name(before)["va"].mac
    check_proc_routes(proc_routes, netlink_routes)


_BOTH = """
import sys, msgspec
from sockdiff.backends.netlink import links as rtnetlink
from sockdiff.backends.netlink import routes as rtnetlink_routes
from sockdiff.backends.proc import links as procnet
from sockdiff.backends.proc import routes as procnet_routes
sys.stdout.buffer.write(msgspec.json.encode(
    [rtnetlink.read_interfaces(), procnet.read_interfaces(), rtnetlink.read_interfaces(),
     rtnetlink_routes.read_routes(), procnet_routes.read_routes()]))
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


def without_ref(text: str) -> list[list[str]]:
    """netstat -6rn's rows as words, less Ref (a reference count, which a snapshot does not keep)."""
    lines = text.splitlines()
    assert lines[:2] == [
        "Kernel IPv6 routing table",
        "Destination                    Next Hop                   Flag Met Ref  Use If",
    ]
    return [words[:4] + words[5:] for words in (line.split() for line in lines[2:])]


def test_show_route_6_is_netstat_6rn_row_for_row(network: str, tmp_path: Path) -> None:
    """Every IPv6 table, null entries, lo's and reject routes' flags: live on both backends and saved."""
    saved = {}
    for backend in ("netlink", "proc"):
        saved[backend] = tmp_path / f"{backend}.json"
        taken = sockdiff(
            "snapshot", "-o", str(saved[backend]), "--backend", backend, "--sections", "routes", netns=network
        )
        assert taken.returncode == 0, taken.stderr
    shown = {source: show(network, source, "--route", "-6") for source in ("live:netlink", "live:proc")}
    shown |= {
        f"saved {backend}": show(network, str(path), "--route", "-6") for backend, path in saved.items()
    }
    expected = without_ref(netstat(network, "-6rn"))
    for source, text in shown.items():
        assert without_ref(text) == expected, source
        assert {line.split()[4] for line in text.splitlines()[2:]} == {"-"}, source
    rows = [[words[0], words[1], words[-1], *words[2:4]] for words in expected]
    # What the kernel says of each: table 100, 200, main, local (by table id modulo 256).
    assert ["fd99::1/128", "::", "lo", "!n", "256"] in rows  # an address's prefix route on lo: rejected
    assert ["fd99::1/128", "::", "lo", "Un", "0"] in rows  # and its local route
    assert ["fd06::/64", "::", "lo", "!n", "1024"] in rows  # so is any route on lo
    assert ["fd04::/64", "::", "lo", "!n", "1024"] in rows  # unreachable
    assert ["fd05::/64", "::", "lo", "!n", "2000"] in rows  # prohibit
    assert ["::1/128", "::", "lo", "Un", "0"] in rows  # the local table's own routes
    assert ["fd09::/64", "fd00::3", "va", "UG", "1024"] in rows  # a multipath route, one row a hop
    assert [words[0] for words in expected].count("fd09::/64") == 2
    # The null entry ends each table without a default route: 200, main and local, not 100.
    null_rows = [i for i, words in enumerate(expected) if words[:4] == ["::/0", "::", "!n", "-1"]]
    assert len(null_rows) == 3 and null_rows[-1] == len(expected) - 1
    assert [words[0] for words in expected[:4]] == ["fd02::/64", "::/0", "fd07::/64", "::/0"]
    assert show(network, "--route") == show(network, "--route", "-4") + show(network, "--route", "-6")


def test_show_route_4_is_netstat_rn_from_saved_snapshots(network: str, tmp_path: Path) -> None:
    expected = netstat(network, "-rn")
    assert netstat(network, "-4rn") == expected
    for backend in ("netlink", "proc"):
        path = tmp_path / f"{backend}.json"
        assert sockdiff("snapshot", "-o", str(path), "--backend", backend, netns=network).returncode == 0
        assert show(network, str(path), "--route", "-4") == expected, backend


def test_an_older_proc_snapshot_says_it_holds_ipv6s_main_table_only(network: str, tmp_path: Path) -> None:
    path = tmp_path / "proc.json"
    assert sockdiff("snapshot", "-o", str(path), "--backend", "proc", netns=network).returncode == 0
    document = json.loads(path.read_text())
    assert document["sources"]["routes"] == "proc (IPv4 main table only)"
    # An older file: what sockdiff wrote before it read every IPv6 table of ipv6_route.
    document["sources"]["routes"] = "proc (main table)"
    document["routes"] = [r for r in document["routes"] if r["table"] == 254]
    path.write_text(json.dumps(document))
    done = sockdiff("show", str(path), "--route", "-6")
    assert done.returncode == 0
    assert done.stderr == "sockdiff: note: these routes come from proc (main table)\n"
    assert "fd02::/64" not in done.stdout and "fd01::/64" in done.stdout
    assert sockdiff("show", str(path), "--route", "-4").stderr == ""


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
        "Destination                    Next Hop                   Flag Met Ref  Use If   Table Type",
        "fd02::/64                      fd00::2                    UG   1024 -      0 va  100   unicast",
        "::/0                           fd00::3                    UG   1024 -      0 va  100   unicast",
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
        "Destination                    Next Hop                   Flag Met Ref  Use If  Table Type\n"
    )
    assert show(network, "--route", "--table", "300", "-4", "-H") == ""
    live = show(network, "-i", "-a").splitlines()
    # The awkward name on one line, its control character escaped; down, so -a only.
    assert [line.split()[0] for line in live[2:]] == ["lo", "t\\x01\\xffx", "tun0", "va"]
    assert [line.split()[:2] for line in show(network, str(saved), "-i", "-a").splitlines()] == [
        line.split()[:2] for line in live
    ]
    from_proc = sockdiff("show", "live:proc", "--route", "--table", "all", netns=network)
    assert from_proc.stderr == "sockdiff: note: these routes come from proc (IPv4 main table only)\n"
    cells = [line.split() for line in from_proc.stdout.splitlines() if line[0].isdigit() or ":" in line]
    # IPv4: /proc/net/route's main table; IPv6: every table, unnumbered (-) but main and local.
    assert {words[-2] for words in cells if ":" not in words[0]} == {"main"}
    assert {words[-2] for words in cells if ":" in words[0]} == {"main", "local", "-"}
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
