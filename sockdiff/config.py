"""Project defaults: ``[tool.sockdiff]`` in ./pyproject.toml, or ./.sockdiff.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

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
        raise UsageError(f"{path}: not valid TOML ({err})") from err
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror}") from err


def load_defaults(directory: Path | None = None) -> Defaults:
    """The defaults in ``directory`` (the current one): .sockdiff.toml first, then pyproject.

    .sockdiff.toml holds the keys at its top level (or under ``[tool.sockdiff]``).
    """
    base = directory or Path.cwd()
    table: Any = None
    origin = None
    dotfile = base / ".sockdiff.toml"
    if dotfile.is_file():
        document = _read(dotfile)
        table = document.get("tool", {}).get("sockdiff", document)
        origin = str(dotfile)
    else:
        pyproject = base / "pyproject.toml"
        if pyproject.is_file():
            table = _read(pyproject).get("tool", {}).get("sockdiff")
            origin = f"{pyproject} [tool.sockdiff]"
    if not table:
        return Defaults()
    if not isinstance(table, dict):
        raise UsageError(f"{origin}: expected a table")
    unknown = set(table) - {"ignore", "fail_on"}
    if unknown:
        raise UsageError(f"{origin}: unknown setting {sorted(unknown)[0]!r} (known: ignore, fail_on)")
    ignore = table.get("ignore", [])
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, list) or not all(isinstance(item, str) for item in ignore):
        raise UsageError(f"{origin}: 'ignore' must be a list of filter expressions")
    fail_on = table.get("fail_on")
    if isinstance(fail_on, list):
        fail_on = ",".join(str(item) for item in fail_on)
    if fail_on is not None and not isinstance(fail_on, str):
        raise UsageError(f"{origin}: 'fail_on' must be a string or a list")
    # Compiled here, so that a mistake in the file is reported with the file's name.
    from .differ import parse_fail_on
    from .filter import compile_filters

    try:
        return Defaults(compile_filters(ignore), None if fail_on is None else parse_fail_on(fail_on))
    except UsageError as err:
        raise UsageError(f"{origin}: {err}") from err
