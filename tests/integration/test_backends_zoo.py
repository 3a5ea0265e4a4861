"""Both backends against a zoo of real sockets in a private namespace, each other, and ss."""

from __future__ import annotations

import gzip
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sockdiff import Snapshot, Socket, diff, snapshot
from sockdiff.differ import identity, parse_fields
from sockdiff.formats import report
from sockdiff.netns import entered
from tests.helpers.expect import differences, locate
from tests.helpers.netns import run_in_netns
from tests.helpers.records import read_back
from tests.helpers.ss_oracle import find_rows, ss_rows
from tests.helpers.zoo import ZooClient

BACKENDS = ["netlink", "proc"]


def as_record(sock: Socket) -> dict[str, Any]:
    record: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(sock))  # as a snapshot file holds it
    return record


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_reports_every_zoo_socket(zoo: ZooClient, backend: str) -> None:
    check_zoo_records(zoo, backend)


def check_zoo_records(zoo: ZooClient, backend: str) -> None:
    """Every socket of the zoo, exactly as the zoo says it opened it, and nothing else."""
    snap = snapshot(backend=backend, netns=zoo.netns)
    assert snap.sockets is not None
    assert snap.header.netns == zoo.netns and snap.header.backend == backend
    read_back(snap)  # every record is one the snapshot reader accepts
    problems = []
    for name, expected in zoo.sockets.items():
        found = locate(snap.sockets, expected)
        if len(found) != 1:
            problems.append(f"{name}: {len(found)} records for {expected}")
            continue
        sock = found[0]
        owners = sorted(expected["processes"], key=lambda p: (p["pid"], p["name"], p["fd"]))
        problems += differences(
            sock,
            expected,
            knows_unix_peers=backend == "netlink",
            processes=owners,
            knows_options=snap.header.sources[sock.proto] == "netlink",
        )
    # Nothing but the zoo lives in the namespace.
    assert len(snap.sockets) == len(zoo.sockets), [s for s in snap.sockets]
    assert not problems, "\n".join(problems)


def kernel_has_raw_diag() -> bool:
    """The kernel's own word (its build config) on raw_diag; a module is loaded on demand."""
    try:
        with gzip.open("/proc/config.gz") as config:
            options = config.read()
    except FileNotFoundError:
        pytest.skip("no /proc/config.gz to tell whether this kernel has raw_diag")
    return re.search(rb"^CONFIG_INET_RAW_DIAG=[ym]$", options, re.MULTILINE) is not None


def test_sources_say_where_each_protocol_came_from(zoo: ZooClient) -> None:
    netlink = snapshot(backend="netlink", netns=zoo.netns, processes=False)
    assert netlink.sockets is not None
    assert (
        netlink.header.sources["tcp"]
        == netlink.header.sources["udp"]
        == netlink.header.sources["unix"]
        == "netlink"
    )
    # Without raw_diag the raw dump ends with -ENOENT and raw comes from /proc.
    assert netlink.header.sources["raw"] == ("netlink" if kernel_has_raw_diag() else "proc")
    assert {s.local.port for s in netlink.sockets if s.proto == "raw"} == {1, 58}
    proc = snapshot(backend="proc", netns=zoo.netns, processes=False)
    assert proc.sockets is not None
    assert proc.header.sources == {
        **dict.fromkeys(("tcp", "udp", "raw", "unix", "interfaces"), "proc"),
        "routes": "proc (IPv4 main table only)",
    }
    assert all(s.processes == () for s in netlink.sockets + proc.sockets)


def test_backends_agree(zoo: ZooClient) -> None:
    netlink = snapshot(backend="netlink", netns=zoo.netns)
    assert netlink.sockets is not None
    proc = snapshot(backend="proc", netns=zoo.netns)
    assert proc.sockets is not None
    result = diff(proc, netlink, fields=parse_fields("all"))
    assert result.summary == {"new": 0, "closed": 0, "changed": 0}, report(result, "json")
    # Field by field, wherever both know the value (the inode tells SO_REUSEPORT twins apart).
    by_identity = {(identity(s), s.inode): s for s in netlink.sockets}
    assert len(by_identity) == len(netlink.sockets) == len(proc.sockets)
    for sock in proc.sockets:
        other = by_identity[(identity(sock), sock.inode)]
        for field in Socket.__struct_fields__:
            mine, theirs = getattr(sock, field), getattr(other, field)
            if mine is not None and theirs is not None:
                assert mine == theirs, (field, sock, other)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_agrees_with_ss(zoo: ZooClient, backend: str) -> None:
    check_against_ss(zoo, backend)


