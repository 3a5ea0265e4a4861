"""What the ss and netstat readers share: lines, errors, names back to numbers, records.

Pure over text, as the backends' parsers are: the services, protocols and users
databases (``/etc/services``, ``/etc/protocols``, ``/etc/passwd``, read through
the C library as the tools that printed the listing did) are the only things
consulted, never the kernel.
"""

from __future__ import annotations

import pwd
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from ..errors import BadSnapshot
from ..model import Endpoint, Interface, Process, Route, Socket, make_socket
from ..validation import (
    device_name_problem,
    is_host_name,
    process_name_problem,
    record_problem,
    unix_name_problem,
)

__all__ = [
    "Listing",
    "Unreadable",
    "address_of",
    "as_bytes_text",
    "check_repeat",
    "is_number",
    "lines_of",
    "port_of",
    "process",
    "uid_of",
]

_WILDCARD = {"inet": "0.0.0.0", "inet6": "::"}
_FAMILY_NUMBER = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}


class Unreadable(ValueError):
    """A line a reader cannot read: ``column`` (1-based) is where it stopped making sense."""

    def __init__(self, reason: str, column: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


@dataclass
class Listing:
    """What one reader took from a listing: records, what it covered, and what it had to guess."""

    tool: str
    sockets: list[Socket] = field(default_factory=list)
    protos: set[str] = field(default_factory=set)
    filter: str | None = None  # the states the listing was limited to, as a filter expression
    host_names: set[str] = field(default_factory=set)
    skipped: int = 0
    # Whether it held a socket table; netstat -i's and -r's tables (None: it held none).
    has_sockets: bool = True
    interfaces: list[Interface] | None = None
    every_interface: bool = False  # netstat -ia: some interface listed is down
    routes: list[Route] | None = None
    route_families: tuple[str, ...] = ()
    # A socket table without a row (a header alone): which protocols it covered is
    # not written anywhere (ss and netstat print one header for -t, -u and -w).
    protos_unknown: bool = False

    def add(
        self,
        proto: str,
        family: str,
        sock_type: str,
        state: str,
        local: Endpoint,
        remote: Endpoint | None,
        inode: int,
        uid: int | None,
        queues: tuple[int | None, int | None],
        processes: tuple[Process, ...],
        interface: str | None = None,
        v6only: bool | None = None,
    ) -> None:
        """One socket, built as the backends build theirs (:func:`~sockdiff.model.make_socket`)."""
        owners = {inode: processes} if inode and processes else {}
        sock = make_socket(
            proto, family, sock_type, state, local, remote, inode, uid, *queues, owners, interface, v6only
        )
        if processes and not inode:
            # A listing without inodes (ss without -e) still names the owners.
            sock = msgspec.structs.replace(sock, processes=processes)
        problem = _problem(sock)
        if problem is not None:
            raise Unreadable(problem)
        self.sockets.append(sock)
        self.protos.add(proto)
        for end in (local, remote):
            if end is not None and isinstance(end.address, str) and is_host_name(end.address):
                self.host_names.add(end.address)


# The field a validation error names ($.send_q, $.processes[0].pid), in the record's words.
_FIELD_PATH = re.compile(r"\$\.([A-Za-z_][\w.\[\]]*)")


def _problem(sock: Socket) -> str | None:
    """What the snapshot reader would refuse in a record built from text, or None."""
    try:  # the model's ranges (queues, inode, uid, pid): what a snapshot file may hold
        msgspec.convert(msgspec.to_builtins(sock), Socket)
    except msgspec.ValidationError as err:
        where = _FIELD_PATH.search(str(err))
        return f"{where.group(1) if where else 'a value'} is out of the range a snapshot holds"
    problem = record_problem(sock)
    if problem is None and sock.interface is not None:
        problem = device_name_problem(sock.interface)
    if problem is None and sock.proto == "unix" and isinstance(sock.local.path, str):
        problem = unix_name_problem(sock.local.path)
    for owner in sock.processes:
        problem = problem or process_name_problem(owner.name)
    return problem


def is_number(text: str) -> bool:
    """Whether ``text`` is a decimal number as the tools print them (ASCII digits only, not ``¹``)."""
    return text.isascii() and text.isdigit()


def lines_of(text: str) -> Iterator[tuple[int, str]]:
    """The listing's lines, numbered from 1, without line ends."""
    for number, line in enumerate(text.split("\n"), 1):
        yield number, line.rstrip("\r")


def address_of(text: str, family: str) -> str:
    """An address as a listing writes it, in canonical form; a host name as written.

    ``*`` is the wildcard; ``localhost`` is the loopback address of ``family``;
    an IPv4 address in an IPv6 row (netstat's ``tcp6 127.0.0.1:80``) is the
    mapped address the kernel holds.

    >>> address_of("*", "inet6"), address_of("localhost", "inet"), address_of("127.0.0.1", "inet6")
    ('::', '127.0.0.1', '::ffff:127.0.0.1')
    """
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text in ("*", ""):
        return _WILDCARD[family]
    if text == "localhost":
        return "127.0.0.1" if family == "inet" else "::1"
    number = _FAMILY_NUMBER[family]
    if family == "inet6" and ":" not in text:
        text = "::ffff:" + text
    try:
        return socket.inet_ntop(number, socket.inet_pton(number, text))
    except (OSError, ValueError):
        pass
    if is_host_name(text):
        return text  # kept as written: equal only to itself (see README)
    raise Unreadable(f"{text!r} is neither an {family} address nor a host name")


def port_of(text: str, proto: str) -> int:
    """A port as a listing writes it: a number, ``*`` (none), or a service name.

    For raw sockets the "port" is the protocol, and its name is a protocol's.

    >>> port_of("*", "tcp"), port_of("22", "tcp"), port_of("icmp", "raw")
    (0, 22, 1)
    """
    if text == "*":
        return 0
    if is_number(text):
        port = int(text)
        if port <= 0xFFFF:
            return port
        raise Unreadable(f"port {text} is out of range")
    try:
        if proto == "raw":
            return socket.getprotobyname(text)
        return socket.getservbyname(text, proto)
    except (OSError, UnicodeError, ValueError):
        raise Unreadable(f"{text!r} is neither a port number nor a {proto} service name") from None


def uid_of(text: str) -> int | None:
    """A user column: a number, or a name from the users database (None: not found there)."""
    if is_number(text):
        uid = int(text)
        if uid <= 0xFFFF_FFFF:
            return uid
        raise Unreadable(f"uid {text} is out of range")
    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, UnicodeError, ValueError):
        return None


