"""Interfaces from rtnetlink: RTM_GETLINK and RTM_GETADDR dumps.

pyroute2 builds the requests (its ``rtgenmsg`` and ``ifaddrmsg``,
imported without pyroute2's package ``__init__``: see :mod:`sockdiff._pyroute2`);
the replies are decoded here with :mod:`struct`, as the sock_diag backend does,
reading only the attributes the records hold: pyroute2's message objects parse
every attribute of every message (a link message carries dozens) and would cost
more than the dump itself. Decoding the bytes also keeps an interface name that
is not UTF-8 exactly as /proc shows it.

The socket is made in the calling thread, so everything read is the network
namespace of that thread (sockdiff enters namespaces with setns(2) on its own
thread: :mod:`sockdiff.netns`).
"""

from __future__ import annotations

import functools
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from socket import AF_INET, AF_INET6
from typing import TypeVar

from ...errors import BackendUnavailable
from ...model import Counters, Interface
from ..netnames import (
    OPERSTATES,
    hardware_address,
    interface_name,
    make_counters,
    make_interface,
)
from .framing import (
    ATTEMPTS,
    NETLINK_ROUTE,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    U32,
    Dump,
    DumpFailed,
    Messages,
    attributes,
    open_dump_socket,
)

__all__ = [
    "Link",
    "address_request",
    "build_interfaces",
    "build_request",
    "decode_addresses",
    "decode_links",
    "dump",
    "link_request",
    "open_socket",
    "read_interfaces",
]


RTM_GETLINK = 18
RTM_GETADDR = 22

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_OPERSTATE = 16
IFLA_STATS64 = 23
IFA_ADDRESS = 1
IFA_LOCAL = 2

_LINK = struct.Struct("=16xBxHiII")  # nlmsghdr + struct ifinfomsg
_ADDR = struct.Struct("=16xBBBBi")  # nlmsghdr + struct ifaddrmsg
# The head of struct rtnl_link_stats64: rx/tx packets, bytes, errors, dropped,
# multicast, collisions, six rx error kinds (length, over, crc, frame, fifo,
# missed), then tx aborted, carrier and fifo errors.
_STATS64 = struct.Struct("=19Q")
_LINK_SIZE = 32
_ADDR_SIZE = 24


def build_request(module: str, message: str, fields: Mapping[str, int], kind: int, seq: int) -> bytes:
    """A dump request of ``kind``: pyroute2's ``message`` from ``module`` with ``fields`` set."""
    from ..._pyroute2 import module as pyroute2_module

    request = getattr(pyroute2_module(module), message)()
    request["header"]["type"] = kind
    request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
    request["header"]["sequence_number"] = seq
    for name, value in fields.items():
        request[name] = value
    request.encode()
    return bytes(request.data)


def link_request(seq: int) -> bytes:
    """A dump request for every link (no VF lists: RTEXT_FILTER_VF is not asked for).

    Its body is the one-byte struct rtgenmsg the kernel takes for a link dump
    (rtnl_dump_ifinfo), not a struct ifinfomsg: pyroute2's ifinfmsg module imports
    a plugin for every link kind (3-14 ms), its rtgenmsg next to nothing.
    """
    return build_request("netlink.rtnl.rtgenmsg", "rtgenmsg", {"family": 0}, RTM_GETLINK, seq)


def address_request(family: int, seq: int) -> bytes:
    """A dump request for every address of one family."""
    return build_request("netlink.rtnl.ifaddrmsg", "ifaddrmsg", {"family": family}, RTM_GETADDR, seq)


def _counters(buffer: bytes | bytearray, start: int, end: int) -> Counters | None:
    if end - start < _STATS64.size:
        return None
    (
        rx_packets,
        tx_packets,
        rx_bytes,
        tx_bytes,
        rx_errors,
        tx_errors,
        rx_dropped,
        tx_dropped,
        _multicast,
        _collisions,
        _rx_length,
        _rx_over,
        _rx_crc,
        _rx_frame,
        rx_fifo,
        rx_missed,
        _tx_aborted,
        _tx_carrier,
        tx_fifo,
    ) = _STATS64.unpack_from(buffer, start)
    # /proc/net/dev's "drop" (and netstat -i's RX-DRP) adds the missed to the dropped.
    return make_counters(
        rx_bytes,
        rx_packets,
        rx_errors,
        rx_dropped + rx_missed,
        rx_fifo,
        tx_bytes,
        tx_packets,
        tx_errors,
        tx_dropped,
        tx_fifo,
    )


