"""The one family of errors sockdiff raises.

Each class says what kind of failure it is, whatever the cause underneath (an
``OSError``, a dependency's exception); the cause is translated where it
happens, with ``raise ... from err``::

    SockdiffError              anything sockdiff refuses or fails to do
    ├── UsageError             the command cannot be done as asked: a bad flag
    │   │                      value, a refused store name, an unknown source
    │   └── BadFilter          a filter expression does not parse
    ├── BadConfig              .sockdiff.toml or [tool.sockdiff] unreadable or malformed
    ├── BadSnapshot            input that is not a snapshot this version reads,
    │                          or that cannot be read at all
    ├── BackendUnavailable     a backend cannot read sockets on this system
    ├── NetnsError             a network namespace cannot be entered: missing,
    │                          not a namespace, or not permitted
    ├── WriteError             output that cannot be written whole: a file, a
    │                          device, standard output (a full disk, a short write)
    └── StoreError             the snapshot store cannot be used: not creatable,
                               unreadable, or open to other users

The CLI turns any :class:`SockdiffError` into one line on stderr and exit code 2;
library users catch the subclass they care about.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "BadConfig",
    "BadFilter",
    "BadSnapshot",
    "NetnsError",
    "SockdiffError",
    "StoreError",
    "UsageError",
    "WriteError",
]


class SockdiffError(Exception):
    """Base of every error sockdiff raises on purpose."""


class UsageError(SockdiffError):
    """The caller asked for something that cannot be done as asked."""


class BadFilter(UsageError):
    """A filter expression does not parse; the message names the bad token."""


class BadConfig(SockdiffError):
    """The project's defaults file cannot be read or holds something sockdiff does not take."""


class BadSnapshot(SockdiffError):
    """A file or stream is not a sockdiff snapshot this version can read."""


class BackendUnavailable(SockdiffError):
    """A backend cannot read sockets on this system (no netlink, no /proc)."""


class NetnsError(SockdiffError):
    """A network namespace cannot be entered (missing, not a namespace, or not permitted)."""


class WriteError(SockdiffError):
    """Output cannot be written whole: the file, device or stream is named with the reason."""


class StoreError(SockdiffError):
    """The snapshot store cannot be used: it cannot be created or read, or others may write to it."""
