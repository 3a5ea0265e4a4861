"""Socket notation: how every output writes a name, an address, a socket, an interface or a route.

``escape`` (names on one line, no CI command), ss's columns and owners
(:func:`local_text`, :func:`process_owner`), and the one-line forms of a
socket, an interface, a route and a change that every diff format and watch's
lines share.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket as _socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..model import (
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    Endpoint,
    Interface,
    Nexthop,
    Process,
    Route,
    Socket,
    netns_of,
)

if TYPE_CHECKING:
    from ..differ import Change, Diff

__all__ = [
    "change_detail",
    "endpoint_columns",
    "escape",
    "interface_line",
    "local_text",
    "netid",
    "netns_word",
    "peer_text",
    "process_owner",
    "process_text",
    "record_detail",
    "record_netns",
    "route_line",
    "socket_line",
    "socket_where",
    "summary_line",
    "unix_name",
]

_UNIX_NETIDS = {"stream": "u_str", "dgram": "u_dgr", "seqpacket": "u_seq"}


# What a terminal or a log reader could take for the end of a line, for text in
# another direction, or for nothing at all: everything str.isprintable() refuses
# (C0 and C1 controls, DEL, the line and paragraph separators, format characters
# such as bidirectional overrides and zero-width joiners, spaces other than
# U+0020, surrogates, private-use and unassigned code points). A character is
# written ``\n``, ``\t``, ``\r``, else ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``,
# as Python writes it, so an escape never runs into the text after it. Also
# escaped: the default-ignorable code points Unicode draws as nothing although
# isprintable() accepts them (variation selectors, Hangul fillers), which a
# reader cannot see and ICU's string search skips.
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_INVISIBLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE0FFF),
)

_INVISIBLE_FOUND = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _INVISIBLE) + "]")


def _escaped(code: int) -> str:
    char = chr(code)
    if char.isprintable() and not any(low <= code <= high for low, high in _INVISIBLE):
        return char
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x80:
        return f"\\x{code:02x}"
    # Not \xNN past ASCII: a record writes a byte that is not UTF-8 so (SPEC.md), and the
    # character U+0085 must not read as the byte 0x85 (two devices, d\u0085 and d\x85).
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class _Escapes(dict[int, str]):
    """str.translate's table, filled in as characters are first met (there are 1.1M code points)."""

    def __init__(self, backslash: bool) -> None:
        super().__init__({ord("\\"): "\\\\"} if backslash else {})

    def __missing__(self, code: int) -> str:
        self[code] = text = _escaped(code)
        return text


_ESCAPES = _Escapes(backslash=False)
_ESCAPES_AND_BACKSLASH = _Escapes(backslash=True)

# GitHub's runner reads a workflow command in any line it is given
# (actions/runner, src/Runner.Common/ActionCommand.cs): ``::name ...::data`` at
# the start of the line once leading whitespace is trimmed (TryParseV2), and, in
# the older syntax, ``##[name ...]data`` anywhere in it (TryParse: the first
# ``##[`` and the next ``]``). Any name may be a command, since ``stop-commands``
# registers its token as one. So a name written into a line never holds ``##[``
# (its second ``#`` is written ``\x23``) and never begins a line with ``::``
# (its first ``:`` is written ``\x3a``): one visible escape in the notation
# above, which reads back as the character it replaced.
# The runner's search is not ordinal: under ICU it skips what the collation
# ignores, printable characters too (U+0640, Hebrew accents, ...). So the rule
# is held for the line's ASCII alone: any characters past ASCII between the
# ``#``, ``#`` and ``[`` (or before and between the leading colons) count as absent.
_OLD_COMMAND = re.compile(r"#([^\x00-\x7f]*)#([^\x00-\x7f]*)\[")
_OLD_COMMAND_ESCAPED = "#\\1\\\\x23\\2["
_LEADING_COMMAND = re.compile(r"[ \x80-\U0010ffff]*:(?=[^\x00-\x7f]*:)")


