"""What iproute2's ``ss`` printed, read back into socket records.

Every ss of the last ten years: with or without the ``Netid`` and ``State``
columns (ss leaves them out when one protocol or one state was asked for) and
the header (``-H``); ``-p``'s ``users:(("name",pid=N,fd=N),...)`` with any
name, ``-e``'s ``ino:`` ``uid:`` ``v6only:``, and whatever else ``-o -m -i -Z
--cgroup -O`` add (read past); ``-i``'s and ``-m``'s continuation lines (they
start with a tab) are skipped. Addresses: ``0.0.0.0``, ``[::1]``,
``[::ffff:1.2.3.4]``, ``*`` (IPv6 and IPv4 both: v6only off; the IPv4 wildcard
in ss from before 2017, whose IPv6 addresses have no brackets), ``%dev``.

>>> listing = read("Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\\n"
...                "tcp LISTEN 0 128 0.0.0.0%lo:22 0.0.0.0:*\\n")
>>> sock = listing.sockets[0]
>>> sock.state, sock.local.address, sock.local.port, sock.interface
('LISTEN', '0.0.0.0', 22, 'lo')
"""

from __future__ import annotations

import re
import socket

from ..model import Endpoint, Process, escape_name, inet, unix_name, unix_peer
from .common import (
    Listing,
    Unreadable,
    address_of,
    check_owner,
    check_repeat,
    is_number,
    lines_of,
    port_of,
    process,
)

__all__ = ["LISTENING_FILTER", "looks_like", "read"]

# ss's state words (misc/ss.c, sstate_name) -> SPEC.md's, for inet and UNIX sockets.
_INET_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "UNCONN": "CLOSE",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
    "UNKNOWN": "UNKNOWN",
}
_UNIX_STATES = {
    "ESTAB": "CONNECTED",
    "SYN-SENT": "CONNECTING",
    "LISTEN": "LISTENING",
    "UNCONN": "UNCONNECTED",
}
_TCP_ONLY = frozenset(_INET_STATES) - {"ESTAB", "UNCONN", "UNKNOWN"}
_UNIX_TYPES = {"u_str": "stream", "u_dgr": "dgram", "u_seq": "seqpacket"}
_INET_TYPES = {"tcp": "stream", "udp": "dgram", "raw": "raw"}
# Netids ss knows that sockdiff does not keep (netlink, packet, SCTP, ...): read past.
_OTHER_NETIDS = frozenset(
    {"nl", "p_raw", "p_dgr", "sctp", "dccp", "mptcp", "tipc", "v_str", "v_dgr", "v_seq", "xdp", "u_raw"}
)
_NETIDS = frozenset(_UNIX_TYPES) | frozenset(_INET_TYPES) | _OTHER_NETIDS
# The listening states: what ss -l shows (and what a listing without a State column, ss -l's, holds).
_LISTENING = frozenset({"LISTEN", "UNCONN"})
# ss -l as a filter: LISTEN and CLOSE (ss.c's -l), so unconnected UDP, raw and UNIX
# sockets too; ss's own "state listening" is LISTEN alone and would leave them out.
LISTENING_FILTER = "state listening state close"

_UNIX_TAIL = re.compile(r"(?P<path>.*?)\s+(?P<inode>[0-9]+)\s+(?P<peer>\S+)\s+(?P<peer_inode>[0-9]+)(?=\s|$)")
_USERS = re.compile(r"users:\(")
_USER = re.compile(
    r'\("(?P<name>.*?)",(?:pid=)?(?P<pid>[0-9]+),(?:proc_ctx=[^,]*,)?(?:fd=)?(?P<fd>[0-9]+)\)(?P<end>,(?=\()|\))'
)
_EXTRA = re.compile(r"(?:^|\s)(?P<key>ino|uid|v6only):(?P<value>[0-9]+)(?=\s|$)")
_TOKEN = re.compile(r"\S+")
# What names one socket in an inet row: -e's inode, -p's descriptor (a UNIX row's inode always).
_NAMES_ONE = re.compile(r"\sino:[1-9]|,fd=[0-9]")


def looks_like(first: str) -> bool:
    """Whether a listing's first line is ss's: its header, or (``-H``) a row.

    >>> looks_like("State  Recv-Q Send-Q Local Address:Port Peer Address:Port"), looks_like("Proto Recv-Q")
    (True, False)
    """
    words = first.split()
    if _is_header(words):
        return True
    if len(words) >= 5 and words[0] in _NETIDS:
        return words[1] in _INET_STATES or (
            is_number(words[1]) and is_number(words[2]) and not is_number(words[3])
        )
    return len(words) >= 4 and words[0] in _INET_STATES and is_number(words[1]) and is_number(words[2])


