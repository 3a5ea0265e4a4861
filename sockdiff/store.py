"""The snapshot store: ``$SOCKDIFF_HOME``, else ``$XDG_STATE_HOME/sockdiff``
(``~/.local/state/sockdiff``), one ``NAME.json`` a snapshot.

The store is private: created 0700 (its files as any new file: 0666 less the umask), and refused (a
:class:`~sockdiff.errors.StoreError`) when it belongs to another user or others
may write to it, since a planted file would be taken for a baseline. It is
held open once (:class:`Store`) and that descriptor is what is checked, listed,
read and written in: never the path again. A name
taken by time is claimed atomically (:func:`sockdiff.output.write_new`), so
concurrent snapshots never overwrite each other; a name given
replaces the snapshot of that name. Names are plain words: no ``/`` (a name
cannot leave the store), no suffix, and none of the source words ``live``,
``live:...`` and ``-``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadSnapshot, StoreError, UsageError

if TYPE_CHECKING:
    from .snapshots import Snapshot

__all__ = [
    "Store",
    "StoredSnapshot",
    "check_name",
    "entries",
    "find",
    "keep",
    "load",
    "newest",
    "newest_snapshot",
    "opened",
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


def _home() -> str:
    """The store's path as configured: ``$SOCKDIFF_HOME``, else under ``$XDG_STATE_HOME``."""
    home = os.environ.get("SOCKDIFF_HOME")
    if not home:
        state = os.environ.get("XDG_STATE_HOME", "")
        if not os.path.isabs(state):
            state = os.path.join(os.path.expanduser("~"), ".local", "state")
        home = os.path.join(state, "sockdiff")
    return home


def store_dir() -> Path:
    """Where stored snapshots live (not created until one is saved), its symlinks resolved.

    A symlink on the way that another user planted in a sticky directory is
    refused, as for any file sockdiff writes (:mod:`sockdiff.output`). A relative
    ``XDG_STATE_HOME`` is ignored, as the XDG specification says.
    """
    from .errors import WriteError
    from .output import trusted_directory

    try:
        return Path(trusted_directory(_home()))
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
        raise UsageError("the snapshot name is empty (give no name to name it by time)")
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


