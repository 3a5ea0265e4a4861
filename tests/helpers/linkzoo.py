"""A small network of interfaces and routes in a test namespace, and ``ip -j`` as its oracle.

:func:`build_network` gives namespace NS (its loopback already up):

- ``va``: one end of a veth pair whose peer ``vb`` lives in namespace PEER;
  MTU 1400, 10.9.0.1/24 with 10.9.0.5/24 as a secondary address, fd00::1/64;
- ``tun0``: a tun device, up but not RUNNING (nobody holds it), no hardware address;
- ``t\x01\xffx``: a tun device (down) whose name is awkward (:data:`ODD_NAME`);
- routes: 10.20.0.0/16 via a gateway, a default route with metric 50, a
  blackhole, an unreachable and a throw route, a route in table 100, one on the
  carrier-less tun0, one with an advertised MSS, window and RTT; IPv6:
  fd01::/64 via a gateway, a blackhole, an unreachable and a prohibit route,
  an address on lo and a route on lo (the kernel makes it a reject route), a
  route and a default route in table 100, a route in table 200; a multipath
  route in each family.

DAD and router solicitations are off so the addresses are final at once. The
functions named ``*_from_ip`` turn ``ip -j`` output into sockdiff's records, so
tests hold both backends against ``ip``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from sockdiff.model import Counters, Interface, Nexthop, Route, nexthop_order

__all__ = [
    "IP_FLAG_EXTRAS",
    "build_network",
    "counters_from_ip",
    "flags_from_ip",
    "interfaces_from_ip",
    "ip_json",
    "known_equal",
    "routes_from_ip",
    "wait_operstate",
]

_SYSCTLS = (
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.router_solicitations=0",
)

_NS_COMMANDS = """\
link add va type veth peer name vb netns {peer}
addr add 10.9.0.1/24 dev va
addr add 10.9.0.5/24 dev va
addr add fd00::1/64 dev va nodad
link set va mtu 1400 up
tuntap add tun0 mode tun
link set tun0 up
route add 10.20.0.0/16 via 10.9.0.2
route add default via 10.9.0.2 metric 50
route add blackhole 10.30.0.0/16
route add unreachable 10.50.0.0/16
route add throw 10.52.0.0/16
route add 10.40.0.0/16 via 10.9.0.2 table 100
route add 10.54.0.0/16 dev tun0
route add 10.70.0.0/16 via 10.9.0.2 advmss 1400 window 65535 rtt 80ms
route add fd01::/64 via fd00::2
route add blackhole fd03::/64
route add fd02::/64 via fd00::2 table 100
route add default via fd00::3 table 100
route add 10.80.0.0/16 nexthop via 10.9.0.2 dev va nexthop via 10.9.0.3 dev va weight 2
route add fd09::/64 nexthop via fd00::2 dev va nexthop via fd00::3 dev va
addr add fd99::1/128 dev lo
route add unreachable fd04::/64
route add prohibit fd05::/64 metric 2000
route add fd06::/64 dev lo
route add fd07::/64 via fd00::2 table 200
"""

# A device whose name holds a control character and a byte that is not UTF-8:
# kernel names may hold any byte but NUL, '/', ':' and white space.
ODD_NAME = b"t\x01\xffx"
ODD_NAME_TEXT = "t\x01\\xffx"  # as sockdiff writes it: not UTF-8 becomes \xNN

_PEER_COMMANDS = """\
link set vb up
addr add 10.9.0.2/24 dev vb
addr add fd00::2/64 dev vb nodad
"""

# Flags ip link shows beyond the 16 of struct ifreq (and NO-CARRIER, its own word
# for UP without RUNNING): neither backend lists them (see backends/netnames.py).
IP_FLAG_EXTRAS = frozenset({"LOWER_UP", "DORMANT", "ECHO", "NO-CARRIER"})


def flags_from_ip(shown: Iterable[str]) -> tuple[str, ...]:
    """IFF names from ip link's flags: ip hides RUNNING, writing NO-CARRIER when UP lacks it."""
    names = set(shown)
    if "UP" in names and "NO-CARRIER" not in names:
        names.add("RUNNING")
    return tuple(sorted(names - IP_FLAG_EXTRAS))


def _run(argv: Sequence[str], stdin: str | None = None) -> str:
    # surrogateescape: ip prints interface names as the kernel holds them, bytes and all.
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        check=True,
        timeout=30,
        encoding="utf-8",
        errors="surrogateescape",
    ).stdout


def name_from_ip(name: str) -> str:
    """A name ip printed, as sockdiff writes names: ``\\`` doubled, bytes not UTF-8 as ``\\xNN``."""
    raw = name.encode("utf-8", "surrogateescape")
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def build_network(ns: str, peer: str) -> None:
    """Build the network described above in ``ns``, with the veth's other end in ``peer``."""
    _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *_SYSCTLS])
    _run(["ip", "-n", peer, "-batch", "-"], "link set lo up\n")
    _run(["ip", "-n", ns, "-batch", "-"], _NS_COMMANDS.format(peer=peer))
    subprocess.run([b"ip", b"-n", ns.encode(), b"tuntap", b"add", ODD_NAME, b"mode", b"tun"], check=True)
    _run(["ip", "-n", peer, "-batch", "-"], _PEER_COMMANDS)
    wait_operstate(ns, "va", "UP")


