"""The snapshot file: round trip, atomic 0600 writes, and a strict reader."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sockdiff import (
    BadSnapshot,
    WriteError,
    __version__,
    load,
    save,
)
from sockdiff.snapshots import EVERYTHING, dumps, loads, read_bounded
from tests.helpers.cli import created_mode
from tests.helpers.made import GOOD, VERSION_1, sample


@pytest.mark.parametrize("name", ["snap.json", "snap.json.gz"])
def test_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    save(sample(), str(path))
    assert load(str(path)) == sample()
    assert stat.S_IMODE(path.stat().st_mode) == created_mode()
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
        "nexthops": None,  # a single-path route
        "flags": None,  # /proc/net/route's flags: not given in this sample
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


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (GOOD[: GOOD.index(b",", len(GOOD) // 2) + 1], "truncated JSON"),  # cut after a comma, not in a word
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (GOOD.replace(b'"web1"', b'"web\xc3\x28"'), "not UTF-8"),
        (b'{"a": 1}', "it has no 'format' member"),
        (GOOD.replace(b"sockdiff.snapshot", b"sockdiff.diff"), "format is 'sockdiff.diff'"),
        (GOOD.replace(b'"version":2', b'"version":3'), "version 3 is not one this sockdiff reads"),
        (GOOD.replace(b'"inode":11,', b""), "member `inode` is missing, at $.sockets[0]"),
        (
            GOOD.replace(b'"proto":"tcp"', b'"proto":"sctp"', 1),
            "bad value at $.sockets[0].proto: expected raw, tcp, udp or unix",
        ),
        (
            GOOD.replace(b'"inode":11', b'"inode":"11"'),
            "bad value at $.sockets[0].inode: expected an inode number",
        ),
        (gzip.compress(GOOD, mtime=0)[:40], "broken gzip data"),
        (
            GOOD.replace(b',"tool_version":"' + __version__.encode() + b'"', b""),
            "member `tool_version` is missing, at $",
        ),
        (
            GOOD.replace(b',"port":80}', b"}", 1),
            '`local` of an inet socket is {"address": ..., "port": N}, at $.sockets[0]',
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
        (GOOD.replace(b'"LISTEN"', b'"BOGUS"', 1), "'BOGUS' is not a TCP state, at $.sockets[0]"),
        (GOOD.replace(b'"LISTENING"', b'"LISTEN"', 1), "'LISTEN' is not a UNIX state, at $.sockets[2]"),
        (
            GOOD.replace(b'"family":"inet"', b'"family":"unix"', 1),
            "a tcp socket's family is 'inet' or 'inet6'",
        ),
        (
            GOOD.replace(b'"path":"/run/a b.sock"', b'"address":"/run/a b.sock"', 1),
            '`local` of a unix socket is {"path": ...}, at $.sockets[2]',
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


# A file written by sockdiff 0.1 (format version 1), byte for byte.
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


# Each kind of value a snapshot holds, out of range or out of form: one change to
# GOOD, and the place the reader must name.
BAD_VALUES = [
    (b'"port":80}', b'"port":-5}', "$.sockets[0].local.port"),
    (b'"port":80}', b'"port":99999999999999999999}', "$.sockets[0].local.port"),
    (b'"port":80}', b'"port":65536}', "$.sockets[0].local.port"),
    (b'"port":80}', b'"port":80.5}', "$.sockets[0].local.port"),
    (b'"inode":11', b'"inode":-1', "$.sockets[0].inode"),
    (b'"inode":11', b'"inode":9223372036854775808', "$.sockets[0].inode"),
    (b'"uid":0', b'"uid":4294967296', "$.sockets[0].uid"),
    (b'"send_q":128', b'"send_q":-1', "$.sockets[0].send_q"),
    (b'"pid":10', b'"pid":0', "$.sockets[0].processes[0].pid"),
    (b'"fd":3', b'"fd":-3', "$.sockets[0].processes[0].fd"),
    (b'{"peer_inode":0}', b'{"peer_inode":-2}', "$.sockets[2].remote.peer_inode"),
    (b'"address":"127.0.0.1"', b'"address":"999.0.0.1"', "$.sockets[0]"),
    (b'"address":"127.0.0.1"', b'"address":"127.000.0.1"', "$.sockets[0]"),
    (b'"address":"127.0.0.1"', b'"address":"::1"', "$.sockets[0]"),  # not the record's family
    (b'"address":"::ffff:127.0.0.1"', b'"address":"::FFFF:127.0.0.1"', "$.sockets[1]"),
    (b'"address":"::ffff:127.0.0.1"', b'"address":"127.0.0.1"', "$.sockets[1]"),
    (b'"address":"0.0.0.0"', b'"address":"0.0.0.0\\u0000"', "$.sockets[0]"),
    (b'"interface":null', b'"interface":"a/b"', "$.sockets[0].interface"),
    (b'"taken_at":"2026-11-25T10:00:00Z"', b'"taken_at":"yesterday"', "$.taken_at"),
    (b'"taken_at":"2026-11-25T10:00:00Z"', b'"taken_at":"2026-13-25T10:00:00Z"', "$.taken_at"),
    (b'"backend":"netlink"', b'"backend":"auto"', "$.backend"),
    (b'"raw":"proc"', b'"raw":"psychic"', "$.sources.raw"),
    (b'"raw":"proc"', b'"sctp":"proc"', "$.sources"),
    (b'"protos":["tcp",', b'"protos":["sctp",', "$.scope.protos[0]"),
    (b'"protos":["tcp","udp"', b'"protos":["tcp","tcp"', "$.scope.protos"),
    (b'"filter":null', b'"filter":"sport = = :80"', "$.scope.filter"),
    (b'"tool_version":', b'"local_ports":[60000,1],"tool_version":', "$.local_ports"),
    (b'"name":"lo"', b'"name":"l o"', "$.interfaces[0].name"),
    (b'"name":"lo"', b'"name":""', "$.interfaces[0].name"),
    (b'"name":"lo"', b'"name":"lo\\n"', "$.interfaces[0].name"),  # a pattern's $ passes a final newline
    (b'"mac":"00:00:00:00:00:00"', b'"mac":"00:00:00:00:00:00\\n"', "$.interfaces[0].mac"),
    (b'"index":1,', b'"index":0,', "$.interfaces[0].index"),
    (b'"mtu":1500', b'"mtu":-1', "$.interfaces[1].mtu"),
    (b'"mac":"00:00:00:00:00:00"', b'"mac":"zz:00"', "$.interfaces[0].mac"),
    (b'"127.0.0.1/8"', b'"127.0.0.1/33"', "$.interfaces[0]"),
    (b'"127.0.0.1/8"', b'"127.0.0.1"', "$.interfaces[0].addresses[0]"),
    (b'"::1/128"', b'"::01/128"', "$.interfaces[0]"),
    (b'["LOOPBACK","RUNNING","UP"]', b'["UP","LOOPBACK","RUNNING"]', "$.interfaces[0]"),
    (b'"rx_packets":10', b'"rx_packets":-10', "$.interfaces[0].counters.rx_packets"),
    (b'"destination":"0.0.0.0/0"', b'"destination":"10.0.0.1/24"', "$.routes[0]"),
    (b'"destination":"0.0.0.0/0"', b'"destination":"::/0"', "$.routes[0]"),
    (b'"destination":"fe80::/64"', b'"destination":"fe80::/129"', "$.routes[2]"),
    (b'"gateway":"10.0.0.1"', b'"gateway":"the router"', "$.routes[0]"),
    (b'"metric":100', b'"metric":-100', "$.routes[0].metric"),
    (b'"table":100', b'"table":4294967296', "$.routes[1].table"),
    (b'"type":"blackhole"', b'"type":"black hole"', "$.routes[1].type"),
]


@pytest.mark.parametrize(("old", "new", "place"), BAD_VALUES)
def test_reader_checks_every_value(old: bytes, new: bytes, place: str) -> None:
    """A snapshot is untrusted input: ranges, forms and families are checked, and the place named."""
    assert old in GOOD
    with pytest.raises(BadSnapshot) as caught:
        loads(GOOD.replace(old, new, 1), "bad.json")
    message = str(caught.value)
    assert message.startswith("bad.json: not a sockdiff snapshot: ") and "\n" not in message
    assert message.endswith(place) or f"{place}:" in message, message


def test_deep_nesting_is_named_with_the_file() -> None:
    data = b'{"format":"sockdiff.snapshot","version":2,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(BadSnapshot, match=r"^deep.json: not a sockdiff snapshot: JSON nested too deeply$"):
        loads(data, "deep.json")


def test_value_errors_are_in_our_words() -> None:
    """What was expected, in sockdiff's words: a port's range, an address's family."""
    for old, new, words in (
        (
            b'"port":80}',
            b'"port":-5}',
            "bad value at $.sockets[0].local.port: expected a port number from 0 to 65535",
        ),
        (
            b'"address":"127.0.0.1"',
            b'"address":"::1"',
            "`local.address` '::1' is not an inet address in canonical form, at $.sockets[0]",
        ),
        (b'"taken_at":"2026-11-25T10:00:00Z"', b'"taken_at":"yesterday"', "expected a UTC time"),
    ):
        with pytest.raises(BadSnapshot, match=re.escape(words)):
            loads(GOOD.replace(old, new, 1), "bad.json")


