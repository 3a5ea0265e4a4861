"""Interfaces and routes from rtnetlink: RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE dumps.

pyroute2 builds the requests (its ``rtgenmsg``, ``ifaddrmsg`` and ``rtmsg``,
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

import errno
import functools
import os
import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from socket import AF_INET, AF_INET6
from typing import TypeVar

from ...errors import BackendUnavailable
from ...model import Counters, Interface, Nexthop, Route
from ..netnames import (
    OPERSTATES,
    ROUTE_TYPES,
    hardware_address,
    interface_name,
    make_counters,
    make_interface,
    make_route,
    protocol_name,
    scope_name,
)
from .framing import (
    ATTEMPTS,
    NETLINK_ROUTE,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    Dump,
    DumpFailed,
    Messages,
    align,
    attributes,
    open_dump_socket,
)

__all__ = [
    "Link",
    "address_request",
    "build_interfaces",
    "decode_addresses",
    "decode_links",
    "decode_routes",
    "link_request",
    "open_socket",
    "read_interfaces",
    "read_routes",
    "route_request",
]


RTM_GETLINK = 18
RTM_GETADDR = 22
RTM_GETROUTE = 26
RTM_F_CLONED = 0x200

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_OPERSTATE = 16
IFLA_STATS64 = 23
IFA_ADDRESS = 1
IFA_LOCAL = 2
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_METRICS = 8
RTA_MULTIPATH = 9
RTA_TABLE = 15
RTA_VIA = 18
RTAX_WINDOW = 3
RTAX_RTT = 4
RTAX_ADVMSS = 8

_LINK = struct.Struct("=16xBxHiII")  # nlmsghdr + struct ifinfomsg
_ADDR = struct.Struct("=16xBBBBi")  # nlmsghdr + struct ifaddrmsg
_ROUTE = struct.Struct("=16xBBBBBBBBI")  # nlmsghdr + struct rtmsg
_NEXTHOP = struct.Struct("=HBBi")  # struct rtnexthop
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
# The head of struct rtnl_link_stats64: rx/tx packets, bytes, errors, dropped,
# multicast, collisions, six rx error kinds (length, over, crc, frame, fifo,
# missed), then tx aborted, carrier and fifo errors.
_STATS64 = struct.Struct("=19Q")
_LINK_SIZE = 32
_ADDR_SIZE = 24
_ROUTE_SIZE = 28


def _request(module: str, message: str, fields: Mapping[str, int], kind: int, seq: int) -> bytes:
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
    return _request("netlink.rtnl.rtgenmsg", "rtgenmsg", {"family": 0}, RTM_GETLINK, seq)


def address_request(family: int, seq: int) -> bytes:
    """A dump request for every address of one family."""
    return _request("netlink.rtnl.ifaddrmsg", "ifaddrmsg", {"family": family}, RTM_GETADDR, seq)


def route_request(family: int, seq: int) -> bytes:
    """A dump request for the routes of every table of one family.

    Without RTM_F_CLONED in the request the kernel leaves IPv6's cached routes
    (route exceptions: PMTU, redirects) out, as ``ip route`` does and as
    /proc/net/ipv6_route always does, so both backends report the routing tables
    only.
    """
    return _request("netlink.rtnl.rtmsg", "rtmsg", {"family": family}, RTM_GETROUTE, seq)


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
                mtu = _U32.unpack_from(buffer, start)[0]
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


def _gateway(family: int, buffer: bytes | bytearray, kind: int, start: int, stop: int) -> str | None:
    if kind == RTA_GATEWAY:
        return socket.inet_ntop(family, bytes(buffer[start:stop]))
    # RTA_VIA: a gateway of another family (an IPv4 route through an IPv6 neighbour).
    via_family = _U16.unpack_from(buffer, start)[0]
    return socket.inet_ntop(via_family, bytes(buffer[start + 2 : stop]))


def _nexthops(
    family: int, buffer: bytes | bytearray, start: int, end: int
) -> list[tuple[int, str | None, int]]:
    """(ifindex, gateway, weight) of each struct rtnexthop in RTA_MULTIPATH."""
    hops = []
    while start + _NEXTHOP.size <= end:
        length, _flags, weight_less_one, ifindex = _NEXTHOP.unpack_from(buffer, start)
        if length < _NEXTHOP.size or start + length > end:
            raise DumpFailed(errno.EBADMSG)  # a next hop past its attribute
        gateway = None
        for kind, payload, stop in attributes(buffer, start + _NEXTHOP.size, start + length):
            if kind in (RTA_GATEWAY, RTA_VIA):
                gateway = _gateway(family, buffer, kind, payload, stop)
        hops.append((ifindex, gateway, weight_less_one + 1))
        start += align(length)
    return hops


def decode_routes(messages: Messages, names: Mapping[int, str]) -> list[Route]:
    """The routes in RTM_NEWROUTE replies, in the kernel's order.

    ``names`` maps interface indexes to names. The table is RTA_TABLE (rtm_table
    holds only 8 bits); a route without RTA_PRIORITY has metric 0, as ip shows
    it. An IPv4 multipath route is one record: its first next hop (all that
    /proc/net/route shows of it) as gateway and dev, every hop in ``nexthops``.
    IPv6 gets one record a next hop, as the kernel keeps them as separate routes
    (so does /proc/net/ipv6_route). Cached routes
    (RTM_F_CLONED) are left out.
    """
    routes = []
    unpack_route = _ROUTE.unpack_from
    unpack_u32 = _U32.unpack_from
    # Few distinct gateways: each written out once (a router holds ~1M routes).
    gateways: dict[bytes, str] = {}
    for buffer, offset, end in messages:
        family, dst_len, _src_len, _tos, table, protocol, scope, kind, flags = unpack_route(buffer, offset)
        if family not in (AF_INET, AF_INET6) or flags & RTM_F_CLONED:
            continue
        destination = bytes(16 if family == AF_INET6 else 4)
        gateway = None
        oif = metric = advmss = window = rtt = 0
        hops: list[tuple[int, str | None, int]] = []
        for attr, payload, stop in attributes(buffer, offset + _ROUTE_SIZE, end):
            if attr == RTA_DST:
                destination = bytes(buffer[payload:stop])
            elif attr == RTA_OIF:
                oif = unpack_u32(buffer, payload)[0]
            elif attr == RTA_GATEWAY:
                packed = bytes(buffer[payload:stop])
                gateway = gateways.get(packed)
                if gateway is None:
                    gateway = gateways[packed] = socket.inet_ntop(family, packed)
            elif attr == RTA_VIA:
                gateway = _gateway(family, buffer, attr, payload, stop)
            elif attr == RTA_PRIORITY:
                metric = unpack_u32(buffer, payload)[0]
            elif attr == RTA_TABLE:
                table = unpack_u32(buffer, payload)[0]
            elif attr == RTA_MULTIPATH:
                hops = _nexthops(family, buffer, payload, stop)
            elif attr == RTA_METRICS:
                for metric_kind, value_start, _ in attributes(buffer, payload, stop):
                    if metric_kind == RTAX_ADVMSS:
                        advmss = unpack_u32(buffer, value_start)[0]
                    elif metric_kind == RTAX_WINDOW:
                        window = unpack_u32(buffer, value_start)[0]
                    elif metric_kind == RTAX_RTT:
                        rtt = unpack_u32(buffer, value_start)[0]
        nexthops = None
        if not hops:
            hops = [(oif, gateway, 1)]
        elif family == AF_INET:
            nexthops = tuple(
                Nexthop(via, names.get(index) if index else None, weight) for index, via, weight in hops
            )
            hops = hops[:1]
        type_name = ROUTE_TYPES[kind] if kind < len(ROUTE_TYPES) else str(kind)
        protocol_text = protocol_name(protocol)
        scope_text = scope_name(scope)
        for ifindex, hop_gateway, _weight in hops:
            routes.append(
                make_route(
                    family,
                    table,
                    type_name,
                    destination,
                    dst_len,
                    hop_gateway,
                    names.get(ifindex) if ifindex else None,
                    metric,
                    protocol_text,
                    scope_text,
                    # As /proc/net/route and netstat -rn show them (fib_route_seq_show).
                    advmss + 40 if advmss else 0,
                    window,
                    rtt >> 3,
                    nexthops,
                )
            )
    return routes


def open_socket() -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace."""
    return open_dump_socket(NETLINK_ROUTE)


