"""The proc backend: /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix}, read as bytes.

The parsers are pure functions over a file's bytes, so tests feed them captured
files from ``fixtures/``.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Mapping
from socket import AF_INET, AF_INET6, inet_ntop

from ..._accel import speedups
from ...errors import BackendUnavailable
from ...model import (
    INET_TYPES,
    SOCK_TYPES,
    TCP_STATES,
    UNIX_DIAG_STATES,
    Endpoint,
    Process,
    Socket,
    escape_name,
    make_socket,
)

__all__ = [
    "DEFAULT_NET_DIR",
    "decode_address",
    "inet_rows",
    "parse_counters",
    "parse_inet",
    "parse_unix",
    "read_counters",
    "read_file",
    "read_optional",
    "read_protocol",
]

# thread-self, not self: /proc/self/net follows the thread-group leader's
# namespace, and sockdiff enters a namespace with setns(2) on its own thread.
DEFAULT_NET_DIR = "/proc/thread-self/net"

# Which files hold which protocol, and the family of each.
FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "tcp": (("tcp", "inet"), ("tcp6", "inet6")),
    "udp": (("udp", "inet"), ("udp6", "inet6")),
    "raw": (("raw", "inet"), ("raw6", "inet6")),
    "unix": (("unix", "unix"),),
}

_TCP_LISTEN = 10
_SO_ACCEPTCON = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags column
# unix_seq_show (net/unix/af_unix.c) prints sk_state as an SS_* code: a socket with
# a file (an inode) is SS_CONNECTED when ESTABLISHED, else SS_UNCONNECTED; one without
# (inode 0, left out here as by unix_diag) SS_CONNECTING or SS_DISCONNECTING. The
# flag marks LISTEN. Read back to sk_state, rows take the names unix_diag's do.
_UNIX_SK_STATES = {1: 7, 2: 1, 3: 1, 4: 7}  # SS_* -> TCP_CLOSE or TCP_ESTABLISHED


def read_file(path: str) -> bytes:
    """A /proc file's whole text, read into one growing buffer.

    seq_file restarts at each read's position, so under churn a row can come
    twice or not at all between two reads; large reads make that rare, and the
    parsers drop repeated rows. /proc hands out ~4 KB a call whatever the size
    asked for: an unbuffered readall() asks for the buffer's free room each time,
    where a loop of os.read(fd, 4 MiB) would allocate 4 MiB for every 4 KB (~20 ms
    of CPU for 100k TCP sockets).
    """
    with open(path, "rb", buffering=0) as file:
        return file.readall()


def read_optional(path: str) -> bytes:
    """A /proc file's text; empty when the file does not exist (no IPv6 in this kernel)."""
    try:
        return read_file(path)
    except FileNotFoundError:
        return b""
    except OSError as err:
        raise BackendUnavailable(f"cannot read {path}: {err.strerror}") from err


def _ipv4(word: bytes) -> str:
    # /proc prints the address as one host-order 32-bit word.
    return inet_ntop(AF_INET, int(word, 16).to_bytes(4, sys.byteorder))


