"""Saved ss and netstat listings against the live system: what a tester's adversarial round found (issue 19).

Each test holds real sockets in a private namespace, saves what the real ``ss``
or ``netstat`` printed, changes the namespace, and compares the saved text with
a live netlink snapshot of it.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import pytest

from sockdiff import Snapshot, diff, snapshot
from sockdiff.comparison import compare
from sockdiff.errors import BadSnapshot
from sockdiff.formats.notation import record_detail
from sockdiff.model import Socket
from sockdiff.saved import SavedListingNote, read_listing
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.netns import run_in_netns

WHEN = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)

# Binds UDP 127.0.0.1:PORT (unconnected) and an abstract UNIX datagram socket
# (unconnected: no listing taken with -l by netstat shows it); says "ready", waits.
UDP_HOLDER = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", int(sys.argv[1])))
x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); x.bind("\\0sockdiff-dgram-" + sys.argv[1])
print("ready", flush=True); sys.stdin.read()
"""


def _hold(netns: str, script: str, *args: str) -> subprocess.Popen[str]:
    """``script`` run in ``netns``, once it says it is ready."""
    argv = ["ip", "netns", "exec", netns, sys.executable, "-c", script, *args]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("ready")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate()


def _read(text: str, name: str) -> Snapshot:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SavedListingNote)
        return read_listing(text, name, WHEN)


def _ports(sockets: Iterable[Socket]) -> list[tuple[str, object]]:
    return sorted((s.proto, s.local.port) for s in sockets)


def test_a_listing_taken_with_l_compares_udp(netns: str) -> None:
    """ss -l and netstat -l show unconnected UDP: a port that moved is one closed and one new."""
    holder = _hold(netns, UDP_HOLDER, "5301")
    try:
        saved = {tool: run_in_netns(netns, [tool, "-tuxlpn"]).stdout for tool in ("ss", "netstat")}
    finally:
        stop(holder)
    holder = _hold(netns, UDP_HOLDER, "5302")
    try:
        live = snapshot(backend="netlink", netns=netns)
        for tool, text in saved.items():
            found = diff(_read(text, f"{tool}.txt"), live)
            inet_opened = [s for s in found.opened if s.proto != "unix"]
            inet_closed = [s for s in found.closed if s.proto != "unix"]
            assert (_ports(inet_opened), _ports(inet_closed)) == (
                [("udp", 5302)],
                [("udp", 5301)],
            ), (tool, text)
            if tool == "netstat":  # netstat -lx shows no unconnected UNIX socket: none is new
                assert not [s for s in found.opened if s.proto == "unix"], text
    finally:
        stop(holder)


# Listens on TCP 127.0.0.1:PORT and on the abstract UNIX name sockdiff-listen; says "ready", waits.
LISTENER = """
import socket, sys
t = socket.socket(); t.bind(("127.0.0.1", int(sys.argv[1]))); t.listen()
x = socket.socket(socket.AF_UNIX); x.bind("\\0sockdiff-listen"); x.listen()
print("ready", flush=True); sys.stdin.read()
"""


def test_a_listing_without_rows_is_refused_or_read_as_what_its_title_says(netns: str, tmp_path: Path) -> None:
    """An idle namespace's ss -tlnp or netstat -tlnp holds a header only: which protocols it
    covered is unknown, so comparing it is one error, never a silent empty scope; netstat's
    UNIX block says UNIX, and a live UNIX listener against it is new."""
    for tool in ("ss", "netstat"):
        path = tmp_path / f"{tool}.txt"
        path.write_text(run_in_netns(netns, [tool, "-tlnp"]).stdout)
        assert "no row" in one_line_error(sockdiff("compare", str(path), "--netns", netns))
    unix = tmp_path / "unix.txt"
    unix.write_text(run_in_netns(netns, ["netstat", "-xlnp"]).stdout)
    holder = _hold(netns, LISTENER, "5303")
    try:
        found = diff(_read(unix.read_text(), "unix.txt"), snapshot(backend="netlink", netns=netns))
        assert [s.local.path for s in found.opened] == ["@sockdiff-listen"]
    finally:
        stop(holder)


