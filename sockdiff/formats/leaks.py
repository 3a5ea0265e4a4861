"""The pytest plugin's leak report: a leaked socket's line, and the terminal summary's lines.

``pytest --sockdiff`` ends in a ``sockdiff: sockets left open`` section: each
test or fixture that leaked (its id escaped as any name: test ids and file
names must neither break a line nor open a CI command), its sockets indented
under it in socket notation, then how many tests and fixtures left how many
sockets open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from .notation import escape, socket_line

if TYPE_CHECKING:
    from ..model import Socket

__all__ = ["clean_line", "leak_line", "leak_summary"]


def leak_line(sock: Socket, created: str | None = None, thread: str | None = None) -> str:
    """A leaked socket in socket notation, then where the test process created it and the
    thread that made it (not the main one), when known.

    The thread's name is any string a test chose: quoted as Python writes a string
    (so a quote or a control character reads as part of it), then escaped as any
    name, so that it can neither end the line nor open a CI command.
    """
    line = socket_line(sock)
    if created is not None:
        line += f"  created at {escape(created, backslash=False)}"
    return f"{line}  (thread {escape(repr(thread), backslash=False)})" if thread is not None else line


def clean_line(checked: int, every_socket: bool) -> str:
    """The one line of a run where nothing leaked, so that a quiet run still shows the plugin ran."""
    what = "socket" if every_socket else "listening socket"
    return f"sockdiff: {_count(checked, 'test')} checked, no test or fixture left a {what} open"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def leak_summary(leaks: Iterable[tuple[Literal["test", "fixture"], str, Sequence[str]]]) -> list[str]:
    """The summary's lines for ``leaks``: (kind, owner, the leaked sockets' lines) each, in order.

    >>> print("\\n".join(leak_summary([("test", "t.py::test_a", ["tcp LISTEN 0.0.0.0:80 0.0.0.0:*"])])))
    t.py::test_a
        tcp LISTEN 0.0.0.0:80 0.0.0.0:*
    1 test and 0 fixtures left 1 socket open
    """
    lines = []
    tests = fixtures = total = 0
    for kind, owner, sockets in leaks:
        lines.append(escape(owner, backslash=False))
        lines += [f"    {escape(line, backslash=False)}" for line in sockets]
        tests += kind == "test"
        fixtures += kind == "fixture"
        total += len(sockets)
    lines.append(
        f"{_count(tests, 'test')} and {_count(fixtures, 'fixture')} left {_count(total, 'socket')} open"
    )
    return lines
