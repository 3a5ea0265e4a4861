"""The snapshot file: round trip, atomic 0600 writes, and a strict reader."""

from __future__ import annotations

import dataclasses
import gzip
import json
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli import one_line_error, sockdiff

from sockdiff import (
    BadSnapshot,
    Inet,
    Process,
    Snapshot,
    Socket,
    UnixName,
    UnixPeer,
    UsageError,
    __version__,
    load,
    save,
)
from sockdiff.snapshots import dumps, loads


def sample() -> Snapshot:
    sockets = (
        Socket(
            "tcp",
            "inet",
            "stream",
            "LISTEN",
            Inet("127.0.0.1", 80),
            Inet("0.0.0.0", 0),
            11,
            0,
            0,
            128,
            (Process(10, "srv", 3), Process(11, "srv", 3)),
        ),
        Socket(
            "tcp",
            "inet6",
            "stream",
            "TIME_WAIT",
            Inet("::ffff:127.0.0.1", 80),
            Inet("::ffff:127.0.0.1", 5000),
            0,
            0,
            0,
            0,
            (),
        ),
        Socket(
            "unix", "unix", "stream", "LISTENING", UnixName("/run/a b.sock"), UnixPeer(0), 12, None, 0, 5, ()
        ),
        Socket("unix", "unix", "dgram", "UNCONNECTED", UnixName("@x\\xff"), None, 13, None, None, None, ()),
        Socket("unix", "unix", "dgram", "UNCONNECTED", UnixName(None), None, 14, None, None, None, ()),
    )
    return Snapshot(
        sockets,
        "2026-11-25T10:00:00Z",
        "web1",
        "6.1.0",
        "netlink",
        None,
        {"tcp": "netlink", "udp": "netlink", "raw": "proc", "unix": "netlink"},
    )


@pytest.mark.parametrize("name", ["snap.json", "snap.json.gz"])
def test_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    save(sample(), str(path))
    assert load(str(path)) == sample()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_document_matches_spec() -> None:
    document = json.loads(dumps(sample()))
    assert list(document)[:9] == [
        "format",
        "version",
        "taken_at",
        "host",
        "kernel",
        "backend",
        "netns",
        "sources",
        "tool_version",
    ]
    assert document["format"] == "sockdiff.snapshot" and document["version"] == 1
    first = document["sockets"][0]
    assert first == {
        "proto": "tcp",
        "family": "inet",
        "type": "stream",
        "state": "LISTEN",
        "local": {"address": "127.0.0.1", "port": 80},
        "remote": {"address": "0.0.0.0", "port": 0},
        "inode": 11,
        "uid": 0,
        "recv_q": 0,
        "send_q": 128,
        "processes": [{"pid": 10, "name": "srv", "fd": 3}, {"pid": 11, "name": "srv", "fd": 3}],
    }
    assert document["sockets"][4]["local"] == {"path": None}


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    """A write that fails half-way (here: past RLIMIT_FSIZE) leaves the old file whole."""
    path = tmp_path / "snap.json"
    save(sample(), str(path))
    before = path.read_bytes()
    bigger = dataclasses.replace(sample(), sockets=sample().sockets * 100)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, hard))
    try:
        with pytest.raises(UsageError, match=r"snap\.json: cannot write: File too large"):
            save(bigger, str(path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"]


def test_unwritable_directory_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot write: No such file or directory"):
        save(sample(), str(tmp_path / "missing" / "snap.json"))


GOOD = dumps(sample())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (GOOD[: len(GOOD) // 2], "truncated JSON"),
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (GOOD.replace(b'"web1"', b'"web\xc3\x28"'), "not UTF-8"),
        (b'{"a": 1}', "it has no 'format' member"),
        (GOOD.replace(b"sockdiff.snapshot", b"sockdiff.diff"), "format is 'sockdiff.diff'"),
        (GOOD.replace(b'"version":1', b'"version":2'), "version 2 is not one this sockdiff reads"),
        (GOOD.replace(b'"inode":11,', b""), "missing required field `inode` - at `$.sockets[0]`"),
        (
            GOOD.replace(b'"proto":"tcp"', b'"proto":"sctp"', 1),
            "Invalid enum value 'sctp' - at `$.sockets[0].proto`",
        ),
        (GOOD.replace(b'"inode":11', b'"inode":"11"'), "Expected `int`, got `str` - at `$.sockets[0].inode`"),
        (gzip.compress(GOOD)[:40], "broken gzip data"),
        (
            GOOD.replace(b',"tool_version":"' + __version__.encode() + b'"', b""),
            "missing required field `tool_version`",
        ),
        (
            GOOD.replace(b',"port":80}', b"}", 1),
            '`local` of an inet socket is {"address": ..., "port": N} - at `$.sockets[0]`',
        ),
        (
            GOOD.replace(b'"local":{"address":"127.0.0.1","port":80}', b'"local":{}', 1),
            "`local` of an inet socket",
        ),
        (
            GOOD.replace(b'"remote":{"address":"0.0.0.0","port":0}', b'"remote":null', 1),
            "`remote` of an inet socket",
        ),
        (GOOD.replace(b'"port":80}', b'"port":80,"path":"/x"}', 1), "`local` of an inet socket"),
        (GOOD.replace(b'"LISTEN"', b'"BOGUS"', 1), "'BOGUS' is not a TCP state - at `$.sockets[0]`"),
        (GOOD.replace(b'"LISTENING"', b'"LISTEN"', 1), "'LISTEN' is not a UNIX state - at `$.sockets[2]`"),
        (
            GOOD.replace(b'"family":"inet"', b'"family":"unix"', 1),
            "a tcp socket's family is 'inet' or 'inet6'",
        ),
        (
            GOOD.replace(b'"path":"/run/a b.sock"', b'"address":"/run/a b.sock"', 1),
            '`local` of a unix socket is {"path": ...} - at `$.sockets[2]`',
        ),
        (
            GOOD.replace(b'{"peer_inode":0}', b'{"peer_inode":0,"port":1}', 1),
            '`remote` of a unix socket is {"peer_inode": N} or null',
        ),
    ],
)
def test_reader_refuses(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(BadSnapshot) as caught:
        load(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: not a sockdiff snapshot: ")
    assert reason in message
    assert "\n" not in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadSnapshot, match=r"nothere\.json: cannot read: No such file"):
        load(str(tmp_path / "nothere.json"))


@pytest.mark.parametrize("content", [b"", b"{", b'{"format": "other"}'])
def test_cli_bad_source_is_one_line_exit_2(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = sockdiff("compare", str(path), str(path))
    assert str(path) in one_line_error(result) and result.stdout == ""


def test_loads_from_stdin_and_stdout(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "sockdiff", "compare", "-", str(path)],
        input=GOOD,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "0 new, 0 closed, 0 changed"
    assert loads(GOOD, "x") == sample()
