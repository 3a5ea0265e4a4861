"""The snapshot and its file: JSON (gzip when named .gz), versioned.

A snapshot is a :class:`Header` and its sections (``sockets``, ``interfaces``,
``routes``), each a tuple of records or None when it was not taken. The file is
the same thing flat: ``format`` and ``version``, the header's members, then the
sections; every member is declared once, in :class:`Header` or in the record
types of :mod:`sockdiff.model`.

A file is written atomically (:mod:`sockdiff.output`: a replaced file keeps its mode, a new
one gets 0666 less the umask): a reader never sees half of one,
and a failed write leaves the older file in place. The reader is strict: it
refuses anything that is not a snapshot it knows, naming the file and the reason.
Version 1 files (sockets only, no scope) still load: their interfaces and routes
read as not taken, their scope as every protocol. Nothing here reads the kernel:
a live snapshot is taken by :func:`sockdiff.acquire.take`.
"""

from __future__ import annotations

import datetime
import operator
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from ._accel import speedups
from ._perf import gc_paused, in_step
from .coverage import SECTIONS, SOURCE_NAMES, BackendName
from .errors import BadSnapshot, UsageError, WriteError
from .model import (
    INET_STATE_NAMES,
    PROTOS,
    UNIX_STATE_NAMES,
    Endpoint,
    Interface,
    Namespace,
    Port,
    Process,
    ProtoName,
    Route,
    Socket,
    netns_of,
)
from .validation import (
    address_problem,
    bad_addresses,
    device_name_problem,
    device_names,
    interface_problem,
    names_fine,
    process_name_problem,
    record_problem,
    route_problem,
    route_word_problem,
    unix_name_problem,
)

if TYPE_CHECKING:
    from .output import Buffer

__all__ = [
    "EVERYTHING",
    "FORMAT",
    "MAX_SIZE",
    "VERSION",
    "Header",
    "Scope",
    "Snapshot",
    "dumps",
    "encode",
    "gzipped",
    "load",
    "loads",
    "read_bounded",
    "save",
]

FORMAT = "sockdiff.snapshot"
VERSION = 2
# The most a snapshot may hold once decompressed: a host with a million
# sockets writes ~250 MB, and a gzip bomb stops here instead of filling memory.
MAX_SIZE = 1 << 30


# A UTC time as sockdiff writes it (the date itself is checked on reading), and
# the header's free texts, bounded.
Timestamp = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
        description="a UTC time such as 2026-11-25T10:00:00Z",
    ),
]
Text = Annotated[str, msgspec.Meta(max_length=4096, description="a text of at most 4096 characters")]
# The host's identity beside its name (what merges many hosts' lines): systemd's
# machine-id (32 lower-case hex digits) and the kernel's boot_id (a UUID).
MachineId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z", description="a machine id of 32 hexadecimal digits")
]
BootId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z",
        description="a boot id such as 0b5f3c2e-8d0a-4c1e-9a57-3f2d1c0b9a87",
    ),
]


class Scope(msgspec.Struct, frozen=True):
    """What a snapshot's sockets section covers: these protocols, matching this filter."""

    protos: tuple[ProtoName, ...]
    filter: Text | None = None


EVERYTHING = Scope(PROTOS, None)


