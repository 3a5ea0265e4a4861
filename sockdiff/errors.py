"""The one family of errors sockdiff raises.

The CLI turns any :class:`SockdiffError` into one line on stderr and exit code 2;
library users catch the subclass they care about.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "BadFilter",
    "BadSnapshot",
    "NetnsError",
    "SockdiffError",
    "UsageError",
]


class SockdiffError(Exception):
    """Base of every error sockdiff raises on purpose."""


class UsageError(SockdiffError):
    """The caller asked for something that cannot be done as asked."""


class BackendUnavailable(SockdiffError):
    """A backend cannot read sockets on this system (no netlink, no /proc)."""


class BadSnapshot(SockdiffError):
    """A file or stream is not a sockdiff snapshot this version can read."""


class BadFilter(UsageError):
    """A filter expression does not parse; the message names the bad token."""


class NetnsError(UsageError):
    """A network namespace cannot be entered."""
