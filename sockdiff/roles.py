"""What a role exposes: a snapshot reduced to the listeners every host of one role should have.

One golden snapshot checks every host of a role only when one machine's accidents
are left out. :func:`role_view` keeps each inet listener (ss -l: TCP LISTEN, UDP
and raw sockets waiting unconnected) as its protocol, family, address class
(``loopback``, ``wildcard``, ``wildcard-v6only`` or ``specific``), port, the
device it is bound to and its namespace (in a snapshot of every namespace), with
the names of the programs holding it; pids, descriptors, inodes, queues,
owners' uids, connections, UNIX sockets (their names often carry a pid or a
random part), UDP sockets on an ephemeral port (a client's unconnected socket,
which ss -l lists: the snapshot's recorded ``local_ports``, else Linux's default
range) and the interfaces and routes sections (one machine's addresses and
counters, never a role's) are left out. A TCP listener is kept on any port:
one on a port the kernel handed out is still a door open on the host (`--ignore
'sport ge :32768'` leaves such ones out where a role's servers pick random
ports). Listeners alike in all of that and in their program's name become one:
a listener's program is part of what it is, so a port held by two programs
(SO_REUSEPORT) is two role listeners, one a program, and a listener without a
known owner one more.

Both sides of a role comparison go through it; the differ then pairs the
views' listeners by program name, and a port another program took is one
listener gone and one new (:func:`~sockdiff.differ.split_changes`), never a
change. Pure: records in, records out.
"""

from __future__ import annotations

import dataclasses
import ipaddress

import msgspec

from .model import Endpoint, Process, Socket, netns_of
from .snapshots import Snapshot
from .ssview import is_listening

__all__ = ["EPHEMERAL_PORTS", "ROLE_FIELDS", "address_class", "ephemeral_ports", "role_view"]

# Linux's default ip_local_port_range (net.ipv4.ip_local_port_range): the ports
# the kernel hands out to sockets bound to port 0.
EPHEMERAL_PORTS = (32768, 60999)
# What a role comparison compares of two listeners alike in every other way.
ROLE_FIELDS = ("programs",)


def address_class(address: str, v6only: bool | None = None) -> str:
    """``loopback`` (127.0.0.0/8, ::1), ``wildcard`` (0.0.0.0, ::), ``wildcard-v6only``
    (``::`` with IPV6_V6ONLY: ss's ``[::]``, which takes no IPv4) or ``specific``.

    ``::`` whose v6only is unknown (None: read from /proc) is ``wildcard``, as ss
    writes such a socket ``*``.

    >>> address_class("127.0.0.53"), address_class("::"), address_class("10.0.0.5")
    ('loopback', 'wildcard', 'specific')
    >>> address_class("::", v6only=True)
    'wildcard-v6only'
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "specific"
    if ip.is_unspecified:
        return "wildcard-v6only" if v6only and ip.version == 6 else "wildcard"
    if ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip).is_loopback):
        return "loopback"
    return "specific"


# protocol, family, type, address class, port, device, namespace's inode (None: one namespace)
RoleKey = tuple[str, str, str, str, int, str | None, int | None]


def _role_key(sock: Socket) -> RoleKey:
    port = sock.local.port if isinstance(sock.local.port, int) else 0
    address = sock.local.address if isinstance(sock.local.address, str) else ""
    kind = address_class(address, sock.v6only)
    return (sock.proto, sock.family, sock.type, kind, port, sock.interface, netns_of(sock))


def ephemeral_ports(snapshot: Snapshot) -> tuple[int, int]:
    """The ports the kernel hands out where ``snapshot`` was taken: its header's
    ``local_ports`` (ip_local_port_range, read when taken), else Linux's default."""
    recorded = snapshot.header.local_ports
    return EPHEMERAL_PORTS if recorded is None else (recorded[0], recorded[1])


def role_view(snapshot: Snapshot, ephemeral: tuple[int, int] | None = None) -> Snapshot:
    """``snapshot`` as its role: one record a listener kind, owners kept by name (see the module).

    Each record is one program's (its first process, lowest pid, so a report still
    says which it was) or a listener no owner is known of (no processes).
    ``ephemeral`` is the range of UDP ports left out (inclusive; default
    :func:`ephemeral_ports`). Interfaces and routes are left out (None: not
    compared); a record of a snapshot of every namespace keeps its namespace.
    """
    low, high = ephemeral_ports(snapshot) if ephemeral is None else ephemeral
    if snapshot.sockets is None:
        return dataclasses.replace(snapshot, interfaces=None, routes=None)
    owners: dict[tuple[RoleKey, str | None], Process | None] = {}
    for sock in snapshot.sockets:
        if sock.proto == "unix" or not is_listening(sock):
            continue
        key = _role_key(sock)
        if sock.proto == "udp" and low <= key[4] <= high:
            continue
        if not sock.processes:
            owners.setdefault((key, None), None)
        for process in sorted(sock.processes):
            owners.setdefault((key, process.name), process)
    sockets = tuple(
        Socket(
            proto,  # type: ignore[arg-type]
            family,  # type: ignore[arg-type]
            sock_type,  # type: ignore[arg-type]
            "LISTEN" if proto == "tcp" else "CLOSE",
            Endpoint(kind, port),
            None,
            0,
            None,
            None,
            None,
            () if process is None else (process,),
            interface,
            netns=msgspec.UNSET if netns is None else netns,
        )
        for ((proto, family, sock_type, kind, port, interface, netns), _), process in owners.items()
    )
    return dataclasses.replace(snapshot, sockets=sockets, interfaces=None, routes=None)
