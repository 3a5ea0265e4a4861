"""show --route against netstat -rn / -6rn where /proc and rtnetlink say different things.

Each test builds its routes in a private namespace (veth: dummy links are not
on every kernel) and holds both backends, live and saved, to netstat.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sockdiff.backends.proc import routes as procnet_routes
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.netns import netns_exec_argv


def ip(netns: str, *commands: str) -> None:
    subprocess.run(
        netns_exec_argv(netns, ["ip", "-batch", "-"]), input="\n".join(commands) + "\n", text=True, check=True
    )


def netstat(netns: str, *argv: str) -> str:
    return subprocess.run(
        netns_exec_argv(netns, ["netstat", *argv]), capture_output=True, text=True, check=True, timeout=60
    ).stdout


def show(netns: str, *argv: str) -> str:
    done = sockdiff("show", *argv, netns=netns)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def without_ref(text: str) -> list[list[str]]:
    """netstat -6rn's rows as words, less Ref (a count a record does not keep)."""
    return [words[:4] + words[5:] for words in (line.split() for line in text.splitlines()[2:])]


def veth(netns: str) -> None:
    """v0 (10.9.0.1/24) and v1, up; no DAD, so their IPv6 local routes are there at once."""
    subprocess.run(
        netns_exec_argv(netns, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]), check=True
    )
    ip(
        netns,
        "link add v0 type veth peer name v1",
        "link set v1 up",
        "link set v0 up",
        "addr add 10.9.0.1/24 dev v0",
    )


def every_source(netns: str, tmp_path: Path, *argv: str) -> dict[str, str]:
    """``show --route ARGV`` live and saved, through both backends."""
    shown = {}
    for backend in ("netlink", "proc"):
        shown[f"live:{backend}"] = show(netns, f"live:{backend}", "--route", *argv)
        saved = tmp_path / f"{backend}.json"
        taken = sockdiff(
            "snapshot", "-o", str(saved), "--backend", backend, "--sections", "routes", netns=netns
        )
        assert taken.returncode == 0, taken.stderr
        shown[f"saved {backend}"] = show(netns, str(saved), "--route", *argv)
    return shown


def test_a_unicast_route_to_a_multicast_prefix_is_no_multicast_route_from_proc(netns: str) -> None:
    """ipv6_route writes a route to ff05::/16 alike whatever its type: /proc's type is null, so
    live:netlink and live:proc agree, and netstat's flags stand."""
    veth(netns)
    ip(netns, "route add ff05::/16 dev v0")
    done = sockdiff("compare", "live:netlink", "live:proc", "--fail-on", "routes", netns=netns)
    assert done.returncode == 0, (done.stdout, done.stderr)
    expected = without_ref(netstat(netns, "-6rn"))
    assert ["ff05::/16", "::", "U", "1024", "0", "v0"] in expected
    for source in ("live:netlink", "live:proc"):
        assert without_ref(show(netns, source, "--route", "-6")) == expected, source
    table = sockdiff("show", "live:proc", "--route", "-6", "--table", "all", netns=netns).stdout
    assert [line.split()[-1] for line in table.splitlines() if line.startswith("ff05::/16")] == ["-"]
    netlink = show(netns, "live:netlink", "--route", "-6", "--table", "all")
    assert [line.split()[-1] for line in netlink.splitlines() if line.startswith("ff05::/16")] == ["unicast"]


