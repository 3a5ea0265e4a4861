"""Which processes hold which sockets: one scan of /proc/PID/fd, shared by both backends."""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Iterable

from .model import Process, escape_name

__all__ = ["OwnerTracker", "Owners", "OwnersHidden", "owners_among", "scan_owners"]

Owners = dict[int, tuple[Process, ...]]

_SOCKET_PREFIX = "socket:["


def scan_owners(proc_root: str = "/proc") -> Owners:
    """Map every socket inode to the processes holding it, as ``ss -p`` does.

    A socket held through several descriptors, or by several processes, lists
    each ``(pid, name, fd)``, sorted. The name is the process's ``comm``.
    Inodes are global, so this works the same for a socket in any namespace.
    """
    return _scan(proc_root, (entry for entry in os.listdir(proc_root) if entry.isdigit()))


def owners_among(pids: Iterable[int], proc_root: str = "/proc") -> Owners:
    """:func:`scan_owners` for the processes ``pids`` only: the sockets they hold.

    A process in ``pids`` that has exited, or that we may not read, holds nothing.
    """
    return _scan(proc_root, (str(pid) for pid in pids))


# pid -> (its number of descriptors, the socket inodes it holds), as a scan found them.
Holdings = dict[int, tuple[int, list[int]]]


def _scan(proc_root: str, entries: Iterable[str], holdings: Holdings | None = None) -> Owners:
    found: Owners = {}
    shared: dict[int, list[Process]] = {}  # sockets with several holders, sorted at the end
    hidden = False  # a process whose descriptors we may not read
    for entry in entries:
        # A process that exits mid-scan, or whose descriptors we may not read,
        # is skipped: netstat -p and lsof do the same.
        try:
            with open(f"{proc_root}/{entry}/comm", "rb") as comm_file:
                comm = comm_file.read()
            # comm ends in the newline /proc adds; a name may hold one too (prctl), and
            # backslashes, doubled as in a UNIX name so that escapes shown later are unambiguous.
            name = escape_name(comm[:-1] if comm.endswith(b"\n") else comm)
            fd_dir = os.open(f"{proc_root}/{entry}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except PermissionError:
            hidden = True
            continue
        except OSError:
            continue
        try:
            fds = os.listdir(fd_dir)
            pid = int(entry)
            held: list[int] = []
            for fd in fds:
                try:
                    target = os.readlink(fd, dir_fd=fd_dir)
                except OSError:
                    continue  # the descriptor was closed since listdir
                if target.startswith(_SOCKET_PREFIX):
                    inode = int(target[8:-1])
                    held.append(inode)
                    process = Process(pid, name, int(fd))
                    holders = found.get(inode)
                    if holders is None:
                        found[inode] = (process,)  # most sockets have one holder
                    elif inode in shared:
                        shared[inode].append(process)
                    else:
                        shared[inode] = [*holders, process]
            if holdings is not None:
                holdings[pid] = (len(fds), held)
        except OSError:
            continue
        finally:
            os.close(fd_dir)
    for inode, all_holders in shared.items():
        found[inode] = tuple(sorted(all_holders))
    if hidden and os.geteuid() != 0:
        # As netstat -p says it. Shown once a run: the text and place never change.
        warnings.warn(
            "not every process could be read: sockets of other users' processes show no owner"
            " (run as root to see them all)",
            OwnersHidden,
            stacklevel=2,
        )
    return found


class OwnersHidden(UserWarning):
    """Not root, and some processes' descriptors could not be read: their sockets have no owner."""


def _fd_count(proc_root: str, pid: int) -> int | None:
    """How many descriptors ``pid`` has open (None: it is gone or unreadable).

    Since Linux 6.2 stat() of /proc/PID/fd gives the number as its size, one
    cheap call; before, the directory is listed (names only, no readlink).
    """
    path = f"{proc_root}/{pid}/fd"
    try:
        size = os.stat(path).st_size
        return size if size > 0 else len(os.listdir(path))
    except OSError:
        return None


class OwnerTracker:
    """An owners map kept up to date from one poll to the next at the cost of what changed.

    ``watch`` polls sockets every second; reading every process's descriptors
    each time costs as much as the host has descriptors (0.65 s at 110k). This
    reads them once, then at each :meth:`update` only:

    - the processes that appeared (a fork shares its parent's sockets: they get
      a new holder), and forgets those that exited, without reading anything;
    - when sockets appeared that no process is known to hold: the processes
      whose number of descriptors changed, and those the map names as holders of
      such an inode (a stale entry); and if some are still unowned (a process
      closed one socket and opened another), the others, those that held new
      sockets lately first, until every new socket has its holder. A socket no
      process holds after a full pass (held by the kernel, or by a process we
      may not read) is remembered as such, not looked for again.

    What it cannot see cheaply, and so misses until that process is read again:
    an existing socket passed to another process (SCM_RIGHTS) or dup'ed into a
    process that keeps its number of descriptors, and a process's new name
    after execve. ``ss -p`` at one instant sees them; a poll may not.
    """

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        #: socket inode -> the processes holding it, as :func:`scan_owners` gives it.
        self.owners: Owners = {}
        self._holdings: Holdings = {}
        self._seen: set[int] = set()  # the inodes of the last update
        self._unowned: set[int] = set()  # inodes a full pass found no holder for
        self._lately: dict[int, int] = {}  # pid -> the last update it was found holding a new socket
        self._updates = 0
        #: Processes whose descriptors were read, over all updates (for tests and benchmarks).
        self.processes_read = 0

    def _pids(self) -> set[int]:
        return {int(entry) for entry in os.listdir(self.proc_root) if entry.isdigit()}

    def _forget(self, pid: int, before: dict[int, tuple[Process, ...]]) -> None:
        """Drop what ``pid`` held from the map, keeping each touched entry's old value in ``before``."""
        _count, inodes = self._holdings.pop(pid, (0, []))
        owners = self.owners
        for inode in inodes:
            holders = owners.get(inode)
            if holders is None:
                continue
            before.setdefault(inode, holders)
            rest = tuple(p for p in holders if p.pid != pid)
            if rest:
                owners[inode] = rest
            else:
                del owners[inode]

    def _read(self, pids: Collection[int], before: dict[int, tuple[Process, ...]]) -> None:
        """Read ``pids`` again, replacing what the map said they held."""
        if not pids:
            return
        for pid in pids:
            self._forget(pid, before)
        holdings: Holdings = {}
        found = _scan(self.proc_root, (str(pid) for pid in pids), holdings)
        self.processes_read += len(pids)
        self._holdings.update(holdings)
        owners = self.owners
        for inode, holders in found.items():
            before.setdefault(inode, owners.get(inode, ()))
            existing = owners.get(inode)
            owners[inode] = holders if existing is None else tuple(sorted(existing + holders))

    def update(self, inodes: Collection[int]) -> set[int]:
        """Bring :attr:`owners` up to date for the sockets ``inodes`` (0s are ignored).

        Returns those of ``inodes`` whose holders changed (holders of other
        sockets change too, unread). The first update reads every process.
        """
        self._updates += 1
        pids = self._pids()
        known = self._holdings
        before: dict[int, tuple[Process, ...]] = {}
        for pid in [pid for pid in known if pid not in pids]:
            self._forget(pid, before)  # exited: nothing to read
        first = not known
        born = [pid for pid in pids if pid not in known]
        seen = self._seen
        fresh = [inode for inode in inodes if inode and inode not in seen]
        self._seen = set(inodes)
        to_read = set(born)
        if fresh and not first:
            owners = self.owners
            for inode in fresh:
                to_read.update(p.pid for p in owners.get(inode, ()))
            root = self.proc_root
            to_read.update(
                pid
                for pid, (count, _) in known.items()
                if pid not in to_read and _fd_count(root, pid) != count
            )
        self._read(to_read, before)
        owners = self.owners
        missing = {inode for inode in fresh if inode not in owners and inode not in self._unowned}
        if missing and not first:
            self._find(missing, [pid for pid in pids if pid not in to_read], before)
        for inode in fresh:
            for process in owners.get(inode, ()):
                self._lately[process.pid] = self._updates
        if first:
            self._unowned = {inode for inode in self._seen if inode and inode not in owners}
        else:
            self._unowned &= self._seen
        now = self._seen
        return {inode for inode, old in before.items() if inode in now and owners.get(inode, ()) != old}

    def _find(self, missing: set[int], others: list[int], before: dict[int, tuple[Process, ...]]) -> None:
        """Read ``others`` in batches, likeliest holders first, until no inode of ``missing`` is unowned."""
        lately = self._lately
        others.sort(key=lambda pid: lately.get(pid, 0), reverse=True)
        owners = self.owners
        batch = 1
        position = 0
        while position < len(others):
            self._read(others[position : position + batch], before)
            position += batch
            batch *= 2  # a few likely ones first, then wider sweeps
            missing = {inode for inode in missing if inode not in owners}
            if not missing:
                return
        self._unowned |= missing  # a whole pass found no holder
