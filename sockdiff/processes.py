"""Which processes hold which sockets: one scan of /proc/PID/fd, shared by both backends."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .model import Process, escape_name

__all__ = ["Owners", "owners_among", "scan_owners"]

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


def _scan(proc_root: str, entries: Iterable[str]) -> Owners:
    found: Owners = {}
    shared: dict[int, list[Process]] = {}  # sockets with several holders, sorted at the end
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
        except OSError:
            continue
        try:
            fds = os.listdir(fd_dir)
            pid = int(entry)
            for fd in fds:
                try:
                    target = os.readlink(fd, dir_fd=fd_dir)
                except OSError:
                    continue  # the descriptor was closed since listdir
                if target.startswith(_SOCKET_PREFIX):
                    inode = int(target[8:-1])
                    process = Process(pid, name, int(fd))
                    holders = found.get(inode)
                    if holders is None:
                        found[inode] = (process,)  # most sockets have one holder
                    elif inode in shared:
                        shared[inode].append(process)
                    else:
                        shared[inode] = [*holders, process]
        except OSError:
            continue
        finally:
            os.close(fd_dir)
    for inode, all_holders in shared.items():
        found[inode] = tuple(sorted(all_holders))
    return found