def test_an_ipv4_route_via_an_ipv6_gateway_is_netstats_from_both_backends(netns: str, tmp_path: Path) -> None:
    """RFC 5549: /proc writes the gateway as 0.0.0.0 with flag G; netlink knows its address."""
    veth(netns)
    ip(
        netns,
        "route add 10.77.0.0/16 via inet6 fe80::1 dev v0",
        "route add 10.78.0.0/16 nexthop via inet6 fe80::2 dev v0 nexthop via 10.9.0.9 dev v0",
    )
    expected = netstat(netns, "-rn")
    assert "10.77.0.0       0.0.0.0         255.255.0.0     UG" in expected
    assert "10.78.0.0       0.0.0.0         255.255.0.0     UG" in expected
    for source, text in every_source(netns, tmp_path, "-4").items():
        assert text == expected, source
    # The record: the kernel's first hop as gateway and dev, every hop sorted in nexthops.
    routes = {r["destination"]: r for r in json.loads((tmp_path / "netlink.json").read_text())["routes"]}
    assert routes["10.77.0.0/16"]["gateway"] == "fe80::1"
    multipath = routes["10.78.0.0/16"]
    assert multipath["gateway"] == "fe80::2"
    assert [hop["gateway"] for hop in multipath["nexthops"]] == ["10.9.0.9", "fe80::2"]
    # A change of the IPv6 gateway is seen where it can be: by netlink, not by /proc.
    before = tmp_path / "netlink.json"
    ip(netns, "route replace 10.77.0.0/16 via inet6 fe80::5 dev v0")
    seen = sockdiff("compare", str(before), "live:netlink", "--fail-on", "routes", netns=netns)
    assert seen.returncode == 1, seen.stderr
    assert "gateway: fe80::1 → fe80::5" in seen.stdout
    unseen = sockdiff("compare", str(tmp_path / "proc.json"), "live:proc", "--fail-on", "routes", netns=netns)
    assert unseen.returncode == 0, unseen.stdout


def test_reject_routes_past_fib_tries_limit_are_netstats(netns: str, tmp_path: Path) -> None:
    """Past FIB_TRIE_MAX_ROUTES /proc cannot type a route, but its flags still say reject."""
    veth(netns)
    count = procnet_routes.FIB_TRIE_MAX_ROUTES + 50
    routes = [f"route add 11.{i >> 8 & 0xFF}.{i & 0xFF}.0/24 via 10.9.0.2" for i in range(count)]
    ip(netns, *routes, "route add unreachable 13.0.0.0/8", "route add prohibit 14.0.0.1/32")
    expected = netstat(netns, "-rn")
    rows = [line.split() for line in expected.splitlines()]
    assert ["13.0.0.0", "-", "255.0.0.0", "!", "-", "-", "-", "-"] in rows
    assert ["14.0.0.1", "-", "255.255.255.255", "!H", "-", "-", "-", "-"] in rows
    for source, text in every_source(netns, tmp_path, "-4").items():
        assert text == expected, source
    proc = json.loads((tmp_path / "proc.json").read_text())["routes"]
    [unreachable] = [r for r in proc if r["destination"] == "13.0.0.0/8"]
    assert (unreachable["type"], unreachable["flags"]) == (None, 0x201)


def test_a_table_without_a_default_route_before_another_gets_its_null_entry(netns: str) -> None:
    """netstat -6rn ends table 100 (no default route) in the null entry, then table 200's default.
    Through netlink every table is numbered, so the null entry is drawn; /proc numbers neither,
    and a record keeps no null entry, so its rows read as one table: the documented limit."""
    veth(netns)
    ip(netns, "route add 2001:db8:a::/48 dev v0 table 100", "route add ::/0 dev v0 table 200")
    expected = without_ref(netstat(netns, "-6rn"))
    assert expected[:3] == [
        ["2001:db8:a::/48", "::", "U", "1024", "0", "v0"],
        ["::/0", "::", "!n", "-1", "0", "lo"],
        ["::/0", "::", "U", "1024", "0", "v0"],
    ]
    # (Rows of the main and local tables follow, the local ones changing as addresses pass DAD.)
    assert without_ref(show(netns, "live:netlink", "--route", "-6"))[:3] == expected[:3]
    from_proc = sockdiff("show", "live:proc", "--route", "-6", netns=netns)
    assert without_ref(from_proc.stdout)[:2] == [expected[0], expected[2]]


