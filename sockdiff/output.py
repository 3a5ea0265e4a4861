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
  the old file as it was.
- A symlink: its target is written by these same rules if the link is ours or
  root's. Another user's link, at the end of the path or in a directory part,
  could have been planted to make us write where that user chooses: it is
  refused (stricter than the kernel's ``fs.protected_symlinks``, which may be
  off anyway). So is a FIFO another user left in a sticky directory, as
  ``fs.protected_fifos`` would refuse it.

Every write's count is checked and a failure is a :class:`~sockdiff.errors.WriteError`,
so output is never silently short. A reader that went away (``| head``) is
:class:`OutputClosed`, which the CLI ends quietly with exit code 0.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

from .errors import BadSnapshot, WriteError

#: What the writers take: bytes, or pieces of them written as they come (a
#: snapshot's batches of records), so that a large output is never held whole.
Buffer: TypeAlias = bytes | bytearray | memoryview
Data: TypeAlias = Buffer | Iterable[Buffer]

__all__ = [
    "Buffer",
    "Data",
    "OutputClosed",
    "check_stdin",
    "guard_standard_streams",
    "standard_output",
    "trusted_directory",
    "write_all",
    "write_file",
    "write_new",
]

# Symlinks followed before giving up, as the kernel's MAXSYMLINKS.
_MAX_HOPS = 40
# No descriptor number reaches past an int.
_MAX_FD = (1 << 31) - 1
# A path naming a descriptor of this process: /proc/self/fd/N, /dev/fd/N, ...
_OWN_FD = re.compile(
    rf"^/(?:proc/(?:self|thread-self|{os.getpid()}|{os.getpid()}/task/\d+)/fd|dev/fd)/(\d+)$"
)
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


def _trusted(entry: str, status: os.stat_result) -> bool:
    """Whether a symlink or FIFO on our path may be used: it was not planted by another user.

    A symlink is followed only if it is ours or root's: whoever owns a link
    chooses where we write, and sockdiff often runs as root (stricter than the
    kernel's ``protected_symlinks``, which trusts another user's link outside
    sticky directories). A FIFO is refused, as ``protected_fifos`` does, when
    another user left it in a sticky directory (``/tmp``).
    """
    if status.st_uid in (os.geteuid(), 0):
        return True
    if stat.S_ISLNK(status.st_mode):
        return False
    directory = os.stat(os.path.dirname(entry))
    return not directory.st_mode & stat.S_ISVTX or status.st_uid == directory.st_uid


def _first_link(path: str) -> tuple[str, os.stat_result] | None:
    """The first component of the absolute, normalized ``path`` that is a symlink, with its lstat."""
    prefix = ""
    for part in path.split("/")[1:]:
        prefix = f"{prefix}/{part}"
        try:
            status = os.lstat(prefix)
        except FileNotFoundError:
            return None  # the rest does not exist: nothing more to follow
        if stat.S_ISLNK(status.st_mode):
            return prefix, status
    return None


def _refuse_planted(path: str, entry: str, status: os.stat_result, what: str) -> None:
    if not _trusted(entry, status):
        raise WriteError(f"{path}: refusing to use {entry}, a {what} that uid {status.st_uid} owns")


def _resolve(path: str) -> tuple[str, int | None, os.stat_result | None]:
    """Where ``path`` leads: (final path, our descriptor if it names one, its lstat or None if new).

    Every symlink on the way, in a directory part as much as at the end, is held
    to :func:`_trusted`.
    """
    current = os.path.abspath(path)
    for _ in range(_MAX_HOPS):
        own = _OWN_FD.match(current)
        if own is not None:
            if int(own[1]) > _MAX_FD:
                raise WriteError(f"{path}: cannot write: {os.strerror(errno.EBADF)}")
            return current, int(own[1]), None
        link = _first_link(current)
        if link is None:
            try:
                return current, None, os.lstat(current)
            except FileNotFoundError:
                return current, None, None
        entry, status = link
        _refuse_planted(path, entry, status, "symlink")
        if entry == current and current.startswith("/proc/"):
            # Another process's descriptor: a magic link whose text is no path.
            return current, None, status
        # The link's directory has no link in it (this is the first): its text starts there.
        target = os.path.join(os.path.dirname(entry), os.readlink(entry))
        current = os.path.normpath(target + current[len(entry) :])
    raise WriteError(f"{path}: cannot write: {os.strerror(errno.ELOOP)}")


