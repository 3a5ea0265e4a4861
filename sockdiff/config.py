"""Project defaults: ``[tool.sockdiff]`` in ./pyproject.toml, or ./.sockdiff.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadConfig, UsageError

if TYPE_CHECKING:
    from .filter import Predicate

__all__ = ["Defaults", "load_defaults"]


@dataclass(frozen=True, slots=True)
class Defaults:
    """The project's settings, compiled: ``ignore`` as one predicate, ``fail_on`` as kinds."""

    ignore: Predicate | None = None
    fail_on: tuple[str, ...] | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as source:
            return tomllib.load(source)
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


def load_defaults(directory: Path | None = None) -> Defaults:
    """The defaults in ``directory`` (the current one): .sockdiff.toml first, then pyproject.

    .sockdiff.toml holds the keys at its top level (or under ``[tool.sockdiff]``).
    """
    base = directory or Path.cwd()
    table: Any = None
    origin = ""
    dotfile = base / ".sockdiff.toml"
    if dotfile.is_file():
        document = _read(dotfile)
        origin = str(dotfile)
        tool = _member(document, "tool", origin)
        table = document if tool is None else _member(tool, "sockdiff", f"{origin} [tool]")
        if table is None:
            table = document
        else:
            origin = f"{dotfile} [tool.sockdiff]"
    else:
        pyproject = base / "pyproject.toml"
        if pyproject.is_file():
            tool = _member(_read(pyproject), "tool", str(pyproject))
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
        return Defaults(compile_filters(ignore), None if fail_on is None else parse_fail_on(fail_on))
    except UsageError as err:
        raise BadConfig(f"{origin}: {err}") from err
