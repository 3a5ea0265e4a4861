"""Text renderings of sockets: an ss-like table and one-line forms for diffs."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket as _socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .model import Endpoint, Interface, Nexthop, Process, Route, Socket

if TYPE_CHECKING:
    from .differ import Change, Diff
    from .snapshots import Scope

__all__ = [
    "change_detail",
    "details_text",
    "escape",
    "interface_line",
    "local_text",
    "netid",
    "peer_text",
    "process_owner",
    "process_text",
    "record_detail",
    "route_line",
    "route_tables_note",
    "scope_note",
    "socket_line",
    "socket_where",
    "sockets_summary",
    "summary_line",
    "table",
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


def escape(text: str, backslash: bool = True) -> str:
    r"""``text`` with every character that is not plainly visible escaped, one line, no CI command.

    ``\n``, ``\t``, ``\r``, else ``\xNN`` (``\uNNNN``, ``\UNNNNNNNN`` beyond
    ASCII, so a character never reads as a byte a record escaped); a backslash
    is doubled so an escape cannot be forged. Pass ``backslash=False`` for a
    record's names, which carry their backslashes doubled already (SPEC.md):
    escaping is then idempotent, and applying it twice does no harm. ``##[``
    and a leading ``::``, which GitHub's runner would read as a workflow
    command, are written ``#\x23[`` and ``\x3a:``.

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
    if ":" in text:
        leading = _LEADING_COMMAND.match(text)
        if leading is not None:
            return text[: leading.end() - 1] + "\\x3a" + text[leading.end() :]
    return text


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


def _columns(sock: Socket, end: Endpoint | None, local: bool, resolve: bool) -> tuple[str, str]:
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
    return "".join(_columns(sock, sock.local, True, resolve))


def peer_text(sock: Socket, resolve: bool = False) -> str:
    """The Peer Address:Port text of ss: ``0.0.0.0:*``, ``[::]:*``, ``* 1235``."""
    return "".join(_columns(sock, sock.remote, False, resolve))


def process_owner(process: Process) -> str:
    r"""One owner as ss writes it, ``("nginx",pid=10,fd=6)``, its name escaped.

    A process names itself (prctl), so its name may hold anything: control
    characters are escaped (its backslashes are doubled in the record already),
    and a quote is written ``\x22``, so a name can never close its quotes to
    forge a second owner, whatever the backslashes around it.

    >>> print(process_owner(Process(7, 'x",pid=1),("sshd', 3)))
    ("x\x22,pid=1),(\x22sshd",pid=7,fd=3)
    """
    name = escape(process.name, backslash=False).replace('"', "\\x22")
    return f'("{name}",pid={process.pid},fd={process.fd})'


def process_text(sock: Socket) -> str:
    """ss's process column: ``users:(("nginx",pid=10,fd=6),...)``."""
    if not sock.processes:
        return ""
    inner = ",".join(process_owner(p) for p in sock.processes)
    return f"users:({inner})"


def details_text(sock: Socket) -> str:
    """What ``ss -e`` adds that a record holds: ``uid:1000 ino:4242 v6only:1``.

    As in ss, uid 0 is not written (nor an unknown one), nor the inode of a
    UNIX socket, which its Local column already shows.
    """
    parts = []
    if sock.uid:
        parts.append(f"uid:{sock.uid}")
    if sock.proto != "unix":
        parts.append(f"ino:{sock.inode}")
    if sock.v6only is not None:
        parts.append(f"v6only:{int(sock.v6only)}")
    return " ".join(parts)


def _queue(value: int | None) -> str:
    return "-" if value is None else escape(str(value), backslash=False)


# ss's columns (misc/ss.c, ``columns``): the header, whether the cells are
# right-aligned, and the delimiter before them. An address column ends in its
# ":" (or " " for UNIX) and the port column follows it without a gap.
_HEADER = (
    ("Netid", False, ""),
    ("State", False, " "),
    ("Recv-Q", False, " "),
    ("Send-Q", False, " "),
    ("Local Address:", True, " "),
    ("Port", False, ""),
    ("Peer Address:", True, " "),
    ("Port", False, ""),
)


def table(
    sockets: Sequence[Socket],
    processes: bool = False,
    resolve: bool = False,
    header: bool = True,
    extended: bool = False,
) -> str:
    """An ss-like table, laid out as ss lays its columns out, sized to their contents.

    ``extended`` adds ss -e's details (:func:`details_text`) after the process
    column; ``header=False`` leaves the header line out (ss -H).
    """
    columns = list(_HEADER)
    if processes:
        columns.append(("Process", False, " "))
    if extended:
        columns.append(("", False, " "))
    rows = [[name for name, _, _ in columns]] if header else []
    for sock in sockets:
        row = [
            netid(sock),
            sock.state,
            _queue(sock.recv_q),
            _queue(sock.send_q),
            *_columns(sock, sock.local, True, resolve),
            *_columns(sock, sock.remote, False, resolve),
        ]
        if processes:
            row.append(process_text(sock))
        if extended:
            row.append(details_text(sock))
        rows.append(row)
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = []
        for (_, right, delimiter), cell, width in zip(columns, row, widths, strict=True):
            cells.append(delimiter + (cell.rjust(width) if right else cell.ljust(width)))
        # Every cell went through escape() in its notation function; this is the
        # last guard for one that did not, so that one socket stays one line.
        lines.append(escape("".join(cells).rstrip(), backslash=False))
    return "\n".join(lines)


