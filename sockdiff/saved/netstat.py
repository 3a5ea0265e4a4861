"""What net-tools' ``netstat`` printed, read back into socket records.

net-tools 1.60 to 2.10, ``-t -u -w -x -a -l -n -p -e -o -W``: the "Active
Internet connections" and "Active UNIX domain sockets" blocks, each with the
columns its header names (``User`` and ``Inode`` with -e, ``PID/Program name``
with -p, ``Timer`` with -o). The block's title says which states it shows
("servers and established", "w/o servers", "only servers"). netstat writes an
IPv4-mapped address of a ``tcp6`` socket as the IPv4 address, shows no UNIX
peer, and cuts ``PID/Program name`` at 19 characters (the name is then a
prefix of the process's; see :func:`sockdiff.differ.same_process_name`) and a
UNIX path at its first blank (net-tools reads /proc/net/unix with scanf).

>>> listing = read("Active Internet connections (only servers)\\n"
...                "Proto Recv-Q Send-Q Local Address Foreign Address State\\n"
...                "tcp6 0 0 :::22 :::* LISTEN\\n")
>>> sock = listing.sockets[0]
>>> sock.family, sock.local.address, sock.local.port, listing.filter
('inet6', '::', 22, 'state listening or not proto unix and state close')
"""

from __future__ import annotations

import re

from ..model import TCP_STATES, Endpoint, Process, escape_name, inet, unix_name
from . import tables
from .common import (
    Listing,
    Unreadable,
    address_of,
    bad_listing,
    check_owner,
    check_repeat,
    is_number,
    lines_of,
    port_of,
    process,
    uid_of,
)

__all__ = ["looks_like", "read"]

_TITLES = ("Active Internet connections", "Active UNIX domain sockets")
# netstat -i's and -r's titles: read by :mod:`.tables`.
_TABLE_TITLES = tuple(tables.TITLES)
_PROTOS = {
    "tcp": ("tcp", "inet"),
    "tcp6": ("tcp", "inet6"),
    "udp": ("udp", "inet"),
    "udp6": ("udp", "inet6"),
    "udpl": ("udp", "inet"),
    "udpl6": ("udp", "inet6"),
    "raw": ("raw", "inet"),
    "raw6": ("raw", "inet6"),
}
_INET_TYPES = {"tcp": "stream", "udp": "dgram", "raw": "raw"}
_STATE_WORDS = frozenset(TCP_STATES.values()) | {"UNKNOWN"}
_UNIX_STATE_WORDS = frozenset({"FREE", "LISTENING", "CONNECTING", "CONNECTED", "DISCONNECTING", "UNKNOWN"})
_UNIX_TYPES = {"STREAM": "stream", "DGRAM": "dgram", "SEQPACKET": "seqpacket", "RAW": "raw"}
# The titles' parentheses: which states the block shows (-a, none, -l). net-tools'
# -l shows listening TCP and UNIX sockets and the UDP and raw sockets without a
# peer (state CLOSE), but no unconnected UNIX socket (it shows UNIX sockets with
# SO_ACCEPTCON only).
_SCOPES = {
    "servers and established": None,
    "w/o servers": "state connected",
    "only servers": "state listening or not proto unix and state close",
}
# The Local and Foreign Address columns without -W: net-tools cuts an address so that
# address:port is at most 23 characters. An IPv6 one that fills them may be cut.
_ADDRESS_WIDTH = 23
# PROGNAME_WIDTH (net-tools netstat.c): "PID/name" cut to 19 characters, padded to 20.
_PROGRAM_WIDTH = 20
_TIMER = re.compile(r"\s+(?:off|on|keepalive|timewait|probe|unkn-[0-9]+)\s+\([^)]*\)\s*$")
_UNIX_ROW = re.compile(
    r"unix\s+(?P<refcnt>[0-9]+)\s+\[(?P<flags>[^\]]*)\]\s+(?P<type>\S+)\s+"
    r"(?:(?P<state>[A-Z]+)\s+)?(?P<inode>[0-9]+)(?P<rest>(?:\s.*)?)$"
)


def looks_like(first: str) -> bool:
    """Whether a listing's first line is netstat's: a block title, or a row.

    >>> looks_like("Active Internet connections (only servers)")
    True
    >>> looks_like("tcp 0 0 0.0.0.0:22 0.0.0.0:* LISTEN")
    True
    """
    if first.startswith(_TITLES + _TABLE_TITLES):
        return True
    words = first.split()
    return len(words) >= 5 and words[0] in _PROTOS and is_number(words[1]) and is_number(words[2])


