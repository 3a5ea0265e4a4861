"""A process and every process it started, found cheaply enough to ask around every test.

The tree of a root process is the root, its descendants, and the processes that
carry a marker in their environment. A descendant that detaches (a double fork,
``setsid``) is re-parented to the nearest *child subreaper* among its ancestors,
so with the root a subreaper (:func:`become_subreaper`) detached daemons stay
its descendants. The marker, an environment entry the root sets and every
program it starts inherits, finds those that left anyway (re-parented above a
root that could not become a subreaper, or before it did), unless they cleared
their environment. Reading another process's ``/proc/PID/environ`` takes the
same user or root: without root, processes that switched user are found only
through their parents.

Cost: the tree is worked out again only when some process was created since the
last look. ``/proc/loadavg`` ends with the last pid the kernel handed out, and
pids are handed out in increasing order (wrapping at ``pid_max``), so the
processes created since are exactly those whose pid lies between the last two
figures, reused pids included. Only those are read (their ``stat``, and their
``environ`` when their parent does not settle it). A process never moves into
or out of the tree while it lives: a member's orphans are re-parented to the
root or to a subreaper inside the tree, never outside it.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

from .processes import Owners, owners_among

__all__ = ["ProcessTree", "become_subreaper", "is_subreaper"]

# include/uapi/linux/prctl.h
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, argument: int | ctypes.c_void_p) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(option, argument, 0, 0, 0) == 0)


def become_subreaper() -> bool:
    """Make this process its descendants' child subreaper; False where the kernel refuses."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def is_subreaper() -> bool:
    """Whether this process is a child subreaper."""
    flag = ctypes.c_int(0)
    return _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.cast(ctypes.pointer(flag), ctypes.c_void_p)) and bool(
        flag.value
    )


def parent_pid(stat: bytes) -> int:
    """The parent's pid in the text of ``/proc/PID/stat``.

    The name in parentheses may hold spaces and parentheses itself, so fields
    are counted from its last ``)``.

    >>> parent_pid(b"4242 (a) b)) S 17 4242 4242 0 -1")
    17
    """
    return int(stat[stat.rindex(b")") + 2 :].split(None, 2)[1])


def last_pid(proc_root: str = "/proc") -> int:
    """The pid the kernel handed out last (the last field of ``/proc/loadavg``)."""
    with open(f"{proc_root}/loadavg", "rb") as loadavg:
        return int(loadavg.read().rsplit(None, 1)[-1])


class ProcessTree:
    """The processes of ``root``'s tree, kept up to date by :meth:`members`.

    ``marker`` is an environment entry, ``NAME=VALUE``, that makes any process
    carrying it a member (with its descendants).
    """

    def __init__(self, root: int | None = None, marker: str | None = None, proc_root: str = "/proc") -> None:
        self.root = os.getpid() if root is None else root
        self._needle = None if marker is None else b"\0" + os.fsencode(marker) + b"\0"
        self._proc_root = proc_root
        self._known: dict[int, bool] = {}  # pid -> member; every live pid once looked at
        self._parents: dict[int, int] = {}  # member -> its parent when first seen
        self._last: int | None = None
        self._members: frozenset[int] = frozenset({self.root})

    def members(self) -> frozenset[int]:
        """The pids of the tree now (some may have exited since they were seen)."""
        newest = last_pid(self._proc_root)
        if newest == self._last:
            return self._members
        pids = {int(entry) for entry in os.listdir(self._proc_root) if entry.isdigit()}
        oldest = self._last
        # Forget the dead first: a pid handed out again is a new process.
        self._known = {pid: member for pid, member in self._known.items() if pid in pids}
        self._parents = {pid: parent for pid, parent in self._parents.items() if pid in pids}
        if oldest is None:
            fresh = pids
        elif oldest <= newest:
            fresh = {pid for pid in pids if oldest < pid <= newest}
        else:  # the counter wrapped at pid_max
            fresh = {pid for pid in pids if pid > oldest or pid <= newest}
        fresh |= pids - self._known.keys()
        self._classify(fresh)
        self._last = newest
        self._members = frozenset(pid for pid, member in self._known.items() if member)
        return self._members

    def parent(self, pid: int) -> int | None:
        """The parent of member ``pid`` when the tree first saw it (before any re-parenting it saw)."""
        return self._parents.get(pid)

    def sockets(self) -> Owners:
        """The sockets the tree's processes hold: inode -> holders."""
        return owners_among(sorted(self.members()), self._proc_root)

    def _classify(self, fresh: Iterable[int]) -> None:
        parents: dict[int, int] = {}
        for pid in fresh:
            self._known.pop(pid, None)
            try:
                with open(f"{self._proc_root}/{pid}/stat", "rb") as stat:
                    parents[pid] = parent_pid(stat.read())
            except (OSError, ValueError):
                continue  # exited since listdir: nothing to hold
        for pid in sorted(parents):
            self._resolve(pid, parents)

    def _resolve(self, pid: int, parents: dict[int, int]) -> bool:
        member = self._known.get(pid)
        if member is not None:
            return member
        self._known[pid] = False  # a guard against cycles in a racy read
        parent = parents.get(pid)
        if pid == self.root:
            member = True
        elif parent is not None and (parent in self._known or parent in parents):
            member = self._resolve(parent, parents)
        else:
            member = False
        if not member and self._needle is not None:
            member = self._carries_marker(pid)
        self._known[pid] = member
        if member and parent is not None:
            self._parents[pid] = parent
        return member

    def _carries_marker(self, pid: int) -> bool:
        try:
            with open(f"{self._proc_root}/{pid}/environ", "rb") as environ:
                return self._needle is not None and self._needle in b"\0" + environ.read() + b"\0"
        except OSError:
            return False  # exited, or another user's without root: see the module's docstring