def escape(text: str, backslash: bool = True, starts_line: bool = True) -> str:
    r"""``text`` with every character that is not plainly visible escaped, one line, no CI command.

    ``\n``, ``\t``, ``\r``, else ``\xNN`` (``\uNNNN``, ``\UNNNNNNNN`` beyond
    ASCII, so a character never reads as a byte a record escaped); a backslash
    is doubled so an escape cannot be forged. Pass ``backslash=False`` for a
    record's names, which carry their backslashes doubled already (SPEC.md):
    escaping is then idempotent, and applying it twice does no harm. ``##[``
    and a leading ``::``, which GitHub's runner would read as a workflow
    command, are written ``#\x23[`` and ``\x3a:``; ``starts_line=False`` for text
    that is never the start of a line (a quoted value), where ``::`` stays.

    >>> print(escape("evil\n+ tcp\\x"))
    evil\n+ tcp\\x
    >>> print(escape("/tmp/a\\\\b\x1b[31m", backslash=False))
    /tmp/a\\b\x1b[31m
    >>> print(escape("@##[error]forged"), escape(" ::warning::x"))
    @#\x23[error]forged  \x3a:warning::x
    """
    # The common case (printable, no backslash to double) costs one or two C-level scans.
    if (
        not text.isprintable()
        or (backslash and "\\" in text)
        or (not text.isascii() and _INVISIBLE_FOUND.search(text))
    ):
        text = text.translate(_ESCAPES_AND_BACKSLASH if backslash else _ESCAPES)
    if "#" in text and "[" in text:
        text = _OLD_COMMAND.sub(_OLD_COMMAND_ESCAPED, text)
    if starts_line and ":" in text:
        leading = _LEADING_COMMAND.match(text)
        if leading is not None:
            return text[: leading.end() - 1] + "\\x3a" + text[leading.end() :]
    return text


def record_netns(sock: Socket, labels: Mapping[int, str] | None = None) -> str | None:
    """The network namespace a socket's record names, None where it names none.

    Records of a snapshot that read one namespace carry none. ``labels`` (inode ->
    label, :func:`~sockdiff.model.namespace_labels`) names it as people do; without
    them, or for a namespace they miss, it is ``net:[INODE]``. The one place that
    reads the field, for every output that names a socket's namespace.
    """
    inode = netns_of(sock)
    if inode is None:
        return None
    return (labels or {}).get(inode, f"net:[{inode}]")


def netns_word(label: str) -> str:
    r"""A namespace's label as one word of a line (the Netns column, ``[LABEL]`` of a
    difference): escaped, and a space written ``\x20``, so that an ``ip netns``
    name never shifts a column, nor ends its brackets before their ``] ``.

    >>> print(netns_word("web x] tcp LISTEN"))
    web\x20x]\x20tcp\x20LISTEN
    """
    return escape(label, backslash=False).replace(" ", "\\x20")


def netid(sock: Socket) -> str:
    """ss's Netid column: tcp, udp, raw, u_str, u_dgr, u_seq."""
    if sock.proto == "unix":
        return _UNIX_NETIDS.get(sock.type, "u_" + sock.type[:3])
    return sock.proto


@functools.lru_cache(maxsize=4096)
def _host_name(address: str) -> str:
    # Only an address is looked up: a snapshot file's text (a NUL, a host name) is shown as it is.
    try:
        ip = ipaddress.ip_address(address)
        # As iproute2's resolve_address: an IPv4-mapped address is looked up as IPv4.
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return _socket.gethostbyaddr(str(mapped or ip))[0]
    except (OSError, UnicodeError, ValueError):
        return address


@functools.lru_cache(maxsize=1024)
def _service_name(port: int, proto: str) -> str:
    try:
        return _socket.getservbyport(port, proto)
    except (OSError, OverflowError):
        return str(port)


@functools.cache
def _protocol_names(path: str = "/etc/protocols") -> dict[int, str]:
    """IP protocol numbers and their names, as getprotobynumber(3) reads them."""
    names: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as table:
            for line in table:
                fields = line.partition("#")[0].split()
                if len(fields) >= 2 and fields[1].isdigit():
                    names.setdefault(int(fields[1]), fields[0])
    except OSError:
        pass  # no table: every protocol is written as ss writes an unknown one
    return names


_ANY = ("0.0.0.0", "::")


def _host_text(sock: Socket, address: str, resolve: bool) -> str:
    """An address as ss's inet_addr_print writes it.

    IPv6's ``::`` is ``*`` unless the socket is IPv6-only (``[::]``): ss reads
    INET_DIAG_SKV6ONLY, and where it cannot (a socket it read from /proc) it
    writes ``*``, as sockdiff does where ``v6only`` is unknown.
    """
    if sock.family == "inet6" and address == "::" and not sock.v6only:
        return "*"
    host = address
    if resolve and address not in _ANY:
        host = _host_name(address)  # or the address, as it is (a damaged file's may hold a NUL)
        # An IPv6 address's leading "::" is no command: a socket's line starts with its netid.
        host = "::" + escape(host[2:]) if host.startswith("::") else escape(host)
    return f"[{host}]" if ":" in host else host


def _port_text(port: int, proto: str, resolve: bool) -> str:
    if port == 0:
        return "*"
    if resolve and proto in ("tcp", "udp"):
        return _service_name(port, proto)
    if resolve and proto == "raw":  # a raw socket's "port" is its protocol: ss -r names it
        return escape(_protocol_names().get(port, f"ipproto-{port}"))
    return str(port)


