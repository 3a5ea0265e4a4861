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
from ._version import __version__ as __version__

# The public names, each once: name -> (module, name there). ``__all__`` is built
# from it; the imports for type checkers below must name the same (the test of
# the exported members holds them together).
_EXPORTS: dict[str, tuple[str, str]] = {
    "__version__": ("_version", "__version__"),  # imported above: never looked up
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
        for name in ("Endpoint", "inet", "Interface", "Process", "Route", "Socket", "unix_name", "unix_peer")
    },
}

__all__ = list(_EXPORTS)

if _typing.TYPE_CHECKING:  # what the lazy lookup below returns, for type checkers
    from .acquire import take
    from .comparison import compare as compare
    from .differ import Change as Change
    from .differ import Diff as Diff
    from .differ import diff as diff
    from .errors import BackendUnavailable as BackendUnavailable
    from .errors import BadConfig as BadConfig
    from .errors import BadFilter as BadFilter
    from .errors import BadSnapshot as BadSnapshot
    from .errors import NetnsError as NetnsError
    from .errors import SockdiffError as SockdiffError
    from .errors import StoreError as StoreError
    from .errors import UsageError as UsageError
    from .errors import WriteError as WriteError
    from .filter import compile_filter as compile_filter
    from .formats import Format as Format
    from .formats import ReportOptions as ReportOptions
    from .formats import report as report
    from .model import Endpoint as Endpoint
    from .model import Interface as Interface
    from .model import Process as Process
    from .model import Route as Route
    from .model import Socket as Socket
    from .model import inet as inet
    from .model import unix_name as unix_name
    from .model import unix_peer as unix_peer
    from .snapshots import Snapshot as Snapshot
    from .snapshots import load as load
    from .snapshots import save as save

    snapshot = take


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