class Store:
    """The store, held open: its directory checked once through the descriptor, and used through it.

    Listing, reading, creating and renaming are all done relative to the
    descriptor whose owner and mode were checked (fstat), never by the path
    again: another user who renames the store away and theirs into its place
    (renameat2 RENAME_EXCHANGE in a directory of theirs) changes nothing we
    read or write. ``path`` is for messages.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def keep(self, snapshot: Snapshot, name: str | None = None) -> Path:
        """:func:`keep`, in this store."""
        from .output import write_in, write_new
        from .snapshots import encode

        if name is not None:
            check_name(name)
        data = encode(snapshot)  # written as it is encoded, never held whole
        if name is not None:
            write_in(self.fd, f"{name}{SUFFIX}", data, self.path)
            return self.path / f"{name}{SUFFIX}"
        base = snapshot.header.taken_at.replace(":", "-")  # colons are awkward in file names
        names = (f"{base}{SUFFIX}" if n == 1 else f"{base}.{n}{SUFFIX}" for n in range(1, _MAX_SAME_TIME))
        return write_new(self.fd, self.path, names, data)

    def _open(self, name: str) -> int:
        """A snapshot file of the store, opened for reading (never through a link)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        return os.open(name, flags, dir_fd=self.fd)

    def status(self, name: str) -> os.stat_result | None:
        """The store's entry ``name`` (a regular file), None when there is none."""
        try:
            status = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return None
        return status if stat.S_ISREG(status.st_mode) else None

    def entries(self) -> list[StoredSnapshot]:
        """The stored snapshots, oldest first: by when they were taken (the file time where unknown)."""
        try:
            files = os.listdir(self.fd)
        except OSError as err:
            raise StoreError(f"cannot read the snapshot store {self.path}: {err.strerror}") from err
        found = []
        for file in files:
            if not file.endswith(SUFFIX) or file.startswith("."):
                continue
            status = self.status(file)
            if status is None:
                continue  # removed while we looked, or not a file
            name, path = file[: -len(SUFFIX)], self.path / file
            found.append(StoredSnapshot(name, path, status.st_size, status.st_mtime, self._taken_at(file)))
        return sorted(found, key=lambda e: (e.taken_at or _stamp(e.mtime), e.mtime, e.name))

    def _taken_at(self, file: str) -> str | None:
        """The taken_at of a snapshot file, from its first bytes: the file is not parsed whole."""
        try:
            fd = self._open(file)
        except OSError:
            return None
        try:
            head = os.read(fd, _HEAD_SIZE)
        except OSError:
            return None
        finally:
            os.close(fd)
        found = _TAKEN_AT.search(head)
        return found[1].decode("utf-8", "backslashreplace") if found else None

    def load(self, name: str, like: Snapshot | None = None) -> Snapshot | None:
        """The stored snapshot ``name``, read through the store held; None when there is none.

        ``like``: as :func:`~sockdiff.snapshots.loads` takes it.
        """
        from .snapshots import MAX_SIZE, loads, read_bounded

        file = f"{name}{SUFFIX}"
        where = self.path / file
        try:
            fd = self._open(file)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise BadSnapshot(f"{where}: cannot read: {err.strerror}") from err
        with os.fdopen(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                return None
            try:
                data = read_bounded(source)
            except OSError as err:
                raise BadSnapshot(f"{where}: cannot read: {err.strerror}") from err
        return loads(data, str(where), MAX_SIZE, like=like)


def _hold(create: bool) -> Store | None:
    """The store held open, not yet checked; None when there is none and ``create`` is false."""
    from .errors import WriteError
    from .output import open_directory

    directory = store_dir()
    try:
        fd = open_directory(_home(), 0o700 if create else None)
    except FileNotFoundError:
        if not create:
            return None
        missing = os.strerror(errno.ENOENT)
        raise StoreError(f"cannot create the snapshot store {directory}: {missing}") from None
    except OSError as err:
        doing = "create" if create else "read"
        raise StoreError(f"cannot {doing} the snapshot store {directory}: {err.strerror}") from err
    except WriteError as err:
        raise StoreError(f"the snapshot store: {err}") from None
    return Store(fd, directory)


def _checked(held: Store) -> Store:
    """``held``, closed and refused unless it is ours and no one else's to write."""
    try:
        _private(held.path, os.fstat(held.fd))
    except BaseException:
        held.close()
        raise
    return held


def opened(create: bool = False) -> Store | None:
    """The store held open and checked (private: ours, no one else may write it).

    ``create``: made (0700, its missing parents 0755) if it does not exist;
    else None when there is none. Used before a snapshot is taken, so a store
    that cannot be made is said before the work of taking it.
    """
    held = _hold(create)
    return None if held is None else _checked(held)


def _held_with(name: str) -> Store | None:
    """The store held open when it has a snapshot ``name``, which makes it a stored name; checked
    then (a store refused is an error only for a name it holds, as before)."""
    if not _NAME.fullmatch(name):
        return None
    store_dir()  # a planted link to the store is refused, not taken for "no such name"
    try:
        held = _hold(False)
    except StoreError:
        return None  # a store we may not look into: no stored name
    if held is None:
        return None
    if held.status(f"{name}{SUFFIX}") is None:
        held.close()
        return None
    return _checked(held)


def keep(snapshot: Snapshot, name: str | None = None) -> Path:
    """Store ``snapshot`` under ``name`` (replacing one of that name), else under its time; the path.

    A time name that is taken already gets a number (``2026-11-25T10-00-00Z.2``).
    """
    if name is not None:
        check_name(name)
    held = opened(create=True)
    assert held is not None
    with held:
        return held.keep(snapshot, name)


def _stamp(mtime: float) -> str:
    return datetime.datetime.fromtimestamp(mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entries() -> list[StoredSnapshot]:
    """The stored snapshots, oldest first: by when they were taken (the file time where unknown)."""
    held = opened()
    if held is None:
        return []
    with held:
        return held.entries()


def find(name: str) -> Path | None:
    """The file of stored snapshot ``name``, if there is one (in a store that is private)."""
    held = _held_with(name)
    if held is None:
        return None
    with held:
        return held.path / f"{name}{SUFFIX}"


def load(name: str, like: Snapshot | None = None) -> Snapshot | None:
    """The stored snapshot ``name``, read through the store held open (checked on its descriptor).

    ``like``: as :func:`~sockdiff.snapshots.loads` takes it.
    """
    held = _held_with(name)
    if held is None:
        return None
    with held:
        return held.load(name, like)


def newest_snapshot() -> Snapshot:
    """The most recently taken stored snapshot, listed and read through the same held store."""
    held = opened()
    with held if held is not None else contextlib.nullcontext():
        found = held.entries() if held is not None else []
        for entry in reversed(found):
            assert held is not None
            snapshot = held.load(entry.name)
            if snapshot is not None:
                return snapshot
    raise UsageError(f"no stored snapshots in {store_dir()}: take one first with 'sockdiff snapshot'")


def newest() -> StoredSnapshot:
    """The most recently taken stored snapshot."""
    found = entries()
    if not found:
        raise UsageError(f"no stored snapshots in {store_dir()}: take one first with 'sockdiff snapshot'")
    return found[-1]
