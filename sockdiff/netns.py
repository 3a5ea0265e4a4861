"""Entering a named network namespace for the length of a read, as ``ss -N`` does."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from . import _pyroute2
from .errors import NetnsError

__all__ = ["NETNS_DIR", "apart", "entered", "netns_path", "socket_netns"]

_R = TypeVar("_R")

NETNS_DIR = "/run/netns"


def netns_path(name: str) -> str:
    """The file behind a namespace name: ``/run/netns/NAME``, or a path as given."""
    if not name or name in (".", "..") or "\0" in name:
        raise NetnsError(f"bad network namespace name {name!r}")
    return name if "/" in name else f"{NETNS_DIR}/{name}"


# linux/nsfs.h: NS_GET_NSTYPE = _IO(0xb7, 0x3) answers a namespace file's CLONE_NEW* type.
_NS_GET_NSTYPE = 0xB703
_CLONE_NEWNET = 0x40000000
_NAMESPACE_KINDS = {
    0x00000080: "time",
    0x00020000: "mount",
    0x02000000: "cgroup",
    0x04000000: "UTS",
    0x08000000: "IPC",
    0x10000000: "user",
    0x20000000: "PID",
}


def _check_network_namespace(fd: int, name: str, path: str) -> None:
    """Refuse, in words that say why, a file that is not a network namespace.

    setns(2) answers EINVAL both for a file that is no namespace at all
    (``-N /etc/passwd``) and for another kind of namespace; nsfs says which.
    """
    try:
        kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError as err:
        if err.errno not in (errno.ENOTTY, errno.EINVAL):
            raise NetnsError(f"cannot read network namespace {name!r}: {err.strerror}") from err
        leftover = " (a leftover of a deleted namespace?)" if path.startswith(f"{NETNS_DIR}/") else ""
        raise NetnsError(
            f"{path} is not a namespace file{leftover}: give a name under {NETNS_DIR}"
            " or a path such as /proc/PID/ns/net"
        ) from None
    if kind != _CLONE_NEWNET:
        what = _NAMESPACE_KINDS.get(kind, "another kind of")
        raise NetnsError(f"{path} is a {what} namespace, not a network namespace")


@contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the body in network namespace ``name`` (None: stay where we are).

    setns(2) moves only the calling thread. That is why the proc backend reads
    /proc/thread-self/net rather than /proc/net, which follows the thread-group
    leader; a netlink socket belongs to the namespace of the thread that made it.
    """
    if name is None:
        yield
        return
    path = netns_path(name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError(f"no network namespace {name!r} ({path} does not exist)") from None
    except OSError as err:
        raise NetnsError(f"cannot open network namespace {name!r}: {err.strerror}") from err
    try:
        _check_network_namespace(target, name, path)
    except BaseException:
        os.close(target)
        raise
    # pyroute2's setns is the namespace layer; flags=0 so a typo never creates one.
    pyroute2_netns = _pyroute2.module("netns")

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            pyroute2_netns.setns(target, flags=0)
        except OSError as err:
            why = os.strerror(err.errno or 0)
            if err.errno == errno.EPERM:
                why = "entering a namespace needs root (CAP_SYS_ADMIN)"
            raise NetnsError(f"cannot enter network namespace {name!r}: {why}") from err
        try:
            yield
        finally:
            pyroute2_netns.setns(home, flags=0)
    finally:
        os.close(home)
        os.close(target)


def apart(work: Callable[[], _R]) -> _R:
    """``work()``, run on a thread of its own, which may enter namespaces (:func:`entered`).

    /proc/PID/ns/net names the main thread's namespace: a main thread that
    visited other namespaces would seem, for a moment, to live in each, to
    another sockdiff --all-netns and to ``ip netns pids`` (and so to a script
    that kills what lives in a namespace before deleting it). Whatever ``work``
    raises is raised here.
    """
    outcome: list[_R] = []
    failure: list[BaseException] = []

    def visit() -> None:
        try:
            outcome.append(work())
        except BaseException as err:  # handed to the caller's thread, raised there
            failure.append(err)

    visitor = threading.Thread(target=visit, name="sockdiff-netns", daemon=True)
    visitor.start()
    visitor.join()
    if failure:
        raise failure[0]
    return outcome[0]


# linux/sockios.h: SIOCGSKNS answers an fd of the network namespace a socket lives in.
_SIOCGSKNS = 0x894C
# pidfd_getfd(2): the same number on every architecture (new system calls share one table).
_SYS_PIDFD_GETFD = 438


def socket_netns(pid: int, fd: int, inode: int) -> int | None:
    """An fd of the network namespace where socket ``inode``, ``pid``'s ``fd``, lives; None: cannot tell.

    A socket stays in the namespace it was made in, wherever its process goes
    since (``unshare``, ``setns``), so /proc/PID/ns/net need not be its
    namespace. The socket says where it lives (SIOCGSKNS); another process's
    descriptor is borrowed with pidfd_getfd(2) (Linux 5.6, and the right to
    ptrace that process). The caller closes the fd returned.
    """
    borrowed: int | None = None
    try:
        if pid == os.getpid():
            sock = fd
        else:
            import ctypes  # only here: ~1.3 ms of every start otherwise

            pidfd = os.pidfd_open(pid)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                borrowed = int(libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0))
            finally:
                os.close(pidfd)
            if borrowed < 0:
                return None
            sock = borrowed
        if os.fstat(sock).st_ino != inode:
            return None  # closed since, and the number handed out again
        return int(fcntl.ioctl(sock, _SIOCGSKNS))
    except OSError:
        return None  # gone, not ours to borrow, or a kernel without these calls
    finally:
        if borrowed is not None and borrowed >= 0:
            os.close(borrowed)
