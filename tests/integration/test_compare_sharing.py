"""compare reads the second file sharing the first's unchanged records (snapshots.loads(like=)).

The same snapshot, the same errors, the same diff as reading each file alone; a
record shared is the first file's own object, and the differ takes it for unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sockdiff import BadSnapshot, Snapshot, Socket, diff, inet, save
from sockdiff.snapshots import dumps, loads
from tests.helpers.cli import sockdiff
from tests.helpers.made import sample

A = sample()
A_BYTES = dumps(A)
A_LOADED = loads(A_BYTES, "a")
# Values a field of a record may be given: some it takes, most it refuses.
VALUES: st.SearchStrategy[object] = st.sampled_from(
    [
        0,
        1,
        -1,
        2**64,
        "",
        "x",
        "ESTABLISHED",
        "LISTEN",
        "tcp",
        "unix",
        "::1",
        "1.2.3.4",
        "01.2.3.4",
        None,
        [],
        {},
        {"path": "a\\x00"},
        {"address": "10.0.0.1", "port": 80},
        True,
        1.5,
    ]
)


def _read(data: bytes, like: Snapshot | None) -> Snapshot | str:
    try:
        return loads(data, "b", like=like)
    except BadSnapshot as err:
        return str(err)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_same_snapshot_or_the_same_error_with_or_without_like(data: st.DataObject) -> None:
    """A second file made of the first's records, some altered, some added: read alone or
    sharing, the same records or the same one line of error."""
    document: dict[str, Any] = msgspec.json.decode(A_BYTES)
    records = document["sockets"]
    for _ in range(data.draw(st.integers(0, 3))):
        index = data.draw(st.integers(0, len(records) - 1))
        record = dict(records[index])
        if data.draw(st.booleans()):  # a value the field takes
            key = data.draw(st.sampled_from(["recv_q", "send_q", "inode"]))
            record[key] = data.draw(st.integers(0, 2**32))
        else:
            key = data.draw(st.sampled_from(sorted(record)))
            record[key] = data.draw(VALUES)
        if data.draw(st.booleans()):
            records[index] = record
        else:
            records.append(record)
    b_bytes = msgspec.json.encode(document)
    alone, sharing = _read(b_bytes, None), _read(b_bytes, A_LOADED)
    assert sharing == alone
    if isinstance(sharing, Snapshot):
        assert sharing.sockets is not None and A_LOADED.sockets is not None
        # Records left as they were are the first file's objects, each taken once.
        assert {id(s) for s in sharing.sockets} & {id(s) for s in A_LOADED.sockets}
        assert len({id(s) for s in sharing.sockets}) == len(sharing.sockets)


def test_identical_records_share_one_for_one() -> None:
    """A record standing twice on one side and once on the other: one of the two is
    unchanged, the other closed (or new), as reading each file alone says."""
    assert A.sockets is not None
    twice = dataclasses.replace(A, sockets=(*A.sockets, A.sockets[0]))
    for old, new in ((twice, A), (A, twice)):
        old_loaded = loads(dumps(old), "old")
        new_loaded = loads(dumps(new), "new", like=old_loaded)
        alone = diff(loads(dumps(old), "old"), loads(dumps(new), "new"))
        shared = diff(old_loaded, new_loaded)
        assert (shared.opened, shared.closed, shared.changed) == (alone.opened, alone.closed, alone.changed)
        assert len(shared.opened) + len(shared.closed) == 1


def test_a_file_of_repeated_records_against_itself_differs_in_nothing() -> None:
    """Each record written forty times: each of the forty is one of the first file's records."""
    assert A.sockets is not None
    data = dumps(dataclasses.replace(A, sockets=A.sockets * 40))
    old = loads(data, "a")
    new = loads(data, "b", like=old)
    assert new.sockets is not None and len({id(s) for s in new.sockets}) == len(new.sockets)
    result = diff(old, new, fields=["state", "processes", "inode", "uid", "recv_q", "send_q", "remote"])
    assert (result.opened, result.closed, result.changed) == ((), (), ())


def _time_wait(port: int, send_q: int) -> Socket:
    return Socket(
        "tcp",
        "inet",
        "stream",
        "TIME_WAIT",
        inet("10.0.0.1", 80),
        inet("10.0.0.2", port),
        0,
        0,
        0,
        send_q,
        (),
    )


def test_inode_0_sockets_sharing_an_identity_and_unchanged_count_as_unchanged(tmp_path: Path) -> None:
    """The edge SPEC leaves open, decided (README, "Choices"): two inode-0 sockets with
    one identity, both unchanged but listed in the other order. Paired in order they
    would be paired crosswise; records equal in every field pair first, so they are
    unchanged whether the second file shares the first's records or not."""
    x, y = _time_wait(5000, 0), _time_wait(5000, 7)
    old = dataclasses.replace(A, sockets=(x, y))
    new = dataclasses.replace(A, sockets=(y, x))
    save(old, str(tmp_path / "a.json"))
    save(new, str(tmp_path / "b.json"))
    result = sockdiff("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--fields", "send_q")
    assert result.returncode == 0 and "0 new, 0 closed, 0 changed" in result.stdout, result.stdout
    apart = diff(loads(dumps(old), "a"), loads(dumps(new), "b"), fields=["send_q"])
    assert (apart.opened, apart.closed, apart.changed) == ((), (), ())  # nothing shared, the same answer


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_compare_of_files_reads_as_the_diff_of_each_alone(tmp_path: Path, fmt: str) -> None:
    """The command's output is the report of the two files read apart."""
    from sockdiff import report

    assert A.sockets is not None
    new = dataclasses.replace(
        A, sockets=(*A.sockets[1:], msgspec.structs.replace(A.sockets[0], state="CLOSE"))
    )
    save(A, str(tmp_path / "a.json"))
    save(new, str(tmp_path / "b.json"))
    result = sockdiff("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--format", fmt)
    alone = diff(loads(dumps(A), str(tmp_path / "a.json")), loads(dumps(new), str(tmp_path / "b.json")))
    assert result.stdout == report(alone, fmt)