def test_a_route_that_gains_or_loses_a_gateway_is_changed(netns: str) -> None:
    """No gateway is known (netstat -rn's 0.0.0.0, a native snapshot's null): a route that
    comes to go via 10.9.0.5, or stops, is a change of gateway, from text and from snapshots."""
    for argv in (
        ["link", "add", "sv3br", "type", "bridge"],
        ["link", "set", "sv3br", "up"],
        ["addr", "add", "10.9.0.1/24", "dev", "sv3br"],
        ["route", "add", "10.30.0.0/16", "dev", "sv3br"],
        ["route", "add", "10.40.0.0/16", "via", "10.9.0.5", "dev", "sv3br"],
    ):
        run_in_netns(netns, ["ip", *argv])
    text = _read(run_in_netns(netns, ["netstat", "-rn"]).stdout, "netstat.txt")
    natives = [snapshot(backend=backend, netns=netns, sections=["routes"]) for backend in ("netlink", "proc")]
    run_in_netns(netns, ["ip", "route", "replace", "10.30.0.0/16", "via", "10.9.0.5", "dev", "sv3br"])
    run_in_netns(netns, ["ip", "route", "replace", "10.40.0.0/16", "dev", "sv3br"])
    for backend in ("netlink", "proc"):
        live = snapshot(backend=backend, netns=netns, sections=["routes"])
        for before in (text, *natives):
            found = diff(before, live).routes
            assert found is not None and (found.added, found.removed) == ((), ()), (
                backend,
                before.header.backend,
            )
            # (Between two netlink reads the scope moves too: link to universe and back.)
            details = sorted(
                f"{c.new.destination} {record_detail(c).partition(';')[0]}" for c in found.changed
            )
            assert details == [
                "10.30.0.0/16 gateway: - → 10.9.0.5",
                "10.40.0.0/16 gateway: 10.9.0.5 → -",
            ], (backend, before.header.backend)


# Two UDP sockets on one address with SO_REUSEPORT: rows alike without -e and -p.
REUSEPORT = """
import socket, sys
held = []
for _ in range(2):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); u.bind(("127.0.0.1", int(sys.argv[1])))
    held.append(u)
print("ready", flush=True); sys.stdin.read()
"""


def test_a_listing_appended_twice_is_refused_naming_the_line(netns: str, tmp_path: Path) -> None:
    """A row naming one socket (inode, descriptor) twice is a second listing: one error naming
    the line, since reading it would call a live socket closed; rows alike that name no socket
    (SO_REUSEPORT twins without -e or -p) are two sockets, read as two."""
    holder = _hold(netns, REUSEPORT, "5304")
    try:
        for tool, flags in (("ss", "-uanpe"), ("netstat", "-uanpe")):
            once = run_in_netns(netns, [tool, flags]).stdout
            path = tmp_path / f"{tool}.txt"
            path.write_text(once + once)
            error = one_line_error(sockdiff("compare", str(path), "--netns", netns))
            assert f"line {once.count(chr(10)) + 1}, column 1" in error and "repeats line 1" in error, error
        live = snapshot(backend="netlink", netns=netns)
        for tool in ("ss", "netstat"):
            twins = _read(run_in_netns(netns, [tool, "-uan"]).stdout, f"{tool}.txt")
            assert [s.local.port for s in twins.sockets or ()] == [5304, 5304]
            found = diff(twins, live)
            assert (found.opened, found.closed, found.changed) == ((), (), ()), tool
    finally:
        stop(holder)


# Raw ICMP sockets (IPv4 unconnected, IPv6 unconnected, IPv4 connected) and a connected UDP one.
RAW_AND_CONNECTED = """
import socket, sys
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)
r6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 58)
c = socket.socket(socket.AF_INET, socket.SOCK_RAW, 17); c.connect(("127.0.0.1", 0))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 5305)); u.connect(("127.0.0.1", 53))
print("ready", flush=True); sys.stdin.read()
"""


def test_ss_w_listings_read_as_raw_and_ss_u_without_a_as_connected_udp(netns: str) -> None:
    """ss -w prints no Netid (and without -a no State): its rows are raw (a raw peer's port
    is ``*``, its port column a protocol's name), never UDP; ss -u without -a shows connected
    UDP sockets; each compares with the live namespace as no change."""
    holder = _hold(netns, RAW_AND_CONNECTED)
    try:
        live = snapshot(backend="netlink", netns=netns)
        for flags, proto in (("-w", "raw"), ("-wa", "raw"), ("-wl", "raw"), ("-u", "udp"), ("-un", "udp")):
            saved = _read(run_in_netns(netns, ["ss", flags]).stdout, "ss.txt")
            assert saved.header.scope.protos == (proto,), flags
            assert saved.sockets, flags
            found = diff(saved, live)
            assert (found.opened, found.closed, found.changed) == ((), (), ()), flags
    finally:
        stop(holder)


