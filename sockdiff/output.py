"""Every byte sockdiff writes goes through here: files, the store, standard output.

What a path names decides how it is written, as with any Unix tool:

- ``-``, and a path that names one of our own descriptors (``/dev/stdout``,
  ``/proc/self/fd/1``, ``/dev/fd/N``): that descriptor, written through as it
  is (a ``>>`` redirection keeps appending).
- A device, a FIFO, a pipe (``/dev/null``, ``mkfifo``): opened and written
  through, never replaced.
- A regular file, or a name that does not exist yet: replaced atomically. The
  bytes go to a 0600 temporary file beside it, are flushed to disk, then
  renamed over it: a reader never sees half a file, and a failed write leaves
  the old file as it was. The file replaced keeps its mode (its permission
  bits), and its owner and group when we are root: node_exporter, another
  user, still reads a report root writes. A new file gets ``0666 & ~umask``,
  as a shell's ``>`` makes it. Another user's file in a sticky directory not
  theirs (``/tmp``) is refused, as ``protected_regular`` refuses to open it: it
  is theirs to keep, not ours to replace with one of root's.
- A symlink: its target is written by these same rules if the link is ours or
  root's. Another user's link, at the end of the path or in a directory part,
  could have been planted to make us write where that user chooses: it is
  refused (stricter than the kernel's ``fs.protected_symlinks``, which may be
  off anyway). So is a FIFO of another user's, anywhere (their FIFO is read by
  them; ``fs.protected_fifos`` guards sticky directories only); a FIFO with no
  reader is an error, not a wait.

A path is resolved once, as the kernel resolves it: walked from ``/`` or the
working directory a component at a time, each held open (O_PATH, O_NOFOLLOW)
and checked through that descriptor, ``..`` the parent of the directory held,
a trailing ``/`` naming a directory; the file is created, renamed or opened
relative to the directory held. Another user who swaps a directory on the
path for a link after it was checked (renameat2's RENAME_EXCHANGE) cannot move
the write: it happens in the directory checked.

Every write's count is checked and a failure is a :class:`~sockdiff.errors.WriteError`,
so output is never silently short. A reader that went away (``| head``) is
:class:`OutputClosed`, which the CLI ends quietly when it is standard output's
(a ``--report``'s is an error: see ``compare``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from .errors import BadSnapshot, WriteError

#: What the writers take: bytes, or pieces of them written as they come (a
#: snapshot's batches of records), so that a large output is never held whole.
Buffer: TypeAlias = bytes | bytearray | memoryview
Data: TypeAlias = Buffer | Iterable[Buffer]
#: The files a command read, never written over: (st_dev, st_ino) to the name it was given.
Inputs: TypeAlias = Mapping[tuple[int, int], str]

__all__ = [
    "Buffer",
    "Data",
    "Inputs",
    "OutputClosed",
    "Planted",
    "Target",
    "check_standard_output",
    "check_stdin",
    "check_target",
    "guard_standard_streams",
    "inputs",
    "names_standard_output",
    "open_directory",
    "open_trusted",
    "standard_output",
    "trusted_directory",
    "write_all",
    "write_file",
    "write_in",
    "write_new",
]

# Symlinks followed before giving up, as the kernel's MAXSYMLINKS.
_MAX_HOPS = 40
# Seconds a FIFO named as the target may take to get a reader, before that is an error.
FIFO_WAIT = 3.0
# How each component of a path is held while it is walked: a handle, never a link followed.
_WALK = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# Random temporary names tried before giving up (each is 48 bits: a clash is another writer's).
_TEMPORARY_TRIES = 100
# Directories made on the way to a store: readable, as mkdir -p makes them (the umask may narrow it).
_PARENT_MODE = 0o755
# No descriptor number reaches past an int.
_MAX_FD = (1 << 31) - 1
# A path naming a descriptor of this process: /proc/self/fd/N, /dev/fd/N, ...
_OWN_FD = re.compile(
    rf"^/(?:proc/(?:self|thread-self|{os.getpid()}|{os.getpid()}/task/\d+)/fd|dev/fd)/(\d+)$"
)
# A magic link under /proc: a descriptor, or a process's working or root directory.
_MAGIC = re.compile(r"^/proc/[^/]+(?:/task/[^/]+)?/(?:fd/[^/]+|cwd|root)$")
_STREAM_NAMES = {0: "standard input", 1: "standard output", 2: "standard error"}

# Standard descriptors that were closed when the CLI started (``>&-``): they are
# held open on /dev/null so no file we open takes their number, and using them
# is an error.
_closed_at_start: set[int] = set()


class OutputClosed(Exception):
    """The reader of a pipe or FIFO went away (``sockdiff show | head``).

    Deliberately not an :class:`OSError`: click turns EPIPE into exit code 1,
    which for ``compare`` means "differences".
    """


def guard_standard_streams() -> None:
    """Hold closed standard descriptors open on /dev/null, and remember them.

    With descriptor 1 closed, the next file opened would become standard
    output, and the report would be written into it.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd, inheritable=True)
                os.close(null)
            _closed_at_start.add(fd)


