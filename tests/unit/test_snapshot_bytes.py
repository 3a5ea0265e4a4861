"""A snapshot's bytes, and a comparison's, pinned: splitting the codec from live reads kept every byte.

``fixtures/snapshots/pinned.json`` was written by the code before the split
(snapshots.py both taking and encoding, the differ decoding ``sources`` through
the backends): ``python tests/unit/test_snapshot_bytes.py`` writes it again from the
records below. Every section, both /proc route coverage words, escaped names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import pytest

from sockdiff.differ import diff
from sockdiff.formats import report
from sockdiff.formats.notes import route_tables_note
from sockdiff.model import Counters, Endpoint, Interface, Nexthop, Process, Route, Socket
from sockdiff.snapshots import Header, Scope, Snapshot, load, save

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "snapshots" / "pinned.json"
ROUTES_WORDS = ("netlink", "proc (IPv4 main table only)", "proc (main table)")


def _snapshot(routes_source: str, later: bool) -> Snapshot:
    """A snapshot of every section whose routes ``sources`` says came from ``routes_source``."""
    sockets = (
        Socket(
            "tcp",
            "inet",
            "stream",
            "LISTEN",
            Endpoint("127.0.0.1", 80),
            Endpoint("0.0.0.0", 0),
            11,
            0,
            0,
            128,
            (Process(10, "srv\\xff", 3),),
        ),
        Socket(
            "udp",
            "inet6",
            "dgram",
            "CLOSE",
            Endpoint("::", 5353),
            Endpoint("::", 0),
            12,
            0,
            0,
            0,
            (),
            interface="eth\x1b0",
            v6only=True,
        ),
        Socket(
            "unix",
            "unix",
            "stream",
            "LISTENING",
            Endpoint(path="/run/a b.sock"),
            Endpoint(peer_inode=0),
            13,
            None,
            0,
            5,
            (),
        ),
        Socket("unix", "unix", "dgram", "UNCONNECTED", Endpoint(path=None), None, 14, None, None, None, ()),
    )
    if later:
        listener = Socket(
            "tcp",
            "inet",
            "stream",
            "LISTEN",
            Endpoint("0.0.0.0", 8080),
            Endpoint("0.0.0.0", 0),
            21,
            0,
            0,
            4096,
            (),
        )
        sockets = (*sockets[1:], listener)
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
        Interface(
            "eth0",
            2,
            ("BROADCAST", "MULTICAST", "UP"),
            "UP",
            1500 if not later else 9000,
            "02:00:00:00:00:01",
            (),
            None,
        ),
    )
    routes: tuple[Route, ...] = (
        Route("inet", 254, "unicast", "0.0.0.0/0", "10.0.0.1", "eth0", 100, None, None, flags=0x3),
        Route("inet", 100, "blackhole", "10.9.0.0/16", None, None, 0, "static", "universe"),
        Route(
            "inet",
            254,
            "unicast",
            "10.8.0.0/16",
            "10.0.0.2",
            "eth0",
            0,
            "static",
            "universe",
            nexthops=(Nexthop("10.0.0.2", "eth0", 1), Nexthop("10.0.0.3", "eth0", 2)),
        ),
        Route("inet6", 254, "unicast", "fe80::/64", None, "eth0", 256, "kernel", "universe"),
        Route("inet6", 0, None, "fd00::/8", None, "eth0", 1024, None, "universe"),
        Route("inet6", 255, "local", "::1/128", None, "lo", 0, "kernel", "universe"),
    )
    if later:
        routes = routes[:-1]
    backend: Literal["netlink", "proc"] = "netlink" if routes_source == "netlink" else "proc"
    header = Header(
        taken_at=f"2026-11-25T10:00:0{int(later)}Z",
        host="web1",
        kernel="6.1.0",
        backend=backend,
        netns=None,
        sources={
            "tcp": backend,
            "udp": backend,
            "unix": backend,
            "interfaces": backend,
            "routes": routes_source,
        },
        scope=Scope(("tcp", "udp", "unix"), None if later else "dport != :22"),
        tool_version="0.0.0",
    )
    return Snapshot(header, sockets, interfaces, routes)


def outputs() -> dict[str, str]:
    """Each snapshot's file text through save, and every comparison's notes and reports.

    The files are written in the current directory: a report names each side by its file.
    """
    found: dict[str, str] = {}
    loaded: dict[tuple[str, bool], Snapshot] = {}
    for word in ROUTES_WORDS:
        for later in (False, True):
            path = Path(f"{ROUTES_WORDS.index(word)}-{int(later)}.json")
            save(_snapshot(word, later), str(path))
            found[f"file {word} later={later}"] = path.read_text()
            loaded[word, later] = load(str(path))
    for old in ROUTES_WORDS:
        for new in ROUTES_WORDS:
            result = diff(loaded[old, False], loaded[new, True], fields="all")
            found[f"note {old} -> {new}"] = route_tables_note(result) or ""
            for chosen in ("text", "json", "markdown"):
                found[f"{chosen} {old} -> {new}"] = report(result, chosen)
    return found


@pytest.mark.parametrize("name", ["file", "note", "text", "json", "markdown"])
def test_bytes_are_those_written_before_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    expected = json.loads(FIXTURE.read_text())
    monkeypatch.chdir(tmp_path)
    ours = outputs()
    assert ours.keys() == expected.keys()
    for key, text in ours.items():
        if key.startswith(name + " "):
            assert text == expected[key], key


if __name__ == "__main__":
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        written = outputs()
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(written, indent=1, ensure_ascii=True) + "\n")
    sys.stdout.write(f"wrote {FIXTURE}\n")