class _Block:
    def __init__(self, kind: str, scope: str | None, wide: bool = False) -> None:
        self.kind = kind  # "inet" or "unix"
        self.scope = scope
        self.columns: list[str] | None = None
        self.path_column = False
        self.table = ""  # kind "table": netstat -i's "interfaces", -r's "inet", -6r's "inet6"
        self.rows = 0
        self.wide = wide  # -W: an address column wider than netstat's 23 characters (none is cut)


def read(text: str, lenient: bool = False, origin: str = "<listing>") -> Listing:
    """The sockets a netstat listing shows; an unreadable line raises (or, ``lenient``, is counted)."""
    from . import fail

    listing = Listing("netstat", has_sockets=False)
    # -W's lines: some address longer than the column netstat cuts addresses to without it.
    wide = any(
        len(address) > _ADDRESS_WIDTH and ":" in address
        for row in text.split("\n")
        if row.startswith(tuple(_PROTOS))
        for address in row.split()[3:5]
    )
    block: _Block | None = None
    blocks: list[_Block] = []
    seen: dict[str, int] = {}  # each line read, and where it was first
    scopes: set[str | None] = set()
    routes = tables.Routes()
    for number, line in lines_of(text):
        if not line.strip():
            continue
        if line.startswith(_TABLE_TITLES):
            if line.strip() not in tables.TITLES:
                raise bad_listing(origin, number, 1, "a table's title followed by more text")
            block = _Block("table", None)
            block.table = tables.TITLES[line.strip()]
            if block.table == "interfaces" and listing.interfaces is None:
                listing.interfaces = []
            continue
        if block is not None and block.kind == "table":
            try:
                _table_line(listing, routes, block, line)
            except Unreadable as err:
                fail(listing, origin, number, err, lenient)
            continue
        listing.has_sockets = True
        if line.startswith(_TITLES):
            try:
                check_repeat(seen, number, line.partition("(")[0], True)  # one block of each kind
            except Unreadable as err:
                fail(listing, origin, number, err, lenient)
            kind = "inet" if line.startswith(_TITLES[0]) else "unix"
            title = line.partition("(")[2].rpartition(")")[0]
            block = _Block(kind, _SCOPES.get(title), wide)
            blocks.append(block)
            scopes.add(block.scope)
            if kind == "unix":
                listing.protos.add("unix")  # the UNIX block lists UNIX sockets, with rows or none
            continue
        if line.startswith("Proto "):
            if block is None:  # a header without its title: servers and established
                block = _Block("unix" if "RefCnt" in line else "inet", None, wide)
                blocks.append(block)
                scopes.add(None)
            block.columns = _header_columns(line)
            continue
        if line.startswith(("(Not all processes", " will not be shown", "(No info could be read")):
            continue  # netstat -p as a user: a note, not a row
        try:
            if block is None:  # rows without a title or header
                block = _Block("unix" if line.startswith("unix") else "inet", None, wide)
                scopes.add(None)
            block.rows += 1
            # A UNIX row's I-Node, -e's Inode: one socket's (an inet row of inode 0, in
            # TIME_WAIT, is one connection's all the same).
            check_repeat(seen, number, line, block.kind == "unix" or "Inode" in (block.columns or ()))
            if block.kind == "unix" or line.startswith("unix "):
                _unix_row(listing, line, block)
            else:
                _inet_row(listing, line, block)
        except Unreadable as err:
            fail(listing, origin, number, err, lenient)
    # An Internet block without a row: netstat titles -t, -u and -w alike.
    listing.protos_unknown = any(b.kind == "inet" and not b.rows for b in blocks)
    if len(scopes) == 1:
        listing.filter = scopes.pop()
    if routes.families:
        listing.routes = tables.routes_of(routes)
        listing.route_families = tuple(f for f in ("inet", "inet6") if f in routes.families)
        listing.host_names |= routes.host_names
    return listing


def _table_line(listing: Listing, routes: tables.Routes, block: _Block, line: str) -> None:
    """A line of netstat -i's or -r's table: its header, or a row."""
    if block.columns is None:
        block.columns = tables.table_columns(block.table, line)
        if block.columns is None:
            raise Unreadable("the table's header is missing (Iface ... or Destination ...)")
        if block.table != "interfaces":
            routes.families.add(block.table)  # an empty table is a table that was listed
        return
    if block.table == "interfaces":
        interface, down = tables.interface_row(line, block.columns)
        assert listing.interfaces is not None
        listing.interfaces.append(interface)
        listing.every_interface |= down
    else:
        tables.read_row(routes, block.table, block.columns, line)


def _header_columns(line: str) -> list[str]:
    """The optional columns a header names, in order."""
    return [name for name in ("State", "User", "Inode", "PID/Program name", "Timer", "Path") if name in line]