def _stream_name(fd: int) -> str:
    return _STREAM_NAMES.get(fd, f"descriptor {fd}")


def write_all(fd: int, data: ReadableBuffer, name: str) -> None:
    """Write every byte of ``data`` to ``fd``, or raise: a short write is retried, never ignored."""
    if fd in _closed_at_start:
        stream = _stream_name(fd)
        raise WriteError(f"{stream} is closed" if name == stream else f"{name}: {stream} is closed")
    view = memoryview(data).cast("B")
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            raise OutputClosed(name) from None
        except InterruptedError:
            continue
        except OSError as err:
            raise WriteError(f"{name}: cannot write: {err.strerror}") from err
        if written <= 0:
            raise WriteError(f"{name}: cannot write: the device took no more bytes")
        view = view[written:]


def _write_pieces(fd: int, data: Data, name: str) -> None:
    """:func:`write_all` of ``data``, or of each of its pieces in turn."""
    for piece in (data,) if isinstance(data, bytes | bytearray | memoryview) else data:
        write_all(fd, piece, name)


def _write_descriptor(fd: int, data: Data, name: str) -> None:
    """Write through a descriptor of ours, after anything already buffered for it."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and _fileno(stream) == fd:
            stream.flush()
    _write_pieces(fd, data, name)


def _fileno(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def _trusted(status: os.stat_result, parent: os.stat_result) -> bool:
    """Whether a symlink or file on our path may be used: it was not planted by another user.

    A symlink is followed only if it is ours or root's: whoever owns a link
    chooses where we write, and sockdiff often runs as root (stricter than the
    kernel's ``protected_symlinks``, which trusts another user's link outside
    sticky directories). A file to append to or replace is refused, as
    ``protected_regular`` does, when another user left it
    in a sticky directory (``/tmp``) that is not theirs. ``parent`` is the
    directory holding it, as held open by the walk.
    """
    if status.st_uid in (os.geteuid(), 0):
        return True
    if stat.S_ISLNK(status.st_mode):
        return False
    return not parent.st_mode & stat.S_ISVTX or status.st_uid == parent.st_uid


class Planted(WriteError):
    """A link (or file) on the path that another user owns, and so could have planted: ``entry``, ``uid``."""

    def __init__(self, message: str, entry: str, uid: int) -> None:
        super().__init__(message)
        self.entry = entry
        self.uid = uid


def _refuse_planted(path: str, entry: str, status: os.stat_result, parent: os.stat_result, what: str) -> None:
    if not _trusted(status, parent):
        message = f"{path}: refusing to use {entry}, a {what} that uid {status.st_uid} owns"
        raise Planted(message, entry, status.st_uid)


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a path led, resolved once: the entry ``name`` in the directory held open as ``directory``.

    ``status`` is the entry's own (lstat: a magic link's, under /proc), None when
    nothing has that name yet; ``parent`` is the directory's. ``entry`` is the
    absolute path reached, for messages. A path naming one of our descriptors
    has ``own_fd`` instead, and no directory (-1).
    """

    entry: str
    directory: int = -1
    name: str = ""
    status: os.stat_result | None = None
    parent: os.stat_result | None = None
    own_fd: int | None = None

    @property
    def magic(self) -> bool:
        """Another process's descriptor under /proc: a link whose text is no path."""
        return self.status is not None and stat.S_ISLNK(self.status.st_mode)


