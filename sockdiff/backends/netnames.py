"""The kernel's numbers for interfaces and routes, and the one place their records are built.

Both backends' interface and route readers (:mod:`.netlink.links`,
:mod:`.netlink.routes`, :mod:`.proc.links`, :mod:`.proc.routes`) name flags,
states, types, scopes and protocols from these tables, and format hardware
addresses and prefixes here, so the two agree value for value.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from ..model import (
    ROUTE_PROTOCOLS,
    ROUTE_SCOPES,
    ROUTE_TYPES,
    RTF_GATEWAY,
    RTF_HOST,
    RTF_REJECT,
    RTF_UP,
    Counters,
    Interface,
    Nexthop,
    Route,
    escape_name,
    nexthop_order,
)

__all__ = [
    "IFF_NAMES",
    "OPERSTATES",
    "ROUTE_PROTOCOLS",
    "ROUTE_SCOPES",
    "ROUTE_TYPES",
    "flag_names",
    "hardware_address",
    "interface_name",
    "make_counters",
    "make_interface",
    "make_route",
    "protocol_name",
    "scope_name",
]

# IFF_* (include/uapi/linux/if.h): the 16 flags of struct ifreq's ifr_flags, which
# SIOCGIFFLAGS, rtnetlink's ifi_flags and netstat -i all carry. rtnetlink also
# reports IFF_LOWER_UP, IFF_DORMANT and IFF_ECHO (bits 16-18); the ioctl's 16-bit
# field cannot hold them, and operstate says the same, so neither backend lists them.
IFF_NAMES: dict[int, str] = {
    0x1: "UP",
    0x2: "BROADCAST",
    0x4: "DEBUG",
    0x8: "LOOPBACK",
    0x10: "POINTOPOINT",
    0x20: "NOTRAILERS",
    0x40: "RUNNING",
    0x80: "NOARP",
    0x100: "PROMISC",
    0x200: "ALLMULTI",
    0x400: "MASTER",
    0x800: "SLAVE",
    0x1000: "MULTICAST",
    0x2000: "PORTSEL",
    0x4000: "AUTOMEDIA",
    0x8000: "DYNAMIC",
}
IFF_MASK = 0xFFFF

# IF_OPER_* (include/uapi/linux/if.h), as ip link and /sys/class/net/*/operstate name them.
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")

# ARPHRD_* (include/uapi/linux/if_arp.h) whose addresses ip link prints as IP
# addresses rather than colon-separated bytes (iproute2's ll_addr_n2a).
_ARPHRD_IPV4_ADDRESSED = frozenset({768, 776, 778})  # TUNNEL, SIT, IPGRE
_ARPHRD_IPV6_ADDRESSED = frozenset({769, 823})  # TUNNEL6, IP6GRE


def flag_names(flags: int) -> tuple[str, ...]:
    """IFF_* names of the 16 classic flags, sorted.

    >>> flag_names(0x1041)
    ('MULTICAST', 'RUNNING', 'UP')
    """
    return tuple(sorted(name for bit, name in IFF_NAMES.items() if flags & bit))


def hardware_address(arphrd: int, raw: bytes) -> str | None:
    """A link-layer address as ``ip link`` prints it; None when the link has none.

    >>> hardware_address(1, bytes.fromhex("fa777f71341c"))
    'fa:77:7f:71:34:1c'
    >>> hardware_address(768, bytes(4))  # an ipip tunnel
    '0.0.0.0'
    >>> hardware_address(0xFFFE, b"") is None  # tun: ARPHRD_NONE, no address
    True
    """
    if not raw:
        return None
    if len(raw) == 4 and arphrd in _ARPHRD_IPV4_ADDRESSED:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16 and arphrd in _ARPHRD_IPV6_ADDRESSED:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return raw.hex(":")


def interface_name(raw: bytes) -> str:
    r"""An interface name as the kernel holds it (bytes, maybe NUL-terminated), as text.

    Bytes that are not UTF-8 are kept as ``\xNN`` and a backslash as ``\\``,
    as for UNIX socket names, so no two names collide.

    >>> interface_name(b"eth0\0")
    'eth0'
    """
    return escape_name(raw)


def protocol_name(number: int) -> str:
    """ip route's name for a route's protocol number.

    >>> protocol_name(2), protocol_name(250)
    ('kernel', '250')
    """
    return ROUTE_PROTOCOLS.get(number, str(number))


def scope_name(number: int) -> str:
    """ip route's name for a route scope.

    >>> scope_name(253)
    'link'
    """
    return ROUTE_SCOPES.get(number, str(number))


def make_counters(
    rx_bytes: int,
    rx_packets: int,
    rx_errors: int,
    rx_drop: int,
    rx_fifo: int,
    tx_bytes: int,
    tx_packets: int,
    tx_errors: int,
    tx_drop: int,
    tx_fifo: int,
) -> Counters:
    """netstat -i's figures, given as /proc/net/dev's columns name them.

    RX-DRP is "drop" (the kernel's dropped plus missed, dev_seq_printf_stats),
    RX-OVR and TX-OVR are the "fifo" errors.
    """
    return Counters(
        rx_packets=rx_packets,
        rx_errors=rx_errors,
        rx_dropped=rx_drop,
        rx_overruns=rx_fifo,
        tx_packets=tx_packets,
        tx_errors=tx_errors,
        tx_dropped=tx_drop,
        tx_overruns=tx_fifo,
        rx_bytes=rx_bytes,
        tx_bytes=tx_bytes,
    )


def make_interface(
    name: str,
    index: int | None,
    flags: int | None,
    operstate: str | None,
    mtu: int | None,
    mac: str | None,
    addresses: Iterable[str],
    counters: Counters | None,
) -> Interface:
    """Build an interface record; both backends come through here.

    ``flags`` is the IFF_* bit field (None: unknown, which lists no flag).
    """
    return Interface(
        name=name,
        index=index,
        flags=() if flags is None else flag_names(flags),
        operstate=operstate,
        mtu=mtu,
        mac=mac,
        addresses=tuple(sorted(addresses)),
        counters=counters,
    )


def make_route(
    family: int,
    table: int,
    route_type: str | None,
    destination: bytes,
    prefix_length: int,
    gateway: str | None,
    dev: str | None,
    metric: int,
    protocol: str | None,
    scope: str | None,
    mss: int | None,
    window: int | None,
    irtt: int | None,
    nexthops: tuple[Nexthop, ...] | None = None,
    flags: int | None = None,
) -> Route:
    """Build a route record (``destination`` packed); both backends come through here.

    The unspecified address as gateway (how /proc writes "none") is no gateway.
    An IPv4 route's ``flags`` (None: made as the kernel makes /proc/net/route's).
    """
    if flags is None and family == socket.AF_INET:
        flags = ipv4_route_flags(route_type, gateway, prefix_length)
    return Route(
        family="inet" if family == socket.AF_INET else "inet6",
        table=table,
        type=route_type,
        destination=f"{socket.inet_ntop(family, destination)}/{prefix_length}",
        gateway=None if gateway in (None, "0.0.0.0", "::") else gateway,
        dev=dev,
        metric=metric,
        protocol=protocol,
        scope=scope,
        mss=mss,
        window=window,
        irtt=irtt,
        nexthops=None if nexthops is None else tuple(sorted(nexthops, key=nexthop_order)),
        flags=flags,
    )


def ipv4_route_flags(route_type: str | None, gateway: str | None, prefix_length: int) -> int:
    """/proc/net/route's flags for an IPv4 route, as fib_flag_trans makes them.

    G when the first next hop's gateway is non-zero read as an IPv4 address: the
    kernel reads the gateway union's first four bytes, an IPv6 gateway's too.

    >>> hex(ipv4_route_flags("unicast", "fe80::1", 16)), hex(ipv4_route_flags("unreachable", None, 32))
    ('0x3', '0x205')
    """
    flags = RTF_UP
    if route_type in ("unreachable", "prohibit"):
        flags |= RTF_REJECT
    if gateway is not None:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in gateway else socket.AF_INET, gateway)
        if any(packed[:4]):
            flags |= RTF_GATEWAY
    if prefix_length == 32:
        flags |= RTF_HOST
    return flags
