"""The differ on hand-made snapshots: identity, pairing, nulls, filters, fail-on."""

from __future__ import annotations

import msgspec
import pytest

from sockdiff import Socket, UsageError, inet
from sockdiff.differ import diff, parse_fail_on, parse_fields, persistent
from sockdiff.filter import compile_filters
from tests.helpers.made import snap, tcp, unix


def test_identical_snapshots_have_no_differences() -> None:
    a = snap(tcp(80, inode=5), unix("/a", 6))
    assert a.sockets is not None
    result = diff(a, snap(*a.sockets))
    assert result.summary == {"new": 0, "closed": 0, "changed": 0}
    assert result.counted(["any"]) == 0


def test_new_closed_and_state_change() -> None:
    peer = inet("127.0.0.1", 5000)
    old = snap(tcp(80, inode=5), tcp(81, "ESTABLISHED", 7, remote=peer))
    new = snap(tcp(81, "CLOSE_WAIT", 7, remote=peer), tcp(82, inode=9))
    result = diff(old, new)
    assert [s.local.port for s in result.opened] == [82]
    assert [s.local.port for s in result.closed] == [80]
    assert [(c.old.state, c.new.state, c.fields) for c in result.changed] == [
        ("ESTABLISHED", "CLOSE_WAIT", ("state",))
    ]


def test_listener_restarted_by_another_process_is_one_change() -> None:
    result = diff(snap(tcp(80, inode=5, pids=[10])), snap(tcp(80, inode=8, pids=[20])))
    assert result.summary == {"new": 0, "closed": 0, "changed": 1}
    assert result.changed[0].fields == ("processes", "inode")


def test_reuseport_listeners_pair_by_inode() -> None:
    old = snap(tcp(80, inode=5, pids=[10]), tcp(80, inode=6, pids=[11]))
    new = snap(tcp(80, inode=6, pids=[11]))
    result = diff(old, new)
    assert result.summary == {"new": 0, "closed": 1, "changed": 0}
    assert result.closed[0].inode == 5


def test_same_identity_without_inodes_pairs_one_to_one() -> None:
    old = snap(tcp(80, "TIME_WAIT", 0, pids=[]), tcp(80, "TIME_WAIT", 0, pids=[]))
    new = snap(tcp(80, "TIME_WAIT", 0, pids=[]))
    assert diff(old, new).summary == {"new": 0, "closed": 1, "changed": 0}


def test_unknown_values_are_never_changes() -> None:
    known = tcp(80, inode=5, pids=[10], recv_q=3)
    unknown = msgspec.structs.replace(known, recv_q=None, processes=(), uid=None)
    result = diff(snap(known), snap(unknown), fields=parse_fields("all"))
    assert result.summary["changed"] == 0
    # inode 0 is no inode: TIME_WAIT against a real one is not an inode change
    assert diff(snap(msgspec.structs.replace(known, inode=0)), snap(known)).summary["changed"] == 0


def test_queues_compared_only_when_asked() -> None:
    old, new = snap(tcp(80, inode=5, recv_q=0)), snap(tcp(80, inode=5, recv_q=7))
    assert diff(old, new).summary["changed"] == 0
    changed = diff(old, new, fields=parse_fields("+recv_q")).changed
    assert [c.fields for c in changed] == [("recv_q",)]


def test_unix_identity_includes_the_inode() -> None:
    result = diff(snap(unix("/run/a", 5)), snap(unix("/run/a", 6)))
    assert result.summary == {"new": 1, "closed": 1, "changed": 0}