def _components(text: str) -> list[str]:
    """The names of a path, in order; a final ``""`` when it ends in ``/`` (it names a directory)."""
    parts = [part for part in text.split("/") if part]
    if parts and text.endswith("/"):
        parts.append("")
    return parts


def _cwd_text() -> str:
    """The working directory's path, for messages only (the walk starts from the directory held)."""
    try:
        return os.getcwd().rstrip("/")
    except OSError:  # deleted: what is under it is still reached through the descriptor
        return "."


def _walk(path: str, partial: bool = False, create: int | None = None) -> _Place:
    """Where ``path`` leads, resolved as the kernel resolves it, each component held once.

    The walk starts from ``/`` or the working directory, held open; each
    component is opened with O_PATH|O_NOFOLLOW relative to the directory before
    it, and what is checked is the descriptor held (fstat), never the name
    again: a directory swapped for a link after its check cannot redirect the
    write, since the write happens in the directory held. ``..`` is the held
    directory's parent, as for the kernel (after a link, the parent of the
    link's target, not a textual step back). A symlink, at the end or in a
    directory part, is followed only if :func:`_trusted`; its target is walked
    on from the directory holding it (or from ``/``). A path ending in ``/``
    names a directory: anything else there is ENOTDIR, and nothing there EISDIR
    (no file is made by such a name). A path ending in ``.`` or ``..`` is the
    directory itself (its ``name`` ``"."``).

    ``partial``: a directory on the way that does not exist ends the walk there
    (its ``entry`` the whole path), rather than being an error. ``create``: a
    directory that does not exist is made (the last one with this mode, those
    before it 0755; the umask may only narrow them), then walked into.
    """
    if not path:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    own = _OWN_FD.match(path)
    if own is not None:
        if int(own[1]) > _MAX_FD:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return _Place(path, own_fd=int(own[1]))
    parts = _components(path)
    absolute = path.startswith("/")
    directory = os.open("/" if absolute else ".", _WALK | os.O_DIRECTORY)
    prefix = "" if absolute else _cwd_text()
    hops = 0
    try:
        parent = os.fstat(directory)
        while parts:
            part = parts.pop(0)
            must_be_directory = parts == [""]
            if must_be_directory:
                parts.clear()
            last = not parts
            if part in ("", "."):
                continue
            if part == "..":
                child = os.open("..", _WALK | os.O_DIRECTORY, dir_fd=directory)
                os.close(directory)
                directory, parent = child, os.fstat(child)
                prefix = prefix.rpartition("/")[0] if "/" in prefix else f"{prefix}/.."
                continue
            entry = f"{prefix}/{part}"
            try:
                child = os.open(part, _WALK, dir_fd=directory)
            except FileNotFoundError:
                if create is not None:
                    with contextlib.suppress(FileExistsError):  # made by another run meanwhile
                        os.mkdir(part, create if last else _PARENT_MODE, dir_fd=directory)
                    child = os.open(part, _WALK, dir_fd=directory)
                elif last and must_be_directory and not partial:
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)) from None
                elif not (last or partial):
                    raise
                else:
                    rest = "/".join(p for p in parts if p)
                    place = _Place(f"{entry}/{rest}" if rest else entry, directory, part, None, parent)
                    directory = -1  # the place holds it now
                    return place
            try:
                status = os.fstat(child)
                if stat.S_ISLNK(status.st_mode):
                    _refuse_planted(path, entry, status, parent, "symlink")
                    if entry.startswith("/proc/") and (must_be_directory or not last):
                        magic = _MAGIC.match(entry)
                        if magic is not None:
                            # A descriptor (cwd, root) names no path: the kernel goes to what it
                            # holds, and so does this walk; a trailing / or a name after it wants
                            # a directory there (ENOTDIR, as the kernel says).
                            held = os.open(part, os.O_PATH | os.O_CLOEXEC, dir_fd=directory)
                            os.close(child)
                            child, status = held, os.fstat(held)
                            if not stat.S_ISDIR(status.st_mode):
                                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                            if last:
                                place = _Place(entry, child, ".", status, status)
                                child = -1
                                return place
                            os.close(directory)
                            directory, parent, prefix, child = child, status, entry, -1
                            continue
                    if last and entry.startswith("/proc/"):
                        own = _OWN_FD.match(entry)
                        if own is not None:
                            return _Place(entry, own_fd=int(own[1]))
                        place = _Place(entry, directory, part, status, parent)
                        directory = -1
                        return place
                    hops += 1
                    if hops > _MAX_HOPS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    # Read from the link held, not by its name: the link checked is the link followed.
                    target = os.readlink("", dir_fd=child)
                    parts[:0] = [*_components(target), *([""] if must_be_directory else [])]
                    if target.startswith("/"):
                        root = os.open("/", _WALK | os.O_DIRECTORY)
                        os.close(directory)
                        directory, parent, prefix = root, os.fstat(root), ""
                    continue
                if last:
                    if must_be_directory and not stat.S_ISDIR(status.st_mode):
                        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                    place = _Place(entry, directory, part, status, parent)
                    directory = -1
                    return place
                if not stat.S_ISDIR(status.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
                os.close(directory)
                directory, parent, prefix, child = child, status, entry, -1
            finally:
                if child >= 0:
                    os.close(child)
        # The path ended in the directory held (/, dir/., dir/..): that directory itself.
        status = os.fstat(directory)
        place = _Place(prefix or "/", directory, ".", status, status)
        directory = -1
        return place
    finally:
        if directory >= 0:
            os.close(directory)


@contextlib.contextmanager
def _resolved(path: str, doing: str = "write", partial: bool = False) -> Iterator[_Place]:
    """:func:`_walk`, its directory closed after use; its failures a :class:`WriteError`."""
    try:
        place = _walk(path, partial)
    except OSError as err:
        raise WriteError(f"{path}: cannot {doing}: {err.strerror}") from err
    except ValueError as err:  # a NUL in the path
        raise WriteError(f"{path}: cannot {doing}: a NUL character in the name") from err
    try:
        yield place
    finally:
        if place.directory >= 0:
            os.close(place.directory)


def trusted_directory(path: str) -> str:
    """``path`` with its symlinks resolved by :func:`_walk`'s rules (a planted one refused).

    The part of it that does not exist yet is kept as it is.
    """
    with _resolved(path, "use", partial=True) as place:
        return place.entry


def open_directory(path: str, create: int | None = None) -> int:
    """A descriptor (O_RDONLY, O_DIRECTORY) of the directory ``path``, walked as a write is.

    Everything done in it afterwards (listing, reading, creating, renaming) is
    done through this descriptor, which the caller checks with fstat (its owner,
    its mode: not the walk's look at the name, which may since name another): what is
    checked is what is used, whatever is renamed meanwhile. ``create``: the
    directory and its missing parents are made (it with this mode, they 0755).
    A planted link on the way is a :class:`WriteError`; a directory that does
    not exist (FileNotFoundError) or cannot be made, an :class:`OSError` for
    the caller to name.
    """
    try:
        place = _walk(path, create=create)
    except IsADirectoryError:  # a trailing slash and nothing there: for a file EISDIR, here none yet
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT)) from None
    try:
        status = place.status
        if status is None and place.own_fd is None:  # its parent is there, it is not (yet)
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        if place.own_fd is not None or status is None or not stat.S_ISDIR(status.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        # Whatever directory has the name now (never a link): the caller checks this descriptor.
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(place.name, flags, dir_fd=place.directory)
    finally:
        if place.directory >= 0:
            os.close(place.directory)


def open_trusted(path: str) -> int:
    """A descriptor (O_RDONLY, O_NONBLOCK) of the file ``path`` leads to, walked as a write is.

    For a file that changes what sockdiff does (a config): every symlink on the
    way, at the end or in a directory part, however many, is judged by its
    owner (:class:`Planted` when another user's), and the entry reached is
    opened with O_NOFOLLOW in the directory held, so a link swapped in since is
    not followed (ELOOP). The caller judges the file by fstat of what was
    opened. Anything else that fails is the :class:`OSError`.
    """
    place = _walk(path)
    try:
        if place.own_fd is not None:
            return os.dup(place.own_fd)
        if place.status is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        if not place.magic:  # a magic link was judged by its owner above; it is the file it holds
            flags |= os.O_NOFOLLOW
        return os.open(place.name, flags, dir_fd=place.directory)
    finally:
        if place.directory >= 0:
            os.close(place.directory)


def inputs(paths: Iterable[str]) -> Inputs:
    """The files a command reads (``-``: standard input), as :func:`write_file` compares them.

    A file is known by device and inode, which a link or another spelling of its
    path does not change. One that cannot be looked at is left out: it was not
    read either.
    """
    found: dict[tuple[int, int], str] = {}
    for path in paths:
        try:
            status = os.fstat(0) if path == "-" else os.stat(path)
        except (OSError, ValueError):
            continue
        found.setdefault((status.st_dev, status.st_ino), "standard input" if path == "-" else path)
    return found


def _refuse_input(path: str, place: _Place, read: Inputs) -> None:
    """Refuse to write where the command read: a report over its own baseline."""
    if not read:
        return
    try:
        if place.own_fd is not None:
            status = os.fstat(place.own_fd)
        elif place.status is None:
            return  # nothing there yet
        elif place.magic:
            status = os.stat(place.name, dir_fd=place.directory)
        else:
            status = place.status
    except OSError:
        return  # the write itself says what is wrong
    found = read.get((status.st_dev, status.st_ino))
    if found is not None:
        raise WriteError(f"{path}: refusing to write over {found}, an input of this command")


#: What a target is, to tell two names of one file apart from two files: its device and inode, or
#: for a name not made yet, its directory's and the name.
Target: TypeAlias = tuple[int, int] | tuple[int, int, str]


def check_target(path: str, read: Inputs) -> Target | None:
    """Refuse ``path`` now if it leads to one of ``read``; the regular file it names, if it names one.

    A command checks every output before it writes any; :func:`write_file`
    checks again as it writes. What is returned tells two names of one file
    (through a link, another spelling) from two files; None for what is no
    regular file (a device, a FIFO, a terminal), where a second write goes after
    the first rather than over it, and for a descriptor of ours (``/dev/stdout``).
    """
    if path == "-":
        return None
    with _resolved(path) as place:
        _refuse_input(path, place, read)
        try:
            if place.own_fd is not None:
                return None  # written through as it is, after what came before
            if place.status is None:
                assert place.parent is not None
                return (place.parent.st_dev, place.parent.st_ino, place.name)
            if place.magic:
                return _regular(os.stat(place.name, dir_fd=place.directory))
        except OSError:
            return None  # the write itself says what is wrong
        return _regular(place.status)


def _regular(status: os.stat_result) -> Target | None:
    return (status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None


def check_standard_output(read: Inputs) -> None:
    """Refuse to write where standard output is one of ``read``: ``compare a.json b.json >> a.json``."""
    try:
        status = os.fstat(1)
    except OSError:
        return
    found = read.get((status.st_dev, status.st_ino)) if stat.S_ISREG(status.st_mode) else None
    if found is not None and 1 not in _closed_at_start:
        raise WriteError(f"standard output is {found}, an input of this command: refusing to write into it")


def names_standard_output(path: str) -> bool:
    """Whether ``path`` is where standard output goes, so that a write to it would mix with it.

    ``-`` and a path naming descriptor 1 (``/dev/stdout``, ``/proc/self/fd/1``,
    ``/dev/fd/1``) always are; another of our descriptors, or a file, is when
    it is the same file (device and inode) as descriptor 1: the same pipe, or
    the regular file a shell redirection opened (``> out.json``). A terminal
    named by its path is not: what is written there is shown, not lost.
    """
    if path == "-":
        return True
    try:
        out = os.fstat(1)
    except OSError:
        return False
    same = (out.st_dev, out.st_ino)
    with _resolved(path) as place:
        try:
            if place.own_fd is not None:
                if place.own_fd == 1:
                    return True
                status = os.fstat(place.own_fd)
                return (status.st_dev, status.st_ino) == same and not stat.S_ISCHR(out.st_mode)
            if place.status is None or not stat.S_ISREG(out.st_mode):
                return False
            status = os.stat(place.name, dir_fd=place.directory) if place.magic else place.status
        except OSError:
            return False  # the write itself says what is wrong
        return (status.st_dev, status.st_ino) == same


def write_file(path: str, data: Data, *, append: bool = False, read: Inputs | None = None) -> None:
    """Write ``data`` (bytes, or pieces of them) to ``path`` by the rules in this module's docstring.

    ``append``: an existing regular file is added to (as ``>>``), not replaced.
    ``read``: the command's inputs, never written over.
    """
    if path == "-":
        _write_descriptor(1, data, "standard output")
        return
    with _resolved(path) as place:
        _refuse_input(path, place, read or {})
        _write_place(place, data, path, append)


def write_in(directory: int, name: str, data: Data, where: Path) -> None:
    """:func:`write_file` of ``name`` in the directory held as ``directory`` (``where``, for messages).

    For a directory checked through its descriptor (the store): nothing is looked up by its path again.
    """
    try:
        status: os.stat_result | None = os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        status = None
    except OSError as err:
        raise WriteError(f"{where / name}: cannot write: {err.strerror}") from err
    if status is not None and not stat.S_ISREG(status.st_mode):
        raise WriteError(f"{where / name}: cannot write: not a regular file")
    place = _Place(str(where / name), directory, name, status, os.fstat(directory))
    _write_place(place, data, str(where / name), append=False)


def _write_place(place: _Place, data: Data, path: str, append: bool) -> None:
    status = place.status
    if place.own_fd is not None:
        _write_descriptor(place.own_fd, data, path)
    elif status is None or (stat.S_ISREG(status.st_mode) and not append):
        _replace(place, data, path)
    elif stat.S_ISDIR(status.st_mode):
        raise WriteError(f"{path}: cannot write: {os.strerror(errno.EISDIR)}")
    elif stat.S_ISREG(status.st_mode):
        _append(place, data, path)
    else:
        if stat.S_ISFIFO(status.st_mode) and not place.magic:
            _refuse_fifo(path, place.entry, status)
        _write_through(place, data, path, append)


def _refuse_fifo(path: str, entry: str, status: os.stat_result) -> None:
    """A FIFO is written through only if it is ours or root's: another user's may be read by them.

    Stricter than ``protected_fifos`` (sticky directories only): root's
    snapshot written into a FIFO nobody made in nobody's directory is read by
    nobody. A descriptor of our own (``/dev/stdout``) is the user's choice, not
    refused.
    """
    if status.st_uid not in (os.geteuid(), 0):
        raise WriteError(f"{path}: refusing to use {entry}, a FIFO that uid {status.st_uid} owns")


def _open_held(place: _Place, flags: int, name: str, access: int = os.O_WRONLY) -> int:
    """Open the entry the walk found, for writing, and make sure it is that entry still.

    O_NOFOLLOW, and the device and inode compared with those checked: an entry
    swapped since (a link, another file) is refused, not written.
    """
    assert place.status is not None
    flags |= access | os.O_NOCTTY | os.O_CLOEXEC
    if not place.magic:
        flags |= os.O_NOFOLLOW
    waited_since = None
    while True:
        try:
            fd = os.open(place.name, flags, dir_fd=place.directory)
            break
        except OSError as err:
            if err.errno != errno.ENXIO or not flags & os.O_NONBLOCK:
                raise WriteError(f"{name}: cannot write: {err.strerror}") from err
            # A FIFO with no reader yet: its reader may be starting beside us (-o fifo & cat fifo),
            # so wait for one as a shell's '>' does, but not for ever (a cron job never hangs).
            now = time.monotonic()
            waited_since = now if waited_since is None else waited_since
            if now - waited_since >= FIFO_WAIT:
                raise WriteError(
                    f"{name}: cannot write: no process opened the FIFO to read it within {FIFO_WAIT:g} s"
                ) from err
            time.sleep(0.02)
    opened = os.fstat(fd)
    if not place.magic and (opened.st_dev, opened.st_ino) != (place.status.st_dev, place.status.st_ino):
        os.close(fd)
        raise WriteError(f"{name}: cannot write: {place.entry} was replaced as it was opened")
    return fd


def _write_through(place: _Place, data: Data, name: str, append: bool) -> None:
    """Write into a device, FIFO or another process's descriptor, as a shell's ``>`` (or ``>>``) does."""
    assert place.status is not None
    fifo = stat.S_ISFIFO(place.status.st_mode)
    fd = _open_held(place, (os.O_APPEND if append else 0) | (os.O_NONBLOCK if fifo else 0), name)
    try:
        if fifo:
            os.set_blocking(fd, True)  # opened without waiting for a reader; written as a pipe is
        if not append and stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)  # /proc/PID/fd/N of a file: what '>' would do
        _write_pieces(fd, data, name)
    except OutputClosed:
        # A FIFO or pipe named as the target: its reader gone, what was asked was not delivered.
        # Only standard output's reader may end a run quietly (``| head``).
        raise WriteError(f"{name}: cannot write: no process is reading it any more") from None
    except OSError as err:
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    finally:
        _close(fd, name)


def _append(place: _Place, data: Data, name: str) -> None:
    """Add to an existing regular file (O_APPEND, as ``>>``): its inode, mode and owner stay.

    Refused, before anything is written, where another user could have chosen
    the file: theirs in a sticky directory not theirs (``protected_regular``),
    or a file with more than one link in a directory others may write to (a
    hard link they made to a file they may not write themselves).
    """
    status, parent = place.status, place.parent
    assert status is not None and parent is not None
    _refuse_planted(name, place.entry, status, parent, "file")
    shared = parent.st_uid not in (os.geteuid(), 0) or parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if status.st_nlink > 1 and shared:
        raise WriteError(
            f"{name}: refusing to append to {place.entry}: it has {status.st_nlink} links, in a"
            " directory others may write to (one may be theirs, to a file they may not write)"
        )
    readable = True
    try:  # read too, for the last byte: a report starts on a line of its own
        fd = _open_held(place, os.O_APPEND, name, os.O_RDWR)
    except WriteError as err:
        if not isinstance(err.__cause__, PermissionError):
            raise
        readable = False  # a file we may write but not read: added to as it is
        fd = _open_held(place, os.O_APPEND, name)
    try:
        size = os.fstat(fd).st_size
        if readable and size and os.pread(fd, 1, size - 1) != b"\n":
            data = (b"\n", *((data,) if isinstance(data, bytes | bytearray | memoryview) else data))
        try:
            _write_pieces(fd, data, name)
        except BaseException:
            # No torn report left in a shared file: it goes back to the size it had.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    except OSError as err:
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    finally:
        _close(fd, name)


def _close(fd: int, name: str) -> None:
    try:
        os.close(fd)
    except OSError as err:  # NFS reports a failed write back at close
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err


@dataclass(frozen=True, slots=True)
class _Keep:
    """What a written file gets: its permission bits, and (as root) the owner and group it had."""

    mode: int
    owner: tuple[int, int] | None = None

    @classmethod
    def of(cls, status: os.stat_result | None) -> _Keep:
        """The file's own (``status``: the one replaced), or, new, what the umask leaves of 0666."""
        if status is None:
            return cls(0o666 & ~_umask())
        owner = (status.st_uid, status.st_gid)
        mine = os.geteuid() != 0 or owner == (os.geteuid(), os.getegid())
        return cls(stat.S_IMODE(status.st_mode) & 0o777, None if mine else owner)


def _umask() -> int:
    """This process's umask, read without changing it (Linux 4.7+), else set and set back."""
    try:
        with open("/proc/thread-self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _temporary(directory: int, data: Data, name: str, keep: _Keep) -> str:
    """A file in the directory held as ``directory``, holding ``data``, flushed to disk: its name.

    Made 0600, and given ``keep``'s owner and mode only once written whole.
    """
    for _ in range(_TEMPORARY_TRIES):
        # secrets.token_hex is this, less importing secrets (hashlib, hmac, random: ~4 ms of every start).
        temporary = f".sockdiff-{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=directory,
            )
        except FileExistsError:
            continue
        except OSError as err:
            raise WriteError(f"{name}: cannot write: {err.strerror}") from err
        break
    else:
        raise WriteError(f"{name}: cannot write: no free temporary name")
    try:
        try:
            _write_pieces(fd, data, name)
            if keep.owner is not None:
                os.fchown(fd, *keep.owner)
            os.fchmod(fd, keep.mode)
            os.fsync(fd)
        except OSError as err:
            raise WriteError(f"{name}: cannot write: {err.strerror}") from err
        finally:
            _close(fd, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise
    return temporary


def _sync_directory(directory: int) -> None:
    """Make a rename in the directory held durable; some filesystems cannot, which loses nothing."""
    with contextlib.suppress(OSError):
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=directory)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(place: _Place, data: Data, name: str) -> None:
    """Replace the regular file (or create it) atomically, in the directory the walk holds."""
    directory = place.directory
    if place.status is not None:
        assert place.parent is not None
        _refuse_planted(name, place.entry, place.status, place.parent, "file")
    temporary = _temporary(directory, data, name, _Keep.of(place.status))
    try:
        os.replace(temporary, place.name, src_dir_fd=directory, dst_dir_fd=directory)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    _sync_directory(directory)


def write_new(directory: int, where: Path, names: Iterable[str], data: Data) -> Path:
    """Write ``data`` under the first of ``names`` free in the directory held as ``directory``; its path.

    The whole file is written first, then hard-linked to its name: link(2)
    fails rather than replace an existing file, so concurrent writers each
    claim a different name, and no one ever sees the file partly written. Both
    are done through the descriptor (``where`` is its path, for messages): the
    directory the caller checked is the one written in.
    """
    temporary = _temporary(directory, data, str(where), _Keep.of(None))
    try:
        for name in names:
            try:
                os.link(temporary, name, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as err:
                raise WriteError(f"{where / name}: cannot write: {err.strerror}") from err
            _sync_directory(directory)
            return where / name
        raise WriteError(f"{where}: cannot write: no free name")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)


def check_stdin() -> None:
    """Refuse to read a standard input that was closed (``<&-``): it is /dev/null now."""
    if 0 in _closed_at_start:
        raise BadSnapshot("<stdin>: cannot read: standard input is closed")


class _CheckedDescriptor(io.RawIOBase):
    """A raw stream over a descriptor whose every write goes through :func:`write_all`.

    After the first failure it drops what it is given, so the buffers around it
    never report the same failure again while the program unwinds.
    """

    def __init__(self, fd: int, name: str) -> None:
        super().__init__()
        self.fd = fd
        self.name = name
        self.failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, data: ReadableBuffer, /) -> int:
        size = memoryview(data).nbytes
        if not self.failed:
            try:
                write_all(self.fd, data, self.name)
            except BaseException:
                self.failed = True
                raise
        return size


def standard_output() -> io.TextIOWrapper:
    """A text stream on descriptor 1 through :func:`write_all`, to stand in for ``sys.stdout``.

    Errors that cannot be encoded come out as escapes rather than a crash.
    """
    raw = _CheckedDescriptor(1, "standard output")
    interactive = raw.isatty()
    encoding = getattr(sys.__stdout__, "encoding", None) or "utf-8"
    return io.TextIOWrapper(
        io.BufferedWriter(raw, 1 << 16),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=interactive,
    )