T = TypeVar("T")


def _dump(
    sock: socket.socket, what: str, request: Callable[[int], bytes], decode: Callable[[Messages], T]
) -> T:
    """One dump, decoded; redone while the kernel flags it NLM_F_DUMP_INTR (then kept as is)."""
    for attempt in range(1, ATTEMPTS + 1):
        dump = Dump.request(sock, request(attempt))
        try:
            result = decode(dump)
        except DumpFailed as failure:
            raise BackendUnavailable(
                f"rtnetlink dump of {what} failed: {os.strerror(failure.code)}"
            ) from failure
        if not dump.interrupted:
            break
    return result


def _names(sock: socket.socket) -> dict[int, str]:
    return {link.index: link.name for link in _dump(sock, "links", link_request, decode_links)}


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
        links = _dump(sock, "links", link_request, decode_links)
        addresses: dict[int, list[str]] = {}
        for family in (AF_INET, AF_INET6):
            found = _dump(sock, "addresses", functools.partial(address_request, family), decode_addresses)
            for index, texts in found.items():
                addresses.setdefault(index, []).extend(texts)
    return build_interfaces(links, addresses)


def read_routes() -> list[Route]:
    """Every route of every table of the calling thread's namespace, IPv4 then IPv6."""
    with open_socket() as sock:
        names = _names(sock)
        routes: list[Route] = []
        for family in (AF_INET, AF_INET6):
            routes += _dump(
                sock,
                "routes",
                functools.partial(route_request, family),
                functools.partial(decode_routes, names=names),
            )
    return routes
