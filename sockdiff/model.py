"""The socket record both backends build, and the one table of state names.

Records are :class:`typing.NamedTuple` rather than frozen dataclasses: they are
just as immutable and typed, and building 100k of them costs half as much
(a frozen dataclass pays an ``object.__setattr__`` per field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "FAMILIES",
    "PROTOS",
    "SOCK_TYPES",
    "TCP_STATES",
    "UNIX_DIAG_STATES",
    "UNIX_SS_STATES",
    "Inet",
    "Process",
    "Socket",
    "UnixName",
    "UnixPeer",
    "escape_name",
    "is_listening",
    "make_socket",
]

PROTOS = ("tcp", "udp", "raw", "unix")
FAMILIES = ("inet", "inet6", "unix")

# Kernel socket states, include/net/tcp_states.h. UDP and raw sockets reuse
# them (ESTABLISHED once connected, CLOSE otherwise). TCP_NEW_SYN_RECV (12) is a
# request socket, which ss and /proc both show as SYN_RECV. TCP_BOUND_INACTIVE
# (13) is never asked for: see the netlink backend.
TCP_STATES: dict[int, str] = {
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
INET_STATE_NAMES = frozenset(TCP_STATES.values()) | {"UNKNOWN"}

# /proc/net/unix's "St" column is the socket's SS_* code (include/uapi/linux/net.h);
# netstat shows SS_UNCONNECTED as an empty state and a socket with the accept
# flag as LISTENING.
UNIX_SS_STATES: dict[int, str] = {
    0: "FREE",
    1: "UNCONNECTED",
    2: "CONNECTING",
    3: "CONNECTED",
    4: "DISCONNECTING",
}
# unix_diag reports sk_state, a TCP state number, for UNIX sockets too.
UNIX_DIAG_STATES: dict[int, str] = {
    1: "CONNECTED",
    2: "CONNECTING",
    7: "UNCONNECTED",
    10: "LISTENING",
}
UNIX_STATE_NAMES = frozenset(UNIX_SS_STATES.values()) | {"LISTENING", "UNKNOWN"}

# SOCK_* numbers (include/linux/net.h), the same in /proc/net/unix and unix_diag.
SOCK_TYPES: dict[int, str] = {1: "stream", 2: "dgram", 3: "raw", 5: "seqpacket"}


class Inet(NamedTuple):
    """An IP endpoint; for raw sockets ``port`` is the protocol number."""

    address: str
    port: int


class UnixName(NamedTuple):
    """A UNIX socket's name: a path, ``@name`` when abstract, None when unnamed."""

    path: str | None


class UnixPeer(NamedTuple):
    """The inode of a UNIX socket's peer, 0 when it has none."""

    peer_inode: int


class Process(NamedTuple):
    pid: int
    name: str
    fd: int


Endpoint = Inet | UnixName | UnixPeer


class Socket(NamedTuple):
    """One socket, normalized the same way by every backend.

    A field a backend cannot know is None (``remote`` included for UNIX
    sockets read from /proc).
    """

    proto: str
    family: str
    type: str
    state: str
    local: Inet | UnixName
    remote: Inet | UnixPeer | None
    inode: int
    uid: int | None
    recv_q: int | None
    send_q: int | None
    processes: tuple[Process, ...]

    def to_dict(self) -> dict[str, Any]:
        """The record as it stands in a snapshot file (written out by hand: ``_asdict``
        would cost a third of a 100k-socket snapshot)."""
        proto, family, sock_type, state, local, remote, inode, uid, recv_q, send_q, processes = self
        if proto == "unix":
            local_dict: dict[str, Any] = {"path": local[0]}
            remote_dict: dict[str, Any] | None = None if remote is None else {"peer_inode": remote[0]}
        else:
            local_dict = {"address": local[0], "port": local[-1]}
            remote_dict = None if remote is None else {"address": remote[0], "port": remote[-1]}
        return {
            "proto": proto,
            "family": family,
            "type": sock_type,
            "state": state,
            "local": local_dict,
            "remote": remote_dict,
            "inode": inode,
            "uid": uid,
            "recv_q": recv_q,
            "send_q": send_q,
            "processes": [{"pid": p[0], "name": p[1], "fd": p[2]} for p in processes] if processes else [],
        }


NO_PROCESSES: tuple[Process, ...] = ()
_new = tuple.__new__  # Socket(...) without NamedTuple's Python-level __new__


def make_socket(
    proto: str,
    family: str,
    sock_type: str,
    state: str,
    local: Inet | UnixName,
    remote: Inet | UnixPeer | None,
    inode: int,
    uid: int | None,
    recv_q: int | None,
    send_q: int | None,
    owners: Mapping[int, tuple[Process, ...]],
) -> Socket:
    """Build a record; every backend goes through here so all agree on shape.

    ``owners`` maps socket inodes to their processes (see
    :mod:`sockdiff.processes`); inode 0 never has an owner.
    """
    return _new(
        Socket,
        (
            proto,
            family,
            sock_type,
            state,
            local,
            remote,
            inode,
            uid,
            recv_q,
            send_q,
            owners.get(inode, NO_PROCESSES) if inode else NO_PROCESSES,
        ),
    )


def escape_name(raw: bytes) -> str:
    r"""Text for a UNIX socket name as the kernel holds it, unambiguously.

    An abstract name (leading NUL) becomes ``@name`` with inner NULs as ``@``, as
    /proc/net/unix shows it; bytes that are not UTF-8 become ``\xNN`` and a
    backslash ``\\``, so no two names collide.

    >>> escape_name(b"\0svc\0x")
    '@svc@x'
    >>> escape_name(b"/run/a.sock\0")
    '/run/a.sock'
    >>> escape_name(b"/tmp/a\\b\xff")
    '/tmp/a\\\\b\\xff'
    """
    if raw[:1] == b"\0":
        raw = b"@" + raw[1:].replace(b"\0", b"@")
    else:
        # A path is a C string: unix_diag counts its terminating NUL.
        raw = raw.split(b"\0", 1)[0]
    if b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


def is_listening(sock: Socket) -> bool:
    """Whether a socket waits for peers, as ``ss -l`` lists it (less unnamed UNIX).

    TCP LISTEN; UDP and raw CLOSE; UNIX LISTENING, and UNCONNECTED datagram
    sockets bound to a name.
    """
    if sock.proto == "tcp":
        return sock.state == "LISTEN"
    if sock.proto == "unix":
        if sock.state == "LISTENING":
            return True
        return (
            sock.state == "UNCONNECTED"
            and sock.type == "dgram"
            and isinstance(sock.local, UnixName)
            and sock.local.path is not None
        )
    return sock.state == "CLOSE"


# What ss lists without -a or -l: connected sockets only (its SS_CONN).
_NOT_CONNECTED = frozenset({"LISTEN", "CLOSE", "TIME_WAIT", "SYN_RECV", "LISTENING", "UNCONNECTED"})
# What ss -l lists: sockets waiting for peers, unnamed UNIX ones included.
_WAITING = frozenset({"LISTEN", "CLOSE", "LISTENING", "UNCONNECTED"})


def ss_view(listening: bool, everything: bool) -> frozenset[str] | None:
    """The states ss would list with ``-l`` / ``-a`` / neither; None for all.

    >>> sorted(ss_view(listening=True, everything=False))
    ['CLOSE', 'LISTEN', 'LISTENING', 'UNCONNECTED']
    """
    if everything:
        return None
    if listening:
        return _WAITING
    return frozenset(TCP_STATES.values()) - _NOT_CONNECTED | {"CONNECTED", "CONNECTING", "DISCONNECTING"}
