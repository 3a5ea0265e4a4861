"""What a command's SOURCE argument names: a file, ``-``, a stored snapshot, or live.

The lookup order, for a word that is none of ``-``, ``live`` and ``live:BACKEND``:
a file when something other than a directory exists by that name (a regular
file, a FIFO, ``/dev/fd/N`` from a shell's ``<(...)``), else a stored name. A
directory is never a snapshot. When a file shadows a stored snapshot of the same
name and cannot be read, the error says so and gives the stored one's path.
"""

from __future__ import annotations

import datetime
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .acquire import take
from .backends import BACKENDS, sections_of
from .errors import BadSnapshot, UsageError
from .snapshots import MAX_SIZE, Snapshot, loads, read_bounded

__all__ = ["LIVE", "PLAIN_TEXT", "TextOptions", "is_source", "open_source"]

# live, and live:B for each backend the registry knows.
LIVE = ("live", *(f"live:{backend}" for backend in BACKENDS))
# ss:PATH and netstat:PATH name a saved listing of that tool.
_TOOL_PREFIXES = ("ss:", "netstat:")


@dataclass(frozen=True, slots=True)
class TextOptions:
    """How a saved ss or netstat listing is read: ``input_format`` for ``-``, ``lenient`` skips bad lines."""

    input_format: str | None = None
    lenient: bool = False


PLAIN_TEXT = TextOptions()


def _read(name: str) -> tuple[bytes, datetime.datetime]:
    """A file's bytes (``-``: standard input), bounded, and when it was last written."""
    if name == "-":
        from .output import check_stdin

        check_stdin()
        return read_bounded(sys.stdin.buffer), datetime.datetime.now(datetime.UTC)
    if "\0" in name:  # no file has such a name; open() would raise ValueError
        raise BadSnapshot(f"{name!r}: cannot read: a path holds no NUL")
    try:
        with open(name, "rb") as source:
            mtime = os.fstat(source.fileno()).st_mtime
            data = read_bounded(source)
    except OSError as err:
        raise BadSnapshot(f"{name}: cannot read: {err.strerror}") from err
    return data, datetime.datetime.fromtimestamp(mtime, datetime.UTC)


def _load(name: str, tool: str | None, text: TextOptions, like: Snapshot | None = None) -> Snapshot:
    """A snapshot file, or a saved listing (``tool``, else ``--input-format`` for ``-``, else its header)."""
    data, mtime = _read(name)
    origin = "<stdin>" if name == "-" else name
    if tool is None and name == "-":
        tool = text.input_format
    if tool is None and data[:2] != b"\x1f\x8b" and data.lstrip()[:1] != b"{":
        from .saved import detect

        tool = detect(data[:65536].decode("utf-8", "surrogateescape"))
    if tool is None:
        return loads(data, origin, like=like)
    from .saved import read_listing

    if len(data) > MAX_SIZE:
        raise BadSnapshot(f"{origin}: a listing larger than {MAX_SIZE >> 20} MiB")
    return read_listing(data.decode("utf-8", "surrogateescape"), origin, mtime, tool, text.lenient)


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
    if text in LIVE or text == "-" or text.startswith(("live:", *_TOOL_PREFIXES)):
        return True
    from . import store
    from .filter import starts_filter

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
    text_options: TextOptions = PLAIN_TEXT,
    all_netns: bool = False,
) -> Snapshot:
    """The snapshot a source names; live sources are read now (in ``netns`` if given).

    ``sections`` narrows what a live source reads (default: every section);
    ``like`` reads a live source within the scope and sections of that snapshot,
    the way one would compare with it (every namespace when it holds every one),
    and a file sharing that snapshot's unchanged records
    (:func:`~sockdiff.snapshots.loads`); ``all_netns`` reads every namespace.
    """
    if text in LIVE:
        backend = text.partition(":")[2] or "auto"
        if like is None:
            return take(
                backend=backend, netns=netns, processes=processes, sections=sections, all_netns=all_netns
            )
        # Unfiltered: the comparison narrows it to the other side's filter, where a
        # value this backend cannot know (a device, read from /proc) keeps a socket in.
        readable = sections_of(backend)
        return take(
            backend=backend,
            netns=netns,
            processes=processes,
            protos=like.header.scope.protos,
            sections=[name for name in readable if getattr(like, name) is not None],
            all_netns=all_netns or like.namespaces is not None,
        )
    if text.startswith("live:"):
        raise UsageError(
            f"unknown live backend {text.partition(':')[2]!r} (sources: live, live:netlink, live:proc)"
        )
    if text == "-":
        return _load(text, None, text_options, like)
    tool, colon, path = text.partition(":")
    if colon and f"{tool}:" in _TOOL_PREFIXES and not _is_file(text):
        return _load(path, tool, text_options, like)
    from . import store

    stored = store.find(text)
    if _is_file(text):
        try:
            return _load(text, None, text_options, like)
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
