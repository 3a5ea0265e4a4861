"""Text renderings of sockets: an ss-like table and one-line forms for diffs."""

from __future__ import annotations

import functools
import socket as _socket
from collections.abc import Sequence

import msgspec

from .model import Endpoint, Socket

__all__ = [
    "address_text",
    "change_detail",
    "escape",
    "netid",
    "process_text",
    "socket_line",
    "socket_where",
    "summary_line",
    "table",
]

_UNIX_NETIDS = {"stream": "u_str", "dgram": "u_dgr", "seqpacket": "u_seq"}


# What a terminal or a log reader could take for the end of a line, or for
# text in another direction: C0 and C1 controls, DEL, the Unicode line and
# paragraph separators, and bidirectional overrides ("trojan source").
_CONTROLS = "".join(
    chr(c)
    for c in (
        *range(0x20),
        *range(0x7F, 0xA0),
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
)
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_ESCAPES = {
    ord(c): _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in _CONTROLS
}
_ESCAPES_AND_BACKSLASH = {**_ESCAPES, ord("\\"): "\\\\"}


def escape(text: str, backslash: bool = True) -> str:
    r"""``text`` with every control character escaped, so that it stays on one line.

    ``\n``, ``\t``, ``\r``, else ``\xNN`` (``\uNNNN`` beyond Latin-1); a
    backslash is doubled so an escape cannot be forged. Pass ``backslash=False``
    for a record's names, which carry their backslashes doubled already (SPEC.md):
    escaping is then idempotent, and applying it twice does no harm.

    >>> print(escape("evil\n+ tcp\\x"))
    evil\n+ tcp\\x
    >>> print(escape("/tmp/a\\\\b\x1b[31m", backslash=False))
    /tmp/a\\b\x1b[31m
    """
    if text.isprintable() and (not backslash or "\\" not in text):
        return text  # the common case costs one C-level scan
    return text.translate(_ESCAPES_AND_BACKSLASH if backslash else _ESCAPES)


def netid(sock: Socket) -> str:
    """ss's Netid column: tcp, udp, raw, u_str, u_dgr, u_seq."""
    if sock.proto == "unix":
        return _UNIX_NETIDS.get(sock.type, "u_" + sock.type[:3])
    return sock.proto


@functools.lru_cache(maxsize=4096)
def _host_name(address: str) -> str:
    try:
        return _socket.gethostbyaddr(address)[0]
    except (OSError, UnicodeError):
        return address


@functools.lru_cache(maxsize=1024)
def _service_name(port: int, proto: str) -> str:
    try:
        return _socket.getservbyport(port, proto)
    except (OSError, OverflowError):
        return str(port)


def address_text(endpoint: Endpoint | None, proto: str, resolve: bool = False) -> str:
    """An endpoint as ss prints it: ``127.0.0.1:22``, ``[::1]:22``, ``*:*``, a path, ``*``."""
    if endpoint is None:
        return "*"
    if endpoint.path is not msgspec.UNSET:
        return "*" if endpoint.path is None else escape(endpoint.path, backslash=False)
    if endpoint.peer_inode is not msgspec.UNSET:
        return str(endpoint.peer_inode) if endpoint.peer_inode else "*"
    address, port = endpoint.address, endpoint.port
    if address is msgspec.UNSET or port is msgspec.UNSET:
        return "?"
    if address in ("0.0.0.0", "::"):
        host = "*"
    elif resolve:
        host = _host_name(address)
    else:
        host = address
    if ":" in host:
        host = f"[{host}]"
    if port == 0 and proto != "raw":
        return f"{host}:*"
    if resolve and proto in ("tcp", "udp"):
        return f"{host}:{_service_name(port, proto)}"
    return f"{host}:{port}"


def process_text(sock: Socket) -> str:
    """ss's process column: ``users:(("nginx",pid=10,fd=6),...)``."""
    if not sock.processes:
        return ""
    inner = ",".join(f'("{escape(p.name, backslash=False)}",pid={p.pid},fd={p.fd})' for p in sock.processes)
    return f"users:({inner})"


def _queue(value: int | None) -> str:
    return "-" if value is None else escape(str(value), backslash=False)


def _local_text(sock: Socket, resolve: bool) -> str:
    text = address_text(sock.local, sock.proto, resolve)
    # ss shows a UNIX socket's inode beside its name; it is what tells them apart.
    return f"{text} {sock.inode}" if sock.proto == "unix" else text


def table(sockets: Sequence[Socket], processes: bool = False, resolve: bool = False) -> str:
    """An ss-like table, columns sized to their contents."""
    header = ["Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"]
    if processes:
        header.append("Process")
    rows = [header]
    for sock in sockets:
        row = [
            netid(sock),
            sock.state,
            _queue(sock.recv_q),
            _queue(sock.send_q),
            _local_text(sock, resolve),
            address_text(sock.remote, sock.proto, resolve),
        ]
        if processes:
            row.append(process_text(sock))
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2, 3}
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        # Every cell went through escape() in its notation function; this is the
        # last guard for one that did not, so that one socket stays one line.
        lines.append(escape(" ".join(cells).rstrip(), backslash=False))
    return "\n".join(lines)


def socket_line(sock: Socket) -> str:
    """One socket on one line, for diff output: netid, state, local, remote, processes."""
    parts = [netid(sock), sock.state, _local_text(sock, False), address_text(sock.remote, sock.proto)]
    owners = process_text(sock)
    if owners:
        parts.append(owners)
    return escape(" ".join(parts), backslash=False)  # the last guard: one socket, one line


def _processes_detail(old: Socket, new: Socket) -> str:
    """Which owners came and went, e.g. ``+("b",pid=2,fd=3) -("a",pid=1,fd=3)``."""
    before, after = set(old.processes), set(new.processes)
    texts = [f'+("{escape(p.name, backslash=False)}",pid={p.pid},fd={p.fd})' for p in sorted(after - before)]
    texts += [f'-("{escape(p.name, backslash=False)}",pid={p.pid},fd={p.fd})' for p in sorted(before - after)]
    return " ".join(texts)


def _value_text(sock: Socket, name: str) -> str:
    """One compared field's value in socket notation (never a program's repr)."""
    if name == "remote":
        return address_text(sock.remote, sock.proto)
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
    where = " ".join([netid(sock), _local_text(sock, False), address_text(sock.remote, sock.proto)])
    return escape(where, backslash=False)


def summary_line(new: int, closed: int, changed: int) -> str:
    return f"{new} new, {closed} closed, {changed} changed"
