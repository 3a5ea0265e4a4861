"""Routes from rtnetlink: RTM_GETROUTE dumps, every table of both families.

pyroute2 builds the request (its ``rtmsg``); the replies are decoded here with
:mod:`struct`, reading only the attributes a :class:`~sockdiff.model.Route`
holds, as :mod:`.links` does for interfaces (its socket, dump and link names
serve here too).
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
from collections.abc import Mapping
from socket import AF_INET, AF_INET6

from ...model import Nexthop, Route
from ..netnames import ROUTE_TYPES, make_route, protocol_name, scope_name
from .framing import U32, DumpFailed, Messages, align, attributes
from .links import build_request, decode_links, dump, link_request, open_socket

__all__ = [
    "decode_routes",
    "read_routes",
    "route_request",
]

RTM_GETROUTE = 26
RTM_F_CLONED = 0x200

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

_ROUTE = struct.Struct("=16xBBBBBBBBI")  # nlmsghdr + struct rtmsg
_NEXTHOP = struct.Struct("=HBBi")  # struct rtnexthop
_U16 = struct.Struct("=H")
_ROUTE_SIZE = 28


def route_request(family: int, seq: int) -> bytes:
    """A dump request for the routes of every table of one family.

    Without RTM_F_CLONED in the request the kernel leaves IPv6's cached routes
    (route exceptions: PMTU, redirects) out, as ``ip route`` does and as
    /proc/net/ipv6_route always does, so both backends report the routing tables
    only.
    """
    return build_request("netlink.rtnl.rtmsg", "rtmsg", {"family": family}, RTM_GETROUTE, seq)


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
    unpack_u32 = U32.unpack_from
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


def _names(sock: socket.socket) -> dict[int, str]:
    return {link.index: link.name for link in dump(sock, "links", link_request, decode_links)}


def read_routes() -> list[Route]:
    """Every route of every table of the calling thread's namespace, IPv4 then IPv6."""
    with open_socket() as sock:
        names = _names(sock)
        routes: list[Route] = []
        for family in (AF_INET, AF_INET6):
            routes += dump(
                sock,
                "routes",
                functools.partial(route_request, family),
                functools.partial(decode_routes, names=names),
            )
    return routes
