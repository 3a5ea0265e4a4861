"""The library's diff() and compare() take filter expressions where the command line does (issue 15)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import sockdiff
from sockdiff.errors import BadFilter, SockdiffError, UsageError
from sockdiff.netns import entered


@pytest.fixture
def before_after(netns: str, tmp_path: Path) -> tuple[sockdiff.Snapshot, sockdiff.Snapshot]:
    """A TCP and a UNIX listener opened between two real snapshots of a private namespace."""
    before = sockdiff.snapshot(netns=netns, sections=("sockets",))
    with entered(netns):  # a socket belongs to the namespace it was made in
        tcp = socket.socket()
        unix = socket.socket(socket.AF_UNIX)
    with tcp, unix:
        tcp.bind(("127.0.0.1", 7701))
        tcp.listen()
        unix.bind(str(tmp_path / "api.sock"))
        unix.listen()
        after = sockdiff.snapshot(netns=netns, sections=("sockets",))
    return before, after


def _kinds(result: sockdiff.Diff) -> list[str]:
    return sorted(s.proto for s in result.opened if s.local.port == 7701 or s.proto == "unix")


def test_ignore_takes_expressions_and_predicates(
    before_after: tuple[sockdiff.Snapshot, sockdiff.Snapshot],
) -> None:
    before, after = before_after
    assert _kinds(sockdiff.diff(before, after)) == ["tcp", "unix"]
    unix = sockdiff.compile_filter("proto unix")
    for ignore in ("proto unix", ["proto unix"], unix, [unix], ["sport = :1", "proto unix"], ("proto unix",)):
        assert _kinds(sockdiff.diff(before, after, ignore=ignore)) == ["tcp"], ignore
    assert _kinds(sockdiff.diff(before, after, only="proto unix")) == ["unix"]
    assert _kinds(sockdiff.diff(before, after, ignore=[])) == ["tcp", "unix"]
    assert _kinds(sockdiff.compare(before, after, ignore=["proto tcp"])) == ["unix"]


def test_bad_filters_raise_sockdiff_errors(before_after: tuple[sockdiff.Snapshot, sockdiff.Snapshot]) -> None:
    before, after = before_after
    with pytest.raises(BadFilter, match="unknown keyword 'prot'"):
        sockdiff.diff(before, after, ignore=["prot unix"])
    for wrong in (5, [5], b"proto unix"):
        with pytest.raises(UsageError, match=r"^ignore: expected a filter expression"):
            sockdiff.diff(before, after, ignore=wrong)  # type: ignore[arg-type]
    with pytest.raises(SockdiffError):
        sockdiff.diff(before, after, only="pid " + "9" * 5000)
