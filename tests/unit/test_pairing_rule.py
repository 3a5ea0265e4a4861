"""Sockets sharing one identity pair by value alone (issue 21 F3; README "Choices").

compare reads the second file sharing the first's records byte for byte when it
can (snapshots.loads(like=)); a second file written otherwise (re-indented) is
read whole; the Python API diffs snapshots built in memory. All three give one
answer, whatever order the records are listed in.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff import Process, Snapshot, Socket, diff, inet, report
from sockdiff.cli import main
from sockdiff.snapshots import dumps, loads
from tests.helpers.made import snap, tcp

FIELDS = ["state", "processes", "inode", "uid", "recv_q", "send_q", "remote"]


def _time_wait(send_q: int, uid: int = 0, state: str = "TIME_WAIT") -> Socket:
    """Inode-0 sockets of one identity, told apart by their other fields."""
    return Socket(
        "tcp", "inet", "stream", state, inet("10.0.0.1", 80), inet("10.0.0.2", 5000), 0, uid, 0, send_q, ()
    )


def _listener(inode: int, pid: int) -> Socket:
    """SO_REUSEPORT listeners of one identity, told apart by inode and owner."""
    return Socket(
        "tcp", "inet", "stream", "LISTEN", inet("0.0.0.0", 80), inet("0.0.0.0", 0), inode, 0, 0, 0,
        (Process(pid, f"p{pid}", 3),),
    )  # fmt: skip


POOL = (
    _time_wait(0),
    _time_wait(7),
    _time_wait(7, uid=5),
    _time_wait(0, state="FIN_WAIT2"),
    _listener(11, 1),
    _listener(11, 2),
    _listener(12, 1),
    _listener(13, 3),
)


def _answers(old: Snapshot, new: Snapshot) -> list[str]:
    """The report of: the fast path (the second file sharing the first's records), the
    second file re-indented (nothing shared), and the API on the records in memory."""
    old_bytes, new_bytes = dumps(old), dumps(new)
    old_read = loads(old_bytes, "a")
    shared = loads(new_bytes, "b", like=old_read)
    reindented = loads(msgspec.json.format(new_bytes, indent=3), "b", like=old_read)
    return [
        report(diff(old_read, second, fields=FIELDS), "json")
        for second in (shared, reindented, dataclasses.replace(new, origin="b"))
    ]


def test_unchanged_records_listed_in_another_order_are_unchanged_on_every_path() -> None:
    """Two inode-0 sockets of one identity, both unchanged, listed in the other order:
    unchanged on every path (they used to be paired crosswise, both changed, unless shared)."""
    x, y = _time_wait(0), _time_wait(7)
    answers = _answers(snap(x, y), snap(y, x))
    assert answers == [answers[0]] * 3
    result = diff(snap(x, y), snap(y, x), fields=FIELDS)
    assert (result.opened, result.closed, result.changed) == ((), (), ())


def test_what_is_left_of_a_group_pairs_whichever_equal_record_was_shared() -> None:
    """A record written three times in the first file and twice in the second: the one
    left over pairs with the same record whichever of the three the second file shared."""
    x, y = _time_wait(0), _time_wait(7)
    z, w = _time_wait(0, uid=5), _time_wait(7, uid=9)
    answers = _answers(snap(x, x, y, x), snap(x, x, z, w))
    assert answers == [answers[0]] * 3
    assert '"changed":2' in answers[0].replace(" ", "")


@settings(max_examples=60, deadline=None)
@given(
    old=st.lists(st.sampled_from(POOL), max_size=6),
    new=st.lists(st.sampled_from(POOL), max_size=6),
    seed=st.integers(0, 2**16),
)
def test_one_answer_on_every_path_and_in_any_order(old: list[Socket], new: list[Socket], seed: int) -> None:
    answers = _answers(snap(*old), snap(*new))
    assert answers == [answers[0]] * 3
    shuffle = random.Random(seed).shuffle
    shuffle(old)
    shuffle(new)
    assert report(diff(snap(*old), snap(*new), fields=FIELDS), "json") == answers[0]


@pytest.mark.parametrize("indent", [None, 2])
def test_compare_says_the_same_of_a_second_file_however_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], indent: int | None
) -> None:
    """The command, in-process: the second file as sockdiff writes it, or re-indented."""
    x, y, z = _time_wait(0), _time_wait(7), _time_wait(7, uid=5)
    (tmp_path / "a.json").write_bytes(dumps(snap(y, x, y)))
    second = dumps(snap(x, z, y))
    if indent is not None:
        second = msgspec.json.format(second, indent=indent)
    (tmp_path / "b.json").write_bytes(second)
    main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--fields", "all"])
    out = capsys.readouterr().out
    assert "0 new, 0 closed, 1 changed" in out, out


def test_twins_without_inodes_pair_with_their_own_processes() -> None:
    """SO_REUSEPORT twins in a listing without inodes (ss -p without -e) pair with the live
    sockets their own processes hold, whatever order the live inodes put them in (they were
    paired crosswise by program name alone, each 'processes' changed)."""
    saved = snap(
        msgspec.structs.replace(tcp(80, inode=0, pids=(10,)), uid=None),
        msgspec.structs.replace(tcp(80, inode=0, pids=(11,)), uid=None),
    )
    live = snap(tcp(80, inode=900, pids=(11,)), tcp(80, inode=901, pids=(10,)))
    for named in ({10: "p", 11: "p"}, {}):  # one program's two processes, or two programs
        if named:
            saved, live = (snap(*(_named(s, named) for s in side.sockets or ())) for side in (saved, live))
        result = diff(saved, live)
        assert (result.opened, result.closed, result.changed) == ((), (), ())


def _named(sock: Socket, names: dict[int, str]) -> Socket:
    procs = tuple(msgspec.structs.replace(p, name=names[p.pid]) for p in sock.processes)
    return msgspec.structs.replace(sock, processes=procs)
