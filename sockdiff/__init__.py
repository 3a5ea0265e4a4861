"""sockdiff: snapshots of a Linux machine's sockets, and what changed between them.

>>> import sockdiff
>>> before = sockdiff.snapshot()          # doctest: +SKIP
>>> after = sockdiff.snapshot()           # doctest: +SKIP
>>> sockdiff.diff(before, after).summary  # doctest: +SKIP
{'new': 0, 'closed': 0, 'changed': 0}
"""

from ._version import __version__
from .differ import Change, Diff, diff
from .errors import BackendUnavailable, BadFilter, BadSnapshot, NetnsError, SockdiffError, UsageError
from .model import Endpoint, Inet, Process, Socket, UnixName, UnixPeer
from .snapshots import Snapshot, load, save
from .snapshots import take as snapshot

__all__ = [
    "BackendUnavailable",
    "BadFilter",
    "BadSnapshot",
    "Change",
    "Diff",
    "Endpoint",
    "Inet",
    "NetnsError",
    "Process",
    "Snapshot",
    "SockdiffError",
    "Socket",
    "UnixName",
    "UnixPeer",
    "UsageError",
    "__version__",
    "diff",
    "load",
    "save",
    "snapshot",
]
