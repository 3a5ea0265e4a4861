"""sockdiff: snapshots of a Linux machine's sockets, and what changed between them.

>>> import sockdiff
>>> before = sockdiff.snapshot()                        # doctest: +SKIP
>>> after = sockdiff.snapshot()                         # doctest: +SKIP
>>> result = sockdiff.diff(before, after)               # doctest: +SKIP
>>> result.summary                                      # doctest: +SKIP
{'new': 0, 'closed': 0, 'changed': 0}
>>> print(sockdiff.report(result, "text"), end="")      # doctest: +SKIP
0 new, 0 closed, 0 changed

The names below are imported when first used, so that ``import sockdiff`` (and
the command line, which starts by importing it) pays only for what it touches.
"""

import importlib as _importlib
import typing as _typing

from . import errors as _errors  # no imports of its own: costs nothing
from ._version import __version__

if _typing.TYPE_CHECKING:
    from .acquire import take as snapshot
    from .comparison import compare
    from .differ import Change, Diff, diff
    from .errors import (
        BackendUnavailable,
        BadConfig,
        BadFilter,
        BadSnapshot,
        NetnsError,
        SockdiffError,
        StoreError,
        UsageError,
        WriteError,
    )
    from .filter import compile_filter
    from .formats import Format, ReportOptions, report
    from .model import Endpoint, Inet, Interface, Process, Route, Socket, UnixName, UnixPeer
    from .snapshots import Snapshot, load, save

__all__ = [
    "BackendUnavailable",
    "BadConfig",
    "BadFilter",
    "BadSnapshot",
    "Change",
    "Diff",
    "Endpoint",
    "Format",
    "Inet",
    "Interface",
    "NetnsError",
    "Process",
    "ReportOptions",
    "Route",
    "Snapshot",
    "SockdiffError",
    "Socket",
    "StoreError",
    "UnixName",
    "UnixPeer",
    "UsageError",
    "WriteError",
    "__version__",
    "compare",
    "compile_filter",
    "diff",
    "load",
    "report",
    "save",
    "snapshot",
]

# Public name -> (module, name there).
_EXPORTS: dict[str, tuple[str, str]] = {
    "compare": ("comparison", "compare"),
    "Change": ("differ", "Change"),
    "Diff": ("differ", "Diff"),
    "diff": ("differ", "diff"),
    "compile_filter": ("filter", "compile_filter"),
    "Format": ("formats", "Format"),
    "ReportOptions": ("formats", "ReportOptions"),
    "report": ("formats", "report"),
    "Snapshot": ("snapshots", "Snapshot"),
    "load": ("snapshots", "load"),
    "save": ("snapshots", "save"),
    "snapshot": ("acquire", "take"),
    **{name: ("errors", name) for name in _errors.__all__},  # the whole family
    **{
        name: ("model", name)
        for name in ("Endpoint", "Inet", "Interface", "Process", "Route", "Socket", "UnixName", "UnixPeer")
    },
}


def __getattr__(name: str) -> object:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sockdiff' has no attribute {name!r}") from None
    value = getattr(_importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
