"""Which processes hold which sockets: one scan of /proc/PID/fd, shared by both backends."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from ._accel import speedups
from .model import Holder, Process, escape_name

__all__ = [
    "OwnerTracker",
    "Owners",
    "OwnersHidden",
    "Scan",
    "fd_links",
    "holder",
    "owners_among",
    "scan_owners",
]

Owners = dict[int, tuple[Process, ...]]

_SOCKET_PREFIX = "socket:["
_NETNS_PREFIX = "net:["


def scan_owners(proc_root: str = "/proc", held_netns: dict[int, str] | None = None) -> Owners:
    """Map every socket inode to the processes holding it, as ``ss -p`` does.

    A socket held through several descriptors, or by several processes, lists
    each ``(pid, name, fd)``, sorted. The name is the process's ``comm``.
    Inodes are global, so this works the same for a socket in any namespace.
    ``held_netns``, when given, gains each network namespace held open by a
    descriptor (inode -> that descriptor's path), from the same scan
    (:func:`sockdiff.namespaces.discover` takes it).
    """
    entries = (entry for entry in os.listdir(proc_root) if entry.isdigit())
    return _scan(proc_root, entries, held_netns)


class Scan:
    """:func:`scan_owners` in a thread of its own, started at once, for a caller that reads
    the sockets meanwhile: most of a scan is the kernel resolving each descriptor's link,
    which the accelerator's ``fd_links`` does with the GIL released (as ``os.readlink`` does)."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self._owners: Owners | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(proc_root,), name="sockdiff-owners", daemon=True
        )
        self._thread.start()

    def _run(self, proc_root: str) -> None:
        try:
            self._owners = scan_owners(proc_root)
        except BaseException as err:  # raised where the result is asked for
            self._error = err

    def join(self) -> None:
        """Wait for the scan to end."""
        self._thread.join()

    def result(self) -> Owners:
        """The owners, once the scan has ended; what it raised, if it raised."""
        self.join()
        if self._error is not None:
            raise self._error
        assert self._owners is not None
        return self._owners


def owners_among(pids: Iterable[int], proc_root: str = "/proc") -> Owners:
    """:func:`scan_owners` for the processes ``pids`` only: the sockets they hold.

    A process in ``pids`` that has exited, or that we may not read, holds nothing.
    """
    return _scan(proc_root, (str(pid) for pid in pids))


def _scan(proc_root: str, entries: Iterable[str], held_netns: dict[int, str] | None = None) -> Owners:
    found: Owners = {}
    shared: dict[int, list[Process]] = {}  # sockets with several holders, sorted at the end
    hidden = False  # a process whose descriptors we may not read
    for entry in entries:
        # A process that exits mid-scan, or whose descriptors we may not read,
        # is skipped: netstat -p and lsof do the same.
        try:
            name = _comm(proc_root, entry)
            fd_dir = os.open(f"{proc_root}/{entry}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except PermissionError:
            hidden = True
            continue
        except OSError:
            continue
        try:
            links = None if _fast_fd_links is None else _fast_fd_links(fd_dir)
            numbers, inodes, netns = fd_links(fd_dir) if links is None else links
        except OSError:
            continue
        finally:
            os.close(fd_dir)
        pid = int(entry)
        for number, inode in zip(numbers, inodes, strict=True):
            process = Process(pid, name, number)
            holders = found.get(inode)
            if holders is None:
                found[inode] = (process,)  # most sockets have one holder
            elif inode in shared:
                shared[inode].append(process)
            else:
                shared[inode] = [*holders, process]
        if held_netns is not None:
            for fd, inode in netns:
                held_netns.setdefault(inode, f"{proc_root}/{entry}/fd/{fd}")
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


def fd_links(fd_dir: int) -> tuple[list[int], list[int], list[tuple[str, int]]]:
    """What the descriptors listed in an open /proc/PID/fd directory hold: the numbers of
    those that hold a socket and the sockets' inodes (in the directory's order), and
    ``(name, inode)`` of those that hold a network namespace. A descriptor closed meanwhile
    is left out; the directory that cannot be listed raises OSError.

    The reference for the accelerator's ``fd_links`` (the readlink of every descriptor
    of every process is most of what ``-p`` costs).
    """
    numbers: list[int] = []
    inodes: list[int] = []
    netns: list[tuple[str, int]] = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd, dir_fd=fd_dir)
        except OSError:
            continue  # the descriptor was closed since listdir
        if target.startswith(_SOCKET_PREFIX):
            numbers.append(int(fd))
            inodes.append(int(target[8:-1]))
        elif target.startswith(_NETNS_PREFIX):
            netns.append((fd, int(target[5:-1])))
    return numbers, inodes, netns