def test_netstat_names_a_shebang_script_by_its_interpreter_and_it_is_the_same_process(
    netns: str, tmp_path: Path
) -> None:
    """A script run through its #! line has comm ``sv3daemon`` while netstat -p shows its
    argv[0], the interpreter's: compare against live reads the live process's argv[0], so
    the same pid so named is the same process, no change; the daemon restarted (another
    pid, the same names) is a change of processes."""
    script = tmp_path / "sv3daemon"
    script.write_text(f"#!{sys.executable}\n" + LISTENER)
    script.chmod(0o755)
    argv = ["ip", "netns", "exec", netns, str(script), "5306"]

    def started() -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().startswith("ready")
        return proc

    saved = tmp_path / "netstat.txt"
    daemon = started()
    try:
        text = run_in_netns(netns, ["netstat", "-tlnp"]).stdout
        assert f"{daemon.pid}/sv3daemon" not in text, text  # netstat shows the interpreter
        saved.write_text(text)
        live = snapshot(backend="netlink", netns=netns, protos=["tcp"])
        assert [p.name for s in live.sockets or () for p in s.processes] == ["sv3daemon"]
        same = compare(str(saved), netns=netns)
        assert (same.opened, same.closed, same.changed) == ((), (), ()), text
    finally:
        stop(daemon)
    daemon = started()
    try:
        assert [c.fields for c in compare(str(saved), netns=netns).changed] == [("processes",)]
    finally:
        stop(daemon)


# Listens on [2001:db8::1234:5678:9abc]:8443, which netstat without -W cuts to
# 2001:db8::1234:567:8443: still an address, another one.
LONG_V6 = """
import socket, sys
s = socket.socket(socket.AF_INET6); s.bind(("2001:db8::1234:5678:9abc", 8443)); s.listen()
print("ready", flush=True); sys.stdin.read()
"""


def test_netstat_without_w_cutting_an_ipv6_address_is_refused(netns: str) -> None:
    """netstat cuts address:port to its 23-character column: a cut that still reads as an
    address would be another socket (one closed, one new). A field that fills the column is
    refused in one line naming it (take -W); netstat -W's whole address reads and matches."""
    run_in_netns(netns, ["ip", "-6", "addr", "add", "2001:db8::1234:5678:9abc/64", "dev", "lo", "nodad"])
    holder = _hold(netns, LONG_V6)
    try:
        cut = run_in_netns(netns, ["netstat", "-tln"]).stdout
        assert "2001:db8::1234:567:8443" in cut, cut
        with pytest.raises(BadSnapshot, match=r"line 3, column \d+: .*2001:db8::1234:567:8443.*netstat -W"):
            _read(cut, "netstat.txt")
        whole = _read(run_in_netns(netns, ["netstat", "-tlnW"]).stdout, "netstat.txt")
        found = diff(whole, snapshot(backend="netlink", netns=netns))
        assert (found.opened, found.closed, found.changed) == ((), (), ())
    finally:
        stop(holder)


def test_show_route_of_an_ipv4_only_listing_prints_only_ipv4s_table(netns: str, tmp_path: Path) -> None:
    """netstat -rn saved alone holds no IPv6 table: show --route prints the IPv4 table only
    (it printed an IPv6 one of made-up null entries), and -6 is one error."""
    run_in_netns(netns, ["ip", "link", "add", "sv3br", "type", "bridge"])
    run_in_netns(netns, ["ip", "link", "set", "sv3br", "up"])
    run_in_netns(netns, ["ip", "addr", "add", "10.9.0.1/24", "dev", "sv3br"])
    saved = tmp_path / "routes.txt"
    saved.write_text(run_in_netns(netns, ["netstat", "-rn"]).stdout)
    shown = sockdiff("show", str(saved), "--route")
    assert shown.returncode == 0, shown.stderr
    assert "IPv6" not in shown.stdout and "10.9.0.0" in shown.stdout, shown.stdout
    assert "no IPv6 table" in one_line_error(sockdiff("show", str(saved), "--route", "-6"))


def test_show_route_prints_a_saved_netstat_rne_back_as_it_was(netns: str, tmp_path: Path) -> None:
    """netstat -rne shows Metric, Ref and Use where -rn shows MSS, Window and irtt: its
    routes are printed back in its own layout, byte for byte (they came back as -rn's
    columns of unknowns, the metric lost)."""
    for argv in (
        ["link", "add", "sv3br", "type", "bridge"],
        ["link", "set", "sv3br", "up"],
        ["addr", "add", "10.9.0.1/24", "dev", "sv3br"],
        ["route", "add", "10.30.0.0/16", "via", "10.9.0.5", "metric", "7"],
    ):
        run_in_netns(netns, ["ip", *argv])
    saved = tmp_path / "routes.txt"
    saved.write_text(run_in_netns(netns, ["netstat", "-rne"]).stdout)
    shown = sockdiff("show", str(saved), "--route")
    assert shown.stdout == saved.read_text(), shown.stderr