def _is_header(words: list[str]) -> bool:
    """ss's header: ``Netid State Recv-Q ...``, without Netid (one protocol), without State too
    (one state: ss -u and -w without -a, ``Recv-Q Send-Q Local Address:Port ...``)."""
    return (len(words) >= 2 and words[0] in ("Netid", "State") and "Recv-Q" in words) or words[:3] == [
        "Recv-Q",
        "Send-Q",
        "Local",
    ]


class _NameCut(Unreadable):
    """A UNIX row that ends before its inode: a line break in its name (ss prints names
    as they are) cut it, or the line is damaged. Its rest, on the next line, may look
    like a row of its own, and is never read as one."""


class _Columns:
    """What the header says (or, with -H, the first row shows) of the columns."""

    def __init__(self, netid: bool, state: bool) -> None:
        self.netid = netid
        self.state = state


def read(text: str, lenient: bool = False, origin: str = "<listing>") -> Listing:
    """The sockets an ss listing shows; an unreadable line raises (or, ``lenient``, is counted)."""
    from . import fail

    listing = Listing("ss")
    # ss before 2017 wrote the IPv4 wildcard as * and IPv6 addresses bare: no bracket, no 0.0.0.0.
    old_style = not re.search(r"\[|\b0\.0\.0\.0[%:]", text)
    columns: _Columns | None = None
    seen: dict[str, int] = {}  # each line read, and where it was first
    rows: list[_Row] = []
    for number, line in lines_of(text):
        if not line.strip() or line[:1].isspace():
            continue  # blank, or -i / -m's continuation of the row above
        words = line.split()
        if _is_header(words):
            try:
                check_repeat(seen, number, line, columns is not None)
            except Unreadable as err:
                fail(listing, origin, number, err, lenient)
            columns = _Columns(words[0] == "Netid", "State" in words)
            continue
        if columns is None:  # -H: the first row shows which columns there are
            has_netid = words[0] in _NETIDS
            first_state = words[1] if has_netid and len(words) > 1 else words[0]
            columns = _Columns(has_netid, first_state in _INET_STATES)
        try:
            check_repeat(seen, number, line, words[0] in _UNIX_TYPES or bool(_NAMES_ONE.search(line)))
            rows.append(_split(number, line, columns))
        except Unreadable as err:
            fail(listing, origin, number, err, lenient)
    implied = _implied_protocol(rows)
    if columns is not None and not columns.state:
        rows = [
            (
                n,
                place,
                netid,
                _unshown_state(place[1], netid or implied) if (netid or implied) in _INET_TYPES else None,
            )
            for n, place, netid, _ in rows
        ]
    cut = 0  # a UNIX row a line break in its name cut: the line after it is that name's rest
    for number, (offset, rest), netid, state in rows:
        try:
            if cut and number == cut + 1:
                raise Unreadable("the rest of the row above, whose UNIX name holds a line break")
            _row(listing, rest, netid or implied, state, old_style)
        except Unreadable as err:
            if isinstance(err, _NameCut):
                cut = number
            err.column += offset  # from the rest of the line to the line
            fail(listing, origin, number, err, lenient)
    listing.filter = _states_filter({state for _, _, _, state in rows})
    # A header without a row: ss writes the same header whichever protocols it listed.
    listing.protos_unknown = columns is not None and not rows and not listing.skipped
    return listing


def _split(number: int, line: str, columns: _Columns) -> _Row:
    """(line number, (where it starts, the rest of the line after Netid and State), netid, state word)."""
    tokens = list(_TOKEN.finditer(line))
    netid = state = None
    at = 0
    if columns.netid:
        netid = tokens[0].group()
        if netid not in _NETIDS:
            raise Unreadable(f"{netid!r} is not a kind of socket ss shows", tokens[0].start() + 1)
        at = 1
    if columns.state:
        if len(tokens) <= at:
            raise Unreadable("the line ends before its State column", len(line) + 1)
        state = tokens[at].group()
        if state not in _INET_STATES and not state.startswith(("BOUND", "NEW-SYN")):
            raise Unreadable(f"{state!r} is not a state ss shows", tokens[at].start() + 1)
        at += 1
    if len(tokens) <= at + 1:
        raise Unreadable("the line ends before its Recv-Q and Send-Q columns", len(line) + 1)
    return number, (tokens[at].start(), line[tokens[at].start() :]), netid, state


