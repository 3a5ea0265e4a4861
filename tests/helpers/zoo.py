#!/usr/bin/env python3
"""A zoo of real sockets, opened in the current network namespace, for tests.

Run it inside a private namespace (see ``tests/helpers/netns.py``)::

    ip netns exec NS /path/to/python tests/helpers/zoo.py --dir TMPDIR

It opens the sockets listed in :data:`ZOO_NAMES` on loopback (127.0.0.1, ::1;
the dual-stack listener on ``::``), waits until /proc/net shows every one of
them in its stated state, prints ONE line of JSON, the *manifest*, then answers
commands read one JSON object a line from stdin, each with one JSON line.

The manifest::

    {"ok": true, "pid": PARENT, "child_pid": FIRST_CHILD, "children": [PIDS],
     "dir": TMPDIR, "sockets": {NAME: RECORD, ...}}

A RECORD holds SPEC.md's normalized values: ``proto family type state local
remote inode interface v6only uid`` (``interface``: the SO_BINDTODEVICE device or
null; ``v6only``: IPV6_V6ONLY where inet_diag reports it, IPv6 sockets in LISTEN
or CLOSE, else null; an unconnected inet socket's ``remote`` is the wildcard
address with port 0, as /proc shows it; a UNIX socket's ``remote`` is
``{"peer_inode": N}``, 0 without a peer), plus the harness's own ``pids``
(sorted pids holding it), ``fds`` (``{"PID": FD}``: JSON object keys are
strings), ``processes`` (sorted ``{"pid", "name", "fd"}``, ``name`` being the
process's comm) and ``peer`` (the NAME of the other end of a zoo connection, or
null). A socket without an inode (TIME_WAIT, an orphaned FIN_WAIT2) has inode
0 and no pids.

Commands (every answer is ``{"ok": true, ...}`` once the effect is visible in
/proc/net, or ``{"ok": false, "error": "..."}``; no wait lasts more than
:data:`WAIT_TIMEOUT` seconds):

- ``{"cmd": "manifest"}``: the current manifest.
- ``{"cmd": "close", "name": N}``: closes N in every process holding it. The
  answer has ``record``: what the kernel still shows of N (a closed connected
  TCP socket lives on as an inode-0 orphan, FIN_WAIT2 say, and stays in the
  manifest as such) or null (N left the manifest), and ``changed``: ``{NAME:
  record or null}`` for every other entry that changed (the peer going
  CLOSE_WAIT, say).
- ``{"cmd": "listen", "name": N, "proto": "tcp", "family": "inet", "address":
  "127.0.0.1", "port": 0}``: opens a new socket N and answers its ``record``.
  Also: ``"proto": "udp"`` (a bound socket), ``"proto": "unix"`` with
  ``"type"`` (stream, seqpacket, dgram) and ``"path"`` (``@name`` for an
  abstract name; a relative path is under --dir); ``"reuseport"``,
  ``"reuseaddr"`` (default true for TCP), ``"v6only"``, ``"device"`` (bound
  with SO_BINDTODEVICE); ``"holder"``:
  ``"parent"`` (default), ``"child"`` (the first child) or ``"new_child"``.
- ``{"cmd": "restart_in_child", "name": N}``: closes N and opens a socket like
  it on the same address and port (SO_REUSEADDR) in a NEW child process; the
  answer has ``record``, ``old_record`` and ``pid``.
- ``{"cmd": "half_close", "name": N}``: shutdown(SHUT_WR) then close on an
  ESTABLISHED TCP socket: N becomes an inode-0 FIN_WAIT2 orphan and its peer
  CLOSE_WAIT. The answer has ``record``, ``peer``, ``peer_record``, ``states``
  and ``changed``.
- ``{"cmd": "exit"}`` (or EOF): closes everything, stops the children, exits.

Importers get :class:`ZooClient` and :func:`start_zoo`, the other end of this
protocol, as the ``zoo`` pytest fixture uses them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

__all__ = [
    "WAIT_TIMEOUT",
    "ZOO_NAMES",
    "ZOO_PATH",
    "ZooClient",
    "ZooError",
    "main",
    "start_zoo",
]

JSON = dict[str, Any]

ZOO_PATH = Path(__file__).resolve()
#: The longest any one wait of the zoo lasts, in seconds.
WAIT_TIMEOUT = 5.0
_POLL_INTERVAL = 0.005

#: The sockets of a fresh zoo, in the order they are opened.
ZOO_NAMES = (
    "tcp4_listener",  # held by the parent AND the first child (an inherited fd)
    "tcp4_client",
    "tcp4_server",
    "tcp6_listener",
    "tcp6_client",
    "tcp6_server",
    "dualstack_listener",  # AF_INET6 on "::", IPV6_V6ONLY=0
    "dualstack_client",  # AF_INET, to 127.0.0.1
    "dualstack_server",  # ::ffff:127.0.0.1 on both ends
    "reuseport_a",
    "reuseport_b",  # held by the first child
    "tcp_timewait",  # inode 0, no pids
    "tcp_finwait2",  # shutdown(SHUT_WR), fd kept open: owned, with an inode
    "tcp_closewait",
    "udp4_bound",
    "udp4_connected",
    "udp6_bound",
    "udp6_connected",
    "raw_icmp",
    "raw_icmp6",
    "unix_stream_listener",  # "DIR/zoo listener.sock"
    "unix_stream_client",
    "unix_stream_server",  # an accepted socket shows its listener's path
    "unix_abstract_listener",  # "@sockdiff-zoo-PID"
    "unix_dgram_bound",
    "unix_dgram_unnamed",
    "unix_seqpacket_listener",  # held by the first child
    "socketpair_a",
    "socketpair_b",
)

# include/net/tcp_states.h; UDP and raw sockets use ESTABLISHED and CLOSE. Kept apart
# from sockdiff.model.TCP_STATES on purpose: the zoo is the tests' own account of /proc.
_TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",
}
_TRANSITIONAL = frozenset({"SYN_SENT", "SYN_RECV", "FIN_WAIT1", "CLOSING", "LAST_ACK"})
# /proc/net/unix: the St column is the SS_* code; the __SO_ACCEPTCON flag means LISTENING.
_UNIX_SS_STATES = {0: "FREE", 1: "UNCONNECTED", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING"}
_SO_ACCEPTCON = 1 << 16
_UNIX_TYPES = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}
_UNIX_TYPE_NUMBERS = {1: "stream", 2: "dgram", 5: "seqpacket"}
_INET_TYPES = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp", socket.SOCK_RAW: "raw"}
_INET_TABLES = (
    ("tcp", "inet", "tcp"),
    ("tcp", "inet6", "tcp6"),
    ("udp", "inet", "udp"),
    ("udp", "inet6", "udp6"),
    ("raw", "inet", "raw"),
    ("raw", "inet6", "raw6"),
)
_WILDCARD = {"inet": "0.0.0.0", "inet6": "::"}
_RECORD_ORDER = ("proto", "family", "type", "state", "local", "remote", "inode", "interface")
# inet_diag reports IPV6_V6ONLY (INET_DIAG_SKV6ONLY) for IPv6 sockets in these states only.
_V6ONLY_STATES = frozenset({"LISTEN", "CLOSE"})
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class ZooError(Exception):
    """Something the zoo (or its client) could not do as asked."""


# --------------------------------------------------------------------------
# What the kernel shows: /proc/net/*
# --------------------------------------------------------------------------

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class InetRow:
    """One line of /proc/net/{tcp,tcp6,udp,udp6,raw,raw6}."""

    proto: str
    family: str
    local: Endpoint
    remote: Endpoint
    state: str
    inode: int


@dataclass(frozen=True)
class UnixRow:
    """One line of /proc/net/unix."""

    inode: int
    type: str
    state: str
    path: str | None


def _proc_endpoint(text: str) -> Endpoint:
    """``0100007F:1F90`` (address words in host byte order) as ``("127.0.0.1", 8080)``."""
    addr_hex, port_hex = text.split(":")
    raw = b"".join(struct.pack("=I", int(addr_hex[i : i + 8], 16)) for i in range(0, len(addr_hex), 8))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw), int(port_hex, 16)


def read_inet_rows() -> list[InetRow]:
    """Every inet socket /proc/net shows in this process's namespace."""
    rows: list[InetRow] = []
    for proto, family, table in _INET_TABLES:
        try:
            lines = Path("/proc/net", table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            rows.append(
                InetRow(
                    proto,
                    family,
                    _proc_endpoint(fields[1]),
                    _proc_endpoint(fields[2]),
                    _TCP_STATES.get(int(fields[3], 16), "UNKNOWN"),
                    int(fields[9]),
                )
            )
    return rows


def read_unix_rows() -> dict[int, UnixRow]:
    """Every UNIX socket /proc/net/unix shows in this namespace, by inode."""
    rows: dict[int, UnixRow] = {}
    for line in Path("/proc/net/unix").read_bytes().splitlines()[1:]:
        fields = line.split(maxsplit=7)  # Num RefCount Protocol Flags Type St Inode [Path]
        if len(fields) < 7:
            continue
        flags, sock_type, st, inode = (
            int(fields[3], 16),
            int(fields[4], 16),
            int(fields[5], 16),
            int(fields[6]),
        )
        state = "LISTENING" if flags & _SO_ACCEPTCON else _UNIX_SS_STATES.get(st, "UNKNOWN")
        path = fields[7].decode("utf-8", "backslashreplace") if len(fields) > 7 else None
        rows[inode] = UnixRow(inode, _UNIX_TYPE_NUMBERS.get(sock_type, str(sock_type)), state, path)
    return rows


def wait_for(check: Callable[[], str | None], what: str, timeout: float = WAIT_TIMEOUT) -> None:
    """Poll ``check`` (None: done; else what is still wrong) until done or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        problem = check()
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise ZooError(f"timed out after {timeout:g} s waiting for {what}: {problem}")
        time.sleep(_POLL_INTERVAL)


# --------------------------------------------------------------------------
# Records: what the socket API says about a socket
# --------------------------------------------------------------------------


def unix_name(raw: str | bytes) -> str | None:
    r"""A UNIX socket name as SPEC.md writes it: ``@name`` when abstract, None when unnamed.

    >>> unix_name(b"\0a\0b"), unix_name(""), unix_name("/tmp/x y")
    ('@a@b', None, '/tmp/x y')
    """
    data = os.fsencode(raw) if isinstance(raw, str) else raw
    if not data:
        return None
    if data[:1] == b"\0":
        data = b"@" + data[1:].replace(b"\0", b"@")
    return data.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _inet_endpoint(addr: Any) -> JSON:
    return {"address": str(addr[0]), "port": int(addr[1])}


def bound_device(sock: socket.socket) -> str | None:
    """The device a socket is bound to (SO_BINDTODEVICE), None if unbound."""
    name = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).split(b"\0", 1)[0]
    return name.decode() if name else None


def describe(sock: socket.socket) -> JSON:
    """``proto family type local remote inode interface v6only`` of an open socket (no state).

    A UNIX socket's ``remote`` is ``{"peer_inode": 0}`` here: only the zoo knows
    peers. ``v6only`` is the IPV6_V6ONLY option of an IPv6 socket, None for
    the others; the manifest shows it only where the kernel reports it.
    """
    inode = os.fstat(sock.fileno()).st_ino
    if sock.family == socket.AF_UNIX:
        return {
            "proto": "unix",
            "family": "unix",
            "type": _UNIX_TYPES[sock.type],
            "local": {"path": unix_name(sock.getsockname())},
            "remote": {"peer_inode": 0},
            "inode": inode,
            "interface": None,
            "v6only": None,
        }
    family = "inet" if sock.family == socket.AF_INET else "inet6"
    proto = _INET_TYPES[sock.type]
    local = _inet_endpoint(sock.getsockname())
    if proto == "raw":
        local["port"] = sock.proto  # /proc shows the protocol number as the port
    try:
        remote = _inet_endpoint(sock.getpeername())
    except OSError:
        remote = {"address": _WILDCARD[family], "port": 0}
    return {
        "proto": proto,
        "family": family,
        "type": "raw" if proto == "raw" else "stream" if proto == "tcp" else "dgram",
        "local": local,
        "remote": remote,
        "inode": inode,
        "interface": bound_device(sock),
        "v6only": (
            bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)) if family == "inet6" else None
        ),
    }


def expected_state(spec: Mapping[str, Any]) -> str:
    """The state a socket opened by :func:`open_socket` from ``spec`` is in."""
    proto = spec.get("proto", "tcp")
    if proto == "unix":
        return "LISTENING" if _listens(spec) else "UNCONNECTED"
    if proto == "tcp":
        return "LISTEN" if _listens(spec) else "CLOSE"
    return "CLOSE"


def _listens(spec: Mapping[str, Any]) -> bool:
    default = spec.get("proto", "tcp") in ("tcp", "unix") and spec.get("type", "stream") != "dgram"
    return bool(spec.get("listen", default))


def _is_socket_file(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def open_socket(spec: Mapping[str, Any]) -> socket.socket:
    """Open, bind and (where it listens) listen a socket as ``spec`` says.

    ``spec``: ``proto`` (tcp, udp, raw, unix), ``family`` (inet, inet6), ``type``
    (unix: stream, dgram, seqpacket), ``address`` and ``port`` (inet), ``path``
    (unix: absolute, ``@abstract`` or null), ``protocol`` (raw), ``listen``,
    ``backlog``, ``reuseaddr``, ``reuseport``, ``v6only``, ``device``
    (SO_BINDTODEVICE). A stale socket file
    at ``path`` is replaced; any other file there is an error.
    """
    proto = spec.get("proto", "tcp")
    backlog = int(spec.get("backlog", 16))
    if proto == "unix":
        sock_type = {
            "stream": socket.SOCK_STREAM,
            "dgram": socket.SOCK_DGRAM,
            "seqpacket": socket.SOCK_SEQPACKET,
        }
        sock = socket.socket(socket.AF_UNIX, sock_type[spec.get("type", "stream")])
        try:
            path = spec.get("path")
            if path is not None:
                if path.startswith("@"):
                    sock.bind(b"\0" + path[1:].encode())
                else:
                    if _is_socket_file(path):
                        os.unlink(path)
                    sock.bind(path)
            if _listens(spec):
                sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock
    family = spec.get("family", "inet")
    af = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}[family]
    if proto == "raw":
        protocol = int(
            spec.get("protocol", socket.IPPROTO_ICMP if family == "inet" else socket.IPPROTO_ICMPV6)
        )
        sock = socket.socket(af, socket.SOCK_RAW, protocol)
    else:
        sock = socket.socket(af, {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}[proto])
    try:
        if spec.get("reuseaddr", proto == "tcp"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spec.get("reuseport", False):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if af == socket.AF_INET6 and spec.get("v6only") is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(bool(spec["v6only"])))
        if spec.get("device") is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, str(spec["device"]).encode())
        address = spec.get("address", "127.0.0.1" if family == "inet" else "::1")
        sock.bind((address, 0 if proto == "raw" else int(spec.get("port", 0))))
        if proto == "tcp" and _listens(spec):
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the kernel kills this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def _close_fds_except(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


# --------------------------------------------------------------------------
# Child processes: hold sockets, obey the parent through two pipes
# --------------------------------------------------------------------------


def _child_main(commands: IO[str], replies: IO[str], socks: dict[str, socket.socket]) -> None:
    """A child's loop: ``{"op": "open"|"close"|"exit", ...}`` lines in, one JSON line out each."""
    for line in commands:
        reply: JSON
        try:
            msg = json.loads(line)
            op, name = msg.get("op"), msg.get("name")
            if op == "open":
                sock = open_socket(msg["spec"])
                socks[name] = sock
                reply = {"ok": True, "fd": sock.fileno(), "record": describe(sock)}
            elif op == "close":
                socks.pop(name).close()
                reply = {"ok": True}
            elif op == "exit":
                reply = {"ok": True}
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as exc:  # every failure is an answer
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if reply.get("ok") and msg.get("op") == "exit":
            break
    for sock in socks.values():
        sock.close()


class Child:
    """The parent's handle on one child process."""

    def __init__(self, pid: int, commands: int, replies: int) -> None:
        self.pid = pid
        self._commands = commands
        self._replies = replies
        self._buffer = b""
        self.alive = True

    def request(self, msg: JSON, timeout: float = WAIT_TIMEOUT) -> JSON:
        """Send one command, return its answer; ZooError on failure or timeout."""
        if not self.alive:
            raise ZooError(f"child {self.pid} is gone")
        os.write(self._commands, (json.dumps(msg) + "\n").encode())
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise ZooError(f"child {self.pid} did not answer {msg!r} within {timeout:g} s")
            chunk = os.read(self._replies, 65536)
            if not chunk:
                self.alive = False
                raise ZooError(f"child {self.pid} exited while asked {msg!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply: JSON = json.loads(line)
        if not reply.get("ok"):
            raise ZooError(f"child {self.pid}: {reply.get('error')}")
        return reply

    def stop(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Ask the child to exit; SIGKILL it if it has not within ``timeout``; reap it."""
        if self.alive:
            with contextlib.suppress(OSError, ZooError, ValueError):
                self.request({"op": "exit"}, timeout=timeout)
            self.alive = False
        for fd in (self._commands, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                return
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                return
            time.sleep(_POLL_INTERVAL)


# --------------------------------------------------------------------------
# The zoo itself (the parent process)
# --------------------------------------------------------------------------


@dataclass
class Entry:
    """One named socket of the zoo, wherever it is held."""

    name: str
    #: proto family type state local remote inode (SPEC.md values).
    record: JSON
    #: The parent's handle on it, if the parent holds it.
    sock: socket.socket | None = None
    #: child pid -> fd, for the children holding it.
    child_fds: dict[int, int] = field(default_factory=dict)
    #: How it was opened (listeners and bound sockets): what restart_in_child re-opens.
    spec: JSON | None = None
    #: The socket file this entry created, removed when it is closed.
    bound_path: str | None = None
    #: The NAME of the other end of a zoo connection.
    peer: str | None = None


def _key(record: Mapping[str, Any]) -> tuple[str, str, Endpoint, Endpoint]:
    local, remote = record["local"], record["remote"]
    return (
        record["proto"],
        record["family"],
        (local["address"], local["port"]),
        (remote["address"], remote["port"]),
    )


def _unmapped(endpoint: Mapping[str, Any]) -> Endpoint:
    address = str(endpoint["address"])
    return (
        address.removeprefix("::ffff:") if address.startswith("::ffff:") else address,
        int(endpoint["port"]),
    )


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_bytes().rstrip(b"\n").decode("utf-8", "backslashreplace")
    except OSError:
        return ""


class Zoo:
    """The parent process's registry of named sockets and of its children."""

    def __init__(self, directory: Path) -> None:
        self.pid = os.getpid()
        self.dir = directory
        self.entries: dict[str, Entry] = {}
        self.children: dict[int, Child] = {}
        self.first_child: int | None = None
        #: Sockets no longer in the manifest that a process may still hold.
        self.retired: list[Entry] = []

    # -- building ---------------------------------------------------------

    def add(self, name: str, sock: socket.socket, state: str, **extra: Any) -> Entry:
        """Register a socket the parent holds."""
        record = describe(sock)
        record["state"] = state
        entry = Entry(name, record, sock=sock, **extra)
        self.entries[name] = entry
        return entry

    def open_in_child(self, child: Child, name: str, spec: JSON) -> Entry:
        """Have ``child`` open a socket from ``spec`` and register it."""
        reply = child.request({"op": "open", "name": name, "spec": spec})
        record: JSON = reply["record"]
        record["state"] = expected_state(spec)
        entry = Entry(
            name, record, child_fds={child.pid: int(reply["fd"])}, spec=spec, bound_path=_bound_path(spec)
        )
        self.entries[name] = entry
        return entry

    def open_here(self, name: str, spec: JSON) -> Entry:
        """Open a socket from ``spec`` in the parent and register it."""
        sock = open_socket(spec)
        return self.add(name, sock, expected_state(spec), spec=spec, bound_path=_bound_path(spec))

    def spawn_child(self, keep: Mapping[str, socket.socket] | None = None) -> Child:
        """Fork a child holding only ``keep`` (inherited fds) and whatever it is told to open."""
        keep = dict(keep or {})
        cmd_r, cmd_w = os.pipe()
        reply_r, reply_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            status = 0
            try:
                _die_with_parent()
                if os.getppid() != parent:
                    os._exit(1)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                kept = {id(sock) for sock in keep.values()}
                for entry in [*self.entries.values(), *self.retired]:
                    if entry.sock is not None and id(entry.sock) not in kept:
                        entry.sock.close()
                _close_fds_except({cmd_r, reply_w} | {sock.fileno() for sock in keep.values()})
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                os.close(devnull)
                with os.fdopen(cmd_r, "r") as commands, os.fdopen(reply_w, "w") as replies:
                    _child_main(commands, replies, keep)
            except BaseException:  # a child never returns into the parent's code
                traceback.print_exc()
                status = 1
            finally:
                os._exit(status)
        os.close(cmd_r)
        os.close(reply_w)
        child = Child(pid, cmd_w, reply_r)
        self.children[pid] = child
        if self.first_child is None:
            self.first_child = pid
        return child

    def connect(
        self, listener: socket.socket, family: int, address: Any
    ) -> tuple[socket.socket, socket.socket]:
        """Connect a new client to ``listener`` at ``address``; return (client, accepted)."""
        client = socket.socket(family, socket.SOCK_STREAM)
        try:
            client.settimeout(WAIT_TIMEOUT)
            client.connect(address)
            client.settimeout(None)
            if not select.select([listener], [], [], WAIT_TIMEOUT)[0]:
                raise ZooError(f"no connection to accept on {listener.getsockname()!r}")
            server, _ = listener.accept()
        except BaseException:
            client.close()
            raise
        return client, server

    def add_pair(
        self, names: tuple[str, str], client: socket.socket, server: socket.socket, state: str
    ) -> None:
        """Register the two ends of a zoo connection as each other's peer."""
        a = self.add(names[0], client, state, peer=names[1])
        b = self.add(names[1], server, state, peer=names[0])
        if a.record["proto"] == "unix":
            a.record["remote"] = {"peer_inode": b.record["inode"]}
            b.record["remote"] = {"peer_inode": a.record["inode"]}

    def build(self) -> None:
        """Open the whole zoo (:data:`ZOO_NAMES`) and wait until /proc shows it."""
        inet4, inet6 = socket.AF_INET, socket.AF_INET6

        # A listener held by the parent and, through an inherited fd, the first child.
        tcp4 = self.open_here("tcp4_listener", {"proto": "tcp", "family": "inet", "address": "127.0.0.1"})
        assert tcp4.sock is not None
        listener4 = tcp4.sock
        child = self.spawn_child({"tcp4_listener": listener4})
        tcp4.child_fds[child.pid] = listener4.fileno()
        port4 = tcp4.record["local"]["port"]
        self.add_pair(
            ("tcp4_client", "tcp4_server"),
            *self.connect(listener4, inet4, ("127.0.0.1", port4)),
            "ESTABLISHED",
        )

        tcp6 = self.open_here("tcp6_listener", {"proto": "tcp", "family": "inet6", "address": "::1"})
        assert tcp6.sock is not None
        pair6 = self.connect(tcp6.sock, inet6, ("::1", tcp6.record["local"]["port"]))
        self.add_pair(("tcp6_client", "tcp6_server"), *pair6, "ESTABLISHED")

        dual = self.open_here(
            "dualstack_listener", {"proto": "tcp", "family": "inet6", "address": "::", "v6only": False}
        )
        assert dual.sock is not None
        pair_dual = self.connect(dual.sock, inet4, ("127.0.0.1", dual.record["local"]["port"]))
        self.add_pair(("dualstack_client", "dualstack_server"), *pair_dual, "ESTABLISHED")

        reuse: JSON = {"proto": "tcp", "family": "inet", "address": "127.0.0.1", "reuseport": True}
        reuse_a = self.open_here("reuseport_a", reuse)
        self.open_in_child(child, "reuseport_b", {**reuse, "port": reuse_a.record["local"]["port"]})

        # TIME_WAIT: the client closes first (a plain close: no SO_LINGER, which
        # would reset), the server acknowledges (client FIN_WAIT2, server
        # CLOSE_WAIT) then closes, and the client's side lingers in TIME_WAIT.
        tw_client, tw_server = self.connect(listener4, inet4, ("127.0.0.1", port4))
        timewait = describe(tw_client)
        timewait.update(state="TIME_WAIT", inode=0)
        tw_server_inode = os.fstat(tw_server.fileno()).st_ino
        tw_client.close()
        wait_for(
            lambda: (
                self._tuple_state(timewait, "FIN_WAIT2")
                or self._inode_state("tcp", tw_server_inode, "CLOSE_WAIT")
            ),
            "the TIME_WAIT client's FIN to be acknowledged",
        )
        tw_server.close()
        self.entries["tcp_timewait"] = Entry("tcp_timewait", timewait)

        # FIN_WAIT2 / CLOSE_WAIT: A shuts down its sending side and keeps its fd,
        # B never closes. Both stay so for good, each with an inode and a pid.
        fin_a, fin_b = self.connect(listener4, inet4, ("127.0.0.1", port4))
        fin_a.shutdown(socket.SHUT_WR)
        self.add("tcp_finwait2", fin_a, "FIN_WAIT2", peer="tcp_closewait")
        self.add("tcp_closewait", fin_b, "CLOSE_WAIT", peer="tcp_finwait2")

        for family, address in (("4", "127.0.0.1"), ("6", "::1")):
            inet = "inet" if family == "4" else "inet6"
            bound = self.open_here(f"udp{family}_bound", {"proto": "udp", "family": inet, "address": address})
            connected = open_socket({"proto": "udp", "family": inet, "address": address})
            connected.connect((address, bound.record["local"]["port"]))
            self.add(f"udp{family}_connected", connected, "ESTABLISHED")

        self.open_here("raw_icmp", {"proto": "raw", "family": "inet", "address": "127.0.0.1"})
        self.open_here("raw_icmp6", {"proto": "raw", "family": "inet6", "address": "::1"})

        stream = self.open_here(
            "unix_stream_listener",
            {"proto": "unix", "type": "stream", "path": str(self.dir / "zoo listener.sock")},
        )
        assert stream.sock is not None
        client_u, server_u = self.connect(stream.sock, socket.AF_UNIX, stream.record["local"]["path"])
        self.add_pair(("unix_stream_client", "unix_stream_server"), client_u, server_u, "CONNECTED")
        self.open_here(
            "unix_abstract_listener", {"proto": "unix", "type": "stream", "path": f"@sockdiff-zoo-{self.pid}"}
        )
        self.open_here(
            "unix_dgram_bound", {"proto": "unix", "type": "dgram", "path": str(self.dir / "zoo-dgram.sock")}
        )
        self.open_here("unix_dgram_unnamed", {"proto": "unix", "type": "dgram", "path": None})
        seqpacket: JSON = {"proto": "unix", "type": "seqpacket", "path": str(self.dir / "zoo-seqpacket.sock")}
        self.open_in_child(child, "unix_seqpacket_listener", seqpacket)
        self.add_pair(
            ("socketpair_a", "socketpair_b"),
            *socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM),
            "CONNECTED",
        )

        assert tuple(self.entries) == ZOO_NAMES, tuple(self.entries)
        self.wait_consistent(self.entries.values(), "the zoo")

    # -- checking against /proc ------------------------------------------

    def _tuple_state(self, record: Mapping[str, Any], state: str) -> str | None:
        key = _key(record)
        for row in read_inet_rows():
            if (row.proto, row.family, row.local, row.remote) == key and row.inode == 0:
                return None if row.state == state else f"{key} is {row.state}, not {state}"
        return f"no inode-0 socket {key}"

    def _inode_state(self, proto: str, inode: int, state: str) -> str | None:
        for row in read_inet_rows():
            if row.proto == proto and row.inode == inode:
                return None if row.state == state else f"{proto} inode {inode} is {row.state}, not {state}"
        return f"no {proto} socket with inode {inode}"

    def holders(self, entry: Entry) -> dict[int, int]:
        """pid -> fd of the processes holding ``entry``'s inode (none for inode 0)."""
        if not entry.record["inode"]:
            return {}
        found = dict(entry.child_fds)
        if entry.sock is not None and entry.sock.fileno() >= 0:
            found[self.pid] = entry.sock.fileno()
        return found

    def problems(self, entries: Iterable[Entry]) -> list[str]:
        """What /proc says differently about ``entries`` (state, presence, fds)."""
        rows = read_inet_rows()
        unix = read_unix_rows()
        by_inode = {(row.proto, row.inode): row for row in rows if row.inode}
        by_tuple = {(row.proto, row.family, row.local, row.remote): row for row in rows if not row.inode}
        found: list[str] = []
        for entry in entries:
            record = entry.record
            state: str | None
            if record["proto"] == "unix":
                unix_row = unix.get(record["inode"])
                state = None if unix_row is None else unix_row.state
            else:
                row = (
                    by_inode.get((record["proto"], record["inode"]))
                    if record["inode"]
                    else by_tuple.get(_key(record))
                )
                state = None if row is None else row.state
            if state is None:
                found.append(f"{entry.name}: not in /proc/net (inode {record['inode']})")
            elif state != record["state"]:
                found.append(f"{entry.name}: {state}, not {record['state']}")
            for pid, fd in self.holders(entry).items():
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError as err:
                    target = str(err)
                if target != f"socket:[{record['inode']}]":
                    found.append(f"{entry.name}: pid {pid} fd {fd} is {target}")
        return found

    def wait_consistent(self, entries: Iterable[Entry], what: str) -> None:
        """Wait until /proc agrees with every record in ``entries``."""
        chosen = list(entries)
        wait_for(lambda: "; ".join(self.problems(chosen)) or None, what)

    def settle(self) -> None:
        """Wait until no TCP socket of the namespace is in a passing state (FIN_WAIT1, LAST_ACK...)."""

        def check() -> str | None:
            busy = [
                f"{row.local}->{row.remote} {row.state}"
                for row in read_inet_rows()
                if row.state in _TRANSITIONAL
            ]
            return ", ".join(busy) or None

        wait_for(check, "TCP connections to settle")

    def sync(self) -> dict[str, JSON | None]:
        """Re-read every entry's state from /proc; return ``{name: record or None}`` of changes.

        A connected TCP socket whose inode is gone but whose connection lives on
        (TIME_WAIT, an orphaned FIN_WAIT2) becomes inode 0; an entry the kernel no
        longer shows at all leaves the manifest (None).
        """
        rows = read_inet_rows()
        unix = read_unix_rows()
        by_inode = {(row.proto, row.inode): row for row in rows if row.inode}
        by_tuple = {(row.proto, row.family, row.local, row.remote): row for row in rows if not row.inode}
        changed: dict[str, JSON | None] = {}
        for name, entry in list(self.entries.items()):
            before = self.public_record(entry)
            record = entry.record
            state: str | None = None
            if record["proto"] == "unix":
                unix_row = unix.get(record["inode"])
                if unix_row is not None:
                    state = unix_row.state
                    peer = record["remote"]["peer_inode"]
                    if peer and peer not in unix:
                        record["remote"] = {"peer_inode": 0}
            else:
                row = by_inode.get((record["proto"], record["inode"])) if record["inode"] else None
                if row is None and record["remote"]["port"]:
                    row = by_tuple.get(_key(record))
                    if row is not None:
                        record["inode"] = 0
                if row is not None:
                    state = row.state
            if state is None:
                self.retire(name)
                changed[name] = None
                continue
            record["state"] = state
            after = self.public_record(entry)
            if after != before:
                changed[name] = after
        return changed

    def retire(self, name: str) -> None:
        """Take ``name`` out of the manifest, keeping any handle for the final cleanup."""
        entry = self.entries.pop(name)
        if entry.sock is not None or entry.child_fds:
            self.retired.append(entry)

    # -- the manifest -------------------------------------------------------

    def public_record(self, entry: Entry) -> JSON:
        """The record as the manifest shows it."""
        holders = self.holders(entry)
        record = {key: entry.record[key] for key in _RECORD_ORDER}
        record["v6only"] = entry.record["v6only"] if record["state"] in _V6ONLY_STATES else None
        record["uid"] = os.geteuid() if record["inode"] else 0
        record["pids"] = sorted(holders)
        record["fds"] = {str(pid): fd for pid, fd in sorted(holders.items())}
        record["processes"] = [
            {"pid": pid, "name": _comm(pid), "fd": fd} for pid, fd in sorted(holders.items())
        ]
        record["peer"] = entry.peer if entry.peer in self.entries else None
        return record

    def manifest(self) -> JSON:
        """The whole zoo as one JSON object."""
        return {
            "ok": True,
            "pid": self.pid,
            "child_pid": self.first_child,
            "children": sorted(pid for pid, child in self.children.items() if child.alive),
            "dir": str(self.dir),
            "sockets": {name: self.public_record(entry) for name, entry in self.entries.items()},
        }

    # -- commands -------------------------------------------------------------

    def handle(self, msg: Any) -> JSON:
        """Answer one command (see the module's docstring)."""
        if not isinstance(msg, dict):
            raise ZooError("a command is a JSON object")
        cmd = msg.get("cmd")
        if cmd == "manifest":
            return self.manifest()
        handlers: dict[str, Callable[[JSON], JSON]] = {
            "close": self.cmd_close,
            "listen": self.cmd_listen,
            "restart_in_child": self.cmd_restart_in_child,
            "half_close": self.cmd_half_close,
        }
        handler = handlers.get(str(cmd))
        if handler is None:
            raise ZooError(f"unknown command {cmd!r}")
        return handler(msg)

    def _entry(self, msg: Mapping[str, Any]) -> Entry:
        name = msg.get("name")
        if not isinstance(name, str) or name not in self.entries:
            raise ZooError(f"no socket named {name!r}")
        return self.entries[name]

    def _close_handles(self, entry: Entry) -> None:
        for pid in list(entry.child_fds):
            self.children[pid].request({"op": "close", "name": entry.name})
            del entry.child_fds[pid]
        if entry.sock is not None:
            entry.sock.close()
            entry.sock = None
        if entry.bound_path is not None and _is_socket_file(entry.bound_path):
            os.unlink(entry.bound_path)

    def _gone(self, proto: str, inode: int) -> str | None:
        if proto == "unix":
            present = inode in read_unix_rows()
        else:
            present = any(row.proto == proto and row.inode == inode for row in read_inet_rows())
        return f"{proto} inode {inode} still shown" if present else None

    def cmd_close(self, msg: JSON) -> JSON:
        """``close``: close the socket everywhere; see the module's docstring."""
        entry = self._entry(msg)
        record = entry.record
        inode = record["inode"]
        if entry.sock is None and not entry.child_fds:
            raise ZooError(f"{entry.name} is held by no process (inode {inode}); it cannot be closed")
        self._close_handles(entry)
        if inode:
            wait_for(lambda: self._gone(record["proto"], inode), f"{entry.name} to be closed")
        self.settle()
        if record["proto"] != "unix" and record["remote"]["port"]:
            record["inode"] = 0  # what lives on, if anything, is an orphan connection
        else:
            self.retire(entry.name)
        changed = self.sync()
        result = changed.pop(entry.name, None)
        if entry.name in self.entries:
            result = self.public_record(entry)
        return {"ok": True, "name": entry.name, "record": result, "changed": changed}

    def cmd_half_close(self, msg: JSON) -> JSON:
        """``half_close``: shutdown(SHUT_WR) + close: FIN_WAIT2 here, CLOSE_WAIT at the peer."""
        entry = self._entry(msg)
        record = entry.record
        if (
            record["proto"] != "tcp"
            or record["state"] != "ESTABLISHED"
            or entry.sock is None
            or entry.child_fds
        ):
            raise ZooError(f"{entry.name} is not an ESTABLISHED TCP socket held by the parent alone")
        peer = self.entries.get(entry.peer or "")
        inode = record["inode"]
        entry.sock.shutdown(socket.SHUT_WR)

        def acknowledged() -> str | None:
            return self._inode_state("tcp", inode, "FIN_WAIT2") or (
                None if peer is None else self._inode_state("tcp", peer.record["inode"], "CLOSE_WAIT")
            )

        wait_for(acknowledged, f"{entry.name}'s FIN to be acknowledged")
        entry.sock.close()
        entry.sock = None
        wait_for(
            lambda: self._gone("tcp", inode) or self._tuple_state(record, "FIN_WAIT2"),
            f"{entry.name} to be orphaned",
        )
        record["inode"] = 0
        changed = self.sync()
        changed.pop(entry.name, None)
        answer: JSON = {
            "ok": True,
            "name": entry.name,
            "record": self.public_record(entry),
            "changed": changed,
        }
        answer["states"] = {entry.name: record["state"]}
        answer["peer"] = None if peer is None else peer.name
        answer["peer_record"] = None
        if peer is not None and peer.name in self.entries:
            answer["peer_record"] = self.public_record(peer)
            answer["states"][peer.name] = peer.record["state"]
        return answer

    def _resolve_spec(self, msg: Mapping[str, Any]) -> JSON:
        spec = {key: value for key, value in msg.items() if key not in ("cmd", "name", "holder")}
        spec.setdefault("proto", "tcp")
        if spec["proto"] == "unix":
            spec["family"] = "unix"
            path = spec.get("path")
            if isinstance(path, str) and not path.startswith(("@", "/")):
                spec["path"] = str(self.dir / path)
        return spec

    def cmd_listen(self, msg: JSON) -> JSON:
        """``listen``: open a new listener (or bound socket) NAME."""
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise ZooError("listen needs a name")
        if name in self.entries:
            raise ZooError(f"there is a socket named {name!r} already")
        spec = self._resolve_spec(msg)
        holder = msg.get("holder", "parent")
        if holder == "parent":
            entry = self.open_here(name, spec)
        elif holder == "child" and self.first_child is not None:
            entry = self.open_in_child(self.children[self.first_child], name, spec)
        elif holder == "new_child":
            entry = self.open_in_child(self.spawn_child(), name, spec)
        else:
            raise ZooError(f"bad holder {holder!r}: parent, child or new_child")
        self.wait_consistent([entry], f"{name} to listen")
        return {"ok": True, "name": name, "record": self.public_record(entry)}

    def cmd_restart_in_child(self, msg: JSON) -> JSON:
        """``restart_in_child``: close NAME, re-open it on the same address in a new child."""
        entry = self._entry(msg)
        if entry.spec is None:
            raise ZooError(f"{entry.name} was not opened as a listener or bound socket")
        old = self.public_record(entry)
        spec = dict(entry.spec)
        if entry.record["proto"] == "unix":
            spec["path"] = entry.record["local"]["path"]
        else:
            spec.update(
                address=entry.record["local"]["address"], port=entry.record["local"]["port"], reuseaddr=True
            )
        self.cmd_close({"name": entry.name})
        child = self.spawn_child()
        new = self.open_in_child(child, entry.name, spec)
        new.peer = None
        self.wait_consistent([new], f"{entry.name} to listen again")
        return {
            "ok": True,
            "name": entry.name,
            "record": self.public_record(new),
            "old_record": old,
            "pid": child.pid,
        }

    # -- the end ------------------------------------------------------------

    def shutdown(self) -> None:
        """Close every socket, remove the socket files, stop and reap every child.

        Connected TCP sockets are reset (SO_LINGER 0) rather than closed, so a
        zoo leaves no TIME_WAIT behind in its namespace.
        """
        for child in list(self.children.values()):
            child.stop()
        for entry in [*self.entries.values(), *self.retired]:
            if entry.sock is not None:
                if (
                    entry.sock.fileno() >= 0
                    and entry.sock.type == socket.SOCK_STREAM
                    and entry.sock.family != socket.AF_UNIX
                ):
                    with contextlib.suppress(OSError):
                        entry.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                entry.sock.close()
            if entry.bound_path is not None and _is_socket_file(entry.bound_path):
                with contextlib.suppress(OSError):
                    os.unlink(entry.bound_path)
        self.entries.clear()
        self.retired.clear()


def _bound_path(spec: Mapping[str, Any]) -> str | None:
    path = spec.get("path") if spec.get("proto") == "unix" else None
    return path if isinstance(path, str) and not path.startswith("@") else None


def _emit(obj: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Build the zoo, print the manifest, serve commands until ``exit`` or EOF."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--dir", required=True, type=Path, help="where to put the zoo's socket files")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    zoo = Zoo(args.dir.resolve())
    try:
        try:
            zoo.build()
        except Exception as exc:  # reported as the manifest line
            traceback.print_exc()
            _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return 1
        _emit(zoo.manifest())
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
                if isinstance(msg, dict) and msg.get("cmd") == "exit":
                    _emit({"ok": True})
                    break
                answer = zoo.handle(msg)
            except Exception as exc:  # every failure is an answer
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            _emit(answer)
    except BrokenPipeError:
        pass
    finally:
        zoo.shutdown()
    return 0


# --------------------------------------------------------------------------
# The client side, for tests
# --------------------------------------------------------------------------


class ZooClient:
    """A running zoo: its manifest, and a way to send it commands.

    ``manifest`` is kept current: after every command that may change the zoo
    the client asks for a fresh one.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], netns: str | None, directory: Path, stderr_path: Path
    ) -> None:
        self.process = process
        self.netns = netns
        self.dir = directory
        self.stderr_path = stderr_path
        self._buffer = b""
        self.manifest: JSON = {}

    @property
    def pid(self) -> int:
        """The zoo's parent process."""
        return int(self.manifest["pid"])

    @property
    def child_pid(self) -> int:
        """The first child, which holds reuseport_b, unix_seqpacket_listener and shares tcp4_listener."""
        return int(self.manifest["child_pid"])

    @property
    def sockets(self) -> dict[str, JSON]:
        """NAME -> record, as of the last manifest."""
        sockets: dict[str, JSON] = self.manifest["sockets"]
        return sockets

    def socket(self, name: str) -> JSON:
        """The record of socket ``name``; KeyError if the zoo has none."""
        return self.sockets[name]

    def stderr(self) -> str:
        """What the zoo wrote on stderr so far."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def read_line(self, timeout: float) -> JSON:
        """The zoo's next answer; ZooError on timeout, EOF or bad JSON."""
        stdout = self.process.stdout
        assert stdout is not None
        fd = stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise ZooError(f"the zoo did not answer within {timeout:g} s; stderr:\n{self.stderr()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise ZooError(f"the zoo exited (status {self.process.poll()}); stderr:\n{self.stderr()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer: JSON = json.loads(line)
        except ValueError as err:
            raise ZooError(f"the zoo said {line!r}: {err}") from None
        return answer

    def command(self, cmd: Mapping[str, Any], timeout: float = 4 * WAIT_TIMEOUT) -> JSON:
        """Send one command, return its answer (``{"ok": false, ...}`` included).

        ZooError only when the zoo does not answer at all.
        """
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(dict(cmd)) + "\n").encode())
            stdin.flush()
        except BrokenPipeError:
            raise ZooError(f"the zoo is gone; stderr:\n{self.stderr()}") from None
        answer = self.read_line(timeout)
        if cmd.get("cmd") == "manifest" and answer.get("ok"):
            self.manifest = answer
        elif cmd.get("cmd") != "exit":
            self.refresh(timeout)
        return answer

    def check(self, cmd: Mapping[str, Any], timeout: float = 4 * WAIT_TIMEOUT) -> JSON:
        """:meth:`command`, raising ZooError on an ``{"ok": false}`` answer."""
        answer = self.command(cmd, timeout)
        if not answer.get("ok"):
            raise ZooError(f"{dict(cmd)!r} failed: {answer.get('error')}")
        return answer

    def refresh(self, timeout: float = 4 * WAIT_TIMEOUT) -> JSON:
        """Fetch the current manifest (also kept as :attr:`manifest`)."""
        return self.check({"cmd": "manifest"}, timeout)

    def stop(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Ask the zoo to exit, then SIGKILL whatever is left of its process group."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError, ZooError):
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"cmd": "exit"}\n')
                self.process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        # The zoo leads its own process group (start_new_session): its children
        # are in it too, and die with it anyway (PR_SET_PDEATHSIG).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.01)


@contextlib.contextmanager
def start_zoo(
    netns: str | None,
    directory: Path | None = None,
    *,
    python: str | None = None,
    timeout: float = 6 * WAIT_TIMEOUT,
) -> Iterator[ZooClient]:
    """Run the zoo (in network namespace ``netns``; None: this one) and yield its client.

    ``directory`` holds the socket files (a fresh short-named temporary
    directory, removed afterwards, if None: a UNIX socket path has at most 107
    bytes). The zoo is always stopped on the way out, its whole process tree
    killed if it does not exit within a few seconds.
    """
    own_dir = directory is None
    path = Path(tempfile.mkdtemp(prefix="sockdiff-zoo-")) if directory is None else directory
    stderr_path = Path(tempfile.mkstemp(prefix="sockdiff-zoo-", suffix=".stderr")[1])
    argv = [python or sys.executable, str(ZOO_PATH), "--dir", str(path)]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    try:
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True
            )
        client = ZooClient(process, netns, path, stderr_path)
        try:
            manifest = client.read_line(timeout)
            if not manifest.get("ok"):
                raise ZooError(f"the zoo failed to start: {manifest.get('error')}\n{client.stderr()}")
            client.manifest = manifest
            yield client
        finally:
            client.stop()
    finally:
        with contextlib.suppress(OSError):
            stderr_path.unlink()
        if own_dir:
            for leftover in path.iterdir() if path.exists() else ():
                with contextlib.suppress(OSError):
                    leftover.unlink()
            with contextlib.suppress(OSError):
                path.rmdir()


if __name__ == "__main__":
    sys.exit(main())
