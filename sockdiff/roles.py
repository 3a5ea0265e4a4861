"""What a role exposes: a snapshot reduced to the listeners every host of one role should have.

One golden snapshot checks every host of a role only when one machine's accidents
are left out. :func:`role_view` keeps each inet listener (ss -l: TCP LISTEN, UDP
and raw sockets waiting unconnected) as its protocol, family, address class
(``loopback``, ``wildcard`` or ``specific``), port and the device it is bound to,
with the names of the programs holding it; pids, descriptors, inodes, queues,
owners' uids, connections, UNIX sockets (their names often carry a pid or a
random part) and UDP sockets on an ephemeral port (a client's unconnected
socket, which ss -l lists) are left out. A TCP listener is kept on any port:
one on a port the kernel handed out is still a door open on the host (`--ignore
'sport ge :32768'` leaves such ones out where a role's servers pick random
ports). Listeners alike in all of that become one.

Both sides of a role comparison go through it; the differ then compares the
views as it compares any snapshots, owners by program name (the ``programs``
field), so a port served by another program is a change. Pure: records in,
records out.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from .model import Endpoint, Process, Socket
from .snapshots import Snapshot
from .ssview import is_listening

__all__ = ["EPHEMERAL_PORTS", "ROLE_FIELDS", "address_class", "role_view"]

# Linux's default ip_local_port_range (net.ipv4.ip_local_port_range): the ports
# the kernel hands out to sockets bound to port 0.
EPHEMERAL_PORTS = (32768, 60999)
# What a role comparison compares of two listeners alike in every other way.
ROLE_FIELDS = ("programs",)


def address_class(address: str) -> str:
    """``loopback`` (127.0.0.0/8, ::1), ``wildcard`` (0.0.0.0, ::) or ``specific``.

    >>> address_class("127.0.0.53"), address_class("::"), address_class("10.0.0.5")
    ('loopback', 'wildcard', 'specific')
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "specific"
    if ip.is_unspecified:
        return "wildcard"
    if ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip).is_loopback):
        return "loopback"
    return "specific"


def _role_key(sock: Socket) -> tuple[str, str, str, str, int, str | None]:
    port = sock.local.port if isinstance(sock.local.port, int) else 0
    address = sock.local.address if isinstance(sock.local.address, str) else ""
    return (sock.proto, sock.family, sock.type, address_class(address), port, sock.interface)


def role_view(snapshot: Snapshot, ephemeral: tuple[int, int] = EPHEMERAL_PORTS) -> Snapshot:
    """``snapshot`` as its role: one record a listener kind, owners kept by name (see the module).

    Each record keeps one owner a program name, the first (lowest pid) that
    holds such a listener, so a report still says which process it was.
    ``ephemeral`` is the range of UDP ports left out (inclusive). Interfaces and
    routes are kept as they are.
    """
    if snapshot.sockets is None:
        return snapshot
    low, high = ephemeral
    owners: dict[tuple[str, str, str, str, int, str | None], dict[str, Process]] = {}
    for sock in snapshot.sockets:
        if sock.proto == "unix" or not is_listening(sock):
            continue
        key = _role_key(sock)
        if sock.proto == "udp" and low <= key[4] <= high:
            continue
        names = owners.setdefault(key, {})
        for process in sorted(sock.processes):
            names.setdefault(process.name, process)
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
            tuple(sorted(names.values(), key=lambda p: p.name)),
            interface,
        )
        for (proto, family, sock_type, kind, port, interface), names in owners.items()
    )
    return dataclasses.replace(snapshot, sockets=sockets)