_Row = tuple[int, tuple[int, str], str | None, str | None]
_WILDCARD_HOSTS = frozenset({"*", "0.0.0.0", "[::]", "::", "[::ffff:0.0.0.0]"})


def _peer(rest: str) -> tuple[str, str] | None:
    """(host, port) of a row's peer column (``rest``: from Recv-Q on); None: no such column."""
    tokens = rest.split(None, 4)
    if len(tokens) < 4:
        return None
    host, _, port = tokens[3].rpartition(":")
    return host.partition("%")[0], port


def _local_port(rest: str) -> str:
    tokens = rest.split(None, 3)
    return tokens[2].rpartition(":")[2] if len(tokens) > 2 else ""


def _is_protocol_name(port: str) -> bool:
    """A port column holding a protocol's name that is no UDP service (raw's ``icmp``, ``ipv6-icmp``)."""
    if not port or is_number(port) or port == "*":
        return False
    try:
        socket.getservbyname(port, "udp")
        return False
    except (OSError, UnicodeError, ValueError):
        pass
    try:
        socket.getprotobyname(port)
        return True
    except (OSError, UnicodeError, ValueError):
        return False


def _implied_protocol(rows: list[_Row]) -> str:
    """The protocol of a listing without a Netid column (ss -t, -u or -w: one protocol).

    A TCP-only state says TCP. A raw row says raw: its peer's "port" is ``*``
    even when the peer is an address (a connected raw socket's), and its port
    column holds a protocol (``icmp`` without -n). Then an unconnected socket
    (UNCONN) says UDP (ss -t shows none: a TCP socket without peer listens),
    and so does a listing without a State column (ss -u without -a prints none,
    ss -t prints one unless a single state was asked for); otherwise TCP, by far
    the commonest. (ss -wn's unconnected raw sockets, ``0.0.0.0:1``, read as
    UDP: nothing in the text tells them apart.)
    """
    states = {state for *_, state in rows}
    if states & _TCP_ONLY:
        return "tcp"
    for _, (_, rest), _, _ in rows:
        peer = _peer(rest)
        if peer is not None and peer[1] == "*" and peer[0] not in _WILDCARD_HOSTS:
            return "raw"
        if _is_protocol_name(_local_port(rest)):
            return "raw"
    if "UNCONN" in states or states == {None}:
        return "udp"  # no State column: one state, as ss -u prints by default (ss -t never does)
    return "tcp"


def _unshown_state(rest: str, proto: str) -> str:
    """The state of a row of a listing without a State column (one state was asked for, as
    ss -u and -w without -a, connected sockets only): by its peer, a wildcard one listening."""
    peer = _peer(rest)
    if peer is None or (peer[0] in _WILDCARD_HOSTS and peer[1] in ("*", "0")):
        return "LISTEN" if proto == "tcp" else "UNCONN"
    return "ESTAB"


def _states_filter(states: set[str | None]) -> str | None:
    """The states a listing was limited to, as a filter expression; None when it shows every state.

    ss -l shows only LISTEN and UNCONN; ss without -a or -l leaves those out,
    and TIME-WAIT too. A listing holding only one side of that line is read as
    limited to it: a comparison with it then says nothing of sockets the
    listing could not have shown.
    """
    words = {s for s in states if s is not None}
    if not words:
        return None
    if words <= _LISTENING:
        return LISTENING_FILTER
    if words.isdisjoint(_LISTENING):
        return "state connected" if "TIME-WAIT" in words else "state connected exclude time-wait"
    return None


def _row(listing: Listing, rest: str, netid: str, state: str | None, old_style: bool) -> None:
    if netid in _OTHER_NETIDS:
        return
    tokens = list(_TOKEN.finditer(rest))
    recv_q, send_q = (int(t.group()) if is_number(t.group()) else None for t in tokens[:2])
    if recv_q is None or send_q is None:
        raise Unreadable("Recv-Q and Send-Q are not numbers", tokens[0].start() + 1)
    after = rest[tokens[1].end() :].lstrip()
    try:
        if netid in _UNIX_TYPES:
            _unix_row(listing, netid, state, (recv_q, send_q), after)
        else:
            _inet_row(listing, netid, state, (recv_q, send_q), after, old_style)
    except Unreadable as err:
        err.column += len(rest) - len(after)  # from the address columns to the rest of the line
        raise