def _ipv6(words: bytes) -> str:
    # Four host-order 32-bit words, each printed like an IPv4 address.
    packed = b"".join(int(words[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in (0, 8, 16, 24))
    return inet_ntop(AF_INET6, packed)


def decode_address(text: bytes) -> Endpoint:
    """One ``ADDRESS:PORT`` column of /proc/net/{tcp,udp,raw}{,6}.

    >>> decode_address(b"0500000A:0016")  # on a little-endian machine
    Endpoint(address='10.0.0.5', port=22)
    >>> decode_address(b"0000000000000000FFFF00000100007F:1F90")
    Endpoint(address='::ffff:127.0.0.1', port=8080)
    """
    found = _ADDRESS.fullmatch(text)
    if found is None:
        raise ValueError(f"not an ADDRESS:PORT column: {text!r}")
    address, port = found.groups()
    decode = _ipv4 if len(address) == 8 else _ipv6
    return Endpoint(decode(address), int(port, 16))


# What the kernel prints: %08X (IPv4) or four %08X (IPv6), a colon, %04X.
_ADDRESS = re.compile(rb"([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})")
_ADDRESS_WIDTH = {"inet": 8, "inet6": 32}
_U32, _U64 = 1 << 32, 1 << 64


def _bad_row(proto: str, family: str, number: int) -> BackendUnavailable:
    name = proto + ("6" if family == "inet6" else "")
    return BackendUnavailable(f"/proc/net/{name}: line {number} is not a socket row this sockdiff reads")


# What :func:`inet_rows` reads from one row: local and remote endpoint, state,
# send queue, receive queue, uid, inode.
InetRow = tuple[Endpoint, Endpoint, int, int, int, int, int]


def inet_rows(data: bytes, proto: str, family: str) -> list[InetRow]:
    """The rows of one of /proc/net/{tcp,udp,raw}{,6}, a row seen twice (same
    inode, or for inode 0 the same addresses) kept once.

    The reference for the accelerator's ``proc_inet_rows``. A row that is not in
    the kernel's format is refused whole (BackendUnavailable), rather than read
    into a record with a wrong value; a line of fewer than 10 columns is skipped.
    """
    addresses: dict[bytes, Endpoint] = {}
    seen: set[object] = set()
    rows = []
    width = _ADDRESS_WIDTH[family]
    lines = iter(io.BytesIO(data))  # one line at a time: a list of 100k would double the text
    next(lines, None)  # the column titles
    for number, line in enumerate(lines, 2):
        fields = line.split(None, 10)  # the columns up to the inode; the rest is not read
        if len(fields) < 10:
            continue
        try:
            local_text, remote_text = fields[1], fields[2]
            inode = int(fields[9])
            key: object = inode if inode else (local_text, remote_text)
            if key in seen:
                continue
            seen.add(key)
            local = addresses.get(local_text)
            if local is None:
                local = addresses[local_text] = _decode(local_text, width)
            remote = addresses.get(remote_text)
            if remote is None:
                remote = addresses[remote_text] = _decode(remote_text, width)
            state = int(fields[3], 16)
            send_text, _, recv_text = fields[4].partition(b":")
            uid, recv_q, send_q = int(fields[7]), int(recv_text, 16), int(send_text, 16)
        except ValueError:
            raise _bad_row(proto, family, number) from None
        # int() takes a sign and any length; the kernel writes neither: an inode is a
        # u64 (%lu), a uid and the queues u32 (%u, %08X).
        if not (0 <= inode < _U64 and 0 <= uid < _U32 and 0 <= recv_q < _U32 and 0 <= send_q < _U32):
            raise _bad_row(proto, family, number)
        rows.append((local, remote, state, send_q, recv_q, uid, inode))
    return rows


_fast_inet_rows = None if speedups is None else speedups.proc_inet_rows


def parse_inet(
    data: bytes, proto: str, family: str, owners: Mapping[int, tuple[Process, ...]]
) -> list[Socket]:
    """The sockets in one of /proc/net/{tcp,udp,raw}{,6} (rows as :func:`inet_rows` reads them).

    For a TCP listener the kernel prints 0 as its send queue rather than the
    backlog limit that netlink (and ss) report, so it is unknown here: None.
    """
    sock_type = INET_TYPES[proto]
    states = TCP_STATES
    rows: list[InetRow] | None = (
        None if _fast_inet_rows is None else _fast_inet_rows(data, _ADDRESS_WIDTH[family], Endpoint)
    )
    if rows is None:
        rows = inet_rows(data, proto, family)
    listener = _TCP_LISTEN if proto == "tcp" else None
    return [
        make_socket(
            proto,
            family,
            sock_type,
            states.get(state, "UNKNOWN"),
            local,
            remote,
            inode,
            uid,
            recv_q,
            None if state == listener else send_q,
            owners,
        )
        for local, remote, state, send_q, recv_q, uid, inode in rows
    ]


def _decode(text: bytes, width: int) -> Endpoint:
    """:func:`decode_address`, for a file of one family: an address of the other is refused."""
    if text.find(b":") != width:
        raise ValueError(text)
    return decode_address(text)


# One row of /proc/net/unix up to the inode:
# "%pK: %08X %08X %08X %04X %02X %5lu", then " PATH" when the socket has a name.
_UNIX_ROW = re.compile(
    rb"^[0-9a-fA-F]+: [0-9A-F]{8} [0-9A-F]{8} ([0-9A-F]{8}) ([0-9A-F]{4}) ([0-9A-F]{2}) +(\d{1,20})",
    re.MULTILINE,
)


def parse_unix(data: bytes, owners: Mapping[int, tuple[Process, ...]]) -> list[Socket]:
    r"""The sockets in /proc/net/unix.

    A name is everything after the inode up to the next row, so names with
    spaces or newlines survive; the kernel prints it raw, NULs of an abstract
    name as ``@``. Sockets still in a listener's accept queue have inode 0 and
    are left out (unix_diag never reports them). /proc does not show a UNIX
    socket's peer, queues or owner, so those are None.

    >>> [s.local.path for s in parse_unix(
    ...     b"Num RefCount Protocol Flags Type St Inode Path\n"
    ...     b"0000000000000000: 00000002 00000000 00010000 0001 01 12345 @app\n", {})]
    ['@app']
    """
    sockets = []
    seen: set[int] = set()
    rows = list(_UNIX_ROW.finditer(data))
    end_of_data = len(data) - 1 if data.endswith(b"\n") else len(data)
    for index, row in enumerate(rows):
        inode = int(row[4])
        if inode == 0 or inode in seen or inode >= 1 << 64:  # 1 << 64: no inode, a damaged row
            continue
        seen.add(inode)
        end = rows[index + 1].start() - 1 if index + 1 < len(rows) else end_of_data
        name = data[row.end() + 1 : end] if end > row.end() else None
        flags = int(row[1], 16)
        sk_state = _TCP_LISTEN if flags & _SO_ACCEPTCON else _UNIX_SK_STATES.get(int(row[3], 16), 0)
        state = UNIX_DIAG_STATES.get(sk_state, "UNKNOWN")
        sockets.append(
            make_socket(
                "unix",
                "unix",
                SOCK_TYPES.get(int(row[2], 16), "unknown"),
                state,
                Endpoint(path=None if name is None else escape_name(name)),
                None,
                inode,
                None,
                None,
                None,
                owners,
            )
        )
    return sockets


def read_protocol(
    proto: str, owners: Mapping[int, tuple[Process, ...]], net_dir: str = DEFAULT_NET_DIR
) -> list[Socket]:
    """Every socket of one protocol, from its /proc/net files.

    A missing file (no IPv6 in this kernel, say) holds no sockets; an
    unreadable /proc/net is an error.
    """
    sockets: list[Socket] = []
    for filename, family in FILES[proto]:
        try:
            data = read_file(f"{net_dir}/{filename}")
        except FileNotFoundError:
            if filename in ("unix", "tcp"):
                raise BackendUnavailable(f"{net_dir}/{filename} does not exist") from None
            continue
        except OSError as err:
            raise BackendUnavailable(f"cannot read {net_dir}/{filename}: {err.strerror}") from err
        if proto == "unix":
            sockets += parse_unix(data, owners)
        else:
            sockets += parse_inet(data, proto, family, owners)
    return sockets


def parse_counters(data: bytes) -> dict[str, int]:
    """The counters of /proc/net/sockstat (``TCP: inuse 1 tw 0``) and /proc/net/snmp
    (a line of names, then one of values, under one heading), as ``"TCP inuse"``.

    >>> parse_counters(b"sockets: used 3\\nTCP: inuse 1 orphan 0\\nTcp: RtoMin CurrEstab\\nTcp: 200 4\\n")
    {'sockets used': 3, 'TCP inuse': 1, 'TCP orphan': 0, 'Tcp RtoMin': 200, 'Tcp CurrEstab': 4}
    """
    found: dict[str, int] = {}
    names: dict[bytes, list[bytes]] = {}
    for line in data.split(b"\n"):
        heading, colon, rest = line.partition(b":")
        words = rest.split()
        if not colon or not words:
            continue
        label = heading.decode("ascii", "replace")
        if heading in names:  # snmp: the values under the names the line before gave
            for name, value in zip(names.pop(heading), words, strict=False):
                if value.lstrip(b"-").isdigit():
                    found[f"{label} {name.decode('ascii', 'replace')}"] = int(value)
        elif not words[0].lstrip(b"-").isdigit() and len(words) > 1 and words[1].lstrip(b"-").isdigit():
            for name, value in zip(words[::2], words[1::2], strict=False):
                if value.lstrip(b"-").isdigit():
                    found[f"{label} {name.decode('ascii', 'replace')}"] = int(value)
        else:
            names[heading] = words
    return found


def read_counters(net_dir: str = DEFAULT_NET_DIR) -> dict[str, int]:
    """What ss -s reads: /proc/net/sockstat, sockstat6 and snmp (see :func:`parse_counters`).

    A file that cannot be read gives no counters (they are a comparison, not a record).
    """
    found: dict[str, int] = {}
    for name in ("sockstat", "sockstat6", "snmp"):
        try:
            found |= parse_counters(read_file(f"{net_dir}/{name}"))
        except OSError:
            continue
    return found