def _program(field: str) -> tuple[Process, ...]:
    """The owner in ``PID/Program name`` (``-``: not known)."""
    field = field.strip()
    if field in ("", "-"):
        return ()
    pid, slash, name = field.partition("/")
    if not slash or not is_number(pid):
        raise Unreadable(f"{field!r} is not PID/Program name")
    return (check_owner(process(escape_name(name.encode("utf-8", "surrogateescape")), pid, None)),)


def _split_endpoint(text: str) -> tuple[str, str]:
    host, colon, port = text.rpartition(":")
    if not colon or not port:
        raise Unreadable(f"{text!r} is not address:port")
    return host, port


def _inet_row(listing: Listing, line: str, block: _Block) -> None:
    columns = block.columns or ["State"]
    timer = _TIMER.search(line) if "Timer" in columns else None
    body = line[: timer.start()] if timer else line
    words = list(re.finditer(r"\S+", body))
    if len(words) < 5:
        raise Unreadable("an inet row holds Proto, Recv-Q, Send-Q, Local and Foreign Address", len(line) + 1)
    kind = words[0].group()
    if kind not in _PROTOS:
        raise Unreadable(f"{kind!r} is not a protocol netstat shows", 1)
    proto, family = _PROTOS[kind]
    if not (is_number(words[1].group()) and is_number(words[2].group())):
        raise Unreadable("Recv-Q and Send-Q are not numbers", words[1].start() + 1)
    at = 5
    state = "CLOSE"
    if "State" in columns:
        word = words[at].group() if len(words) > at else ""
        if proto == "raw" and is_number(word):
            state = TCP_STATES.get(int(word), "UNKNOWN")
            at += 1
        elif word in _STATE_WORDS:
            state = word
            at += 1
        elif proto == "tcp":
            raise Unreadable(
                f"{word!r} is not a TCP state", words[at].start() + 1 if len(words) > at else len(line)
            )
    uid = inode = None
    for name in ("User", "Inode"):
        if name in columns:
            if len(words) <= at:
                raise Unreadable(f"the line ends before its {name} column", len(line) + 1)
            if name == "User":
                uid = uid_of(words[at].group())
            elif is_number(words[at].group()):
                inode = int(words[at].group())
            else:
                raise Unreadable(f"inode {words[at].group()!r} is not a number", words[at].start() + 1)
            at += 1
    processes: tuple[Process, ...] = ()
    if "PID/Program name" in columns and len(words) > at:
        start = words[at].start()
        processes = _program(body[start : start + _PROGRAM_WIDTH])
    local_host, local_port = _split_endpoint(words[3].group())
    peer_host, peer_port = _split_endpoint(words[4].group())
    if not block.wide:
        for column in words[3:5]:
            if len(column.group()) == _ADDRESS_WIDTH and ":" in column.group().rpartition(":")[0]:
                raise Unreadable(
                    f"{column.group()!r} fills netstat's {_ADDRESS_WIDTH}-character address column: an IPv6"
                    " address cut short, which no socket can be paired by (take netstat -W)",
                    column.start() + 1,
                )
    if ":" in local_host:
        family = "inet6"  # net-tools 1.60 calls an IPv6 socket tcp, not tcp6
    listing.add(
        proto,
        family,
        _INET_TYPES[proto],
        state,
        _inet(local_host, local_port, proto, family),
        _inet(peer_host, peer_port, proto, family),
        inode or 0,
        uid,
        (int(words[1].group()), int(words[2].group())),
        processes,
    )


def _inet(host: str, port: str, proto: str, family: str) -> Endpoint:
    return inet(address_of(host, family), port_of(port, proto))


def _unix_row(listing: Listing, line: str, block: _Block) -> None:
    row = _UNIX_ROW.match(line)
    if row is None:
        raise Unreadable("a UNIX row holds: unix, RefCnt, [ Flags ], Type, State, I-Node")
    state_word = row["state"] or ""
    if state_word and state_word not in _UNIX_STATE_WORDS:
        raise Unreadable(f"{state_word!r} is not a UNIX state netstat shows", row.start("state") + 1)
    rest = row["rest"].lstrip(" ")
    columns = block.columns or ["Path"]
    processes: tuple[Process, ...] = ()
    if "PID/Program name" in columns:
        processes = _program(rest[:_PROGRAM_WIDTH])
        rest = rest[_PROGRAM_WIDTH:].lstrip(" ")
    path = rest.strip()
    sock_type = _UNIX_TYPES.get(row["type"], "unknown")
    listing.add(
        "unix",
        "unix",
        sock_type,
        state_word or "UNCONNECTED",
        unix_name(escape_name(path.encode("utf-8", "surrogateescape")) if path else None),
        None,
        int(row["inode"]),
        None,
        (None, None),
        processes,
    )
