"""compare reports only what both sides covered: a snapshot's protocols, filter and namespace."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sockdiff import load
from sockdiff.netns import entered
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.netns import run_in_netns


class Opener:
    """Sockets opened inside one namespace, all closed when the test ends."""

    def __init__(self, netns: str, stack: ExitStack) -> None:
        self.netns = netns
        self.stack = stack

    def tcp_listener(self) -> int:
        with entered(self.netns):
            sock = self.stack.enter_context(socket.create_server(("127.0.0.1", 0)))
        port: int = sock.getsockname()[1]
        return port

    def udp(self) -> int:
        with entered(self.netns):
            sock = self.stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

    def unix(self, name: str) -> None:
        with entered(self.netns):
            sock = self.stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            sock.bind(f"\0{name}")
            sock.listen()


@pytest.fixture
def opener(netns: str) -> Iterator[Opener]:
    with ExitStack() as stack:
        yield Opener(netns, stack)


def test_protocol_scope_narrows_the_comparison(opener: Opener, tmp_path: Path) -> None:
    """snapshot -t, then UDP and UNIX sockets appear: compare with live reports only the new TCP one.

    Without --netns, live is read in the namespace the snapshot was taken in.
    """
    opener.tcp_listener()
    opener.udp()
    old = tmp_path / "tcp.json"
    taken = sockdiff("snapshot", "-t", "--netns", opener.netns, "--no-processes", "-o", str(old))
    assert taken.returncode == 0, taken.stderr
    assert load(str(old)).header.scope.protos == ("tcp",)
    port = opener.tcp_listener()
    opener.udp()
    opener.unix("sockdiff-scope-test")
    result = sockdiff("compare", str(old), "--fail-on", "listening")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [lines[0].split()[:4], lines[1:]] == [
        ["+", "tcp", "LISTEN", f"127.0.0.1:{port}"],
        ["1 new, 0 closed, 0 changed"],
    ]
    assert result.stderr == "sockdiff: note: compared only tcp sockets: what both sides cover\n"


def test_filter_scope_applies_to_both_sides(opener: Opener, tmp_path: Path) -> None:
    """A snapshot taken with a filter is compared with live through the same filter."""
    kept = opener.tcp_listener()
    old = tmp_path / "filtered.json"
    expression = f"sport = :{kept}"
    taken = sockdiff("snapshot", "--netns", opener.netns, "--no-processes", "-o", str(old), expression)
    assert taken.returncode == 0, taken.stderr
    assert load(str(old)).header.scope.filter == expression
    opener.tcp_listener()
    opener.udp()
    result = sockdiff("compare", str(old), "--netns", opener.netns)
    assert (result.returncode, result.stdout) == (0, "0 new, 0 closed, 0 changed\n"), result.stderr
    assert result.stderr == (
        f"sockdiff: note: compared only tcp/udp/raw/unix sockets matching {expression!r}:"
        " what both sides cover\n"
    )
    # Two files: the filter of one applies to the other, which was taken whole.
    whole = tmp_path / "whole.json"
    assert sockdiff("snapshot", "--netns", opener.netns, "--no-processes", "-o", str(whole)).returncode == 0
    both = sockdiff("compare", str(old), str(whole))
    assert (both.returncode, both.stdout) == (0, "0 new, 0 closed, 0 changed\n"), both.stderr
    reverse = sockdiff("compare", str(whole), str(old))
    assert (reverse.returncode, reverse.stdout) == (0, "0 new, 0 closed, 0 changed\n"), reverse.stderr


def test_netns_flag_overrides_the_snapshots_namespace(
    opener: Opener, module_netns: str, tmp_path: Path
) -> None:
    """--netns names the namespace live is read in; without it the snapshot's own is used."""
    port = opener.tcp_listener()
    old = tmp_path / "ns.json"
    taken = sockdiff("snapshot", "-t", "--netns", opener.netns, "--no-processes", "-o", str(old))
    assert taken.returncode == 0, taken.stderr
    same = sockdiff("compare", str(old))
    assert (same.returncode, same.stdout) == (0, "0 new, 0 closed, 0 changed\n"), same.stderr
    # Another namespace, with no sockets of its own but what other tests of this module left.
    other = sockdiff("compare", str(old), "--netns", module_netns, "--only", f"sport = :{port}")
    assert other.returncode == 1, other.stderr
    lines = other.stdout.splitlines()
    assert [lines[0].split()[:4], lines[1:]] == [
        ["-", "tcp", "LISTEN", f"127.0.0.1:{port}"],
        ["0 new, 1 closed, 0 changed"],
    ]


def test_sections_taken_are_the_sections_compared(netns: str, tmp_path: Path) -> None:
    """--sections sockets,routes: interfaces are null, never compared; a new route is reported and counted."""
    old = tmp_path / "partial.json"
    taken = sockdiff(
        "snapshot", "--netns", netns, "--sections", "sockets,routes", "--no-processes", "-o", str(old)
    )
    assert taken.returncode == 0, taken.stderr
    document = json.loads(old.read_bytes())
    assert document["interfaces"] is None and isinstance(document["routes"], list)
    assert "routes" in document["sources"] and "interfaces" not in document["sources"]
    # The interface changes; it was not taken, so nothing is reported.
    run_in_netns(netns, ["ip", "link", "set", "lo", "mtu", "9000"])
    same = sockdiff("compare", str(old))
    assert (same.returncode, same.stdout) == (0, "0 new, 0 closed, 0 changed\n"), same.stderr
    run_in_netns(netns, ["ip", "route", "add", "blackhole", "10.99.0.0/16"])
    result = sockdiff("compare", str(old), "--fail-on", "interfaces")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "+ route blackhole 10.99.0.0/16 table main proto boot scope universe metric 0",
        "0 new, 0 closed, 0 changed; routes: 1 added, 0 removed, 0 changed",
    ]
    assert sockdiff("compare", str(old), "--fail-on", "routes").returncode == 1
    assert "unknown section 'bogus'" in one_line_error(
        sockdiff("snapshot", "--sections", "sockets,bogus", "-o", "-")
    )
