"""The snapshot store: ``$SOCKDIFF_HOME``, else ``$XDG_STATE_HOME/sockdiff``
(``~/.local/state/sockdiff``), one ``NAME.json`` a snapshot."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

__all__ = ["StoredSnapshot", "entries", "find", "name_for", "newest", "path_for", "store_dir"]

SUFFIX = ".json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


def store_dir() -> Path:
    """Where stored snapshots live (not created until one is saved)."""
    home = os.environ.get("SOCKDIFF_HOME")
    if home:
        return Path(home)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "sockdiff"


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    name: str
    path: Path
    size: int
    mtime: float


def path_for(name: str) -> Path:
    """The file a stored snapshot ``name`` is (or will be) kept in; creates the store."""
    if not _NAME.match(name) or name.endswith(SUFFIX):
        raise UsageError(
            f"bad snapshot name {name!r}: use letters, digits and . _ @ + - (no '/', no {SUFFIX})"
        )
    directory = store_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise UsageError(f"cannot create the snapshot store {directory}: {err.strerror}") from err
    return directory / f"{name}{SUFFIX}"


def name_for(taken_at: str) -> str:
    """A free store name for a snapshot taken at ``taken_at`` (colons are awkward in file names)."""
    base = taken_at.replace(":", "-")
    name, number = base, 1
    while find(name) is not None:
        number += 1
        name = f"{base}.{number}"
    return name


def entries() -> list[StoredSnapshot]:
    """The stored snapshots, oldest first (by modification time, then name)."""
    directory = store_dir()
    try:
        files = list(directory.iterdir())
    except FileNotFoundError:
        return []
    except OSError as err:
        raise UsageError(f"cannot read the snapshot store {directory}: {err.strerror}") from err
    found = []
    for path in files:
        if path.name.endswith(SUFFIX) and not path.name.startswith("."):
            try:
                status = path.stat()
            except OSError:
                continue  # removed while we looked
            found.append(StoredSnapshot(path.name[: -len(SUFFIX)], path, status.st_size, status.st_mtime))
    return sorted(found, key=lambda entry: (entry.mtime, entry.name))


def find(name: str) -> Path | None:
    """The file of stored snapshot ``name``, if there is one."""
    if not _NAME.match(name):
        return None
    path = store_dir() / f"{name}{SUFFIX}"
    return path if path.is_file() else None


def newest() -> StoredSnapshot:
    """The most recently stored snapshot."""
    found = entries()
    if not found:
        raise UsageError(f"no stored snapshots in {store_dir()}: take one first with 'sockdiff snapshot'")
    return found[-1]
