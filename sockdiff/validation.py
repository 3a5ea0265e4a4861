"""What the snapshot reader checks in a record beyond its types: the rules of SPEC.md's shapes.

msgspec checks each field's type and range (declared once, on the record types
of :mod:`sockdiff.model`) while it reads a file; these functions say what a
type cannot: an endpoint's shape for its family, a state of the right protocol,
an address or CIDR in canonical form, a device name the kernel allows, a name
as sockdiff escapes it, a route word a backend writes. Only
:mod:`sockdiff.snapshots`' reader uses them; each returns the problem in
sockdiff's words, or None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton

import msgspec

from .model import (
    IFNAMSIZ,
    INET_STATE_NAMES,
    IPV4_ROUTE_FLAGS,
    IPV6_ROUTE_FLAGS,
    ROUTE_PROTOCOLS,
    ROUTE_SCOPES,
    ROUTE_TYPES,
    RTF_REJECT,
    RTF_UP,
    UNIX_STATE_NAMES,
    Endpoint,
    Interface,
    Nexthop,
    Route,
    Socket,
    nexthop_order,
    unescape_name,
)

__all__ = [
    "address_problem",
    "bad_addresses",
    "device_name_problem",
    "device_names",
    "interface_problem",
    "is_host_name",
    "names_fine",
    "process_name_problem",
    "record_problem",
    "route_problem",
    "route_word_problem",
    "unix_name_problem",
]

_UNSET = msgspec.UNSET
# The bytes dev_valid_name refuses in a device name (see DEVICE_NAME_RULE in sockdiff.model).
_DEVICE_REFUSED = frozenset(b"/:\0\t\n\v\f\r \xa0")


def _is_inet(end: Endpoint | None) -> bool:
    return (
        end is not None
        and end.address is not _UNSET
        and end.port is not _UNSET
        and end.path is _UNSET
        and end.peer_inode is _UNSET
    )


def record_problem(sock: Socket) -> str | None:
    """What makes a record read from a file unlike any a backend builds, or None.

    msgspec has checked each field's type; this checks what types cannot say:
    the endpoint shapes of SPEC.md for the record's family, and a state name
    from the table of its protocol.
    """
    local, remote = sock.local, sock.remote
    if sock.proto == "unix":
        if sock.family != "unix":
            return f"a unix socket's family is 'unix', not {sock.family!r}"
        if sock.state not in UNIX_STATE_NAMES:
            return f"{sock.state!r} is not a UNIX state"
        if (
            local.path is _UNSET
            or local.address is not _UNSET
            or local.port is not _UNSET
            or local.peer_inode is not _UNSET
        ):
            return '`local` of a unix socket is {"path": ...}'
        if remote is not None and (
            remote.peer_inode is _UNSET
            or remote.path is not _UNSET
            or remote.address is not _UNSET
            or remote.port is not _UNSET
        ):
            return '`remote` of a unix socket is {"peer_inode": N} or null'
        if sock.interface is not None or sock.v6only is not None:
            return "`interface` and `v6only` of a unix socket are null"
        return None
    if sock.family == "unix":
        return f"a {sock.proto} socket's family is 'inet' or 'inet6', not 'unix'"
    if sock.v6only is not None and sock.family != "inet6":
        return "`v6only` is for inet6 sockets (null for the others)"
    if sock.state not in INET_STATE_NAMES:
        return f"{sock.state!r} is not a {sock.proto.upper()} state"
    if not _is_inet(local):
        return '`local` of an inet socket is {"address": ..., "port": N}'
    if not _is_inet(remote):
        return '`remote` of an inet socket is {"address": ..., "port": N}'
    return None


_FAMILY_NUMBERS = {"inet": AF_INET, "inet6": AF_INET6}


def address_problem(sockets: Sequence[Socket]) -> tuple[int, str] | None:
    """The first inet socket whose address is not of its family in canonical form, and why.

    Each distinct address is checked once (a host's 100k sockets share few
    local addresses), family by family; a bad one is then looked for record by
    record. Run after :func:`record_problem` has passed every record (an inet
    socket has both endpoints).
    """
    # One pass: the few distinct (family, local, remote) address triples.
    triples = {
        (s.family, s.local.address, None if s.remote is None else s.remote.address)
        for s in sockets
        if s.proto != "unix"
    }
    for family in _FAMILY_NUMBERS:
        bad = bad_addresses(
            family, {text for kind, *ends in triples if kind == family for text in ends if text is not None}
        )
        if not bad:
            continue
        for index, sock in enumerate(sockets):
            for side, end in (("local", sock.local), ("remote", sock.remote)):
                if sock.family == family and end is not None and end.address in bad:
                    return (
                        index,
                        f"`{side}.address` {end.address!r} is not an {family} address in canonical form",
                    )
    return None


# A host name as ss -r or netstat without -n wrote it: letters, digits, '-', '_'
# and dots, at least one letter and no ':', so never an address of either family.
_HOST_NAME = re.compile(r"(?=.*[A-Za-z_-])[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")


def is_host_name(text: object) -> bool:
    """Whether ``text`` is a host name a saved listing kept for an address it could not map back.

    >>> is_host_name("db1.example.com"), is_host_name("10.0.0.1"), is_host_name("::1")
    (True, False, False)
    """
    return isinstance(text, str) and len(text) <= 253 and _HOST_NAME.fullmatch(text) is not None


def bad_addresses(family: str, texts: Iterable[object]) -> set[object]:
    """Those of ``texts`` (addresses of ``family``'s sockets) that are neither an address of it
    in canonical form nor a host name (:func:`address_problem` says where they stand).

    >>> sorted(bad_addresses("inet", ["127.0.0.1", "::1", "localhost", "127.000.0.1"]))
    ['127.000.0.1', '::1']
    """
    number = _FAMILY_NUMBERS[family]
    return {text for text in texts if not _is_address(number, text) and not is_host_name(text)}


def names_fine(paths: Iterable[str], names: Iterable[str]) -> bool:
    """Whether every UNIX socket name of ``paths`` and process name of ``names`` is as
    sockdiff writes it (:func:`unix_name_problem`, :func:`process_name_problem`)."""
    return all(unix_name_problem(path) is None for path in paths) and all(
        process_name_problem(name) is None for name in names
    )


def _is_address(family: int, text: object) -> bool:
    """Whether ``text`` is an address of ``family`` written as inet_ntop writes it.

    >>> _is_address(AF_INET6, "::ffff:1.2.3.4"), _is_address(AF_INET6, "::FFFF:1.2.3.4")
    (True, False)
    >>> _is_address(AF_INET, "127.000.0.1"), _is_address(AF_INET, "::1")
    (False, False)
    """
    if not isinstance(text, str):
        return False
    try:
        return inet_ntop(family, inet_pton(family, text)) == text
    except (OSError, ValueError):
        return False


def _cidr_problem(text: str, family: int | None, network: bool) -> str | None:
    """Why ``text`` is not ``address/prefix`` in canonical form (of ``family`` if given), or None.

    A ``network`` (a route's destination) has no bits set past its prefix.
    """
    address, _, prefix_text = text.partition("/")
    families = (family,) if family is not None else (AF_INET, AF_INET6)
    found = next((f for f in families if _is_address(f, address)), None)
    if found is None:
        return "an address in canonical form"
    size = 32 if found == AF_INET else 128
    prefix = int(prefix_text) if prefix_text.isdigit() and prefix_text.isascii() else -1
    if not 0 <= prefix <= size or str(prefix) != prefix_text:
        return f"a prefix length from 0 to {size}"
    if network and int.from_bytes(inet_pton(found, address)) & ((1 << (size - prefix)) - 1):
        return "a network (no bits set past the prefix)"
    return None


def interface_problem(interface: Interface) -> str | None:
    """What makes an interface read from a file unlike any a backend builds, or None.

    >>> interface_problem(Interface("eth0", 2, ("UP",), "UP", 1500, None, ("10.0.0.1/33",), None))
    "`addresses` holds '10.0.0.1/33', not a prefix length from 0 to 32"
    """
    if list(interface.flags) != sorted(set(interface.flags)):
        return "`flags` are not sorted, or repeat a name"
    for text in interface.addresses or ():
        problem = _cidr_problem(text, None, network=False)
        if problem is not None:
            return f"`addresses` holds {text!r}, not {problem}"
    return None


def route_problem(route: Route) -> str | None:
    """What makes a route read from a file unlike any a backend builds, or None.

    >>> route_problem(Route("inet", 254, "unicast", "10.0.0.1/24", None, "eth0", 0, None, None))
    "`destination` '10.0.0.1/24' is not a network (no bits set past the prefix)"
    """
    number = _FAMILY_NUMBERS[route.family]
    problem = _cidr_problem(route.destination, number, network=True)
    if problem is not None:
        return f"`destination` {route.destination!r} is not {problem}"
    if route.gateway is not None and not _is_gateway(route.gateway):
        return f"`gateway` {route.gateway!r} is not an address in canonical form"
    if route.flags is not None:
        if route.family == "inet6":
            if route.flags & ~IPV6_ROUTE_FLAGS or not route.flags & (RTF_UP | RTF_REJECT):
                return f"`flags` {route.flags:#x} are not flags netstat -6rn shows (U, G, !, n)"
        elif route.flags & ~IPV4_ROUTE_FLAGS or not route.flags & RTF_UP:
            return f"`flags` {route.flags:#x} are not flags /proc/net/route writes (U, G, H, !)"
    if route.nexthops is not None:
        return _nexthops_problem(route.nexthops)
    return None


def _is_gateway(text: str) -> bool:
    """An address of either family (an IPv4 route may go through an IPv6 neighbour)."""
    return _is_address(AF_INET, text) or _is_address(AF_INET6, text)


def _nexthops_problem(hops: tuple[Nexthop, ...]) -> str | None:
    if len(hops) < 2:
        return f"`nexthops` has {len(hops)} next hop(s): a multipath route has two or more"
    for hop in hops:
        if hop.gateway is not None and not _is_gateway(hop.gateway):
            return f"`nexthops` gateway {hop.gateway!r} is not an address in canonical form"
    if list(hops) != sorted(hops, key=nexthop_order):
        return "`nexthops` is not sorted"
    return None


# sun_path's size (include/uapi/linux/un.h): a path or an abstract name holds at most this.
UNIX_PATH_MAX = 108


def _escaped_bytes(text: str) -> bytes | None:
    """:func:`unescape_name` with a fast way for the common name (ASCII, no backslash)."""
    if text.isascii() and "\\" not in text:
        return text.encode("ascii")
    return unescape_name(text)


def unix_name_problem(text: str) -> str | None:
    r"""Why ``text`` is no UNIX socket name as sockdiff writes it (:func:`escape_name`); None when it is.

    A path or ``@name`` (abstract, its NULs as ``@``) of 1 to 108 bytes, with
    ``\xNN`` for a byte that is not UTF-8 and ``\\`` for a backslash; a path
    ends at its first NUL, so none holds one.

    >>> unix_name_problem("/run/a.sock"), unix_name_problem("@x\\xff"), unix_name_problem("a\\\\b")
    (None, None, None)
    >>> [unix_name_problem(text) is None for text in ("a\\b", "", "/a\x00b", "@" * 109)]
    [False, False, False, False]
    """
    raw = _escaped_bytes(text)
    if raw is None:
        return (
            f"{text!r} is not a UNIX socket name as sockdiff writes it"
            " (\\xNN for a byte not UTF-8, \\\\ for \\)"
        )
    if not 0 < len(raw) <= UNIX_PATH_MAX:
        return f"{text!r} is not a UNIX socket name: {len(raw)} bytes (1 to {UNIX_PATH_MAX})"
    if b"\0" in raw:
        return f"{text!r} is not a UNIX socket name: a path ends at its first NUL"
    return None


def process_name_problem(text: str) -> str | None:
    r"""Why ``text`` is no process name as sockdiff writes it (/proc/PID/comm through
    :func:`escape_name`); None when it is. A name is a C string: no NUL.

    >>> process_name_problem("nginx"), process_name_problem("a\\\\b"), process_name_problem("")
    (None, None, None)
    >>> [process_name_problem(text) is None for text in ("b\\x22", "a\\b", "a\x00b")]
    [False, False, False]
    """
    raw = _escaped_bytes(text)
    if raw is None:
        return (
            f"{text!r} is not a process name as sockdiff writes it (\\xNN for a byte not UTF-8, \\\\ for \\)"
        )
    if b"\0" in raw:
        return f"{text!r} is not a process name: a name ends at its first NUL"
    return None


def device_name_problem(text: str) -> str | None:
    r"""Why ``text`` is no device name the kernel allows, as sockdiff writes it; None when it is.

    The rule is dev_valid_name's (net/core/dev.c), on the bytes the name stands for:

    >>> device_name_problem("a\x1fb"), device_name_problem("nel\x85x"), device_name_problem("t\\xffx")
    (None, None, None)
    >>> device_name_problem("a\xa0")
    "'a\\xa0' is not a device name: its bytes hold 0xa0, which the kernel refuses"
    """
    raw = unescape_name(text)
    if raw is None:
        return (
            f"{text!r} is not a device name as sockdiff writes it (\\xNN for a byte not UTF-8, \\\\ for \\)"
        )
    if not 0 < len(raw) < IFNAMSIZ:
        return f"{text!r} is not a device name: {len(raw)} bytes (1 to {IFNAMSIZ - 1})"
    if raw in (b".", b".."):
        return f"{text!r} is not a device name: the kernel refuses '.' and '..'"
    refused = next((byte for byte in raw if byte in _DEVICE_REFUSED), None)
    if refused is not None:
        return f"{text!r} is not a device name: its bytes hold {refused:#04x}, which the kernel refuses"
    return None


def device_names(record: Socket | Interface | Route) -> Iterator[tuple[str, str]]:
    """Each device name a record holds, with its place in the record (``.dev``, ``.nexthops[1].dev``).

    A reader holds each to :func:`device_name_problem`.
    """
    if isinstance(record, Interface):
        yield ".name", record.name
    elif isinstance(record, Socket):
        if record.interface is not None:
            yield ".interface", record.interface
    else:
        if record.dev is not None:
            yield ".dev", record.dev
        for index, hop in enumerate(record.nexthops or ()):
            if hop.dev is not None:
                yield f".nexthops[{index}].dev", hop.dev


def _number_word(word: str, named: Iterable[int], lowest: int = 0, highest: int = 255) -> bool:
    """A number as ip writes one without a name: decimal, no leading zero, in range, unnamed."""
    if not (word.isascii() and word.isdigit() and len(word) <= 3) or (len(word) > 1 and word[0] == "0"):
        return False
    return lowest <= int(word) <= highest and int(word) not in named


# A route's scope is at most RT_SCOPE_HOST (fib_create_info refuses "nowhere"); an IPv6 route's
# is always universe (rt6_fill_node).
_ROUTE_SCOPE_NAMES = frozenset(name for number, name in ROUTE_SCOPES.items() if number <= 254)
_ROUTE_TYPE_NAMES = frozenset(ROUTE_TYPES)
_ROUTE_PROTOCOL_NAMES = frozenset(ROUTE_PROTOCOLS.values())


def route_word_problem(route: Route) -> str | None:
    """A route's ``type``, ``scope`` or ``protocol`` no backend writes, or None.

    Types are rtnetlink's RTN_* names (a number past them as ip prints it),
    scopes RT_SCOPE_* names up to host or an unnamed number below it, protocols
    iproute2's names or an unnamed number: what :func:`make_route`'s callers make.

    >>> route_word_problem(Route("inet", 254, "frobnicate", "10.0.0.0/8", None, "eth0", 0, None, None))
    "`type` 'frobnicate' is not a route type (unicast, local, ..., or a number from 12 to 255)"
    >>> route_word_problem(Route("inet", 254, "unicast", "10.0.0.0/8", None, "eth0", 0, "99", "link"))
    "`protocol` '99' is not a route protocol (iproute2's name, or a number without one)"
    """
    kind, scope, protocol = route.type, route.scope, route.protocol
    if kind is not None and kind not in _ROUTE_TYPE_NAMES and not _number_word(kind, (), len(ROUTE_TYPES)):
        numbers = f"a number from {len(ROUTE_TYPES)} to 255"
        return f"`type` {kind!r} is not a route type (unicast, local, ..., or {numbers})"
    if scope is not None:
        if route.family == "inet6" and scope != ROUTE_SCOPES[0]:
            return f"`scope` {scope!r} is not an IPv6 route's (universe, always)"
        if scope not in _ROUTE_SCOPE_NAMES and not _number_word(scope, ROUTE_SCOPES, 1, 254):
            return (
                f"`scope` {scope!r} is not a route scope (universe, site, link, host, or a number below 254)"
            )
    if (
        protocol is not None
        and protocol not in _ROUTE_PROTOCOL_NAMES
        and not _number_word(protocol, ROUTE_PROTOCOLS)
    ):
        return f"`protocol` {protocol!r} is not a route protocol (iproute2's name, or a number without one)"
    return None