def trusted_directory(path: str) -> str:
    """``path`` with its symlinks resolved by :func:`_resolve`'s rules (a planted one refused)."""
    try:
        return _resolve(path)[0]
    except OSError as err:
        raise WriteError(f"{path}: cannot use: {err.strerror}") from err


def write_file(path: str, data: Data) -> None:
    """Write ``data`` (bytes, or pieces of them) to ``path`` by the rules in this module's docstring."""
    if path == "-":
        _write_descriptor(1, data, "standard output")
        return
    try:
        final, own_fd, status = _resolve(path)
    except OSError as err:
        raise WriteError(f"{path}: cannot write: {err.strerror}") from err
    if own_fd is not None:
        _write_descriptor(own_fd, data, path)
    elif status is None or stat.S_ISREG(status.st_mode):
        _replace(final, data, path)
    elif stat.S_ISDIR(status.st_mode):
        raise WriteError(f"{path}: cannot write: {os.strerror(errno.EISDIR)}")
    else:
        if stat.S_ISFIFO(status.st_mode):
            _refuse_planted(path, final, status, "FIFO")
        _write_through(final, data, path)


def _write_through(final: str, data: Data, name: str) -> None:
    """Write into a device, FIFO or another process's descriptor, as a shell's ``>`` does."""
    # O_NOFOLLOW: what we checked must be what we open (a /proc magic link is the exception).
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC
    if not final.startswith("/proc/"):
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(final, flags)
    except OSError as err:
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)  # /proc/PID/fd/N of a file: what '>' would do
        _write_pieces(fd, data, name)
    except OSError as err:
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    finally:
        _close(fd, name)


def _close(fd: int, name: str) -> None:
    try:
        os.close(fd)
    except OSError as err:  # NFS reports a failed write back at close
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err


def _temporary(directory: str, data: Data, name: str) -> str:
    """A 0600 file in ``directory`` holding ``data``, flushed to disk: its path."""
    try:
        # mkstemp creates the file 0600 with O_EXCL.
        fd, temporary = tempfile.mkstemp(prefix=".sockdiff-", suffix=".tmp", dir=directory)
    except OSError as err:
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    try:
        try:
            _write_pieces(fd, data, name)
            os.fsync(fd)
        finally:
            _close(fd, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary


def _sync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable; some filesystems cannot, which loses nothing."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace(final: str, data: Data, name: str) -> None:
    """Replace the regular file ``final`` (or create it) atomically."""
    directory = os.path.dirname(final)
    temporary = _temporary(directory, data, name)
    try:
        os.replace(temporary, final)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise WriteError(f"{name}: cannot write: {err.strerror}") from err
    _sync_directory(directory)


def write_new(directory: Path, names: Iterable[str], data: Data) -> Path:
    """Write ``data`` under the first of ``names`` that is free in ``directory``; its path.

    The whole file is written first, then hard-linked to its name: link(2)
    fails rather than replace an existing file, so concurrent writers each
    claim a different name, and no one ever sees the file partly written.
    """
    temporary = _temporary(str(directory), data, str(directory))
    try:
        for name in names:
            path = directory / name
            try:
                os.link(temporary, path)
            except FileExistsError:
                continue
            except OSError as err:
                raise WriteError(f"{path}: cannot write: {err.strerror}") from err
            _sync_directory(str(directory))
            return path
        raise WriteError(f"{directory}: cannot write: no free name")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


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