def socket_line(sock: Socket) -> str:
    """One socket on one line, for diff output: netid, state, local, peer, processes."""
    parts = [netid(sock), sock.state, local_text(sock), peer_text(sock)]
    owners = process_text(sock)
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
        if name == "processes":
            parts.append(f"processes: {_processes_detail(old, new)}")
        else:
            parts.append(f"{name}: {_value_text(old, name)} → {_value_text(new, name)}")
    return "; ".join(parts)


def socket_where(sock: Socket) -> str:
    """What names a socket in a change line: netid, local and remote."""
    where = " ".join([netid(sock), local_text(sock), peer_text(sock)])
    return escape(where, backslash=False)


# Orphans: full TCP sockets their process closed (inode 0), still finishing. A
# FIN_WAIT2 socket with inode 0 is not one: the kernel turns an orphan that
# reaches FIN_WAIT2 into a timewait sock (tcp_rcv_state_process, tcp_time_wait
# with substate TCP_FIN_WAIT2, whenever tcp_fin_timeout is at most TIME_WAIT's
# 60 s, the default), which ss lists as FIN-WAIT-2 and sockstat counts in ``tw``.
_ORPHAN_STATES = frozenset({"FIN_WAIT1", "CLOSING", "LAST_ACK"})
# The kernel's Tcp CurrEstab (RFC 1213's tcpCurrEstab, Linux 6.10 on): ESTABLISHED or CLOSE_WAIT.
_CURRENT_ESTABLISHED = frozenset({"ESTABLISHED", "CLOSE_WAIT"})


def _timewait(sock: Socket) -> bool:
    """An inet_timewait_sock: TIME_WAIT, or FIN_WAIT2 without an inode (its substate)."""
    return sock.state == "TIME_WAIT" or (sock.state == "FIN_WAIT2" and sock.inode == 0)


def _full(sock: Socket) -> bool:
    """A full socket, what the kernel's ``sockets: used`` and TCP ``inuse`` count (no mini-socket)."""
    return sock.proto != "tcp" or not (_timewait(sock) or sock.state == "SYN_RECV")


def sockets_summary(sockets: Sequence[Socket], kernel: Mapping[str, int] | None = None) -> str:
    """``ss -s``'s layout, counted from ``sockets``, then what ss -s would say and why it differs.

    Total counts full sockets, as the kernel's ``sockets: used`` does: not the
    timewait and SYN_RECV mini-sockets (TIME_WAIT, and FIN_WAIT2 without an
    inode: a host with 390 TIME_WAIT sockets has 390 fewer than it lists). As
    in ss, the Transport table's TCP figure leaves them out too; "timewait"
    counts both kinds, as sockstat's ``tw``; "estab" is the kernel's
    CurrEstab (ESTABLISHED and CLOSE_WAIT); "orphaned" are TCP sockets closed
    by their process and still finishing (inode 0 in FIN_WAIT1, CLOSING or
    LAST_ACK: a connection waiting to be accepted has no inode yet, and is not
    one). ss reads /proc/net/sockstat instead,
    whose Total also counts sockets no table lists (netlink, packet, never
    bound) and whose TCP ``alloc`` and ``orphan``, behind ss's TCP total, closed
    and orphaned, count the TCP sockets of every network namespace. ``kernel``
    (:func:`sockdiff.backends.proc.sockets.read_counters`, for a live source) gives
    ss's own figures on a line of their own. The FRAG line is left out.
    """
    tcp = [s for s in sockets if s.proto == "tcp"]
    timewait = sum(1 for s in tcp if _timewait(s))
    orphaned = sum(1 for s in tcp if s.inode == 0 and s.state in _ORPHAN_STATES)
    established = sum(1 for s in tcp if s.state in _CURRENT_ESTABLISHED)
    full = [s for s in sockets if _full(s)]
    lines = [
        f"Total: {len(full)}",
        f"TCP:   {len(tcp)} (estab {established},"
        f" closed {sum(1 for s in tcp if s.state == 'CLOSE')}, orphaned {orphaned}, timewait {timewait})",
        "",
        "Transport Total     IP        IPv6",
    ]
    rows: dict[str, tuple[int, int]] = {}
    for proto in ("raw", "udp", "tcp"):
        counted = [s for s in full if s.proto == proto]
        rows[proto.upper()] = (
            sum(1 for s in counted if s.family == "inet"),
            sum(1 for s in counted if s.family == "inet6"),
        )
    rows["INET"] = (sum(v4 for v4, _ in rows.values()), sum(v6 for _, v6 in rows.values()))
    for name, (v4, v6) in rows.items():
        lines.append(f"{name}\t  {v4 + v6:<9} {v4:<9} {v6:<9}".rstrip())
    lines += ["", *_ss_summary_note(kernel)]
    return "\n".join(lines) + "\n"


