"""The kernel's change notifications that ``watch`` listens to between its polls.

Two netlink multicast families, both open to any user (no root needed to listen):

- sock_diag's socket-destroy groups (``ss -E``): one ``inet_diag_msg`` each time a
  TCP or UDP socket of the namespace is freed, decoded by the netlink backend's
  own decoder. The kernel fills in the addresses, ports, state and queues, and
  leaves the uid and inode zero (the socket has no file by then): the records say
  ``uid`` null, ``inode`` 0.
- rtnetlink's link, address and route groups (``ip monitor``): only *that* a
  section changed is taken from them; watch then reads the section again, which
  is simpler and exact (an IPv4 route removed with its link sends no message).

A receive buffer that overflows (ENOBUFS) loses messages the kernel will not
send again: :meth:`Listener.wait` reports it as an :class:`Overrun`, never hides it.
A datagram that does not parse (netlink framing's one policy: see
:mod:`.framing`) ends the listening with :class:`BackendUnavailable`, as any
other receive error does.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from ... import netns as netns_module
from ...errors import BackendUnavailable, NetnsError, SockdiffError
from ...model import Socket
from . import sockets as netlink
from .framing import NETLINK_ROUTE, NETLINK_SOCK_DIAG, DumpFailed, messages, open_socket

__all__ = [
    "DEFAULT_BUFFER",
    "DESTROY_GROUPS",
    "MAX_BUFFER",
    "MIN_BUFFER",
    "RESERVE",
    "ROUTE_GROUPS",
    "Destroyed",
    "Listener",
    "Overrun",
    "SectionChanged",
    "decode_destroyed",
    "descriptor_limit",
]


# include/uapi/linux/sock_diag.h, enum sknetlink_groups: what ss -E joins.
SKNLGRP_INET_TCP_DESTROY = 1
SKNLGRP_INET_UDP_DESTROY = 2
SKNLGRP_INET6_TCP_DESTROY = 3
SKNLGRP_INET6_UDP_DESTROY = 4
DESTROY_GROUPS = {
    "tcp": (SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY),
    "udp": (SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_UDP_DESTROY),
}

# include/uapi/linux/rtnetlink.h, enum rtnetlink_groups: what ip monitor link,
# address and route join, and the sections each one changes.
RTNLGRP_LINK = 1
RTNLGRP_IPV4_IFADDR = 5
RTNLGRP_IPV4_ROUTE = 7
RTNLGRP_IPV6_IFADDR = 9
RTNLGRP_IPV6_ROUTE = 11
ROUTE_GROUPS = (
    RTNLGRP_LINK,
    RTNLGRP_IPV4_IFADDR,
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_ROUTE,
)
# rtnetlink message types (RTM_NEWLINK ... RTM_DELROUTE): which sections they touch.
# A link going down also takes its IPv4 routes away without a word, so a link
# message marks routes too.
_RTM_SECTIONS = {
    16: ("interfaces", "routes"),  # RTM_NEWLINK
    17: ("interfaces", "routes"),  # RTM_DELLINK
    20: ("interfaces",),  # RTM_NEWADDR
    21: ("interfaces",),  # RTM_DELADDR
    24: ("routes",),  # RTM_NEWROUTE
    25: ("routes",),  # RTM_DELROUTE
}

_HERE = "/proc/thread-self/ns/net"
#: Descriptors :meth:`Listener.room` leaves free for everything else: the polls' reads
#: (a namespace entered, its dump sockets, /proc files), the owners' scans, the output.
RESERVE = 32
#: Receive buffer asked for each event socket: ~2,500 destroy messages of a burst.
DEFAULT_BUFFER = 1 << 20
#: The receive buffers one may ask for: SO_RCVBUF takes a C int (the kernel caps what it gives).
MIN_BUFFER = 1024
MAX_BUFFER = (1 << 31) - 1
_RECV_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Destroyed:
    """A socket the kernel freed (a sock_diag destroy message)."""

    socket: Socket


@dataclass(frozen=True, slots=True)
class SectionChanged:
    """rtnetlink says these sections changed: read them again."""

    sections: frozenset[str]


@dataclass(frozen=True, slots=True)
class Overrun:
    """The receive buffer of ``source`` overflowed: some of its events are lost."""

    source: str  # "socket events" or "interface and route events"


Event = Destroyed | SectionChanged | Overrun


def decode_destroyed(
    buffer: bytes | bytearray, size: int, proto: str, interfaces: Mapping[int, str] | None = None
) -> list[Socket]:
    """The sockets in one datagram of a ``proto`` destroy group.

    The kernel leaves the uid and inode zero for a socket being freed: the
    uid becomes unknown (None), the inode stays 0 (no inode, as for TIME_WAIT).
    Its queues, read while it is torn down, mean nothing (a UDP socket's send
    queue reads -1): unknown too. ``interfaces`` names the devices the sockets
    are bound to: those of the namespace the event comes from (default: the
    calling thread's).
    """
    found = netlink.decode_inet(
        (
            (buffer, offset, end)
            for kind, _flags, offset, end in messages(buffer, size)
            if kind == netlink.SOCK_DIAG_BY_FAMILY
        ),
        proto,
        {},
        set(),
        interfaces,
    )
    return [msgspec.structs.replace(sock, uid=None, recv_q=None, send_q=None) for sock in found]


class _DevicesIn(dict[int, str]):
    """Interface index -> name in the namespace of the socket ``sock``, looked up from inside
    on first use.

    A destroy event names its socket's device by index, which means something
    only in the namespace the socket lived in, not in ours. The event socket
    says which namespace it belongs to (SIOCGSKNS), so none is held open
    between events: a descriptor of a namespace would keep it alive, and in
    sight, after it was deleted.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock

    def __missing__(self, index: int) -> str:
        name = f"if{index}"  # the namespace cannot be entered: no device to name
        fileno = self._sock.fileno()
        namespace = netns_module.socket_netns(os.getpid(), fileno, os.fstat(fileno).st_ino)
        if namespace is not None:
            try:
                name = netns_module.apart(lambda: _device_inside(f"/proc/self/fd/{namespace}", index))
            except SockdiffError:
                pass
            finally:
                os.close(namespace)
        self[index] = name
        return name


def _device_inside(netns: str, index: int) -> str:
    with netns_module.entered(netns):
        return netlink.InterfaceNames()[index]


def descriptor_limit() -> int | None:
    """The number of descriptors this process may have open (soft RLIMIT_NOFILE; None: no limit)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


@dataclass(slots=True)
class _Source:
    """One event socket: what it hears (a protocol, or "route"), and in which namespace
    (``netns``: the inode its records carry; None: a one-namespace watch's, untagged)."""

    sock: socket.socket
    what: str
    netns: int | None
    elsewhere: bool  # in another namespace than ours: its devices are named from inside

    def devices(self) -> Mapping[int, str]:
        return _DevicesIn(self.sock) if self.elsewhere else netlink.InterfaceNames()


def _open(protocol: int, groups: Sequence[int], buffer_size: int) -> socket.socket:
    # Root may go past net.core.rmem_max; anyone else gets at most that.
    return open_socket(protocol, buffer_size=buffer_size, groups=groups, force=True)


class Listener:
    """Event sockets in one network namespace or several, read together.

    ``protos``: the protocols whose destroyed sockets are wanted (tcp and udp
    have destroy groups; the others are ignored). ``routes``: also listen to
    rtnetlink's link, address and route groups. ``netns``: the namespace (a name
    under /run/netns, or a path; None: ours). ``buffer_size``: each socket's
    receive buffer (SO_RCVBUF), in bytes. ``inode``: given, the destroyed
    sockets carry it as their ``netns``, and :meth:`join` adds namespaces
    (``watch --all-netns``).
    """

    def __init__(
        self,
        protos: Sequence[str],
        *,
        routes: bool = False,
        netns: str | None = None,
        buffer_size: int = DEFAULT_BUFFER,
        inode: int | None = None,
    ) -> None:
        self._sources: dict[int, _Source] = {}  # fd -> its source
        self._inodes: set[int | None] = set()  # the namespaces listened to (None: a one-namespace watch's)
        self._wanted = tuple(protos)
        self._routes = routes
        self._buffer_size = buffer_size
        self._buffer = bytearray(_RECV_SIZE)
        self._poller = select.poll()
        try:
            self._open_in(netns, inode)
        except BaseException:
            self.close()
            raise

    def _open_in(self, netns: str | None, inode: int | None) -> None:
        """Open the event sockets in ``netns``; on failure, none stays open there."""

        def open_here() -> None:
            with netns_module.entered(netns):
                if netns is not None and inode is not None and os.stat(_HERE).st_ino != inode:
                    # /proc/PID/ns/net of a pid that exited and was handed out again.
                    raise NetnsError(f"{netns} is no longer network namespace {inode}")
                # A netlink socket belongs to the namespace of the thread that made it.
                for proto, groups in DESTROY_GROUPS.items():
                    if proto in self._wanted:
                        sock = _open(NETLINK_SOCK_DIAG, groups, self._buffer_size)
                        self._add(_Source(sock, proto, inode, netns is not None))
                if self._routes:
                    sock = _open(NETLINK_ROUTE, ROUTE_GROUPS, self._buffer_size)
                    self._add(_Source(sock, "route", inode, netns is not None))

        try:
            if netns is None:
                open_here()
            else:  # another namespace is entered on a thread of its own, never the main thread
                netns_module.apart(open_here)
        except OSError as err:
            self.leave(inode)
            raise BackendUnavailable(f"cannot listen to kernel events: {err.strerror}") from err
        except BaseException:
            self.leave(inode)
            raise
        self._inodes.add(inode)

    def join(self, path: str, inode: int) -> bool:
        """Listen in the namespace at ``path`` too, its records tagged ``inode``; False when
        it cannot be entered (gone since it was found): the rest goes on listening."""
        if inode in self._inodes:
            return True
        try:
            self._open_in(path, inode)
        except SockdiffError:
            return False
        return True

    def room(self) -> int:
        """How many more namespaces :meth:`join` may listen in without leaving fewer than
        :data:`RESERVE` descriptors below the process's limit (``RLIMIT_NOFILE``)."""
        limit = descriptor_limit()
        if limit is None:
            return 1 << 30
        each = sum(proto in self._wanted for proto in DESTROY_GROUPS) + self._routes
        in_use = len(os.listdir("/proc/self/fd"))
        return max(0, limit - RESERVE - in_use) // max(each, 1)

    def leave(self, inode: int | None) -> None:
        """Stop listening in namespace ``inode`` (gone)."""
        self._inodes.discard(inode)
        for fd, source in list(self._sources.items()):
            if source.netns == inode:
                self._poller.unregister(fd)
                source.sock.close()
                del self._sources[fd]

    @property
    def namespaces(self) -> frozenset[int]:
        """The inodes of the namespaces listened to (tagged ones only)."""
        return frozenset(inode for inode in self._inodes if inode is not None)

    def _add(self, source: _Source) -> None:
        self._sources[source.sock.fileno()] = source
        self._poller.register(source.sock.fileno(), select.POLLIN)

    @property
    def routes(self) -> bool:
        """Whether rtnetlink's link, address and route groups are heard."""
        return any(source.what == "route" for source in self._sources.values())

    @property
    def protos(self) -> tuple[str, ...]:
        """The protocols whose destroyed sockets are heard."""
        return tuple(dict.fromkeys(s.what for s in self._sources.values() if s.what != "route"))

    def wait(self, timeout: float) -> list[Event]:
        """The events that arrive within ``timeout`` seconds (all that are pending, if any are).

        Returns as soon as there is something, or empty when the time is up.
        """
        if not self._sources:
            if timeout > 0:
                select.select([], [], [], timeout)
            return []
        ready = self._poller.poll(max(0, round(timeout * 1000)))
        events: list[Event] = []
        for fd, _mask in ready:
            self._drain(self._sources[fd], events)
        return events

    def _drain(self, source: _Source, events: list[Event]) -> None:
        buffer = self._buffer
        sock, what = source.sock, source.what
        changed: set[str] = set()
        devices: Mapping[int, str] | None = None
        while True:
            try:
                size = sock.recv_into(buffer)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno != errno.ENOBUFS:
                    raise BackendUnavailable(f"kernel events: {os.strerror(err.errno or 0)}") from err
                events.append(Overrun("interface and route events" if what == "route" else "socket events"))
                continue  # the socket goes on working after reporting the loss once
            try:
                if what == "route":
                    for kind, _flags, _offset, _end in messages(buffer, size):
                        changed.update(_RTM_SECTIONS.get(kind, ()))
                    continue
                if devices is None:
                    devices = source.devices()
                freed = decode_destroyed(buffer, size, what, devices)
            except DumpFailed as failure:  # a datagram that does not parse: what it held is lost
                raise BackendUnavailable(f"kernel events: {os.strerror(failure.code)}") from failure
            if source.netns is not None:
                freed = [msgspec.structs.replace(freed_sock, netns=source.netns) for freed_sock in freed]
            events += (Destroyed(sock) for sock in freed)
        if changed:
            events.append(SectionChanged(frozenset(changed)))

    def close(self) -> None:
        for source in self._sources.values():
            source.sock.close()
        self._sources = {}
        self._inodes = set()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
