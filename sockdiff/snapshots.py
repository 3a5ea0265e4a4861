"""Taking snapshots, and the snapshot file: JSON (gzip when named .gz), versioned.

A file is written atomically with mode 0600: a reader never sees half of one,
and a failed write leaves the older file in place. The reader is strict: it
refuses anything that is not a snapshot it knows, naming the file and the reason.
"""

from __future__ import annotations

import datetime
import gzip
import os
import platform
import socket as _socket
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ._perf import gc_paused
from ._version import __version__
from .errors import BackendUnavailable, BadSnapshot, UsageError
from .model import PROTOS, Socket, record_problem

__all__ = [
    "BACKENDS",
    "FORMAT",
    "VERSION",
    "BackendFallback",
    "Snapshot",
    "dumps",
    "load",
    "loads",
    "save",
    "take",
]

FORMAT = "sockdiff.snapshot"
VERSION = 1
BACKENDS = ("auto", "netlink", "proc")


class BackendFallback(UserWarning):
    """The auto backend fell back from netlink to /proc."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The sockets of one moment, and where and how they were read."""

    sockets: tuple[Socket, ...]
    taken_at: str
    host: str
    kernel: str
    backend: str
    netns: str | None
    sources: dict[str, str]
    tool_version: str = __version__
    origin: str = field(default="live", compare=False)  # file, store name or live:B

    def meta(self) -> dict[str, Any]:
        """Everything but the sockets, as it stands in the file."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "taken_at": self.taken_at,
            "host": self.host,
            "kernel": self.kernel,
            "backend": self.backend,
            "netns": self.netns,
            "sources": self.sources,
            "tool_version": self.tool_version,
        }


def take(
    backend: str = "auto",
    netns: str | None = None,
    processes: bool = True,
    protos: Sequence[str] = PROTOS,
    where: Callable[[Socket], bool] | None = None,
    proc_root: str = "/proc",
) -> Snapshot:
    """Read the live sockets of ``protos`` through ``backend``.

    ``netns`` names a namespace under /run/netns to read instead of our own;
    ``where`` keeps only the sockets it accepts. With ``auto``, a system where
    netlink sock_diag is unavailable is read from /proc, with a
    :class:`BackendFallback` warning.
    """
    from . import netns as netns_module
    from .backends import procfs
    from .processes import scan_owners

    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    net_dir = f"{proc_root}/thread-self/net"
    # 100k records and their parts, none in a cycle: the collector would only walk them.
    with gc_paused():
        owners = scan_owners(proc_root) if processes else {}
        with netns_module.entered(netns):
            taken_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            used = "proc" if backend == "proc" else "netlink"
            if used == "netlink":
                try:
                    from .backends import netlink

                    sockets, sources = netlink.read_sockets(protos, owners, net_dir)
                except BackendUnavailable as err:
                    if backend == "netlink":
                        raise
                    warnings.warn(f"{err}; reading /proc/net instead", BackendFallback, stacklevel=2)
                    used = "proc"
            if used == "proc":
                sockets, sources = procfs.read_sockets(protos, owners, net_dir)
            host = _socket.gethostname()
    if where is not None:
        sockets = [s for s in sockets if where(s)]
    return Snapshot(
        sockets=tuple(sockets),
        taken_at=taken_at,
        host=host,
        kernel=platform.release(),
        backend=used,
        netns=netns,
        sources=sources,
        origin=f"live:{used}",
    )


class _Document(msgspec.Struct):
    """A snapshot file, as msgspec reads and checks it."""

    format: str
    version: int
    taken_at: str
    host: str
    kernel: str
    backend: str
    netns: str | None
    sources: dict[str, str]
    sockets: list[Socket]
    tool_version: str


class _Header(msgspec.Struct):
    """Just enough of any JSON object to tell whether it is a snapshot we read."""

    format: Any = None
    version: Any = None


def dumps(snapshot: Snapshot) -> bytes:
    """The snapshot as JSON text: metadata first, then one socket a line.

    The records are encoded by msgspec as one list, then split into lines:
    ``},{"proto"`` can only stand between two records, since a quote inside a
    string is escaped.
    """
    meta = msgspec.json.encode(snapshot.meta())
    if not snapshot.sockets:
        return meta[:-1] + b',"sockets":[]}\n'
    records = msgspec.json.encode(snapshot.sockets)
    records = records.replace(b'},{"proto"', b'},\n{"proto"')
    return b"".join((meta[:-1], b',"sockets":[\n', memoryview(records)[1:-1], b"\n]}\n"))


def save(snapshot: Snapshot, path: str) -> None:
    """Write ``snapshot`` to ``path`` (``-``: standard output), atomically, mode 0600."""
    data = dumps(snapshot)
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        # mkstemp creates the file 0600; renamed over the target only once whole.
        fd, temporary = tempfile.mkstemp(prefix=".sockdiff-", suffix=".tmp", dir=directory)
    except OSError as err:
        raise UsageError(f"{path}: cannot write: {err.strerror}") from err
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as err:
        os.unlink(temporary)
        raise UsageError(f"{path}: cannot write: {err.strerror}") from err
    except BaseException:
        os.unlink(temporary)
        raise


def loads(data: bytes, origin: str) -> Snapshot:
    """Parse a snapshot file's bytes (gzip or not); ``origin`` names it in errors.

    msgspec checks every field of every record against :class:`Socket` while it
    reads, so a record missing a field or holding the wrong type is refused
    with its place, e.g. ``Object missing required field `inode` - at `$.sockets[4]```;
    then each record's endpoints and state must fit its family and protocol.
    """

    def bad(reason: str) -> BadSnapshot:
        return BadSnapshot(f"{origin}: not a sockdiff snapshot: {reason}")

    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise bad(f"broken gzip data ({err})") from None
    if not data or data.isspace():  # isspace stops at the first other byte; strip would copy
        raise bad("empty file")

    def check_header(header: _Header) -> None:
        if header.format is None:
            raise bad(f"it has no 'format' member (a snapshot says {FORMAT!r})")
        if header.format != FORMAT:
            raise bad(f"format is {header.format!r}, not {FORMAT!r}")
        if header.version != VERSION:
            raise bad(f"version {header.version!r} is not one this sockdiff reads (it reads {VERSION})")

    # One typed pass over the whole file; only a document that fails it is read
    # again, for its header alone, to say what it is rather than what it lacks.
    with gc_paused():
        try:
            document = msgspec.json.decode(data, type=_Document)
        except UnicodeDecodeError:
            raise bad("not UTF-8 text") from None
        except msgspec.ValidationError as err:
            try:
                header = msgspec.json.decode(data, type=_Header)
            except msgspec.ValidationError:
                raise bad("not a JSON object") from None
            check_header(header)
            raise bad(str(err)) from None
        except msgspec.DecodeError:
            raise bad(_json_problem(data)) from None
    check_header(_Header(document.format, document.version))
    for index, sock in enumerate(document.sockets):
        problem = record_problem(sock)
        if problem is not None:
            raise bad(f"{problem} - at `$.sockets[{index}]`")
    return Snapshot(
        sockets=tuple(document.sockets),
        taken_at=document.taken_at,
        host=document.host,
        kernel=document.kernel,
        backend=document.backend,
        netns=document.netns,
        sources=document.sources,
        tool_version=document.tool_version,
        origin=origin,
    )


def _json_problem(data: bytes) -> str:
    """Why ``data`` is not JSON, in sockdiff's words (a dependency's wording changes)."""
    import json

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text (byte {err.start})"
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        # An unterminated string reports where the string began.
        if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):
            return "truncated JSON"
        return f"not JSON (line {err.lineno}, column {err.colno})"
    except RecursionError:
        return "not JSON (nested too deeply)"
    return "not JSON"


def load(path: str) -> Snapshot:
    """Read a snapshot file (``-``: standard input)."""
    if path == "-":
        return loads(sys.stdin.buffer.read(), "<stdin>")
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError as err:
        raise BadSnapshot(f"{path}: cannot read: {err.strerror}") from err
    return loads(data, path)