class Link:
    """What RTM_NEWLINK says of one interface, before its addresses are known."""

    __slots__ = ("counters", "flags", "index", "mac", "mtu", "name", "operstate")

    def __init__(
        self,
        index: int,
        name: str,
        flags: int,
        operstate: str | None,
        mtu: int | None,
        mac: str | None,
        counters: Counters | None,
    ) -> None:
        self.index = index
        self.name = name
        self.flags = flags
        self.operstate = operstate
        self.mtu = mtu
        self.mac = mac
        self.counters = counters


def decode_links(messages: Messages) -> list[Link]:
    """The links in RTM_NEWLINK replies, in the kernel's order (by index)."""
    links = []
    for buffer, offset, end in messages:
        _family, arphrd, index, flags, _change = _LINK.unpack_from(buffer, offset)
        name = ""
        operstate = mtu = mac = counters = None
        for kind, start, stop in attributes(buffer, offset + _LINK_SIZE, end):
            if kind == IFLA_IFNAME:
                name = interface_name(bytes(buffer[start:stop]))
            elif kind == IFLA_MTU:
                mtu = U32.unpack_from(buffer, start)[0]
            elif kind == IFLA_OPERSTATE:
                number = buffer[start]
                operstate = OPERSTATES[number] if number < len(OPERSTATES) else str(number)
            elif kind == IFLA_ADDRESS:
                mac = hardware_address(arphrd, bytes(buffer[start:stop]))
            elif kind == IFLA_STATS64:
                counters = _counters(buffer, start, stop)
        links.append(Link(index, name, flags, operstate, mtu, mac, counters))
    return links


def decode_addresses(messages: Messages) -> dict[int, list[str]]:
    """Interface index -> its addresses as ``10.0.0.1/24``, from RTM_NEWADDR replies.

    An address is its IFA_LOCAL when it has one (a point-to-point address's
    IFA_ADDRESS is the peer's), as ``ip addr`` and SIOCGIFCONF show it.
    """
    found: dict[int, list[str]] = {}
    for buffer, offset, end in messages:
        family, prefix_length, _flags, _scope, index = _ADDR.unpack_from(buffer, offset)
        if family not in (AF_INET, AF_INET6):
            continue
        local = address = None
        for kind, start, stop in attributes(buffer, offset + _ADDR_SIZE, end):
            if kind == IFA_LOCAL:
                local = bytes(buffer[start:stop])
            elif kind == IFA_ADDRESS:
                address = bytes(buffer[start:stop])
        packed = local or address
        if packed is not None:
            found.setdefault(index, []).append(f"{socket.inet_ntop(family, packed)}/{prefix_length}")
    return found


def open_socket() -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace."""
    return open_dump_socket(NETLINK_ROUTE)


T = TypeVar("T")


def dump(
    sock: socket.socket, what: str, request: Callable[[int], bytes], decode: Callable[[Messages], T]
) -> T:
    """One dump, decoded; redone while the kernel flags it NLM_F_DUMP_INTR (then kept as is)."""
    for attempt in range(1, ATTEMPTS + 1):
        replies = Dump.request(sock, request(attempt))
        try:
            result = decode(replies)
        except DumpFailed as failure:
            raise BackendUnavailable(
                f"rtnetlink dump of {what} failed: {os.strerror(failure.code)}"
            ) from failure
        if not replies.interrupted:
            break
    return result


def build_interfaces(links: Iterable[Link], addresses: Mapping[int, Iterable[str]]) -> list[Interface]:
    """Interface records from decoded links and their addresses (index -> texts)."""
    return [
        make_interface(
            link.name,
            link.index,
            link.flags,
            link.operstate,
            link.mtu,
            link.mac,
            addresses.get(link.index, ()),
            link.counters,
        )
        for link in links
    ]


def read_interfaces() -> list[Interface]:
    """Every interface of the calling thread's namespace, with its addresses and counters."""
    with open_socket() as sock:
        links = dump(sock, "links", link_request, decode_links)
        addresses: dict[int, list[str]] = {}
        for family in (AF_INET, AF_INET6):
            found = dump(sock, "addresses", functools.partial(address_request, family), decode_addresses)
            for index, texts in found.items():
                addresses.setdefault(index, []).extend(texts)
    return build_interfaces(links, addresses)