def process(name: str, pid: str, fd: str | None) -> Process:
    """One owner; a listing without descriptor numbers (netstat) gives fd None: unknown."""
    try:
        return Process(int(pid), name, int(fd) if fd is not None else None)
    except ValueError:
        raise Unreadable(f"pid {pid!r} is not a number") from None


def check_owner(owner: Process) -> Process:
    """``owner`` when its numbers are in the record's ranges."""
    if not 1 <= owner.pid <= 4_194_304 or not 0 <= (owner.fd or 0) <= 0x7FFF_FFFF:
        raise Unreadable(f"pid {owner.pid} or fd {owner.fd} is out of range")
    return owner


# A listing shows each socket once: a second header, or a row naming one socket (by
# its inode or descriptor) again, is a second listing appended to the first (two
# runs in one file, a monitoring log), whose rows would stand for sockets twice and
# make the live side's "closed". Rows without such a name may repeat: SO_REUSEPORT
# sockets of one address print alike without -e and -p.
SECOND_LISTING = "two listings in one file? (save one a file, or split it)"


def check_repeat(seen: dict[str, int], number: int, line: str, names_one_socket: bool) -> None:
    """Raise when line ``number`` (a row that ``names_one_socket``, or a header) repeats an earlier one."""
    key = " ".join(line.split())
    first = seen.setdefault(key, number)
    if first != number and names_one_socket:
        raise Unreadable(f"this line repeats line {first}: {SECOND_LISTING}")


def bad_listing(origin: str, number: int, column: int, reason: str) -> BadSnapshot:
    """The one error of an unreadable line."""
    return BadSnapshot(
        as_bytes_text(f"{origin}: line {number}, column {column}: cannot read this line: {reason}")
    )


# repr() writes a lone surrogate as \udcNN.
_REPR_SURROGATE = re.compile(r"\\udc([89a-f][0-9a-f])")


def as_bytes_text(message: str) -> str:
    r"""``message`` with the bytes of a listing that are not UTF-8 written ``\xNN``.

    A listing is read with surrogateescape: such a byte is a lone surrogate,
    which no output can encode, and which ``repr`` writes ``\udcNN``.

    >>> print(as_bytes_text("a\udcff b " + repr("\udcfe")))
    a\xff b '\xfe'
    """
    message = _REPR_SURROGATE.sub(r"\\x\1", message)
    return message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