class Header(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Everything in a snapshot file but its sections: when, where, how, and what it covers.

    ``backend`` is the backend used (``auto`` resolved); ``sources`` where each
    protocol and section came from (see :mod:`sockdiff.backends`).
    ``machine_id`` (/etc/machine-id) and ``boot_id`` (the kernel's) say which
    host and which boot beside ``host``: None where unreadable, and in files
    written before them (a file leaves a None out, so those files keep their bytes).
    ``local_ports``: the namespace's net.ipv4.ip_local_port_range when it was read
    (the first and last port the kernel hands out; the reader's namespace under
    --all-netns), None where unreadable and in files written before it.
    """

    taken_at: Timestamp
    host: Text
    kernel: Text
    backend: BackendName
    netns: Text | None
    sources: dict[Text, Text]
    scope: Scope
    tool_version: Text
    machine_id: MachineId | None = None
    boot_id: BootId | None = None
    local_ports: tuple[Port, Port] | None = None

    def identity(self) -> dict[str, str | None]:
        """``host``, ``machine_id`` and ``boot_id``: what tells one host's lines from another's."""
        return {"host": self.host, "machine_id": self.machine_id, "boot_id": self.boot_id}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One moment's sockets, interfaces and routes (None: a section not taken), and its header."""

    header: Header
    sockets: tuple[Socket, ...] | None
    interfaces: tuple[Interface, ...] | None = None
    routes: tuple[Route, ...] | None = None
    origin: str = field(default="live", compare=False)  # file, store name or live:B
    version: int = field(default=VERSION, compare=False)  # the file's format version
    # Every namespace read, in a snapshot of every one (--all-netns); None: one namespace.
    namespaces: tuple[Namespace, ...] | None = None
    # The (decompressed) bytes :func:`loads` read it from, None when taken live:
    # loads(like=) finds the records another file shares with this one in them.
    file_bytes: bytes | bytearray | None = field(default=None, compare=False, repr=False)

    def why_not_taken(self) -> str:
        """Why a section is None: the file predates sections, or the snapshot was taken with the others only.

        >>> Snapshot(None, (), None, ()).why_not_taken()
        'taken with sockets and routes only'
        """
        if self.version == 1:
            return "a version 1 file, from before sections"
        taken = [name for name in ("sockets", "interfaces", "routes") if getattr(self, name) is not None]
        return f"taken with {' and '.join(taken)} only" if taken else "taken with no section"

    def meta(self) -> dict[str, Any]:
        """Everything but the sections, as it stands in a file written now."""
        header: dict[str, Any] = msgspec.to_builtins(self.header)
        return {"format": FORMAT, "version": VERSION, **header, **self.header.identity()}


_HEADER_FIELDS = tuple(f.name for f in msgspec.structs.fields(Header))


class _Document(Header, frozen=True, kw_only=True):
    """A version 2 file, as msgspec reads and checks it in one pass."""

    format: Literal["sockdiff.snapshot"]
    version: Literal[2]
    sockets: tuple[Socket, ...] | None
    interfaces: tuple[Interface, ...] | None
    routes: tuple[Route, ...] | None
    namespaces: tuple[Namespace, ...] | None = None


class _DocumentV1(Header, frozen=True, kw_only=True):
    """A version 1 file: sockets only, and no scope (it covered every protocol)."""

    format: Literal["sockdiff.snapshot"]
    version: Literal[1]
    scope: Scope = EVERYTHING
    sockets: tuple[Socket, ...]


class _RawDocument(_Document, frozen=True, kw_only=True):
    """A version 2 file with each socket record left as its JSON bytes (see :func:`_sharing`)."""

    sockets: tuple[msgspec.Raw, ...] | None  # type: ignore[assignment]


class _RawSockets(msgspec.Struct):
    """Just the socket records of a file, each as its JSON bytes."""

    sockets: tuple[msgspec.Raw, ...] | None = None


class _Probe(msgspec.Struct):
    """Just enough of any JSON object to tell whether it is a snapshot we read."""

    format: Any = None
    version: Any = None


# Records encoded at a time: the file is written a batch at a time, so the encoded
# text of 100k sockets (~22 MB, and as much again to split it into lines) is never
# held whole beside the records.
_BATCH = 2048


def _section(name: str, records: tuple[msgspec.Struct, ...] | None) -> Iterator[Buffer]:
    """``"name":[...]`` with one record a line (``null`` when not taken), a batch at a time."""
    if records is None:
        yield b'"%s":null' % name.encode()
        return
    if not records:
        yield b'"%s":[]' % name.encode()
        return
    # One record at a time into the batch's buffer: no copy of the text to split
    # it into lines afterwards.
    encode_into = msgspec.json.Encoder().encode_into
    yield b'"%s":[\n' % name.encode()
    batch = bytearray()
    for start in range(0, len(records), _BATCH):
        if batch:
            yield batch
            batch = bytearray()
        for record in records[start : start + _BATCH]:
            encode_into(record, batch, -1)
            batch += b",\n"
    batch[-2:] = b"\n]"
    yield batch


def encode(snapshot: Snapshot) -> Iterator[Buffer]:
    """The snapshot as JSON text, in pieces: the header first, then each section,
    one record a line. :func:`dumps` joins them; :func:`save` writes them as they come."""
    header = msgspec.json.encode(snapshot.header)
    yield b'{"format":"%s","version":%d,' % (FORMAT.encode(), VERSION)
    yield memoryview(header)[1:-1]
    if snapshot.namespaces is not None:
        # Left out of a one-namespace snapshot, whose bytes stay as they were.
        yield b",\n"
        yield from _section("namespaces", snapshot.namespaces)
    sections = (
        ("sockets", snapshot.sockets),
        ("interfaces", snapshot.interfaces),
        ("routes", snapshot.routes),
    )
    for name, records in sections:
        yield b",\n"
        yield from _section(name, records)
    yield b"}\n"


def dumps(snapshot: Snapshot) -> bytes:
    """The snapshot as JSON text: the header first, then each section, one record a line."""
    return b"".join(encode(snapshot))


def gzipped(pieces: Iterable[Buffer]) -> Iterator[Buffer]:
    """``pieces`` gzip-compressed as they come, never all in memory: the bytes
    ``gzip.compress(b"".join(pieces), compresslevel=6, mtime=0)`` gives (zlib's own
    gzip header and trailer, wbits=31)."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    for piece in pieces:
        yield deflate.compress(piece)
    yield deflate.flush()


def save(snapshot: Snapshot, path: str) -> None:
    """Write ``snapshot`` to ``path`` (``-``: standard output), a batch
    of records at a time.

    A regular file is replaced atomically; a device, FIFO or pipe is written
    through; a symlink leads to its target (see :mod:`sockdiff.output`).
    """
    from .output import write_file

    if "\0" in path:  # no file has such a name; the system calls would raise ValueError
        raise WriteError(f"{path!r}: cannot write: a path holds no NUL")
    pieces = encode(snapshot)
    write_file(path, gzipped(pieces) if path.endswith(".gz") else pieces)


class _TooBig(Exception):
    pass


_CHUNK = 16 << 20


def _gunzip(data: bytes | bytearray, limit: int) -> bytearray:
    """Decompress gzip ``data`` (every member), in chunks, refusing more than ``limit`` bytes.

    Chunks keep the peak near the output's size: one call for the whole output
    would hold it twice while it is appended.
    """
    out = bytearray()
    rest: bytes | bytearray = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        pending = rest
        while not inflater.eof:
            piece = inflater.decompress(pending, min(_CHUNK, limit + 1 - len(out)))
            out += piece
            if len(out) > limit:
                raise _TooBig
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                raise EOFError("compressed data ended early")
        rest = inflater.unused_data
    return out


def _route_problem(route: Route) -> str | None:
    return route_problem(route) or route_word_problem(route)


def loads(
    data: bytes | bytearray, origin: str, limit: int = MAX_SIZE, *, like: Snapshot | None = None
) -> Snapshot:
    """Parse a snapshot file's bytes (gzip or not); ``origin`` names it in errors.

    msgspec checks every field of every record while it reads, so a record
    missing a field or holding the wrong type is refused with its place (e.g.
    ``$.sockets[4].inode``); then each record's endpoints and state must fit its
    family and protocol. More than ``limit`` bytes, compressed or not, is refused.

    ``like``: a snapshot read from a file that this one will be compared with.
    A socket record written byte for byte as one of its records is then that
    record object, checked already (the differ takes a record on both sides for
    unchanged without looking further); the result is the same snapshot.
    """

    def bad(reason: str) -> BadSnapshot:
        return BadSnapshot(f"{origin}: not a sockdiff snapshot: {reason}")

    if len(data) > limit:
        raise bad(f"it is larger than {limit >> 20} MiB")
    if data[:2] == b"\x1f\x8b":
        try:
            data = _gunzip(data, limit)
        except _TooBig:
            raise bad(f"it decompresses to more than {limit >> 20} MiB") from None
        except (EOFError, zlib.error):
            raise bad("broken gzip data") from None
    if not data or data.isspace():  # isspace stops at the first other byte; strip would copy
        raise bad("empty file")

    if like is not None and like.file_bytes is not None and like.sockets:
        shared = _sharing(data, origin, like.file_bytes, like)
        if shared is not None:
            return shared

    def check_probe(probe: _Probe) -> None:
        if probe.format is None:
            raise bad(f"it has no 'format' member (a snapshot says {FORMAT!r})")
        if probe.format != FORMAT:
            raise bad(f"format is {probe.format!r}, not {FORMAT!r}")
        if probe.version not in (1, VERSION) or isinstance(probe.version, bool):
            raise bad(f"version {probe.version!r} is not one this sockdiff reads (it reads 1 and {VERSION})")

    document: _Document | _DocumentV1
    # One typed pass over the whole file, which checks every value's type and
    # range; only a document that fails it is read again, for its header alone,
    # to say what it is rather than what it lacks (or, for a version 1 file, to
    # read it as one).
    # Nesting too deep for msgspec's decoder may show in any of the passes below.
    try:
        with gc_paused():
            try:
                document = msgspec.json.decode(data, type=_Document)
            except msgspec.ValidationError as err:
                try:
                    probe = msgspec.json.decode(data, type=_Probe)
                except msgspec.ValidationError:
                    raise bad("not a JSON object") from None
                except (msgspec.DecodeError, UnicodeDecodeError):
                    raise bad(_json_problem(data)) from None
                check_probe(probe)
                if probe.version != 1:
                    raise bad(_value_problem(err, _Document)) from None
                try:
                    document = msgspec.json.decode(data, type=_DocumentV1)
                except msgspec.ValidationError as err_v1:
                    raise bad(_value_problem(err_v1, _DocumentV1)) from None
            except (msgspec.DecodeError, UnicodeDecodeError):
                # Not JSON, or not UTF-8 (msgspec words that differently from one version to the next).
                raise bad(_json_problem(data)) from None
    except RecursionError:
        raise bad("JSON nested too deeply") from None
    problem = _header_problem(document)
    if problem is not None:
        raise bad(problem)
    listed = None if isinstance(document, _DocumentV1) else document.namespaces
    fine = _sockets_fine(document.sockets or (), listed)
    problem = _records_problem(document, document.sockets or (), fine)
    if problem is not None:
        raise bad(problem)
    header = Header(**{name: getattr(document, name) for name in _HEADER_FIELDS})
    if isinstance(document, _DocumentV1):
        return Snapshot(header, document.sockets, origin=origin, version=1, file_bytes=data)
    problem = _namespace_problem(document, fine)
    if problem is not None:
        raise bad(problem)
    return Snapshot(
        header,
        document.sockets,
        document.interfaces,
        document.routes,
        origin=origin,
        namespaces=document.namespaces,
        file_bytes=data,
    )


def _sockets_fine(sockets: Sequence[Socket], listed: Sequence[Namespace] | None) -> bool:
    """True: the checks of socket records (:func:`_records_problem`'s, and
    :func:`_namespace_problem`'s with the namespaces ``listed``) would find nothing.

    The accelerator's one pass over the records (``socket_facts``) finds whether any
    record is unlike a backend's and gathers the few distinct names, addresses,
    devices and namespaces, checked here once each. False where it declines or is
    not built, and wherever a check fails: the references then check each record,
    and say where.
    """
    if speedups is None:
        return False
    facts = speedups.socket_facts(
        sockets, Socket, Endpoint, Process, msgspec.UNSET, INET_STATE_NAMES, UNIX_STATE_NAMES
    )
    if facts is None:
        return False
    first_unlike, paths, names, inet, inet6, devices, netns = facts
    allowed: set[object] = {msgspec.UNSET} if listed is None else {namespace.inode for namespace in listed}
    return (
        first_unlike < 0
        and names_fine(paths, names)
        and not bad_addresses("inet", inet)
        and not bad_addresses("inet6", inet6)
        and all(device_name_problem(device) is None for device in devices)
        and netns <= allowed
    )


def _records_problem(
    document: _Document | _DocumentV1 | _RawDocument, sockets: Sequence[Socket], sockets_fine: bool = False
) -> str | None:
    """What the records of ``document`` (its socket records: ``sockets``) hold that types cannot
    say and sockdiff never writes, with its place; None when nothing. ``sockets_fine``:
    the socket records are known to pass (:func:`_sockets_fine`)."""
    if sockets_fine:
        sockets = ()
    checks: tuple[tuple[str, Sequence[Any] | None, Callable[[Any], str | None]], ...] = (
        ("sockets", sockets, record_problem),
        ("interfaces", None if isinstance(document, _DocumentV1) else document.interfaces, interface_problem),
        ("routes", None if isinstance(document, _DocumentV1) else document.routes, _route_problem),
    )
    for section, records, check in checks:
        for index, record in enumerate(records or ()):
            problem = check(record)
            if problem is not None:
                return f"{problem}, at $.{section}[{index}]"
    # Every device name the kernel allows, and no other (most sockets are bound to none).
    for section, records, _ in checks:
        for index, record in enumerate(records or ()):
            if section == "sockets" and record.interface is None:
                continue
            for place, name in device_names(record):
                problem = device_name_problem(name)
                if problem is not None:
                    return f"{problem}, at $.{section}[{index}]{place}"
    problem = _name_problem(sockets)
    if problem is not None:
        return problem
    # A namespace holds one device of a name (routes may repeat: `ip route append`).
    if not isinstance(document, _DocumentV1):
        named: set[tuple[int | None, str]] = set()
        for index, interface in enumerate(document.interfaces or ()):
            key = (netns_of(interface), interface.name)
            if key in named:
                return f"interface {interface.name!r} is listed twice, at $.interfaces[{index}].name"
            named.add(key)
    found = address_problem(sockets)
    if found is not None:
        return f"{found[1]}, at $.sockets[{found[0]}]"
    return None


def _name_problem(sockets: Sequence[Socket]) -> str | None:
    """The first UNIX name or process name not as sockdiff writes them (escape_name), with its place.

    Each distinct name is checked once (100k sockets have a few dozen owners' names),
    and only a bad one is looked for record by record.
    """
    paths = {path for sock in sockets if isinstance(path := sock.local.path, str)}
    names = {process.name for sock in sockets for process in sock.processes}
    if names_fine(paths, names):
        return None
    for index, sock in enumerate(sockets):
        path = sock.local.path
        if isinstance(path, str):
            problem = unix_name_problem(path)
            if problem is not None:
                return f"{problem}, at $.sockets[{index}].local.path"
        for number, process in enumerate(sock.processes):
            problem = process_name_problem(process.name)
            if problem is not None:
                return f"{problem}, at $.sockets[{index}].processes[{number}].name"
    return None


def _namespace_problem(document: _Document, sockets_fine: bool = False) -> str | None:
    """Each namespace listed once, and every record's ``netns`` one listed (none without the list).
    ``sockets_fine``: the socket records are known to pass (:func:`_sockets_fine`)."""
    listed: set[int] = set()
    for index, namespace in enumerate(document.namespaces or ()):
        if namespace.inode in listed:
            return f"namespace {namespace.inode} is listed twice, at $.namespaces[{index}].inode"
        listed.add(namespace.inode)
    sections: tuple[tuple[str, Sequence[Socket | Interface | Route] | None], ...] = (
        ("sockets", None if sockets_fine else document.sockets),
        ("interfaces", document.interfaces),
        ("routes", document.routes),
    )
    for section, records in sections:
        for index, record in enumerate(records or ()):
            inode = netns_of(record)
            if inode is None:
                if document.namespaces is not None:
                    return (
                        f"a record without `netns` in a snapshot of every namespace, at $.{section}[{index}]"
                    )
            elif inode not in listed:
                return (
                    f"`netns` {inode} is no namespace listed in `namespaces`, at $.{section}[{index}].netns"
                )
    return None


def _sharing(
    data: bytes | bytearray, origin: str, other: bytes | bytearray, like: Snapshot
) -> Snapshot | None:
    """:func:`loads` of a version 2 file, each socket record that ``other`` (the bytes
    ``like`` was read from) holds byte for byte taken from ``like``.

    The records of its own are decoded and checked one by one. None at the first
    thing that is not so (any failure, any finding of the checks): :func:`loads`
    then reads the file whole, and says what is wrong as it says it of any file.
    """
    # The socket records are taken raw, unchecked: a second "sockets" member (the
    # whole read checks every one it meets, and keeps the last) is left to the whole
    # read. The name stands as "sockets" (a string token: no string holds it inside),
    # once, or a letter of it is written as a \u00XX escape, which sockdiff never writes.
    # (A search for one byte is memchr's: most files hold no backslash, and are not
    # searched again for the four.)
    if data.count(b'"sockets"') != 1 or (b"\\" in data and b"\\u00" in data):
        return None
    # Records taken from ``other`` were checked when it was read, its namespaces with
    # them: a snapshot of every namespace, or an older version, is read whole.
    others = like.sockets
    if others is None or like.namespaces is not None or like.version != VERSION:
        return None
    try:
        with gc_paused():
            document = msgspec.json.decode(data, type=_RawDocument)
            if document.sockets is None or document.namespaces is not None:
                return None  # a snapshot of every namespace is read whole
            theirs = msgspec.json.decode(other, type=_RawSockets).sockets or ()
            if len(theirs) != len(others):
                return None
            decode = msgspec.json.Decoder(Socket).decode
            sockets: list[Socket] = []
            fresh: list[Socket] = []  # records of its own: decoded here, checked below
            for raw, shared in zip(document.sockets, _taken(theirs, others, document.sockets), strict=True):
                if shared is None:
                    fresh.append(decode(raw))
                    sockets.append(fresh[-1])
                else:
                    sockets.append(shared)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    if _header_problem(document) is not None or _records_problem(document, fresh) is not None:
        return None
    # No namespaces listed: no record may name one (those taken from ``other`` name none).
    records = (fresh, document.interfaces or (), document.routes or ())
    if any(netns_of(record) is not None for section in records for record in section):
        return None
    header = Header(**{name: getattr(document, name) for name in _HEADER_FIELDS})
    return Snapshot(
        header, tuple(sockets), document.interfaces, document.routes, origin=origin, file_bytes=data
    )


def _taken(
    theirs: Sequence[msgspec.Raw], others: Sequence[Socket], mine: Sequence[msgspec.Raw]
) -> list[Socket | None]:
    """For each record of ``mine`` (as written), the one of ``others`` (written as
    ``theirs``) written byte for byte as it, else None; each of ``others`` taken once at most
    (a record written twice is two records here too: the differ tells records apart by object).

    The two lists are walked in step (:func:`~sockdiff._perf.in_step`); what that leaves
    pairs through a table of bytes. Which of several equal records is taken, or whether
    one is taken at all, changes nothing but the cost: the differ pairs by value.
    """
    paired, left_theirs, left_mine = in_step(theirs, mine, operator.eq)
    found: list[Socket | None] = [others[i] if i >= 0 else None for i in paired]
    if not left_mine or not left_theirs:
        return found
    known: dict[bytes, list[Socket]] = {}
    for index in left_theirs:
        known.setdefault(bytes(theirs[index]), []).append(others[index])
    for j in left_mine:
        same = known.get(bytes(mine[j]))
        if same:
            found[j] = same.pop(0)
    return found


def _header_problem(header: Header) -> str | None:
    """What the header's types cannot say: a real date, known sources, a scope that parses."""
    try:  # the shape is the type's (Timestamp); strptime would import _strptime and calendar
        datetime.datetime.fromisoformat(header.taken_at.removesuffix("Z"))
    except ValueError:
        return f"`taken_at` {header.taken_at!r} is not a time, at $.taken_at"
    for key, value in header.sources.items():
        if key not in PROTOS and key not in SECTIONS:
            return f"`sources` names {key!r}, which is neither a protocol nor a section, at $.sources"
        if value not in SOURCE_NAMES:
            return f"`sources` says {key} came from {value!r}, not a backend, at $.sources.{key}"
    if header.netns is not None and (not header.netns or "\0" in header.netns):
        return f"`netns` {header.netns!r} names no namespace (empty, or holding a NUL), at $.netns"
    if header.local_ports is not None and header.local_ports[0] > header.local_ports[1]:
        low, high = header.local_ports
        return f"`local_ports` [{low}, {high}] is no range (its first port after its last), at $.local_ports"
    protos = header.scope.protos
    if len(set(protos)) != len(protos):
        return "`protos` names a protocol twice, at $.scope.protos"
    if header.scope.filter is not None:
        from .errors import SockdiffError
        from .filter import compile_filter

        try:
            compile_filter(header.scope.filter)
        except SockdiffError:
            return f"the filter {header.scope.filter!r} does not parse, at $.scope.filter"
    return None


_PLACE = re.compile(r"`(\$[^`]*)`\s*$")
_MISSING = re.compile(r"`([A-Za-z_]+)`")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[[0-9]+\]")


def _value_problem(err: msgspec.ValidationError, document: type[msgspec.Struct]) -> str:
    """A value that failed the schema, in sockdiff's words: what was expected, and where.

    The place comes from msgspec's error (a JSON path such as
    ``$.sockets[4].local.port``), never its words; what was expected is what the
    type at that place declares (see :func:`_expected`).
    """
    text = str(err)
    found = _PLACE.search(text)
    place = found.group(1) if found is not None else "$"
    # A member left out: msgspec's place is the object lacking it, and the
    # message names the member; a value out of shape: the place is the value.
    named = _MISSING.search(text[: found.start()] if found is not None else text)
    if named is not None and "missing" in text.lower():
        return f"member `{named.group(1)}` is missing, at {place}"
    return f"bad value at {place}: expected {_expected(document, place)}"


def _expected(document: type[msgspec.Struct], place: str) -> str:
    """What the schema of ``document`` holds at ``place``, in the words its types declare.

    >>> _expected(_Document, "$.sockets[4].local.port")
    'a port number from 0 to 65535'
    >>> _expected(_Document, "$.sockets[0].processes[0].name")
    'a name of at most 4096 characters'
    """
    import msgspec.inspect as mi

    types: list[mi.Type] = [mi.type_info(document)]
    for match in _STEP.finditer(place, 1):
        name = match.group(1)
        following: list[mi.Type] = []
        for kind in _alternatives(types):
            if name is None and isinstance(kind, mi.ListType | mi.VarTupleType):
                following.append(kind.item_type)
            elif name is not None and isinstance(kind, mi.StructType):
                following += [f.type for f in kind.fields if f.encode_name == name]
            elif name is not None and isinstance(kind, mi.DictType):
                following.append(kind.value_type)
        types = following
    words = [_describe(kind) for kind in _alternatives(types) if not isinstance(kind, mi.NoneType)]
    if not words:
        return "a value of another type or range"
    nullable = any(isinstance(kind, mi.NoneType) for kind in _alternatives(types))
    return " or ".join(dict.fromkeys(words)) + (", or null" if nullable else "")


def _alternatives(types: list[Any]) -> list[Any]:
    """Each type a value may have, unions opened (with their declared words kept on each member)."""
    import msgspec.inspect as mi

    found: list[Any] = []
    for kind in types:
        if isinstance(kind, mi.UnionType):
            found += _alternatives(list(kind.types))
        else:
            found.append(kind)
    return found


def _describe(kind: Any) -> str:
    """One type in words: its declared ``description``, else what msgspec says of it."""
    import msgspec.inspect as mi

    if isinstance(kind, mi.Metadata):
        schema = kind.extra_json_schema or {}
        if "description" in schema:
            return str(schema["description"])
        kind = kind.type
    if isinstance(kind, mi.LiteralType):
        values = sorted(str(value) for value in kind.values)
        return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
    if isinstance(kind, mi.ListType | mi.VarTupleType):
        return f"a list of {_describe(kind.item_type)}"
    if isinstance(kind, mi.StructType):
        return "an object"
    if isinstance(kind, mi.BoolType):
        return "true or false"
    if isinstance(kind, mi.DictType):
        return "an object of texts"
    if isinstance(kind, mi.StrType):
        return f"a text of at most {kind.max_length} characters" if kind.max_length else "a text"
    return "a value of another type or range"


# Past this size, an input that is not JSON is not decoded again to say where:
# that would hold a second copy of it.
_LOCATE_LIMIT = 64 << 20


def _json_problem(data: bytes | bytearray) -> str:
    """Why ``data`` is not JSON, in sockdiff's words (a dependency's wording changes)."""
    import json

    if len(data) > _LOCATE_LIMIT:
        return "not JSON" if data[-4096:].rstrip()[-1:] == b"}" else "truncated or not JSON"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text (byte {err.start})"
    try:
        # Numbers are not converted: only where the text stops being JSON matters,
        # and a number of thousands of digits is past Python's int digit limit.
        json.loads(text, parse_int=len, parse_float=len)
    except json.JSONDecodeError as err:
        # An unterminated string reports where the string began.
        if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
            return "truncated JSON"
        return f"not JSON (line {err.lineno}, column {err.colno})"
    except RecursionError:
        return "not JSON (nested too deeply)"
    return "not JSON"


def read_bounded(source: IO[bytes], limit: int = MAX_SIZE) -> bytes:
    """At most ``limit + 1`` bytes of ``source``: all of it, or enough to tell it is too large."""
    return source.read(limit + 1)


def load(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    limit: int = MAX_SIZE,
    *,
    like: Snapshot | None = None,
) -> Snapshot:
    """Read a snapshot file (``-``: standard input).

    ``path`` is what :func:`open` takes (text, bytes or :class:`os.PathLike`);
    anything else raises :class:`~sockdiff.errors.UsageError`. ``like``: as
    :func:`loads` takes it.
    """
    if not isinstance(path, str | bytes | os.PathLike):
        kind = type(path).__name__
        raise UsageError(f"path: expected a file's path (str, bytes or os.PathLike), not {kind}")
    given = os.fspath(path)
    name = given if isinstance(given, str) else os.fsdecode(given)
    if name == "-":
        return loads(read_bounded(sys.stdin.buffer, limit), "<stdin>", limit, like=like)
    if "\0" in name:  # no file has such a name; open() would raise ValueError
        raise BadSnapshot(f"{name!r}: cannot read: a path holds no NUL")
    try:
        with open(name, "rb") as source:
            data = read_bounded(source, limit)
    except OSError as err:
        raise BadSnapshot(f"{name}: cannot read: {err.strerror}") from err
    return loads(data, name, limit, like=like)