_SS_COUNTERS = (
    "sockets used",
    "TCP inuse",
    "TCP orphan",
    "TCP tw",
    "TCP alloc",
    "TCP6 inuse",
    "Tcp CurrEstab",
)


def _ss_summary_note(kernel: Mapping[str, int] | None) -> list[str]:
    """How ss -s's Total and TCP lines differ from the counts above; ss's own, where known."""
    lines = [
        "Counted from the sockets listed. ss -s's Total also counts sockets no table lists",
        "(netlink, packet, never bound); its TCP total, closed and orphaned, from",
        "/proc/net/sockstat's alloc and orphan, count every network namespace's TCP sockets.",
    ]
    if kernel is None or not all(name in kernel for name in _SS_COUNTERS):
        return lines
    used, inuse, orphan, tw, alloc, inuse6, estab = (kernel[name] for name in _SS_COUNTERS)
    # iproute2's print_summary, figure for figure.
    closed = alloc - (inuse + inuse6 - tw)
    return [
        *lines,
        f"ss -s says: Total: {used}, TCP: {alloc + tw} (estab {estab}, closed {closed},"
        f" orphaned {orphan}, timewait {tw})",
    ]


def interface_line(interface: Interface) -> str:
    """An interface on one line, ``ip link`` style: ``interface eth0 <BROADCAST,UP> UP mtu 1500 ...``."""
    parts = ["interface", interface.name, f"<{','.join(interface.flags)}>"]
    if interface.operstate is not None:
        parts.append(interface.operstate)
    if interface.mtu is not None:
        parts.append(f"mtu {interface.mtu}")
    if interface.mac is not None:
        parts.append(f"link {interface.mac}")
    parts += interface.addresses
    return escape(" ".join(parts), backslash=False)  # a record's name: its backslashes are doubled


_TABLE_NAMES = {254: "main", 255: "local"}


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
    from .differ import counter_deltas

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


def scope_note(scope: Scope) -> str:
    """What a comparison narrowed to: ``compared only tcp sockets matching 'sport = :80' ...``."""
    what = "/".join(scope.protos) if scope.protos else "no"
    matching = f" matching {scope.filter!r}" if scope.filter is not None else ""
    return escape(f"compared only {what} sockets{matching}: what both sides cover")


def sections_note(result: Diff) -> str | None:
    """The sections one side took and the other did not, so not compared (None: there are none).

    ``not compared: sockets (i.json was taken with --sections), interfaces (s.json was taken ...)``.
    """
    skipped = []
    for name in ("sockets", "interfaces", "routes"):
        before, after = getattr(result.old, name), getattr(result.new, name)
        if (before is None) != (after is None):
            lacking = result.old if before is None else result.new
            skipped.append(f"{name} ({lacking.origin} has none: {lacking.why_not_taken()})")
    return escape("not compared: " + ", ".join(skipped)) if skipped else None


_TABLE_NAMES = {254: "main", 255: "local"}


def route_tables_note(result: Diff) -> str | None:
    """The routing tables compare left out because a side read from /proc cannot see or number them.

    ``routes compared in IPv4's main table and IPv6's main and local tables only: ...``
    (None: every table either side holds was compared).
    """
    from .backends import MAIN_TABLE_ONLY, route_tables
    from .differ import common_route_tables

    if result.routes is None:
        return None
    common = common_route_tables(result.old, result.new)
    sides = [(snap, route_tables(snap.header.sources)) for snap in (result.old, result.new)]
    parts = []
    for family, label in (("inet", "IPv4"), ("inet6", "IPv6")):
        tables = common[family]
        if tables is None or all(held[family] == tables for _, held in sides):
            continue
        names = [_TABLE_NAMES[t] for t in sorted(tables) if t in _TABLE_NAMES]
        parts.append(f"{label}'s {' and '.join(names)} table{'s' if len(names) > 1 else ''}")
    if not parts:
        return None
    reasons = []
    for snap, held in sides:
        if held["inet"] is None:
            continue
        if snap.header.sources.get("routes") == MAIN_TABLE_ONLY:
            reasons.append(f"{snap.origin}'s come from /proc, main tables only (an older file)")
        else:
            reasons.append(
                f"{snap.origin}'s come from /proc, which shows IPv4's main table only"
                " and numbers no IPv6 table but main and local"
            )
    return escape(f"routes compared in {' and '.join(parts)} only: {'; '.join(reasons)}")


def summary_line(result: Diff) -> str:
    """``N new, N closed, N changed``, then ``; interfaces: ...; routes: ...`` for sections that differ."""
    counts = result.summary
    text = f"{counts['new']} new, {counts['closed']} closed, {counts['changed']} changed"
    for name, section in (("interfaces", result.interfaces), ("routes", result.routes)):
        if section:
            added, removed, changed = section.summary.values()
            text += f"; {name}: {added} added, {removed} removed, {changed} changed"
    return text