def test_bound_devices_and_v6only_as_the_zoo_and_ss_say(zoo: ZooClient) -> None:
    """Two listeners on one port bound to lo and d0, IPv6-only and dual-stack ones: both backends, and ss."""
    assert zoo.netns is not None
    run_in_netns(zoo.netns, ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    port = 7401
    for name, spec in {
        "tcp_on_lo": {"family": "inet", "address": "0.0.0.0", "port": port, "device": "lo"},
        "tcp_on_d0": {"family": "inet", "address": "0.0.0.0", "port": port, "device": "d0"},
        "tcp6_on_lo": {"family": "inet6", "address": "::", "port": port, "device": "lo", "v6only": True},
        "udp6_v6only": {"proto": "udp", "family": "inet6", "address": "::", "port": port, "v6only": True},
        "udp6_dual": {"proto": "udp", "family": "inet6", "address": "::", "port": port + 1, "v6only": False},
    }.items():
        zoo.check({"cmd": "listen", "name": name, **spec})
    devices = {name: zoo.socket(name)["interface"] for name in ("tcp_on_lo", "tcp_on_d0", "tcp6_on_lo")}
    assert devices == {"tcp_on_lo": "lo", "tcp_on_d0": "d0", "tcp6_on_lo": "lo"}  # the zoo's own account
    assert (zoo.socket("udp6_v6only")["v6only"], zoo.socket("udp6_dual")["v6only"]) == (True, False)
    for backend in BACKENDS:
        check_zoo_records(zoo, backend)
        check_against_ss(zoo, backend)


def check_against_ss(zoo: ZooClient, backend: str) -> None:
    """Socket for socket, what ss -tuwxanpe shows in the same namespace."""
    assert zoo.netns is not None
    snap = snapshot(backend=backend, netns=zoo.netns)
    assert snap.sockets is not None
    rows = ss_rows(zoo.netns)
    assert len(rows) == len(snap.sockets)
    matched: set[str] = set()
    for sock in snap.sockets:
        record = as_record(sock)
        if sock.proto == "unix" and record["remote"] is None:
            record["remote"] = {"peer_inode": 0}
        found = find_rows(rows, record)
        assert len(found) == 1, (record, [r.line for r in rows])
        row = found[0]
        assert (row.family, row.type, row.state) == (sock.family, sock.type, sock.state), row.line
        assert row.local == record["local"], row.line
        if sock.proto != "unix" or backend == "netlink":
            assert row.remote == record["remote"], row.line
        assert row.processes == frozenset((p.name, p.pid, p.fd) for p in sock.processes), row.line
        if snap.header.sources[sock.proto] == "netlink":  # what /proc cannot show is null there
            assert (row.interface, row.v6only) == (sock.interface, sock.v6only), row.line
        else:
            assert sock.interface is None and sock.v6only is None, sock
        assert row.line not in matched, f"two records match one ss row: {row.line}"
        matched.add(row.line)


@pytest.mark.parametrize("backend", BACKENDS)
def test_snapshot_from_another_thread_reads_its_namespace(zoo: ZooClient, backend: str) -> None:
    """setns moves one thread: /proc/self/net would still show the main thread's namespace."""
    taken: list[Snapshot] = []
    worker = threading.Thread(
        target=lambda: taken.append(snapshot(backend=backend, netns=zoo.netns, processes=False))
    )
    worker.start()
    worker.join()
    (snap,) = taken
    assert snap.sockets is not None
    assert {s.inode for s in snap.sockets if s.inode} == {
        r["inode"] for r in zoo.sockets.values() if r["inode"]
    }


def test_unaccepted_unix_connections_are_left_out(netns: str, tmp_path: Path) -> None:
    """Connections waiting in a UNIX listener's queue: /proc lists them with inode 0, unix_diag not at all."""
    path = str(tmp_path / "queue.sock")
    with entered(netns):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        clients = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
        for client in clients:
            client.connect(path)
        table = Path("/proc/thread-self/net/unix").read_bytes().splitlines()[1:]
    try:
        queued = [row for row in table if row.split()[6] == b"0"]
        assert len(queued) == 2, table  # the oracle: the kernel's own table has them
        mine = {inode_of(s) for s in (listener, *clients)}
        snaps = [snapshot(backend=backend, netns=netns, processes=False) for backend in BACKENDS]
        for snap in snaps:
            assert snap.sockets is not None
            assert {s.inode for s in snap.sockets} == mine, snap.header.backend
        assert diff(snaps[0], snaps[1], fields=parse_fields("all")).summary == {
            "new": 0,
            "closed": 0,
            "changed": 0,
        }
    finally:
        for sock in (listener, *clients):
            sock.close()


def inode_of(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def test_queue_lengths_agree_with_ss(netns: str, tmp_path: Path) -> None:
    """Unread bytes, queued datagrams and a listener's backlog, as netlink reads them and ss shows them."""
    path = str(tmp_path / "backlog.sock")
    with entered(netns):
        stream_a, stream_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stream_a.send(b"x" * 1000)
        dgram_a, dgram_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for size in (10, 20, 30):
            dgram_a.send(b"y" * size)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(7)
        waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        waiting.connect(path)
        tcp_listener = socket.create_server(("127.0.0.1", 0), backlog=5)
        tcp_client = socket.create_connection(tcp_listener.getsockname())
        tcp_server, _ = tcp_listener.accept()
        tcp_client.send(b"z" * 500)
    held = [stream_a, stream_b, dgram_a, dgram_b, listener, waiting, tcp_listener, tcp_client, tcp_server]
    try:
        time.sleep(0.05)  # let loopback deliver the TCP bytes
        queues = {row.inode: (row.recv_q, row.send_q) for row in ss_rows(netns) if row.inode}
        snap = snapshot(backend="netlink", netns=netns, processes=False)
        assert snap.sockets is not None
        got = {s.inode: (s.recv_q, s.send_q) for s in snap.sockets if s.inode}
        assert got == queues
        assert got[inode_of(stream_b)][0] == 1000
        assert got[inode_of(listener)] == (1, 7)  # one connection waiting, backlog 7
        assert got[inode_of(tcp_server)][0] == 500
        assert got[inode_of(tcp_listener)] == (0, 5)
    finally:
        for sock in held:
            sock.close()