def test_fail_on_kinds() -> None:
    old = snap(tcp(80, inode=5), unix(None, 7, "CONNECTED"))
    new = snap(
        tcp(80, "CLOSE", 5),
        tcp(90, inode=9),
        unix(None, 8, "UNCONNECTED", "dgram"),
        unix("/n", 10, "UNCONNECTED", "dgram"),
    )
    result = diff(old, new)
    assert result.summary == {"new": 3, "closed": 1, "changed": 1}
    assert result.counted(parse_fail_on("any")) == 5
    assert result.counted(parse_fail_on("new")) == 3
    assert result.counted(parse_fail_on("closed")) == 1
    assert result.counted(parse_fail_on("changed")) == 1
    # a new TCP listener and a named datagram socket wait for peers; an unnamed one does not
    assert result.counted(parse_fail_on("listening")) == 2
    assert result.counted(parse_fail_on("closed,listening")) == 3
    with pytest.raises(UsageError, match=r"^unknown fail_on kind 'bogus'"):
        parse_fail_on("new,bogus")
    for nothing in ("", " , "):
        with pytest.raises(UsageError, match=r"^fail_on names no kind"):
            parse_fail_on(nothing)


def test_ignore_and_only_filter_differences() -> None:
    old = snap(tcp(80, inode=5))
    new = snap(tcp(90, inode=9), tcp(91, inode=10))
    assert diff(old, new, ignore=compile_filters(["sport = :90"])).summary == {
        "new": 1,
        "closed": 1,
        "changed": 0,
    }
    assert diff(old, new, only=compile_filters(["sport >= :90"])).summary == {
        "new": 2,
        "closed": 0,
        "changed": 0,
    }


def test_persistent_keeps_only_repeated_differences() -> None:
    first = diff(snap(tcp(80, inode=5)), snap(tcp(90, inode=9), tcp(91, inode=10)))
    second = diff(snap(tcp(80, inode=5)), snap(tcp(90, inode=9)))
    kept = persistent(first, second)
    assert kept.summary == {"new": 1, "closed": 1, "changed": 0}
    assert kept.persistent_only


def test_parse_fields() -> None:
    assert parse_fields(None) == ("state", "processes", "inode")
    assert parse_fields("state") == ("state",)
    assert parse_fields("+uid") == ("state", "processes", "inode", "uid")
    with pytest.raises(UsageError, match=r"^unknown field 'colour' for fields "):
        parse_fields("colour")


def test_differences_are_listed_in_port_order() -> None:
    """Numerically, as ss sorts: :22 before :1000 (a text sort would put "1000" first)."""
    result = diff(snap(), snap(tcp(1000, inode=3), tcp(22, inode=4), tcp(8080, inode=5)))
    assert [s.local.port for s in result.opened] == [22, 1000, 8080]


def bound(sock: Socket, device: str | None) -> Socket:
    return msgspec.structs.replace(sock, interface=device)


def test_sockets_bound_to_different_devices_are_different_sockets() -> None:
    """Two listeners on one port, on lo and on d0: closing one is one close, not a change."""
    lo, d0 = bound(tcp(7401, inode=5), "lo"), bound(tcp(7401, inode=6), "d0")
    result = diff(snap(lo, d0), snap(d0))
    assert (result.closed, result.opened, result.changed) == ((lo,), (), ())
    # A new listener on a third device with another inode does not stand in for the closed one.
    d1 = bound(tcp(7401, inode=7), "d1")
    result = diff(snap(lo, d0), snap(d0, d1))
    assert (result.closed, result.opened, result.changed) == ((lo,), (d1,), ())


def test_an_unknown_device_pairs_with_a_known_one() -> None:
    """/proc cannot see devices: its 0.0.0.0:7401 is netlink's 0.0.0.0%lo:7401, both ways."""
    lo, d0 = bound(tcp(7401, inode=5), "lo"), bound(tcp(7401, inode=6), "d0")
    unknown = [bound(lo, None), bound(d0, None)]
    for old, new in ((snap(*unknown), snap(lo, d0)), (snap(lo, d0), snap(*unknown))):
        assert diff(old, new, fields=parse_fields("all")).summary == {"new": 0, "closed": 0, "changed": 0}
    # By inode first: the unknown twins pair with their own sockets, whatever the order.
    result = diff(snap(*unknown), snap(d0, bound(tcp(7401, inode=9), "lo")))
    assert result.summary == {"new": 0, "closed": 0, "changed": 1}
    assert (result.changed[0].old.inode, result.changed[0].new.inode) == (5, 9)
