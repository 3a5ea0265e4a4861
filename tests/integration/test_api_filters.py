"""The library's diff() and compare() take filter expressions where the command line does (issue 15)."""

from __future__ import annotations

import socket
from collections.abc import Callable
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


def test_fields_take_a_comma_list_or_names(before_after: tuple[sockdiff.Snapshot, sockdiff.Snapshot]) -> None:
    """``fields`` as ``--fields`` takes it, or a list; a name that is no field (a method
    of the record, a typo) is refused rather than compared."""
    before, after = before_after
    for fields in ("state", "state,uid", ["state"], ("state", "remote"), "+uid", "all"):
        assert _kinds(sockdiff.diff(before, after, fields=fields)) == ["tcp", "unix"], fields
        assert _kinds(sockdiff.compare(before, after, fields=fields)) == ["tcp", "unix"], fields
    for wrong in (["zzz"], ["to_dict"], "zzz", ["state", "__class__"]):
        with pytest.raises(UsageError, match=r"^unknown field '.*' for fields"):
            sockdiff.diff(before, after, fields=wrong)
    for kind in (5, [5], b"state"):
        with pytest.raises(UsageError, match=r"^fields: expected"):
            sockdiff.diff(before, after, fields=kind)  # type: ignore[arg-type]


def test_paths_as_python_takes_them(
    before_after: tuple[sockdiff.Snapshot, sockdiff.Snapshot], tmp_path: Path
) -> None:
    """load() and compare() read a path given as pathlib.Path, bytes or text alike."""
    before, after = before_after
    path = tmp_path / "before.json"
    sockdiff.save(before, str(path))
    for given in (path, str(path), bytes(path)):
        assert sockdiff.load(given).sockets == before.sockets
        assert _kinds(sockdiff.compare(given, after)) == ["tcp", "unix"]
    with pytest.raises(UsageError, match=r"^path: expected a file's path"):
        sockdiff.load(5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^old: expected"):
        sockdiff.compare(5, after)  # type: ignore[arg-type]


def test_a_misused_api_is_one_usage_error(before_after: tuple[sockdiff.Snapshot, sockdiff.Snapshot]) -> None:
    """Each argument of the wrong kind is one UsageError naming the parameter, not a TypeError."""
    before, after = before_after
    result = sockdiff.diff(before, after)
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: sockdiff.report(before, "text"), "result"),  # type: ignore[arg-type]
        (lambda: sockdiff.report(result, "text", options={"color": True}), "options"),  # type: ignore[arg-type]
        (lambda: sockdiff.report(result, 5), "output_format"),  # type: ignore[arg-type]
        (lambda: sockdiff.compile_filter(None), "text"),  # type: ignore[arg-type]
        (lambda: sockdiff.snapshot(where=5), "where"),  # type: ignore[arg-type]
        (lambda: sockdiff.diff(before, "after.json"), "new"),  # type: ignore[arg-type]
    ]
    for call, parameter in cases:
        with pytest.raises(UsageError, match=rf"^{parameter}: expected"):
            call()
    assert sockdiff.report(result, "text")