def wait_operstate(ns: str, name: str, state: str) -> None:
    """Wait until ``ip link`` shows ``name`` in ``state``: the kernel settles it asynchronously."""
    for _ in range(500):
        links = ip_json(ns, "link", "show", "dev", name)
        if links and links[0].get("operstate") == state:
            return
        subprocess.run(["sleep", "0.01"], check=True)
    raise AssertionError(f"{name} in {ns} never reached operstate {state}")


def ip_json(ns: str, *argv: str) -> list[dict[str, Any]]:
    """``ip -n NS -j ARGV``, parsed."""
    # strict=False: ip writes control characters in names raw, which JSON forbids.
    parsed: list[dict[str, Any]] = json.loads(_run(["ip", "-n", ns, "-j", *argv]) or "[]", strict=False)
    return parsed


def counters_from_ip(stats: Mapping[str, Any]) -> Counters:
    """Counters from ``ip -s -s -j link``'s stats64, as netstat -i counts them.

    ip shows the kernel's dropped and missed separately; /proc/net/dev, and so
    netstat -i, adds them up.
    """
    rx, tx = stats["rx"], stats["tx"]
    return Counters(
        rx_packets=rx["packets"],
        rx_errors=rx["errors"],
        rx_dropped=rx["dropped"] + rx["missed_errors"],
        rx_overruns=rx["fifo_errors"],
        tx_packets=tx["packets"],
        tx_errors=tx["errors"],
        tx_dropped=tx["dropped"],
        tx_overruns=tx["fifo_errors"],
        rx_bytes=rx["bytes"],
        tx_bytes=tx["bytes"],
    )


def interfaces_from_ip(links: Iterable[Mapping[str, Any]]) -> list[Interface]:
    """Records from ``ip -s -s -j addr`` (links with their addresses and counters)."""
    found = []
    for link in links:
        found.append(
            Interface(
                name=name_from_ip(link["ifname"]),
                index=link["ifindex"],
                flags=flags_from_ip(link["flags"]),
                operstate=link["operstate"],
                mtu=link["mtu"],
                mac=link.get("address"),
                addresses=tuple(sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", ()))),
                counters=counters_from_ip(link["stats64"]) if "stats64" in link else None,
            )
        )
    return found


_TABLES = {"main": 254, "local": 255, "default": 253}
_SCOPES = {
    "global": "universe"
}  # ip's rt_scopes names 0 "global"; the kernel, fib_trie and SPEC.md "universe"


def routes_from_ip(routes: Iterable[Mapping[str, Any]], family: str) -> list[Route]:
    """Records from ``ip -d -j route show table all`` (-d: type, protocol and scope always shown)."""
    found = []
    for route in routes:
        destination = route["dst"]
        if destination == "default":
            destination = "0.0.0.0/0" if family == "inet" else "::/0"
        elif "/" not in destination:
            destination += "/32" if family == "inet" else "/128"
        table = route.get("table", "main")
        metrics = {k: v for m in route.get("metrics", ()) for k, v in m.items()}
        # A multipath route: for IPv4 one record, its first next hop (all /proc/net/route
        # shows) as gateway and dev, every hop in nexthops; for IPv6 one record a next hop
        # (the kernel keeps them as routes of their own).
        hops = route.get("nexthops") or [route]
        if family == "inet" and len(hops) > 1:
            nexthops = [Nexthop(h.get("gateway"), h.get("dev"), h["weight"]) for h in hops]
            made = _route(route, hops[0], family, destination, table, metrics)
            found.append(msgspec.structs.replace(made, nexthops=tuple(sorted(nexthops, key=nexthop_order))))
            continue
        for hop in hops:
            found.append(_route(route, hop, family, destination, table, metrics))
    return found


def _route(
    route: Mapping[str, Any],
    hop: Mapping[str, Any],
    family: str,
    destination: str,
    table: str,
    metrics: Mapping[str, int],
) -> Route:
    return Route(
        family=family,  # type: ignore[arg-type]
        table=_TABLES[table] if table in _TABLES else int(table),
        type=route["type"],
        destination=destination,
        gateway=hop.get("gateway"),
        dev=hop.get("dev"),
        metric=route.get("metric", 0),
        protocol=route["protocol"],
        scope=_SCOPES.get(route["scope"], route["scope"]),
        # netstat -rn's figures: MSS is the advertised MSS plus 40; ip shows rtt in ms.
        mss=metrics["advmss"] + 40 if metrics.get("advmss") else 0,
        window=metrics.get("window", 0),
        irtt=metrics.get("rtt", 0),
        flags=_ipv4_flags(route, hop, destination) if family == "inet" else None,
    )


def _ipv4_flags(route: Mapping[str, Any], hop: Mapping[str, Any], destination: str) -> int:
    """/proc/net/route's flags: U; G via a gateway (none here has a zero first word); H; ! reject."""
    via = hop.get("gateway") or (hop.get("via") or {}).get("host")
    reject = route["type"] in ("unreachable", "prohibit")
    return 0x1 | (0x2 if via else 0) | (0x4 if destination.endswith("/32") else 0) | (0x200 if reject else 0)


def known_equal(known: msgspec.Struct, full: msgspec.Struct) -> list[str]:
    """The fields where ``known`` (a backend that may not know some: None) differs from ``full``."""
    return [
        name
        for name in known.__struct_fields__
        if getattr(known, name) is not None and getattr(known, name) != getattr(full, name)
    ]
