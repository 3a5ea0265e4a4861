"""The snapshot store: ``$SOCKDIFF_HOME``, else ``$XDG_STATE_HOME/sockdiff``
(``~/.local/state/sockdiff``), one ``NAME.json`` a snapshot.

The store is private: created 0700, its files 0600, and refused (a
:class:`~sockdiff.errors.StoreError`) when it belongs to another user or others
may write to it, since a planted file would be taken for a baseline. A name
taken by time is claimed atomically (:func:`sockdiff.output.write_new`), so
concurrent snapshots never overwrite each other; a name given with ``--name``
replaces the snapshot of that name. Names are plain words: no ``/`` (a name
cannot leave the store), no suffix, and none of the source words ``live``,
``live:...`` and ``-``.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import StoreError, UsageError

if TYPE_CHECKING:
    from .snapshots import Snapshot

__all__ = [
    "StoredSnapshot",
    "check_name",
    "entries",
    "find",
    "keep",
    "newest",
    "store_dir",
]

SUFFIX = ".json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")
# Names that clash with sources: each of these already means something to show and compare.
_SOURCE_WORDS = ("live", "-")
# Numbered names tried for one second's snapshots before giving up.
_MAX_SAME_TIME = 10_000
# Where the header's taken_at is found: the first members of every snapshot file.
_HEAD_SIZE = 4096
_TAKEN_AT = re.compile(rb'"taken_at"\s*:\s*"([^"\\]{1,64})"')


def store_dir() -> Path:
    """Where stored snapshots live (not created until one is saved), its symlinks resolved.

    A symlink on the way that another user planted in a sticky directory is
    refused, as for any file sockdiff writes (:mod:`sockdiff.output`). A relative
    ``XDG_STATE_HOME`` is ignored, as the XDG specification says.
    """
    from .errors import WriteError
    from .output import trusted_directory

    home = os.environ.get("SOCKDIFF_HOME")
    if not home:
        state = os.environ.get("XDG_STATE_HOME", "")
        if not os.path.isabs(state):
            state = os.path.join(os.path.expanduser("~"), ".local", "state")
        home = os.path.join(state, "sockdiff")
    try:
        return Path(trusted_directory(home))
    except WriteError as err:
        raise StoreError(f"the snapshot store: {err}") from None


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """One stored snapshot; ``taken_at`` from its header, None when the file does not say."""

    name: str
    path: Path
    size: int
    mtime: float
    taken_at: str | None


def check_name(name: str) -> None:
    """Refuse a name that is not a plain word the store can keep and a source can name."""
    if not name:
        raise UsageError("the snapshot name is empty (leave --name out to name it by time)")
    if name in _SOURCE_WORDS or name.startswith("live:"):
        raise UsageError(f"{name!r} is a source word (live, live:BACKEND, -): choose another snapshot name")
    from .filter import starts_filter

    if starts_filter(name):
        raise UsageError(
            f"{name!r} is a filter keyword (show would read it as a filter): choose another name"
        )
    if name.endswith((SUFFIX, SUFFIX + ".gz")):
        raise UsageError(
            f"bad snapshot name {name!r}: a stored name has no suffix (the store keeps NAME{SUFFIX};"
            " for a compressed file use -o PATH.json.gz)"
        )
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"bad snapshot name {name!r}: use letters, digits and . _ @ + -, starting with a letter"
            " or digit, at most 200 characters (no '/': a name stays in the store)"
        )


def _checked(directory: Path) -> Path:
    """``directory``, refused unless it is a directory of ours that no one else may write to."""
    try:
        status = os.stat(directory)
    except OSError as err:
        raise StoreError(f"cannot read the snapshot store {directory}: {err.strerror}") from err
    return _private(directory, status)


def _private(directory: Path, status: os.stat_result) -> Path:
    """``directory``, whose ``status`` is given, refused unless it is ours and no one else's to write."""
    if not stat.S_ISDIR(status.st_mode):
        raise StoreError(f"the snapshot store {directory} is not a directory")
    if status.st_uid != os.geteuid():
        raise StoreError(
            f"the snapshot store {directory} belongs to uid {status.st_uid}, not to us"
            f" (uid {os.geteuid()}): set SOCKDIFF_HOME to a directory of ours"
        )
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(
            f"the snapshot store {directory} may be written by others"
            f" (mode {stat.S_IMODE(status.st_mode):04o}): chmod 700 it"
        )
    return directory


def _created() -> Path:
    from .errors import WriteError
    from .output import make_directories

    directory = store_dir()
    try:
        status = make_directories(str(directory), 0o700)
    except OSError as err:
        raise StoreError(f"cannot create the snapshot store {directory}: {err.strerror}") from err
    except WriteError as err:
        raise StoreError(f"the snapshot store: {err}") from None
    return _private(directory, status)


def keep(snapshot: Snapshot, name: str | None = None) -> Path:
    """Store ``snapshot`` under ``name`` (replacing one of that name), else under its time; the path.

    A time name that is taken already gets a number (``2026-11-25T10-00-00Z.2``).
    """
    from .output import write_file, write_new
    from .snapshots import encode

    if name is not None:
        check_name(name)
    directory = _created()
    data = encode(snapshot)  # written as it is encoded, never held whole
    if name is not None:
        path = directory / f"{name}{SUFFIX}"
        write_file(str(path), data)
        return path
    base = snapshot.header.taken_at.replace(":", "-")  # colons are awkward in file names
    names = (f"{base}{SUFFIX}" if n == 1 else f"{base}.{n}{SUFFIX}" for n in range(1, _MAX_SAME_TIME))
    return write_new(directory, names, data)


def _taken_at(path: Path) -> str | None:
    """The taken_at of a snapshot file, from its first bytes: the file is not parsed whole."""
    try:
        with path.open("rb") as source:
            head = source.read(_HEAD_SIZE)
    except OSError:
        return None
    found = _TAKEN_AT.search(head)
    return found[1].decode("utf-8", "backslashreplace") if found else None


def _stamp(mtime: float) -> str:
    return datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entries() -> list[StoredSnapshot]:
    """The stored snapshots, oldest first: by when they were taken (the file time where unknown)."""
    directory = store_dir()
    try:
        os.lstat(directory)
    except FileNotFoundError:
        return []
    except OSError:
        pass  # a store we may not even look into: _checked says so, in words
    _checked(directory)
    try:
        files = list(directory.iterdir())
    except OSError as err:
        raise StoreError(f"cannot read the snapshot store {directory}: {err.strerror}") from err
    found = []
    for path in files:
        if not path.name.endswith(SUFFIX) or path.name.startswith("."):
            continue
        try:
            status = path.stat()
        except OSError:
            continue  # removed while we looked
        if stat.S_ISREG(status.st_mode):
            name = path.name[: -len(SUFFIX)]
            found.append(StoredSnapshot(name, path, status.st_size, status.st_mtime, _taken_at(path)))
    return sorted(found, key=lambda e: (e.taken_at or _stamp(e.mtime), e.mtime, e.name))


def find(name: str) -> Path | None:
    """The file of stored snapshot ``name``, if there is one (in a store that is private)."""
    if not _NAME.fullmatch(name):
        return None
    directory = store_dir()
    path = directory / f"{name}{SUFFIX}"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
    except OSError:  # none there, or a store we may not look into: not a stored name
        return None
    _checked(directory)
    return path


def newest() -> StoredSnapshot:
    """The most recently taken stored snapshot."""
    found = entries()
    if not found:
        raise UsageError(f"no stored snapshots in {store_dir()}: take one first with 'sockdiff snapshot'")
    return found[-1]
