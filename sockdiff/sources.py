"""What a command's SOURCE argument names: a file, ``-``, a stored snapshot, or live.

The lookup order, for a word that is none of ``-``, ``live`` and ``live:BACKEND``:
a file when something other than a directory exists by that name (a regular
file, a FIFO, ``/dev/fd/N`` from a shell's ``<(...)``), else a stored name. A
directory is never a snapshot. When a file shadows a stored snapshot of the same
name and cannot be read, the error says so and gives the stored one's path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from . import store
from .acquire import take
from .backends import BACKENDS, sections_of
from .errors import BadSnapshot, UsageError
from .filter import starts_filter
from .snapshots import Snapshot, load

__all__ = ["LIVE", "is_source", "open_source"]

# live, and live:B for each backend the registry knows.
LIVE = ("live", *(f"live:{backend}" for backend in BACKENDS))


def _is_file(text: str) -> bool:
    """Whether something that is not a directory exists at ``text``."""
    try:
        return not stat.S_ISDIR(os.stat(text).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False


def is_source(text: str) -> bool:
    """Whether ``text`` names a source (rather than starting a filter expression).

    A filter keyword (``state``, ``not``, ``(``...) always starts a filter, even
    where a file has that name (write ``./state`` for the file). A word that
    looks like a file name (a ``/`` or a snapshot suffix, no space)
    counts even when no such file exists, so the error names the missing file
    rather than a filter keyword; so does ``live:`` followed by anything.
    """
    if text in LIVE or text == "-" or text.startswith("live:"):
        return True
    if starts_filter(text):
        return False  # a file by such a name is written ./state; the store keeps no such name
    if _is_file(text):
        return True
    if store.find(text) is not None:
        return True
    return not any(c.isspace() for c in text) and ("/" in text or text.endswith((".json", ".json.gz")))


def open_source(
    text: str,
    netns: str | None = None,
    processes: bool = True,
    sections: Sequence[str] | None = None,
    like: Snapshot | None = None,
) -> Snapshot:
    """The snapshot a source names; live sources are read now (in ``netns`` if given).

    ``sections`` narrows what a live source reads (default: every section);
    ``like`` reads a live source within the scope and sections of that snapshot,
    the way one would compare with it, and a file sharing that snapshot's
    unchanged records (:func:`~sockdiff.snapshots.loads`).
    """
    if text in LIVE:
        backend = text.partition(":")[2] or "auto"
        if like is None:
            return take(backend=backend, netns=netns, processes=processes, sections=sections)
        # Unfiltered: the comparison narrows it to the other side's filter, where a
        # value this backend cannot know (a device, read from /proc) keeps a socket in.
        readable = sections_of(backend)
        return take(
            backend=backend,
            netns=netns,
            processes=processes,
            protos=like.header.scope.protos,
            sections=[name for name in readable if getattr(like, name) is not None],
        )
    if text.startswith("live:"):
        raise UsageError(
            f"unknown live backend {text.partition(':')[2]!r} (sources: live, live:netlink, live:proc)"
        )
    if text == "-":
        from .output import check_stdin

        check_stdin()
        return load(text, like=like)
    stored = store.find(text)
    if _is_file(text):
        try:
            return load(text, like=like)
        except BadSnapshot as err:
            if stored is None:
                raise
            raise BadSnapshot(
                f"{err} (the file {text} shadows the stored snapshot {text!r}: to read that, give {stored})"
            ) from err
    if stored is not None:
        found = store.load(text, like)  # read through the store held and checked, not by its path again
        if found is not None:
            return found
    if os.path.isdir(text):
        raise BadSnapshot(f"{text}: a directory, not a snapshot (and no stored snapshot has that name)")
    raise BadSnapshot(
        f"{text}: no such file or stored snapshot (sources: a file, '-', a name from"
        " 'sockdiff list', live, live:netlink, live:proc)"
    )