def endpoint_columns(sock: Socket, end: Endpoint | None, local: bool, resolve: bool) -> tuple[str, str]:
    """An endpoint as ss's two columns: the address with its delimiter, and the port.

    inet: ``("0.0.0.0%lo:", "7401")``, ``("[::]:", "*")``; the device a socket
    is bound to follows its local address. UNIX: ``("/run/a.sock ", "1234")``,
    the name (``*`` unnamed) and the socket's inode; the peer ``("* ", "1235")``,
    with its inode (0: none; ``-`` where the backend cannot know it).
    """
    if sock.proto == "unix":
        if local:
            path = sock.local.path
            return (f"{unix_name(path) if isinstance(path, str) else '*'} ", str(sock.inode))
        peer = end.peer_inode if end is not None else None
        return ("* ", str(peer) if isinstance(peer, int) else "-")
    if end is None or not isinstance(end.address, str) or not isinstance(end.port, int):
        return ("?:", "?")
    host = _host_text(sock, end.address, resolve)
    if local and sock.interface is not None:
        host = f"{host}%{escape(sock.interface, backslash=False)}"  # a record's device name, escaped once
    return (f"{host}:", _port_text(end.port, sock.proto, resolve))


def unix_name(path: str) -> str:
    r"""A UNIX socket's name as its column shows it: escaped, and a space written ``\x20``.

    ss writes a name as it is, so a path holding `` users:(("sshd",pid=1,fd=3))``
    would read as an owner on its line; here a name is always one word of the
    line. A process name needs no such care: it stands inside quotes that it
    cannot close (:func:`process_owner`).

    >>> print(unix_name('/tmp/x users:(("sshd",pid=1,fd=3))'))
    /tmp/x\x20users:(("sshd",pid=1,fd=3))
    """
    return escape(path, backslash=False).replace(" ", "\\x20")


def local_text(sock: Socket, resolve: bool = False) -> str:
    """The Local Address:Port text of ss: ``0.0.0.0%lo:7401``, ``*:80``, ``/run/a.sock 1234``."""
    return "".join(endpoint_columns(sock, sock.local, True, resolve))


def peer_text(sock: Socket, resolve: bool = False) -> str:
    """The Peer Address:Port text of ss: ``0.0.0.0:*``, ``[::]:*``, ``* 1235``."""
    return "".join(endpoint_columns(sock, sock.remote, False, resolve))


def process_owner(process: Process, program_only: bool = False) -> str:
    r"""One owner as ss writes it, ``("nginx",pid=10,fd=6)``, its name escaped
    (``program_only``: ``("nginx")``, a role's listener, which no pid is part of).

    A process names itself (prctl), so its name may hold anything: control
    characters are escaped (its backslashes are doubled in the record already),
    and a quote is written ``\x22``, so a name can never close its quotes to
    forge a second owner, whatever the backslashes around it.

    >>> print(process_owner(Process(7, 'x",pid=1),("sshd', 3)))
    ("x\x22,pid=1),(\x22sshd",pid=7,fd=3)
    """
    name = escape(process.name, backslash=False).replace('"', "\\x22")
    if program_only:
        return f'("{name}")'
    fd = "" if process.fd is None else f",fd={process.fd}"  # None: a saved netstat -p shows none
    return f'("{name}",pid={process.pid}{fd})'


def process_text(sock: Socket, program_only: bool = False) -> str:
    """ss's process column: ``users:(("nginx",pid=10,fd=6),...)`` (``program_only``: names only)."""
    if not sock.processes:
        return ""
    inner = ",".join(process_owner(p, program_only) for p in sock.processes)
    return f"users:({inner})"


def socket_line(sock: Socket, program_only: bool = False) -> str:
    """One socket on one line, for diff output: netid, state, local, peer, processes
    (``program_only``: their names, as a role comparison's listeners hold them)."""
    parts = [netid(sock), sock.state, local_text(sock), peer_text(sock)]
    owners = process_text(sock, program_only)
    if owners:
        parts.append(owners)
    return escape(" ".join(parts), backslash=False)  # the last guard: one socket, one line


def _processes_detail(old: Socket, new: Socket) -> str:
    """Which owners came and went, e.g. ``+("b",pid=2,fd=3) -("a",pid=1,fd=3)``."""
    before, after = set(old.processes), set(new.processes)
    texts = [f"+{process_owner(p)}" for p in sorted(after - before)]
    texts += [f"-{process_owner(p)}" for p in sorted(before - after)]
    return " ".join(texts)


