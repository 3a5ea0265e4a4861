"""Taking a snapshot of the live system: the one place that reads the kernel for one.

:func:`take` scans the processes' descriptors, enters a namespace if asked,
reads each section through the backends registry (:mod:`sockdiff.backends`)
and builds a :class:`~sockdiff.snapshots.Snapshot`; the snapshot file, its
records and the differ know nothing of it.
"""

from __future__ import annotations

import datetime
import platform
import re
import socket as _socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from ._perf import gc_paused
from ._version import __version__
from .backends import BackendFallback, check_backend, sections_of
from .errors import SockdiffError, UsageError
from .model import PROTOS, Interface, Namespace, Process, Route, Socket, attributed, name_text
from .snapshots import Header, Scope, Snapshot

MACHINE_ID = "/etc/machine-id"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
LOCAL_PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def _first_line(path: str, pattern: str) -> str | None:
    """The first line of ``path`` when it matches ``pattern``; None when unreadable or not."""
    try:
        with open(path, "rb") as handle:
            line = handle.read(256).split(b"\n", 1)[0].strip().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    return line if re.fullmatch(pattern, line) else None


def host_identity(
    proc_root: str = "/proc", machine_id: str = MACHINE_ID
) -> tuple[str, str | None, str | None]:
    """This host's name, machine id and boot id (None: unreadable, or not in its form).

    The machine id is systemd's (machine-id(5)): the same across boots; the boot
    id the kernel's, new at each boot. The UTS namespace gives the name, any bytes
    (sethostname(2)), written in the records' notation (:func:`~sockdiff.model.name_text`).
    """
    boot_path = BOOT_ID.replace("/proc", proc_root, 1)
    return (
        name_text(_socket.gethostname()),
        _first_line(machine_id, r"[0-9a-f]{32}"),
        _first_line(boot_path, r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    )


def local_ports(proc_root: str = "/proc") -> tuple[int, int] | None:
    """The current network namespace's ip_local_port_range: the ports the kernel hands
    out to sockets bound to port 0 (None: unreadable)."""
    found = _first_line(LOCAL_PORT_RANGE.replace("/proc", proc_root, 1), r"[0-9]{1,5}\s+[0-9]{1,5}")
    if found is None:
        return None
    low, high = (int(word) for word in found.split())
    return (low, high) if low <= high <= 0xFFFF else None


if TYPE_CHECKING:
    from .backends import Reading
    from .namespaces import Found
    from .processes import Scan

Owners = Mapping[int, tuple[Process, ...]]
_R = TypeVar("_R", Socket, Interface, Route)

__all__ = ["BackendFallback", "check_namespaces", "host_identity", "local_ports", "take"]


def check_namespaces(netns: str | None, all_netns: bool) -> None:
    """Refuse a named namespace together with every one."""
    if all_netns and netns is not None:
        raise UsageError("--netns and --all-netns exclude each other: one namespace, or every one")


def take(
    backend: str = "auto",
    netns: str | None = None,
    processes: bool = True,
    protos: Sequence[str] = PROTOS,
    where: str | None = None,
    sections: Sequence[str] | None = None,
    proc_root: str = "/proc",
    owners: Mapping[int, tuple[Process, ...]] | None = None,
    all_netns: bool = False,
    held_netns: Mapping[int, str] | None = None,
) -> Snapshot:
    """Read the live system through ``backend``: sockets of ``protos``, interfaces, routes.

    ``netns`` names a namespace under /run/netns to read instead of our own;
    ``where``, a filter expression, keeps only the sockets it matches, and those
    whose value it reads this read cannot know (a device from /proc, the owners
    of another user's process), as :func:`~sockdiff.filter.compile_verdict` judges;
    ``sections`` (default: every one the backend reads) chooses among
    ``sockets``, ``interfaces`` and ``routes``. The header records the scope
    (protocols and filter) so that a comparison covers only what both sides did.
    With ``auto``, a system where netlink is unavailable is read from /proc,
    with a :class:`BackendFallback` warning. ``owners`` (socket inode ->
    processes) attributes the sockets instead of a scan of /proc (``watch``
    keeps such a map up to date). ``all_netns`` reads every network namespace
    of the host (:mod:`sockdiff.namespaces`) instead of one: each record carries
    its namespace's inode, and the snapshot lists the namespaces. ``held_netns``,
    with ``owners``: the namespaces descriptors hold (inode -> a path that opens
    it; :attr:`~sockdiff.processes.OwnerTracker.held_netns`), so that no scan of
    every descriptor looks for them (None: one does).
    """
    from . import backends
    from . import netns as netns_module

    check_namespaces(netns, all_netns)
    if where is not None and not isinstance(where, str):
        raise UsageError(f"where: expected a filter expression, not {type(where).__name__}")
    wanted = sections_of(backend) if sections is None else tuple(sections)
    check_backend(backend, wanted)
    unknown = [p for p in protos if p not in PROTOS]
    if unknown:
        raise UsageError(f"unknown protocol {unknown[0]!r} (choose from {', '.join(PROTOS)})")
    scope = Scope(tuple(p for p in PROTOS if p in protos), where)
    verdict = None
    if where is not None:
        from .filter import compile_filter_for, compile_verdict, filter_keywords

        compile_filter_for(where, processes)  # refused here when it reads owners left out
        verdict = compile_verdict(where)
    net_dir = f"{proc_root}/thread-self/net"
    # 100k records and their parts, none in a cycle: the collector would only walk them.
    namespaces: tuple[Namespace, ...] | None = None
    with gc_paused():
        held: dict[int, str] | None = {} if all_netns else None
        scanned: Scan | None = None  # the owners, scanned while the sockets are read
        if owners is None:
            if processes and "sockets" in wanted:
                from .processes import Scan, scan_owners  # not imported by --no-processes

                if all_netns:  # the namespaces to read are among what the scan finds
                    owners = scan_owners(proc_root, held)
                else:
                    scanned, owners = Scan(proc_root), {}
            else:
                owners = {}
                held = None
        else:
            held = None if held_netns is None else dict(held_netns)
        if all_netns:
            taken_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            host, machine_id, boot_id = host_identity(proc_root)
            ports = local_ports(proc_root)
            found, namespaces = _read_every_namespace(backend, wanted, scope.protos, owners, proc_root, held)
            if where is not None and "netns" in filter_keywords(where):
                verdict = compile_verdict(where, namespaces)  # netns LABEL: among those read
        else:
            try:
                with netns_module.entered(netns):
                    taken_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    found = backends.read(backend, wanted, scope.protos, owners, net_dir)
                    host, machine_id, boot_id = host_identity(proc_root)
                    ports = local_ports(proc_root)  # the namespace entered's
            except BaseException:
                if scanned is not None:
                    scanned.join()  # its outcome is not wanted: the read's error stands
                raise
            if scanned is not None:
                owners = scanned.result()  # waited for whatever the read gave: no scan outlives take
                if found.sockets is not None:
                    found.sockets = attributed(found.sockets, owners)
    sockets = found.sockets
    if sockets is not None and verdict is not None:
        # Three-valued, as a comparison narrows: a socket the filter cannot judge here
        # (no device from /proc, owners this user may not read) is kept, not dropped,
        # and the scope's filter says which; compare re-judges it against the other side.
        sockets = [s for s in sockets if verdict(s) is not False]
    header = Header(
        taken_at=taken_at,
        host=host,
        kernel=platform.release(),
        backend=found.backend,
        netns=None if netns is None else name_text(netns),
        sources=found.sources,
        scope=scope,
        tool_version=__version__,
        machine_id=machine_id,
        boot_id=boot_id,
        local_ports=ports,
    )
    return Snapshot(
        header,
        None if sockets is None else tuple(sockets),
        None if found.interfaces is None else tuple(found.interfaces),
        None if found.routes is None else tuple(found.routes),
        origin=f"live:{found.backend}",
        namespaces=namespaces,
    )


def _tagged(records: list[_R] | None, inode: int) -> list[_R] | None:
    if records is None:
        return None
    replace = msgspec.structs.replace
    return [replace(record, netns=inode) for record in records]


def _read_one(
    entry: Found,
    home: bool,
    backend: str,
    wanted: Sequence[str],
    protos: Sequence[str],
    owners: Owners,
    proc_root: str,
) -> Reading:
    """One namespace's sections. The proc backend reads /proc/PID/net of a process
    inside, without entering; interfaces (read through ioctls on a socket, which
    belongs to the namespace of the thread that made it) and a namespace no
    process lives in are read from inside. netlink always reads from inside."""
    from . import backends
    from .errors import NetnsError
    from .netns import entered

    inside = f"{proc_root}/thread-self/net"
    outside = [s for s in wanted if s != "interfaces"] if backend == "proc" and not home else []
    reading: Reading | None = None
    for pid in entry.pids if outside else ():
        # Only a process inside before and after the read has shown this namespace.
        if not entry.still(f"{proc_root}/{pid}/ns/net"):
            continue
        try:
            reading = backends.read("proc", outside, protos, owners, f"{proc_root}/{pid}/net")
        except (OSError, SockdiffError):
            reading = None  # exited since: read it from inside instead
        if reading is not None and entry.still(f"{proc_root}/{pid}/ns/net"):
            break
        reading = None  # it left while we read: another one, or from inside
    rest = [s for s in wanted if reading is None or s not in outside]
    if not rest:
        assert reading is not None
        return reading
    path = None if home else entry.opener(proc_root)
    if path is None and not home:
        raise NetnsError(f"network namespace net:[{entry.inode}] is gone")
    with entered(path):
        more = backends.read(backend, rest, protos, owners, inside)
    if reading is None:
        return more
    reading.sources.update(more.sources)
    reading.interfaces = more.interfaces
    return reading


def _read_every_namespace(
    backend: str,
    wanted: Sequence[str],
    protos: Sequence[str],
    owners: Owners,
    proc_root: str,
    held: dict[int, str] | None,
) -> tuple[Reading, tuple[Namespace, ...]]:
    """Every namespace's sections in one reading, each record tagged with its namespace.

    The namespaces are entered on a thread of their own, never the main
    thread (:func:`sockdiff.netns.apart`).
    """
    from . import netns as netns_module
    from .namespaces import discover

    entries = discover(proc_root, held)
    return netns_module.apart(lambda: _read_entries(entries, backend, wanted, protos, owners, proc_root))


def _read_entries(
    entries: list[Found],
    backend: str,
    wanted: Sequence[str],
    protos: Sequence[str],
    owners: Owners,
    proc_root: str,
) -> tuple[Reading, tuple[Namespace, ...]]:
    """:func:`_read_every_namespace`'s reading, on the calling thread; ``entries[0]`` is its own."""
    from .backends import Reading
    from .errors import NetnsError

    total: Reading | None = None
    described: list[Namespace] = []
    for index, entry in enumerate(entries):
        try:
            reading = _read_one(entry, index == 0, backend, wanted, protos, owners, proc_root)
        except NetnsError:
            if index == 0:
                raise
            continue  # gone since it was found (a container stopped): nothing to read
        described.append(entry.describe(proc_root))
        if total is None:
            total = Reading(reading.backend, dict(reading.sources))
            total.sockets = None if reading.sockets is None else []
            total.interfaces = None if reading.interfaces is None else []
            total.routes = None if reading.routes is None else []
        for name in ("sockets", "interfaces", "routes"):
            records = _tagged(getattr(reading, name), entry.inode)
            if records is not None:
                getattr(total, name).extend(records)
    assert total is not None  # our own namespace is always read
    return total, tuple(described)