_BOMB = """
import json, sys, zlib
from sockdiff.errors import BadSnapshot
from sockdiff.snapshots import loads


def peak_mb():
    # VmHWM: this process's peak RSS since exec. getrusage's ru_maxrss would
    # carry the parent's peak across fork and exec (Linux keeps it).
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


# 300 MB of spaces, gzip-compressed as it is made: the bomb itself is ~300 KB.
deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
chunk = b" " * (1 << 20)
bomb = b"".join(deflate.compress(chunk) for _ in range(300)) + deflate.flush()
found = {"compressed": len(bomb)}
for name, limit in (("capped", 64 << 20), ("default", None)):
    try:
        loads(bomb, "bomb.json.gz") if limit is None else loads(bomb, "bomb.json.gz", limit=limit)
    except BadSnapshot as err:
        found[name] = str(err)
    found[name + "_peak_mb"] = peak_mb()
json.dump(found, sys.stdout)
"""


def test_gzip_bomb_is_bounded() -> None:
    """300 MB of spaces in a 300 KB .gz: refused past the cap with little memory, and never held twice.

    Memory is measured (peak RSS of a fresh interpreter, VmHWM), never time.
    """
    result = subprocess.run([sys.executable, "-c", _BOMB], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["compressed"] < 1 << 20
    assert found["capped"] == "bomb.json.gz: not a sockdiff snapshot: it decompresses to more than 64 MiB"
    assert found["capped_peak_mb"] < 64 + 100  # the cap, and the interpreter with its modules
    # Under the default cap (1 GiB) the spaces are read, once, and found empty.
    assert found["default"] == "bomb.json.gz: not a sockdiff snapshot: empty file"
    assert found["default_peak_mb"] < 300 + 150


def test_damage_found_after_the_first_bad_value_is_still_one_error() -> None:
    """A document that fails the schema early and is also not JSON later: one BadSnapshot, never msgspec's."""
    damaged = GOOD.replace(b'"version":2', b'"version":"2"', 1)[:-40] + b"\xff{{"
    with pytest.raises(BadSnapshot, match=r"^x: not a sockdiff snapshot: (not UTF-8|not JSON|truncated)"):
        loads(damaged, "x")


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 3 << 20])
def test_read_bounded_reads_files_and_pipes_whole_up_to_one_byte_past_the_limit(
    tmp_path: Path, size: int
) -> None:
    """All of a file or a pipe, or the limit and one byte more: what tells a file too large."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "f"
    path.write_bytes(data)
    for limit in (10, 3 << 20, 4 << 20):
        with open(path, "rb") as source:
            assert read_bounded(source, limit) == data[: limit + 1]
        with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as cat:
            assert cat.stdout is not None
            assert read_bounded(cat.stdout, limit) == data[: limit + 1]