def _value_text(sock: Socket, name: str) -> str:
    """One compared field's value in socket notation (never a program's repr)."""
    if name == "remote":
        return peer_text(sock)
    value = getattr(sock, name)
    return "-" if value is None else escape(str(value), backslash=False)


def change_detail(old: Socket, new: Socket, fields: Sequence[str]) -> str:
    """``state: LISTEN → CLOSE; inode: 10 → 12`` for the fields that changed."""
    parts = []
    for name in fields:
        if name in ("processes", "programs"):
            parts.append(f"{name}: {_processes_detail(old, new)}")
        else:
            parts.append(f"{name}: {_value_text(old, name)} → {_value_text(new, name)}")
    return "; ".join(parts)


def socket_where(sock: Socket) -> str:
    """What names a socket in a change line: netid, local and remote."""
    where = " ".join([netid(sock), local_text(sock), peer_text(sock)])
    return escape(where, backslash=False)


def interface_line(interface: Interface) -> str:
    """An interface on one line, ``ip link`` style: ``interface eth0 <BROADCAST,UP> UP mtu 1500 ...``."""
    parts = ["interface", interface.name, f"<{','.join(interface.flags)}>"]
    if interface.operstate is not None:
        parts.append(interface.operstate)
    if interface.mtu is not None:
        parts.append(f"mtu {interface.mtu}")
    if interface.mac is not None:
        parts.append(f"link {interface.mac}")
    parts += interface.addresses or ()
    return escape(" ".join(parts), backslash=False)  # a record's name: its backslashes are doubled


# A line names main and local; any other table, 253 (RT_TABLE_DEFAULT) too, stays a number.
_TABLE_NAMES = {RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local"}


def route_line(route: Route) -> str:
    """A route on one line, ``ip route`` style: ``route 10.0.0.0/24 via 10.0.0.1 dev eth0 metric 100``."""
    parts = ["route"]
    if route.type is not None and route.type != "unicast":
        parts.append(route.type)
    parts.append(route.destination)
    if route.nexthops is None:
        parts.extend(_hop_words(route.gateway, route.dev))
    parts.append(f"table {_TABLE_NAMES.get(route.table, route.table)}")
    if route.protocol is not None:
        parts.append(f"proto {route.protocol}")
    if route.scope is not None:
        parts.append(f"scope {route.scope}")
    if route.metric is not None:
        parts.append(f"metric {route.metric}")
    if route.nexthops is not None:
        parts.append(_nexthops_text(route.nexthops))
    return escape(" ".join(parts), backslash=False)  # a record's device name: its backslashes are doubled


def _hop_words(gateway: str | None, dev: str | None) -> list[str]:
    return ([] if gateway is None else [f"via {gateway}"]) + ([] if dev is None else [f"dev {dev}"])


def _nexthops_text(hops: tuple[Nexthop, ...]) -> str:
    """``nexthop via 10.0.0.1 dev eth0 weight 1 nexthop via ...``, as ``ip route`` writes them."""
    return " ".join(" ".join(["nexthop", *_hop_words(h.gateway, h.dev), f"weight {h.weight}"]) for h in hops)


def _plain(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) or "(none)"
    return str(value)


def record_detail(change: Change[Interface] | Change[Route]) -> str:
    """``operstate: UP → DOWN; addresses: +10.0.0.2/24; counters: rx_packets +5``."""
    from ..differ import counter_deltas

    parts = []
    for name in change.fields:
        before, after = getattr(change.old, name), getattr(change.new, name)
        if name == "counters" and isinstance(change.old, Interface) and isinstance(change.new, Interface):
            moved = counter_deltas(change.old, change.new)
            parts.append("counters: " + ", ".join(f"{key} {delta:+d}" for key, delta in moved.items()))
        elif name in ("addresses", "flags"):
            came = [f"+{item}" for item in after if item not in before]
            went = [f"-{item}" for item in before if item not in after]
            parts.append(f"{name}: {' '.join(came + went)}")
        elif name == "nexthops":
            parts.append(f"nexthops: {_nexthops_text(before)} → {_nexthops_text(after)}")
        else:
            parts.append(f"{name}: {_plain(before)} → {_plain(after)}")
    return escape("; ".join(parts), backslash=False)  # a record's values: backslashes doubled already


def summary_line(result: Diff) -> str:
    """``N new, N closed, N changed``, then ``; interfaces: ...; routes: ...`` for sections that differ."""
    counts = result.summary
    text = f"{counts['new']} new, {counts['closed']} closed, {counts['changed']} changed"
    for name, section in (("interfaces", result.interfaces), ("routes", result.routes)):
        if section:
            added, removed, changed = section.summary.values()
            text += f"; {name}: {added} added, {removed} removed, {changed} changed"
    return text
