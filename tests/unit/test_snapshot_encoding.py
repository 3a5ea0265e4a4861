"""The snapshot file is written in batches; the bytes are those of one whole encoding."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import msgspec
import pytest

from sockdiff import Snapshot, save
from sockdiff.snapshots import dumps, encode, gzipped
from tests.helpers.made import sample


def many() -> Snapshot:
    """A snapshot whose sockets span several encoding batches, the last one partial."""
    base = sample()
    return dataclasses.replace(base, sockets=(base.sockets or ()) * 1001)


def test_one_record_a_line_across_batches() -> None:
    snap = many()
    text = dumps(snap)
    records = json.loads(msgspec.json.encode(snap.sockets))
    assert json.loads(text)["sockets"] == records
    lines = text.split(b"\n")
    start = lines.index(b'"sockets":[')
    rows = lines[start + 1 : start + 1 + len(snap.sockets or ())]
    assert lines[start + 1 + len(rows)] == b"],"
    assert [json.loads(row.removesuffix(b",")) for row in rows] == records


def test_gzip_streamed_is_gzip_of_the_whole() -> None:
    snap = many()
    streamed = b"".join(gzipped(encode(snap)))
    assert streamed == gzip.compress(dumps(snap), compresslevel=6, mtime=0)


@pytest.mark.parametrize("name", ["snap.json", "snap.json.gz"])
def test_saved_file_is_the_whole_encoding(tmp_path: Path, name: str) -> None:
    snap = many()
    path = tmp_path / name
    save(snap, str(path))
    raw = path.read_bytes()
    assert (gzip.decompress(raw) if name.endswith(".gz") else raw) == dumps(snap)