def _processes(extra: str) -> tuple[tuple[Process, ...], str]:
    """The owners in ``users:((...))`` and the rest of the text without them."""
    found = _USERS.search(extra)
    if found is None:
        return (), extra
    at = found.end()
    owners = []
    while True:
        entry = _USER.match(extra, at)
        if entry is None:
            raise Unreadable('users:(...) does not list ("name",pid=N,fd=N) entries', at + 1)
        raw = entry["name"].encode("utf-8", "surrogateescape")
        owners.append(check_owner(process(escape_name(raw), entry["pid"], entry["fd"])))
        at = entry.end()
        if entry["end"] == ")":
            break
    return tuple(sorted(set(owners))), extra[: found.start()] + extra[at:]


def _extras(extra: str) -> dict[str, int]:
    return {m["key"]: int(m["value"]) for m in _EXTRA.finditer(extra)}


def _unix_row(listing: Listing, netid: str, state: str | None, queues: tuple[int, int], after: str) -> None:
    tail = _UNIX_TAIL.match(after)
    if tail is None:
        raise _NameCut("a UNIX row holds: path, inode, peer, peer inode")
    path = tail["path"].strip()
    name = None if path == "*" else escape_name(path.encode("utf-8", "surrogateescape"))
    processes, extra = _processes(after[tail.end() :])
    # -e's ino: is the inode of the socket's file, not the socket's; uid: only where not 0,
    # and ss says nothing of an unnamed socket's -e: a uid not shown is unknown.
    uid = _extras(extra).get("uid")
    sock_type = _UNIX_TYPES[netid]
    if state is None:  # ss -l without a State column
        state = "UNCONN" if sock_type == "dgram" else "LISTEN"
    listing.add(
        "unix",
        "unix",
        sock_type,
        _UNIX_STATES.get(state, "UNKNOWN"),
        unix_name(name),
        unix_peer(int(tail["peer_inode"])),
        int(tail["inode"]),
        uid,
        queues,
        processes,
    )


def _endpoint(text: str) -> tuple[str, str, str | None]:
    """(host, port, device) of ``host[%dev]:port``."""
    host, colon, port = text.rpartition(":")
    if not colon or not port:
        raise Unreadable(f"{text!r} is not address:port")
    dev = None
    if "%" in host:
        host, _, dev = host.partition("%")
        if host.startswith("[") and not host.endswith("]"):  # [fe80::1%eth0]
            host, dev = host + "]", dev.rstrip("]")
    return host, port, None if dev is None else escape_name(dev.encode("utf-8", "surrogateescape"))


def _family(host: str, old_style: bool) -> str:
    if host == "*":
        return "inet" if old_style else "inet6"
    bare = host.strip("[]")
    return "inet6" if ":" in bare else "inet"


def _inet_row(
    listing: Listing,
    proto: str,
    state: str | None,
    queues: tuple[int, int],
    after: str,
    old_style: bool,
) -> None:
    tokens = list(_TOKEN.finditer(after))
    if len(tokens) < 2:
        raise Unreadable("an inet row holds a local and a peer address:port")
    local_host, local_port, dev = _endpoint(tokens[0].group())
    peer_host, peer_port, _ = _endpoint(tokens[1].group())
    family = _family(local_host, old_style)
    if local_host != "*" and peer_host not in ("*",) and _family(peer_host, old_style) != family:
        family = "inet6" if "inet6" in (family, _family(peer_host, old_style)) else family
    local = _inet(local_host, local_port, proto, family, tokens[0].start())
    peer = _inet(peer_host, peer_port, proto, family, tokens[1].start())
    processes, extra = _processes(after[tokens[1].end() :])
    found = _extras(extra)
    extended = "ino" in found
    v6only: bool | None = None
    if "v6only" in found:
        v6only = bool(found["v6only"])
    elif family == "inet6" and local_host in ("*", "[::]") and not old_style:
        v6only = local_host == "[::]"  # ss writes the dual-stack wildcard as *
    if state is None:  # (read() names every inet row's state)
        state = "LISTEN" if proto == "tcp" else "UNCONN"
    listing.add(
        proto,
        family,
        _INET_TYPES[proto],
        _INET_STATES.get(state, "UNKNOWN"),
        local,
        peer,
        found.get("ino", 0),
        found.get("uid", 0) if extended else None,
        queues,
        processes,
        interface=dev,
        v6only=v6only if family == "inet6" else None,
    )


def _inet(host: str, port: str, proto: str, family: str, column: int) -> Endpoint:
    """The endpoint written at ``column`` (0-based) of the address columns."""
    try:
        return inet(address_of(host, family), port_of(port, proto))
    except Unreadable as err:
        err.column = column + 1
        raise
