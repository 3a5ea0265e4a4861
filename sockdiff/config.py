"""Project defaults: ``[tool.sockdiff]`` in ./pyproject.toml, or ./.sockdiff.toml.

A config changes what compare counts and ignores, so, as git does with a
repository another user owns (safe.directory), one is read only when it is
owned by the user running sockdiff (or by root) and no one else may write to
it; every symlink on the way to it (each hop of a chain, and one in a directory
part) must be owned by the user or root too (a link's own mode is always 0777
and says nothing: as fs.protected_symlinks judges a link in a sticky
directory, what counts is who made it). The path is walked once, as
:mod:`sockdiff.output` walks a write, and the file judged is the one opened. Another's config is skipped
with a warning naming it, and is never parsed: root in a directory someone
else owns gets sockdiff's own defaults, never that person's, and pays nothing
for a file made to be slow or deep. A config that cannot be read at all (a
directory sockdiff may not enter, a working directory deleted) is skipped
with a warning too; one that can be read but is malformed is an error.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadConfig, UsageError

if TYPE_CHECKING:
    from .filter import Predicate

__all__ = ["Defaults", "load_defaults"]


@dataclass(frozen=True, slots=True)
class Defaults:
    """The project's settings, compiled: ``ignore`` as one predicate, ``fail_on`` as kinds.

    ``origin`` names the file (and table) they came from; ``warnings``, each a
    line, the configs skipped and why.
    """

    ignore: Predicate | None = None
    fail_on: tuple[str, ...] | None = None
    origin: str | None = None
    warnings: tuple[str, ...] = ()
    # ``ignore``'s expressions, for a comparison to compile again where ``netns
    # LABEL`` resolves among its snapshots' namespaces.
    ignore_texts: tuple[str, ...] = ()


class _Skipped(Exception):
    """A config not read: the reason, one line naming it."""


def _distrust(path: Path, info: os.stat_result, what: str) -> str | None:
    """Why a file (or link) another may have written is not to be trusted; None when it may be."""
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        return f"{what} is owned by uid {info.st_uid}, not by you (uid {me}) or root"
    if info.st_mode & stat.S_IWOTH:
        return f"{what} is writable by every user"
    if info.st_mode & stat.S_IWGRP and info.st_gid != os.getegid() and info.st_gid != 0:
        return f"{what} is writable by group {info.st_gid}, which is not yours"
    return None


# How much of a pyproject.toml another user may write is looked at (never parsed)
# to tell whether it might hold sockdiff's settings: a line opening [tool.sockdiff]
# or a dotted tool.sockdiff key, or a sockdiff key (under [tool]). A bigger file
# is taken to hold them: it is skipped with the warning either way.
_PEEK_LIMIT = 1 << 20
_MAY_HOLD = re.compile(
    rb"""^[ \t]*(?:\[+[ \t]*)?["']?tool["']?[ \t]*\.[ \t]*["']?sockdiff\b"""
    rb"""|^[ \t]*["']?sockdiff["']?[ \t]*[.=]""",
    re.MULTILINE,
)


def _may_hold_settings(source: Any) -> bool:
    """Whether a file another may write might hold ``[tool.sockdiff]``: a bounded look, no parse."""
    try:
        head = source.read(_PEEK_LIMIT + 1)
    except OSError:
        return True
    return len(head) > _PEEK_LIMIT or _MAY_HOLD.search(head) is not None


def _read(path: Path, peek: bool = False) -> dict[str, Any]:
    """The TOML document at ``path``; :class:`_Skipped` when it may not or cannot be read.

    ``peek``: a pyproject.toml another user may write is looked at (a bounded
    search of its first bytes, not parsed), so that one with no
    ``[tool.sockdiff]`` (most projects') is passed over without a word.
    """
    from .output import Planted, open_trusted

    try:
        # Every link on the way, however many, judged by its owner; the file opened is the one reached.
        fd = open_trusted(str(path))
    except Planted as planted:
        me = os.geteuid()
        where = "" if planted.entry == str(path) else f" ({planted.entry})"
        raise _Skipped(
            f"{path}: skipped: the link{where} is owned by uid {planted.uid}, not by you (uid {me}) or root"
        ) from None
    except OSError as err:
        raise _Skipped(f"{path}: skipped: cannot read it: {err.strerror}") from err
    except ValueError as err:  # a NUL in the path
        raise _Skipped(f"{path}: skipped: cannot read it: a NUL character in the name") from err
    try:
        # Checked on what was opened, so nothing swapped in since is read instead.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Skipped(f"{path}: skipped: not a regular file")
        why = _distrust(path, info, "it")
        source = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    if why is not None:
        skipped = _Skipped(
            f"{path}: skipped: {why} (as git, sockdiff takes no settings another user may write)"
        )
        if not peek:
            source.close()
            raise skipped
        with source:
            if _may_hold_settings(source):
                raise skipped
        return {}
    import tomllib  # only where a file is read: every command loads the defaults

    try:
        with source:
            return tomllib.load(source)
    except RecursionError:
        raise BadConfig(f"{path}: not valid TOML (nested too deeply)") from None
    except tomllib.TOMLDecodeError as err:
        raise BadConfig(f"{path}: not valid TOML ({err})") from err
    except UnicodeDecodeError as err:
        raise BadConfig(f"{path}: not UTF-8 text (byte {err.start})") from err
    except OSError as err:
        raise BadConfig(f"{path}: cannot read: {err.strerror}") from err


def _member(table: Any, key: str, origin: str) -> Any:
    """``table[key]`` of a TOML table, None when absent; a table must be a table."""
    if not isinstance(table, dict):
        raise BadConfig(f"{origin}: expected a table")
    return table.get(key)


def _exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a link to nothing included); :class:`_Skipped` when
    that cannot be known (a directory sockdiff may not search)."""
    try:
        os.lstat(path)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise _Skipped(f"{path}: skipped: cannot read it: {err.strerror}") from err
    return True


def load_defaults(directory: Path | None = None) -> Defaults:
    """The defaults in ``directory`` (the current one): .sockdiff.toml first, then pyproject.

    .sockdiff.toml holds the keys at its top level (or under ``[tool.sockdiff]``).
    A config skipped (see the module's docstring) gives sockdiff's own defaults
    and a warning; a malformed one raises :class:`~sockdiff.errors.BadConfig`.
    """
    try:
        base = directory or Path.cwd()
    except OSError as err:
        return Defaults(warnings=(f"no project defaults read: the working directory: {err.strerror}",))
    try:
        return _load(base)
    except _Skipped as skipped:
        return Defaults(warnings=(str(skipped),))


def _load(base: Path) -> Defaults:
    table: Any = None
    origin = ""
    dotfile = base / ".sockdiff.toml"
    if _exists(dotfile):
        document = _read(dotfile)
        origin = str(dotfile)
        tool = _member(document, "tool", origin)
        table = document if tool is None else _member(tool, "sockdiff", f"{origin} [tool]")
        if table is None:
            table = document
        elif tool is not None:
            origin = f"{dotfile} [tool.sockdiff]"
    else:
        pyproject = base / "pyproject.toml"
        if _exists(pyproject):
            tool = _member(_read(pyproject, peek=True), "tool", str(pyproject))
            table = None if tool is None else _member(tool, "sockdiff", f"{pyproject} [tool]")
            origin = f"{pyproject} [tool.sockdiff]"
    if table is None:
        return Defaults()
    if not isinstance(table, dict):
        raise BadConfig(f"{origin}: expected a table")
    unknown = set(table) - {"ignore", "fail_on"}
    if unknown:
        raise BadConfig(f"{origin}: unknown setting {sorted(unknown)[0]!r} (known: ignore, fail_on)")
    ignore = table.get("ignore", [])
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, list) or not all(isinstance(item, str) for item in ignore):
        raise BadConfig(f"{origin}: 'ignore' must be a list of filter expressions")
    fail_on = table.get("fail_on")
    if isinstance(fail_on, list) and all(isinstance(item, str) for item in fail_on):
        fail_on = ",".join(fail_on)
    if fail_on is not None and not isinstance(fail_on, str):
        raise BadConfig(f"{origin}: 'fail_on' must be a string or a list of strings")
    # Compiled here, so that a mistake in the file is reported with the file's name.
    from .differ import parse_fail_on
    from .filter import compile_filters

    try:
        return Defaults(
            compile_filters(ignore),
            None if fail_on is None else parse_fail_on(fail_on),
            origin=origin,
            ignore_texts=tuple(ignore),
        )
    except UsageError as err:
        raise BadConfig(f"{origin}: {err}") from err
