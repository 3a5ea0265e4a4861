"""Which processes hold which sockets: one scan of /proc/PID/fd, shared by both backends."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .model import Process

__all__ = ["Owners", "scan_owners", "scan_owners_in_background"]

Owners = dict[int, tuple[Process, ...]]

_SOCKET_PREFIX = "socket:["


def scan_owners(proc_root: str = "/proc") -> Owners:
    """Map every socket inode to the processes holding it, as ``ss -p`` does.

    A socket held through several descriptors, or by several processes, lists
    each ``(pid, name, fd)``, sorted. The name is the process's ``comm``.
    Inodes are global, so this works the same for a socket in any namespace.
    """
    found: Owners = {}
    shared: dict[int, list[Process]] = {}  # sockets with several holders, sorted at the end
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        # A process that exits mid-scan, or whose descriptors we may not read,
        # is skipped: netstat -p and lsof do the same.
        try:
            with open(f"{proc_root}/{entry}/comm", "rb") as comm_file:
                name = comm_file.read().rstrip(b"\n").decode("utf-8", "backslashreplace")
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


def scan_owners_in_background(proc_root: str = "/proc") -> Callable[[], Owners]:
    """Start :func:`scan_owners` on a thread; the function returned waits for its map.

    The scan spends most of its time in readlink(2), and a /proc/net read most
    of its time in the kernel, both without the GIL: on two cores they overlap
    (~0.8 s -> ~0.57 s for 100k sockets). The scan's error, if any, is raised by
    the waiting function.
    """
    found: list[Owners] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            found.append(scan_owners(proc_root))
        except BaseException as err:  # handed to the waiting thread
            failed.append(err)

    thread = threading.Thread(target=work, name="sockdiff-owners", daemon=True)
    thread.start()

    def wait() -> Owners:
        thread.join()
        if failed:
            raise failed[0]
        return found[0]

    return wait
