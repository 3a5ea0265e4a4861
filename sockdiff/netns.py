"""Entering a named network namespace for the length of a read, as ``ss -N`` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from . import _pyroute2
from .errors import NetnsError

__all__ = ["NETNS_DIR", "entered", "netns_path"]

NETNS_DIR = "/run/netns"


def netns_path(name: str) -> str:
    """The file behind a namespace name: ``/run/netns/NAME``, or a path as given."""
    if not name or name in (".", ".."):
        raise NetnsError(f"bad network namespace name {name!r}")
    return name if "/" in name else f"{NETNS_DIR}/{name}"


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
    # pyroute2's setns is the namespace layer; flags=0 so a typo never creates one.
    pyroute2_netns = _pyroute2.module("netns")

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            pyroute2_netns.setns(target, flags=0)
        except OSError as err:
            raise NetnsError(
                f"cannot enter network namespace {name!r}: {os.strerror(err.errno or 0)}"
                " (entering a namespace needs root)"
            ) from err
        try:
            yield
        finally:
            pyroute2_netns.setns(home, flags=0)
    finally:
        os.close(home)
        os.close(target)