def test_compare_covers_every_table_both_sides_see_and_says_which_it_left_out(
    netns: str, tmp_path: Path
) -> None:
    """proc against proc: every IPv6 table, unnumbered ones too; proc against netlink: IPv4 main,
    IPv6 main and local, with one note saying which tables were left out and why."""
    veth(netns)
    ip(netns, "route add fd10::/64 dev v0 table 100", "route add 10.40.0.0/16 dev v0 table 100")
    before = {}
    for backend in ("netlink", "proc"):
        before[backend] = tmp_path / f"{backend}.json"
        taken = sockdiff(
            "snapshot", "-o", str(before[backend]), "--backend", backend, "--sections", "routes", netns=netns
        )
        assert taken.returncode == 0, taken.stderr
    ip(
        netns,
        "route del fd10::/64 dev v0 table 100",
        "route add fd11::/64 dev v0 table 100",
        "route add 10.41.0.0/16 dev v0 table 100",
        "route add fd12::/64 dev v0",
    )
    argv = ("--format", "json", "--fail-on", "routes")

    def routes(old: str, new: str) -> tuple[set[str], set[str], str]:
        done = sockdiff("compare", old, new, *argv, netns=netns)
        assert done.returncode == 1, done.stderr
        report = json.loads(done.stdout)["routes"]
        return (
            {r["destination"] for r in report["added"]},
            {r["destination"] for r in report["removed"]},
            done.stderr,
        )

    # proc against proc: table 100's IPv6 change is seen (unnumbered on both sides alike).
    added, removed, stderr = routes(str(before["proc"]), "live:proc")
    assert (added, removed, stderr) == ({"fd11::/64", "fd12::/64"}, {"fd10::/64"}, "")
    # netlink against netlink: every table.
    added, removed, stderr = routes(str(before["netlink"]), "live:netlink")
    assert (added, removed, stderr) == ({"fd11::/64", "fd12::/64", "10.41.0.0/16"}, {"fd10::/64"}, "")
    # proc against netlink, either way round: what both number, and a note saying so, once.
    for old, new, proc_side in (
        (str(before["proc"]), "live:netlink", str(before["proc"])),
        (str(before["netlink"]), "live:proc", "live:proc"),
    ):
        added, removed, stderr = routes(old, new)
        assert (added, removed) == ({"fd12::/64"}, set()), (old, new)
        assert stderr == (
            "sockdiff: note: routes compared in IPv4's main table and IPv6's main and local tables only:"
            f" {proc_side}'s come from /proc, which shows IPv4's main table only"
            " and numbers no IPv6 table but main and local\n"
        )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["-s", "--route"], "-s does not go with --route"),
        (["-s", "-i"], "-s does not go with -i"),
        (["--route", "-t", "-l", "-p", "-e", "-r"], "-t -l -p -r -e do not go with --route"),
        (["--route", "-a"], "-a does not go with --route"),
        (["-i", "-4", "-x"], "-x -4 do not go with -i"),
        (["-i", "--table", "100"], "--table does not go with -i"),
        (["--table", "100"], "--table chooses routing tables: it goes with --route"),
        (["-t", "--table", "main"], "--table chooses routing tables: it goes with --route"),
    ],
)
def test_show_refuses_options_that_do_not_go_together(argv: list[str], words: str) -> None:
    """Each in one line, exit 2, before anything is read (no namespace needed)."""
    assert one_line_error(sockdiff("show", *argv)) == f"sockdiff: {words}"


_BAD_WORDS = [
    ("type", "frobnicate", "`type` 'frobnicate' is not a route type"),
    ("type", "07", "`type` '07' is not a route type"),
    ("scope", "nowhere", "`scope` 'nowhere' is not a route scope"),  # fib_create_info refuses it
    ("scope", "200", "`scope` '200' is not a route scope"),  # named: site
    ("protocol", "186", "`protocol` '186' is not a route protocol"),  # named: bgp
    ("protocol", "256", "`protocol` '256' is not a route protocol"),
]


def test_a_route_word_no_backend_writes_is_refused(netns: str, tmp_path: Path) -> None:
    veth(netns)
    path = tmp_path / "routes.json"
    taken = sockdiff("snapshot", "-o", str(path), "--backend", "netlink", "--sections", "routes", netns=netns)
    assert taken.returncode == 0, taken.stderr
    document = json.loads(path.read_text())
    [index] = [i for i, r in enumerate(document["routes"]) if r["destination"] == "10.9.0.0/24"]
    assert document["routes"][index]["scope"] == "link" and document["routes"][index]["protocol"] == "kernel"
    assert sockdiff("show", str(path), "--route").returncode == 0  # as written, it loads
    # What the collectors write for numbers without names loads too.
    document["routes"][index] |= {"type": "12", "scope": "17", "protocol": "250"}
    path.write_text(json.dumps(document))
    assert sockdiff("show", str(path), "--route").returncode == 0
    for field, value, words in _BAD_WORDS:
        bad = json.loads(json.dumps(document))
        bad["routes"][index][field] = value
        path.write_text(json.dumps(bad))
        error = one_line_error(sockdiff("show", str(path), "--route"))
        assert words in error and f"$.routes[{index}]" in error, (field, value)
