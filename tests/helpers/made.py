"""Hand-made snapshots and their parts, for the tests that build snapshots without reading a system.

``HEADER`` covers every protocol; ``tcp``/``unix`` make sockets and ``snap`` a
snapshot of them; ``eth``/``route``/``counters`` make interface and route
records and ``sections_snap`` a snapshot holding them; ``sample()`` is a small
snapshot with every section and odd names, ``GOOD`` its file bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from sockdiff import Endpoint, Process, Snapshot, Socket, __version__, inet, unix_name, unix_peer
from sockdiff.differ import Diff, diff
from sockdiff.model import Counters, Interface, Route, TypeName
from sockdiff.snapshots import EVERYTHING, Header, Scope, dumps

__all__ = [
    "ANY",
    "GOOD",
    "HEADER",
    "LISTENER",
    "PEER",
    "VERSION_1",
    "counters",
    "eth",
    "route",
    "sample",
    "sample_diff",
    "sections_snap",
    "snap",
    "tcp",
    "unix",
]

# A header covering every protocol, as a netlink snapshot's would.
HEADER = Header(
    taken_at="2026-11-25T10:00:00Z",
    host="h",
    kernel="k",
    backend="netlink",
    netns=None,
    sources={"tcp": "netlink", "interfaces": "netlink", "routes": "netlink"},
    scope=EVERYTHING,
    tool_version="0.2.0",
)

ANY = inet("0.0.0.0", 0)


def tcp(
    port: int,
    state: str = "LISTEN",
    inode: int = 1,
    pids: Sequence[int] = (1,),
    remote: Endpoint = ANY,
    recv_q: int | None = 0,
) -> Socket:
    procs = tuple(Process(pid, f"p{pid}", 3) for pid in pids)
    return Socket("tcp", "inet", "stream", state, inet("127.0.0.1", port), remote, inode, 0, recv_q, 0, procs)


def unix(path: str | None, inode: int, state: str = "LISTENING", kind: TypeName = "stream") -> Socket:
    return Socket("unix", "unix", kind, state, unix_name(path), unix_peer(0), inode, 0, 0, 0, ())


def snap(*sockets: Socket) -> Snapshot:
    return Snapshot(HEADER, tuple(sockets))


LISTENER = Socket(
    "tcp", "inet", "stream", "LISTEN", inet("127.0.0.1", 80), inet("0.0.0.0", 0), 7, 0, 0, 0, ()
)


def counters(rx_packets: int = 10, tx_packets: int = 10) -> Counters:
    return Counters(rx_packets, 0, 0, 0, tx_packets, 0, 0, 0, 100 * rx_packets, 100 * tx_packets)


def eth(name: str = "eth0", **changes: object) -> Interface:
    record = Interface(
        name,
        2,
        ("BROADCAST", "MULTICAST", "RUNNING", "UP"),
        "UP",
        1500,
        "02:00:00:00:00:01",
        ("10.0.0.1/24", "fe80::1/64"),
        counters(),
    )
    return msgspec.structs.replace(record, **changes)


def route(destination: str = "10.1.0.0/24", **changes: object) -> Route:
    record = Route("inet", 254, "unicast", destination, "10.0.0.254", "eth0", 0, "static", "universe")
    return msgspec.structs.replace(record, **changes)


def sections_snap(
    interfaces: tuple[Interface, ...] | None = (), routes: tuple[Route, ...] | None = ()
) -> Snapshot:
    return Snapshot(HEADER, (LISTENER,), interfaces, routes)


def sample() -> Snapshot:
    sockets = (
        Socket(
            "tcp",
            "inet",
            "stream",
            "LISTEN",
            inet("127.0.0.1", 80),
            inet("0.0.0.0", 0),
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
            inet("::ffff:127.0.0.1", 80),
            inet("::ffff:127.0.0.1", 5000),
            0,
            0,
            0,
            0,
            (),
        ),
        Socket(
            "unix",
            "unix",
            "stream",
            "LISTENING",
            unix_name("/run/a b.sock"),
            unix_peer(0),
            12,
            None,
            0,
            5,
            (),
        ),
        Socket("unix", "unix", "dgram", "UNCONNECTED", unix_name("@x\\xff"), None, 13, None, None, None, ()),
        Socket("unix", "unix", "dgram", "UNCONNECTED", unix_name(None), None, 14, None, None, None, ()),
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


# ``sample()`` as its file holds it.
GOOD = dumps(sample())


PEER = inet("127.0.0.1", 5000)


def sample_diff() -> Diff:
    """One new listener (counted by listening), one new connection, one closed, one changed."""
    old = snap(tcp(80, inode=5), tcp(81, "ESTABLISHED", 7, remote=PEER), tcp(443, inode=11))
    new = snap(
        tcp(81, "CLOSE_WAIT", 7, remote=PEER),
        tcp(82, inode=9),
        tcp(6000, "ESTABLISHED", 12, remote=PEER),
        tcp(443, inode=11),
    )
    return diff(old, new)


# A version 1 file (before interfaces and routes), as sockdiff 0.1 wrote one.
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
