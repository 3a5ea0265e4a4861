"""Interfaces the way net-tools reads them: /proc/net, /sys/class/net and ioctls.

The names and counters of /proc/net/dev; index, flags, MTU and hardware address
from the SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFMTU and SIOCGIFHWADDR ioctls; IPv4
addresses from SIOCGIFCONF, each with its own SIOCGIFNETMASK (secondary
addresses included); IPv6 addresses from /proc/net/if_inet6; the operational
state from /sys/class/net.

What /proc cannot know is None: interfaces' operational state, and hardware
addresses longer than the ioctl's 14 bytes or of link types whose address length
is not known here, when /sys/class/net shows another namespace than the calling
thread's (after setns(2), /proc/thread-self/net and the ioctls follow the
thread; sysfs stays the namespace it was mounted in).

Parsers are pure functions over a file's bytes, fed captured files in tests.
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import os
import socket
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from socket import AF_INET, AF_INET6

from ...errors import BackendUnavailable
from ...model import Counters, Interface
from ..netnames import IFF_MASK, hardware_address, interface_name, make_counters, make_interface
from .sockets import DEFAULT_NET_DIR, read_file, read_optional

__all__ = [
    "DEFAULT_SYS_DIR",
    "parse_dev",
    "parse_if_inet6",
    "read_interfaces",
]

DEFAULT_SYS_DIR = "/sys/class/net"

# ioctl numbers, include/uapi/linux/sockios.h.
SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
SIOCGIFNETMASK = 0x891B
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
# struct ifreq: a 16-byte name, then a union whose largest member, struct ifmap,
# is 24 bytes with 8-byte longs (16 with 4-byte ones).
IFNAMSIZ = 16
IFREQ_SIZE = IFNAMSIZ + (24 if ctypes.sizeof(ctypes.c_long) == 8 else 16)

# Hardware address lengths by link type (ARPHRD_*, include/uapi/linux/if_arp.h),
# for when /sys/class/net, which tells the length, shows another namespace:
# SIOCGIFHWADDR returns 14 bytes whatever the length.
_ADDRESS_LENGTHS = {
    1: 6,  # ETHER
    6: 6,  # IEEE802
    512: 0,  # PPP
    519: 0,  # RAWIP
    768: 4,  # TUNNEL (ipip)
    776: 4,  # SIT
    778: 4,  # IPGRE
    772: 6,  # LOOPBACK
    801: 6,  # IEEE80211
    0xFFFE: 0,  # NONE (tun)
    0xFFFF: 0,  # VOID
}


# ---------------------------------------------------------------- parsers


def parse_dev(data: bytes) -> list[tuple[bytes, Counters]]:
    """(name, counters) of each interface in /proc/net/dev: what netstat -i shows.

    >>> [(name, c.rx_packets, c.rx_dropped, c.tx_bytes) for name, c in parse_dev(
    ...     b"Inter-|   Receive  ...\\n face |bytes ...\\n"
    ...     b"    va:     516       6    0    2    0     0          0         0      682"
    ...     b"       7    0    0    0     0       0          0\\n")]
    [(b'va', 6, 2, 682)]
    """
    rows = []
    for line in data.split(b"\n")[2:]:
        name, colon, rest = line.partition(b":")
        fields = rest.split()
        if not colon or len(fields) < 16:
            continue
        rx = [int(f) for f in fields[:5]]  # bytes packets errs drop fifo
        tx = [int(f) for f in fields[8:13]]
        rows.append((name.lstrip(b" "), make_counters(*rx, *tx)))
    return rows


def parse_if_inet6(data: bytes) -> list[tuple[bytes, str]]:
    """(device, ``address/length``) of each IPv6 address in /proc/net/if_inet6.

    >>> parse_if_inet6(b"fd000000000000000000000000000001 02 40 00 80       va\\n")
    [(b'va', 'fd00::1/64')]
    """
    found = []
    for line in data.split(b"\n"):
        fields = line.split()
        if len(fields) < 6:
            continue
        address = socket.inet_ntop(AF_INET6, bytes.fromhex(fields[0].decode()))
        found.append((fields[5], f"{address}/{int(fields[2], 16)}"))
    return found


# ---------------------------------------------------------------- interfaces


def _ifreq(name: bytes, payload: bytes = b"") -> bytearray:
    request = bytearray(IFREQ_SIZE)
    request[: len(name)] = name
    request[IFNAMSIZ : IFNAMSIZ + len(payload)] = payload
    return request


def _ioctl(sock: socket.socket, request: int, name: bytes, payload: bytes = b"") -> bytes:
    buffer = _ifreq(name, payload)
    fcntl.ioctl(sock.fileno(), request, buffer)
    return bytes(buffer[IFNAMSIZ:])


@dataclass(frozen=True, slots=True)
class _Link:
    """What the ioctls say of one interface."""

    index: int
    flags: int
    mtu: int
    arphrd: int
    hwaddr: bytes  # the 14 bytes of sa_data


def _link(sock: socket.socket, name: bytes) -> _Link:
    index = struct.unpack_from("=i", _ioctl(sock, SIOCGIFINDEX, name))[0]
    flags = struct.unpack_from("=H", _ioctl(sock, SIOCGIFFLAGS, name))[0]
    mtu = struct.unpack_from("=i", _ioctl(sock, SIOCGIFMTU, name))[0]
    hw = _ioctl(sock, SIOCGIFHWADDR, name)
    arphrd = struct.unpack_from("=H", hw)[0]
    return _Link(index, flags, mtu, arphrd, hw[2:16])


def _ipv4_addresses(sock: socket.socket) -> Iterator[tuple[bytes, str]]:
    """(device, ``address/length``) of every IPv4 address, secondaries included.

    SIOCGIFCONF lists each address with its label (``eth0`` or ``eth0:1``); the
    netmask of one address is asked for by label and address, which the kernel
    matches exactly (devinet_ioctl's "4.4BSD style"), not just the first of the label.
    """
    size = 64 * IFREQ_SIZE
    while True:
        buffer = array.array("B", bytes(size))
        pointer, _ = buffer.buffer_info()
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFCONF, struct.pack("iP", size, pointer))
        used = struct.unpack_from("i", answer)[0]
        if used < size:
            break
        size *= 2
    data = buffer.tobytes()
    for offset in range(0, used, IFREQ_SIZE):
        label = data[offset : offset + IFNAMSIZ].split(b"\0", 1)[0]
        sockaddr = data[offset + IFNAMSIZ : offset + IFNAMSIZ + 16]
        if struct.unpack_from("=H", sockaddr)[0] != AF_INET:
            continue
        address = sockaddr[4:8]
        try:
            mask = _ioctl(sock, SIOCGIFNETMASK, label, sockaddr)[4:8]
        except OSError:
            continue  # removed since SIOCGIFCONF: gone, as netstat would find it
        length = int.from_bytes(mask, "big").bit_count()
        yield label.split(b":", 1)[0], f"{socket.inet_ntop(AF_INET, address)}/{length}"


def _sys_read(sys_dir: str, name: str, attribute: str) -> str:
    with open(f"{sys_dir}/{name}/{attribute}", encoding="ascii", errors="replace") as file:
        return file.read().strip()


@dataclass(frozen=True, slots=True)
class _SysLink:
    index: int
    flags: int
    mtu: int
    address: bytes
    operstate: str


def _sys_links(sys_dir: str, names: Sequence[bytes]) -> dict[bytes, _SysLink] | None:
    """What /sys/class/net says of each interface, or None where it shows another namespace."""
    found = {}
    try:
        listed = {os.fsencode(entry) for entry in os.listdir(sys_dir)}
        if listed != set(names):
            return None
        for raw in names:
            name = os.fsdecode(raw)
            found[raw] = _SysLink(
                index=int(_sys_read(sys_dir, name, "ifindex")),
                flags=int(_sys_read(sys_dir, name, "flags"), 16),
                mtu=int(_sys_read(sys_dir, name, "mtu")),
                address=bytes.fromhex(_sys_read(sys_dir, name, "address").replace(":", "")),
                operstate=_sys_read(sys_dir, name, "operstate").upper(),
            )
    except (OSError, ValueError):
        return None
    return found


# Flags kept in dev->flags as set (sysfs shows these), not computed at read time
# as SIOCGIFFLAGS computes RUNNING, PROMISC and ALLMULTI (dev_get_flags).
_STORED_FLAGS = IFF_MASK & ~(0x40 | 0x100 | 0x200)


def _same_namespace(links: Mapping[bytes, _Link], sys_links: Mapping[bytes, _SysLink]) -> bool:
    """Whether sysfs describes the same interfaces the ioctls do.

    Nothing names the namespace a sysfs mount shows, so the two are held
    together on every interface's index, MTU, stored flags and hardware address:
    two namespaces alike in all of those have nothing sysfs could tell apart.
    """
    for name, link in links.items():
        seen = sys_links.get(name)
        if (
            seen is None
            or seen.index != link.index
            or seen.mtu != link.mtu
            or (seen.flags ^ link.flags) & _STORED_FLAGS
            or link.hwaddr[: len(seen.address)] != seen.address[:14]
        ):
            return False
    return True


def read_interfaces(net_dir: str = DEFAULT_NET_DIR, sys_dir: str = DEFAULT_SYS_DIR) -> list[Interface]:
    """Every interface of the calling thread's namespace, in index order."""
    try:
        rows = parse_dev(read_file(f"{net_dir}/dev"))
    except OSError as err:
        raise BackendUnavailable(f"cannot read {net_dir}/dev: {err.strerror}") from err
    addresses: dict[bytes, list[str]] = {}
    for name, text in parse_if_inet6(read_optional(f"{net_dir}/if_inet6")):
        addresses.setdefault(name, []).append(text)
    links: dict[bytes, _Link] = {}
    counters: dict[bytes, Counters] = {}
    try:
        sock = socket.socket(AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    except OSError as err:
        raise BackendUnavailable(f"cannot open a socket for interface ioctls: {err.strerror}") from err
    with sock:
        for name, figures in rows:
            try:
                links[name] = _link(sock, name)
            except OSError as err:
                if err.errno == errno.ENODEV:
                    continue  # gone since /proc/net/dev was read, as netstat -i would skip it
                raise BackendUnavailable(f"interface ioctl failed: {err.strerror}") from err
            counters[name] = figures
        for name, text in _ipv4_addresses(sock):
            addresses.setdefault(name, []).append(text)
    sys_links = _sys_links(sys_dir, [name for name, _ in rows])
    if sys_links is not None and not _same_namespace(links, sys_links):
        sys_links = None
    interfaces = []
    for name, link in links.items():
        seen = sys_links.get(name) if sys_links is not None else None
        if seen is not None:
            mac = hardware_address(link.arphrd, seen.address)
            operstate: str | None = seen.operstate
        else:
            length = _ADDRESS_LENGTHS.get(link.arphrd)
            mac = None if length is None else hardware_address(link.arphrd, link.hwaddr[:length])
            operstate = None
        interfaces.append(
            make_interface(
                interface_name(name),
                link.index,
                link.flags,
                operstate,
                link.mtu,
                mac,
                addresses.get(name, ()),
                counters[name],
            )
        )
    interfaces.sort(key=lambda interface: interface.index or 0)
    return interfaces