_fast_fd_links = None if speedups is None else speedups.fd_links


def holder(pid: int, proc_root: str = "/proc") -> Holder | None:
    """Process ``pid``'s command line (each argument escaped as any name; a kernel thread's
    or a zombie's is empty) and how long it has run; None: it is gone.

    Its age is its start time (``/proc/PID/stat``'s 22nd field, in clock ticks since boot)
    against ``/proc/uptime``.
    """
    try:
        with open(f"{proc_root}/{pid}/cmdline", "rb") as cmdline:
            raw = cmdline.read()
        with open(f"{proc_root}/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        with open(f"{proc_root}/uptime", "rb") as uptime:
            now = float(uptime.read().split()[0])
    except OSError:
        return None
    args = raw.split(b"\0") if raw else []
    if args and not args[-1]:  # each argument ends in a NUL (unless the process rewrote them)
        args.pop()
    command = tuple(escape_name(arg) for arg in args)
    try:
        # Fields counted from the state (the 3rd): the start time is the 22nd.
        seconds: float | None = max(0.0, now - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (IndexError, ValueError):
        seconds = None
    return Holder(pid, command, seconds)


class OwnersHidden(UserWarning):
    """Not root, and some processes' descriptors could not be read: their sockets have no owner."""


def _comm(proc_root: str, pid: int | str) -> str:
    """``pid``'s name (``comm``), escaped as any name; OSError when it is gone or unreadable.

    comm ends in the newline /proc adds; a name may hold one too (prctl), and backslashes,
    doubled as in a UNIX name so that escapes shown later are unambiguous.
    """
    with open(f"{proc_root}/{pid}/comm", "rb") as comm_file:
        comm = comm_file.read()
    return escape_name(comm[:-1] if comm.endswith(b"\n") else comm)


def _comm_or_none(proc_root: str, pid: int) -> str | None:
    try:
        return _comm(proc_root, pid)
    except OSError:
        return None


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


@dataclass(slots=True)
class _Held:
    """What one process held when it was last read (descriptors as /proc names them)."""

    name: str
    numbers: set[str]  # every open descriptor
    sockets: dict[str, int]  # descriptor -> socket inode
    netns: dict[str, int] = field(default_factory=dict)  # descriptor -> network namespace inode


class OwnerTracker:
    """An owners map kept up to date from one poll to the next at the cost of what changed.

    ``watch`` polls sockets every second; reading every process's descriptors
    each time costs as much as the host has descriptors (0.65 s at 110k). This
    reads them all once, then at each :meth:`update`:

    - reads the processes that appeared (a fork shares its parent's sockets:
      they get a new holder) and forgets those that exited, reading nothing;
    - looks again at the processes whose number of descriptors changed (one ``stat``
      each) and, of those holding a socket, whose name changed (one read of
      ``comm``: an exec, a rename), and at those the map names as holders of a new
      inode (a stale entry): of each, only the descriptors that are new, or that
      held a socket which has since closed (the number may have been reused), are
      read (readlink). A socket passed over SCM_RIGHTS, and the sender's copy
      closed, are seen so, though no socket came or went;
    - if some new sockets are still unowned, looks the same way at the other
      processes, those that held new sockets lately first, and stops when every
      new socket has its holder; after that, reads every descriptor of every
      process once, and a socket still unowned (held by the kernel, or by a
      process we may not read) is not looked for again.

    - for each socket several processes hold (a pre-fork server's listener, which
      each worker inherits), looks at each holder's descriptor again (one
      readlink): a holder that closed its copy, or put another file on its
      number, is read again, so a worker that lets go of the socket and lives
      on stops being named as it goes. Forks are the common case; what one costs
      a poll is a readlink for each holder of each shared socket.

    What it cannot see cheaply, and so misses until that process is read again: an
    existing socket dup'ed onto a descriptor number the process already had open
    (the count stays), and a pid reused between two polls. ``ss -p`` at one instant
    sees them; a poll may not.
    """

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        #: socket inode -> the processes holding it, as :func:`scan_owners` gives it.
        self.owners: Owners = {}
        self._held: dict[int, _Held] = {}
        self._seen: set[int] = set()  # the inodes of the last update
        self._unowned: set[int] = set()  # inodes a full pass found no holder for
        self._shared: set[int] = set()  # inodes more than one descriptor holds
        self._lately: dict[int, int] = {}  # pid -> the last update it was found holding a new socket
        self._before: dict[int, tuple[Process, ...]] = {}  # entries this update changed, as they were
        self._updates = 0
        #: Processes looked at and descriptors read (readlink) over all updates, for tests and benchmarks.
        self.processes_read = 0
        self.descriptors_read = 0

    @property
    def held_netns(self) -> dict[int, str]:
        """Each network namespace a descriptor held as processes were last read: inode -> that
        descriptor's path, as :func:`scan_owners` gives it (a descriptor opened since, by a
        process not read again, is not in it)."""
        found: dict[int, str] = {}
        root = self.proc_root
        for pid, held in self._held.items():
            for fd, inode in held.netns.items():
                found.setdefault(inode, f"{root}/{pid}/fd/{fd}")
        return found

    def _set(self, inode: int, holders: tuple[Process, ...]) -> None:
        owners = self.owners
        self._before.setdefault(inode, owners.get(inode, ()))
        if holders:
            owners[inode] = holders
        else:
            owners.pop(inode, None)
        if len(holders) > 1:
            self._shared.add(inode)
        else:
            self._shared.discard(inode)

    def _replace(self, pid: int, new: _Held | None) -> None:
        """Record what ``pid`` holds now (None: it is gone), changing only the entries that differ."""
        old = self._held.pop(pid, None)
        old_sockets = old.sockets if old is not None else {}
        new_sockets = new.sockets if new is not None else {}
        gone: Collection[tuple[str, int]]
        came: Collection[tuple[str, int]]
        if old is not None and new is not None and old.name != new.name:
            gone, came = old_sockets.items(), new_sockets.items()
        else:  # set operations over the (descriptor, inode) pairs: a process may hold 20,000
            gone = old_sockets.items() - new_sockets.items()
            came = new_sockets.items() - old_sockets.items()
        owners = self.owners
        for fd, inode in gone:
            number = int(fd)
            holders = owners.get(inode, ())
            self._set(inode, tuple(p for p in holders if p.pid != pid or p.fd != number))
        if new is None:
            return
        self._held[pid] = new
        for fd, inode in came:
            process = Process(pid, new.name, int(fd))
            holders = owners.get(inode, ())
            self._set(inode, tuple(sorted((*holders, process))) if holders else (process,))

    def _read(self, pid: int, everything: bool, also: Collection[str] = ()) -> None:
        """Look at ``pid`` again: every descriptor, or only those that may have changed
        and those named in ``also``."""
        root = self.proc_root
        old = self._held.get(pid)
        everything = everything or old is None
        self.processes_read += 1
        # A process that exits meanwhile, or whose descriptors we may not read, holds nothing.
        try:
            # Read again whenever the process is: an exec (sh -c 'exec server') or a
            # prctl(PR_SET_NAME) renames it, and a new socket must carry the name of now.
            name = _comm(root, pid)
            fd_dir = os.open(f"{root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            self._replace(pid, None)
            return
        try:
            numbers = set(os.listdir(fd_dir))
            sockets: dict[str, int]
            netns: dict[str, int]
            if everything or old is None:
                to_read = numbers
                sockets = {}
                netns = {}
            else:
                # New descriptors, and those whose socket has closed since (the number may be reused).
                seen = self._seen
                to_read = numbers - old.numbers
                to_read.update(fd for fd, inode in old.sockets.items() if inode not in seen and fd in numbers)
                to_read.update(fd for fd in also if fd in numbers)
                sockets = dict(old.sockets)
                for fd in (old.sockets.keys() - numbers) | to_read:
                    sockets.pop(fd, None)
                netns = {fd: inode for fd, inode in old.netns.items() if fd in numbers and fd not in to_read}
            for fd in to_read:
                try:
                    target = os.readlink(fd, dir_fd=fd_dir)
                except OSError:
                    continue  # closed since listdir
                if target.startswith(_SOCKET_PREFIX):
                    sockets[fd] = int(target[8:-1])
                elif target.startswith(_NETNS_PREFIX):
                    netns[fd] = int(target[5:-1])
            self.descriptors_read += len(to_read)
        except OSError:
            self._replace(pid, None)
            return
        finally:
            os.close(fd_dir)
        self._replace(pid, _Held(name, numbers, sockets, netns))

    def update(self, inodes: Collection[int]) -> set[int]:
        """Bring :attr:`owners` up to date for the sockets ``inodes``, every one that exists now
        (0s are ignored): :meth:`follow` with what came and went since the last update."""
        now = set(inodes)
        now.discard(0)
        return self.follow(now - self._seen, self._seen - now)

    def follow(self, came: Collection[int], went: Collection[int]) -> set[int]:
        """Bring :attr:`owners` up to date after the sockets ``came`` opened and ``went`` closed
        (inodes; 0s are ignored) since the last update: what ``watch`` knows without a look at
        every socket.

        Returns the inodes of sockets that exist now whose holders changed (holders of
        closed sockets may change too, unread). The first update reads every process.
        """
        self._updates += 1
        self._before = {}
        pids = {int(entry) for entry in os.listdir(self.proc_root) if entry.isdigit()}
        held = self._held
        first = not held
        for pid in [pid for pid in held if pid not in pids]:
            self._replace(pid, None)  # exited: nothing to read
        seen = self._seen
        seen.difference_update(went)
        fresh = [inode for inode in came if inode and inode not in seen]
        seen.update(fresh)
        looked = {pid for pid in pids if pid not in held}
        for pid in looked:
            self._read(pid, everything=True)
        owners = self.owners
        if not first:
            looked |= self._check_shared(looked)
        if not first:
            # Every poll, each process's number of descriptors (one stat) and, of those holding
            # a socket, its name (one read of comm): a socket passed to it (SCM_RIGHTS) or
            # dup'ed into it, one it closed, an exec or a rename, whether or not a socket came.
            suspects = {p.pid for inode in fresh for p in owners.get(inode, ())}
            root = self.proc_root
            changed = [
                pid
                for pid, record in held.items()
                if pid not in looked
                and (
                    pid in suspects
                    or _fd_count(root, pid) != len(record.numbers)
                    or (record.sockets and _comm_or_none(root, pid) != record.name)
                )
            ]
            for pid in changed:
                self._read(pid, everything=False)
            looked.update(changed)
        if fresh and not first:
            missing = {inode for inode in fresh if inode not in owners and inode not in self._unowned}
            if missing:
                self._find(missing, [pid for pid in held if pid not in looked])
        for inode in fresh:
            for process in owners.get(inode, ()):
                self._lately[process.pid] = self._updates
        if first:
            self._unowned = {inode for inode in seen if inode not in owners}
        else:
            self._unowned.difference_update(went)
        before = self._before
        return {inode for inode, old in before.items() if inode in seen and owners.get(inode, ()) != old}

    def _check_shared(self, looked: Collection[int]) -> set[int]:
        """Each holder of a socket several descriptors hold, looked at again (one readlink):
        the processes (not in ``looked``, read already) that no longer hold it there are read
        again, that descriptor included. Returns the pids read."""
        root = self.proc_root
        stale: dict[int, set[str]] = {}
        for inode in list(self._shared):
            expected = f"{_SOCKET_PREFIX}{inode}]"
            for process in self.owners.get(inode, ()):
                if process.pid in looked:
                    continue
                try:
                    target = os.readlink(f"{root}/{process.pid}/fd/{process.fd}")
                except OSError:
                    target = ""  # closed, or the process exited
                if target != expected:
                    stale.setdefault(process.pid, set()).add(str(process.fd))
        for pid, fds in stale.items():
            self._read(pid, everything=False, also=fds)
        return set(stale)

    def _find(self, missing: set[int], others: list[int]) -> None:
        """Look at ``others``, likeliest holders first, until no inode of ``missing`` is unowned.

        A descriptor number that held a file and now holds a socket escapes the
        quick look: what is still missing after it sends every process to a full read.
        """
        lately = self._lately
        others.sort(key=lambda pid: lately.get(pid, 0), reverse=True)
        owners = self.owners
        for pid in others:
            self._read(pid, everything=False)
            missing = {inode for inode in missing if inode not in owners}
            if not missing:
                return
        for pid in list(self._held):
            self._read(pid, everything=True)
            missing = {inode for inode in missing if inode not in owners}
            if not missing:
                return
        self._unowned |= missing  # a whole pass found no holder
