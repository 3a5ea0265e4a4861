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
    WriteError,
    __version__,
    load,
    save,
)
from sockdiff.model import Counters, Interface, Route
from sockdiff.snapshots import EVERYTHING, Header, Scope, dumps, loads


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
    interfaces = (
        Interface(
            "lo",
            1,
            ("LOOPBACK", "RUNNING", "UP"),
            "UNKNOWN",
            65536,
            "00:00:00:00:00:00",
            ("127.0.0.1/8", "::1/128"),
            Counters(10, 0, 0, 0, 10, 0, 0, 0, 840, 840),
        ),
        Interface("tun0", 5, ("MULTICAST", "NOARP", "POINTOPOINT", "UP"), "DOWN", 1500, None, (), None),
    )
    routes = (
        Route("inet", 254, "unicast", "0.0.0.0/0", "10.0.0.1", "eth0", 100, "dhcp", "universe"),
        Route("inet", 100, "blackhole", "10.9.0.0/16", None, None, 0, "static", None),
        Route("inet6", 254, "unicast", "fe80::/64", None, "eth0", 256, "kernel", "universe"),
    )
    header = Header(
        taken_at="2026-11-25T10:00:00Z",
        host="web1",
        kernel="6.1.0",
        backend="netlink",
        netns=None,
        sources={
            "tcp": "netlink",
            "udp": "netlink",
            "raw": "proc",
            "unix": "netlink",
            "interfaces": "netlink",
            "routes": "netlink",
        },
        scope=Scope(("tcp", "udp", "raw", "unix"), None),
        tool_version=__version__,
    )
    return Snapshot(header, sockets, interfaces, routes)


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
    assert list(document) == [
        "format",
        "version",
        "taken_at",
        "host",
        "kernel",
        "backend",
        "netns",
        "sources",
        "scope",
        "tool_version",
        "sockets",
        "interfaces",
        "routes",
    ]
    assert document["format"] == "sockdiff.snapshot" and document["version"] == 2
    assert document["scope"] == {"protos": ["tcp", "udp", "raw", "unix"], "filter": None}
    assert document["interfaces"][1] == {
        "name": "tun0",
        "index": 5,
        "flags": ["MULTICAST", "NOARP", "POINTOPOINT", "UP"],
        "operstate": "DOWN",
        "mtu": 1500,
        "mac": None,
        "addresses": [],
        "counters": None,
    }
    assert document["routes"][0] == {
        "family": "inet",
        "table": 254,
        "type": "unicast",
        "destination": "0.0.0.0/0",
        "gateway": "10.0.0.1",
        "dev": "eth0",
        "metric": 100,
        "protocol": "dhcp",
        "scope": "universe",
        "mss": None,  # netstat -rn's MSS, Window and irtt: unknown in this sample
        "window": None,
        "irtt": None,
    }
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
        "interface": None,
        "v6only": None,
    }
    assert document["sockets"][4]["local"] == {"path": None}


def test_records_written_before_interface_and_v6only_still_load() -> None:
    """Files from before the bound device and IPV6_V6ONLY were recorded: both read as unknown."""
    document = json.loads(dumps(sample()))
    for record in document["sockets"]:
        del record["interface"], record["v6only"]
    older = loads(json.dumps(document).encode(), "older.json")
    assert older.sockets is not None and older.sockets == sample().sockets
    assert all(s.interface is None and s.v6only is None for s in older.sockets)


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    """A write that fails half-way (here: past RLIMIT_FSIZE) leaves the old file whole."""
    path = tmp_path / "snap.json"
    save(sample(), str(path))
    before = path.read_bytes()
    bigger = dataclasses.replace(sample(), sockets=(sample().sockets or ()) * 100)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, hard))
    try:
        with pytest.raises(WriteError, match=r"snap\.json: cannot write: File too large"):
            save(bigger, str(path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"]


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
        (GOOD.replace(b'"version":2', b'"version":3'), "version 3 is not one this sockdiff reads"),
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


# A file written by sockdiff 0.1 (format version 1), byte for byte.
VERSION_1 = b"""{"format":"sockdiff.snapshot","version":1,"taken_at":"2026-11-20T09:00:00Z","host":"web1",\
"kernel":"6.1.0","backend":"netlink","netns":null,\
"sources":{"tcp":"netlink","udp":"netlink","raw":"proc","unix":"netlink"},"tool_version":"0.1.0","sockets":[
{"proto":"tcp","family":"inet","type":"stream","state":"LISTEN","local":{"address":"127.0.0.1","port":80},\
"remote":{"address":"0.0.0.0","port":0},"inode":11,"uid":0,"recv_q":0,"send_q":128,\
"processes":[{"pid":10,"name":"srv","fd":3}]},
{"proto":"udp","family":"inet6","type":"dgram","state":"CLOSE","local":{"address":"::","port":53},\
"remote":{"address":"::","port":0},"inode":12,"uid":101,"recv_q":0,"send_q":0,"processes":[]},
{"proto":"unix","family":"unix","type":"stream","state":"LISTENING","local":{"path":"/run/a.sock"},\
"remote":{"peer_inode":0},"inode":13,"uid":null,"recv_q":0,"send_q":5,"processes":[]}
]}
"""


def test_version_1_files_still_load(tmp_path: Path) -> None:
    """Sockets only: interfaces and routes not taken, the scope every protocol; saved again as version 2."""
    old = loads(VERSION_1, "v1.json")
    assert old.header.scope == EVERYTHING and old.header.tool_version == "0.1.0"
    assert old.interfaces is None and old.routes is None
    assert old.sockets is not None
    assert [(s.proto, s.inode) for s in old.sockets] == [("tcp", 11), ("udp", 12), ("unix", 13)]
    path = tmp_path / "again.json"
    save(old, str(path))
    again = json.loads(path.read_bytes())
    assert (again["version"], again["scope"], again["interfaces"], again["routes"]) == (
        2,
        {"protos": ["tcp", "udp", "raw", "unix"], "filter": None},
        None,
        None,
    )
    assert load(str(path)) == old
    # A version 1 file missing what version 1 required is still refused, in its own terms.
    with pytest.raises(BadSnapshot, match=r"v1\.json: not a sockdiff snapshot: .*inode"):
        loads(VERSION_1.replace(b'"inode":12,', b""), "v1.json")


def test_version_2_needs_every_section_member() -> None:
    """null says a section was not taken; a member left out is a damaged file."""
    document = json.loads(GOOD)
    for section in ("sockets", "interfaces", "routes", "scope"):
        damaged = {key: value for key, value in document.items() if key != section}
        with pytest.raises(BadSnapshot, match=f"x: not a sockdiff snapshot: .*{section}"):
            loads(json.dumps(damaged).encode(), "x")
    taken = loads(json.dumps({**document, "interfaces": None, "routes": None}).encode(), "x")
    assert taken.interfaces is None and taken.routes is None and taken.sockets == sample().sockets
