"""The leak report: a leaked socket's line, the pytest plugin's summary, its CI annotations.

``pytest --sockdiff`` ends in a ``sockdiff: sockets left open`` section: each
test or fixture that leaked (its id escaped as any name: test ids and file
names must neither break a line nor open a CI command), its sockets indented
under it in socket notation, then how many tests and fixtures left how many
sockets open. Every function takes :class:`~sockdiff.model.Leak` records.

``sockdiff run``'s reports (in compare's formats, each module its own) walk
:func:`run_items`: one item a leaked socket, naming each process holding it,
its age and command line, and (``timeline``) when the socket appeared.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import msgspec

from .items import Item
from .notation import escape, socket_line

if TYPE_CHECKING:
    from ..model import Holder, Leak, PortHolder, RunReport

__all__ = [
    "by_owner",
    "clean_line",
    "holder_text",
    "leak_annotations",
    "leak_line",
    "leak_socket",
    "leak_summary",
    "port_section",
    "port_title",
    "run_items",
    "run_summary",
]

_TITLE = "sockdiff: sockets left open"


def leak_line(leak: Leak) -> str:
    """A leaked socket in socket notation, then where the test process created it and the
    thread that made it (not the main one), when known, and whether it was opened late.

    The thread's name is any string a test chose: quoted as Python writes a string
    (so a quote or a control character reads as part of it), then escaped as any
    name, so that it can neither end the line nor open a CI command.
    """
    line = leak_socket(leak)
    if leak.created is not None:
        line += f"  created at {escape(leak.created, backslash=False)}"
    if leak.thread is not None:
        line += f"  (thread {escape(repr(leak.thread), backslash=False)})"
    return f"{line}  (opened after it ended)" if leak.late else line


def leak_socket(leak: Leak) -> str:
    """A leaked socket in socket notation, after its namespace (``[blue] tcp ...``, as compare
    names one) when it lives in another than the watcher's."""
    line = socket_line(leak.socket)
    return line if leak.netns is msgspec.UNSET else f"[{escape(leak.netns)}] {line}"


def by_owner(leaks: Iterable[Leak]) -> list[tuple[Leak, ...]]:
    """``leaks`` (as one check found them) in runs of one owner each, in order."""
    runs: list[list[Leak]] = []
    for leak in leaks:
        if runs and (runs[-1][0].owner, runs[-1][0].kind) == (leak.owner, leak.kind):
            runs[-1].append(leak)
        else:
            runs.append([leak])
    return [tuple(run) for run in runs]


def clean_line(checked: int, every_socket: bool) -> str:
    """The one line of a run where nothing leaked, so that a quiet run still shows the plugin ran."""
    what = "socket" if every_socket else "listening socket"
    return f"sockdiff: {_count(checked, 'test')} checked, no test or fixture left a {what} open"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def leak_summary(groups: Iterable[Sequence[Leak]]) -> list[str]:
    """The summary's lines for ``groups`` (what one test or fixture left, as one check found
    it, each): each owner, its sockets' lines under it, then the count."""
    lines = []
    tests = fixtures = total = 0
    for group in groups:
        lines.append(escape(group[0].owner, backslash=False))
        lines += [f"    {escape(leak_line(leak), backslash=False)}" for leak in group]
        tests += group[0].kind == "test"
        fixtures += group[0].kind == "fixture"
        total += len(group)
    lines.append(
        f"{_count(tests, 'test')} and {_count(fixtures, 'fixture')} left {_count(total, 'socket')} open"
    )
    return lines


def leak_annotations(groups: Sequence[Sequence[Leak]], level: str) -> list[str]:
    """GitHub Actions workflow commands: an annotation at each leaking test or fixture."""
    from .github import SHOWN, command

    lines = []
    for group in groups[:SHOWN]:
        first = group[0]
        where: dict[str, str | int] = {"file": first.file, "line": first.line} if first.file else {}
        message = "\n".join([first.owner, *(leak_line(leak) for leak in group)])
        lines.append(command(level, _TITLE, message, **where))
    if len(groups) > SHOWN:
        more = f"{len(groups) - SHOWN} more tests or fixtures left sockets open: the sockdiff section has all"
        lines.append(command("notice", _TITLE, more))
    return lines


def holder_text(holder: Holder) -> str:
    """``pid 812 up 3.4s: python3 -m http.server 8000``: a process, its age and its command line.

    Each argument is a name (escaped already, backslashes doubled), quoted as a shell
    would where it holds a space or a quote, so that the words stay apart.
    """
    text = f"pid {holder.pid}"
    if holder.seconds is not None:
        text += f" up {holder.seconds:.1f}s"
    if holder.command:
        text += f": {escape(shlex.join(holder.command), backslash=False)}"
    return text


def run_items(report: RunReport, timeline: bool) -> Iterator[Item]:
    """One counted item a leaked socket: ``+ SOCKET  pid N up Ts: COMMAND[; appeared at +Ts]``."""
    for leak in report.leaks:
        parts = [holder_text(holder) for holder in leak.holders]
        if timeline and leak.appeared is not None:
            parts.append(f"appeared {leak.appeared:.2f}s after the start")
        yield Item("sockets", "leaked", "+", leak_socket(leak), "; ".join(parts), True)


def run_summary(report: RunReport, shown: Callable[[str], str] = str) -> str:
    """``sockdiff run: 2 listening sockets left open by npm test (exit 0)``; ``shown`` sets the
    command line off in the report's own way (markdown: a code span)."""
    what = "socket" if {"any", "new"} & set(report.fail_on) else "listening socket"
    command = shown(escape(shlex.join(report.command), backslash=False))
    if not report.leaks:
        return f"sockdiff run: {command} (exit {report.exit_code}) left no {what} open"
    count = _count(len(report.leaks), what)
    return f"sockdiff run: {count} left open by {command} (exit {report.exit_code})"


def port_title(port: int | None) -> str:
    """The title of :func:`port_section`: ``sockdiff: who holds port 8080``, or the port."""
    return f"sockdiff: who holds {'the port' if port is None else f'port {port}'}"


def port_section(port: int | None, found: Sequence[PortHolder]) -> str:
    """The pytest plugin's section on a test that failed with EADDRINUSE: who holds that port now.

    ``port`` None (neither the error nor the failing frames say which): ``found`` are the
    listening sockets the run opened that are still open, each a suspect.
    """
    if port is None:
        unknown = "the port the failing bind wanted is unknown (neither its error nor its frames say)"
        if not found:
            return f"{unknown}; no listening socket the run opened is still open\n"
        lines = [f"{unknown}; the listening sockets the run opened that are still open:"]
    elif not found:
        return f"no socket holds port {port} in this network namespace now (freed since, or elsewhere)\n"
    else:
        lines = [f"port {port} is held now by:"]
    for held in found:
        parts = [holder_text(holder) for holder in held.holders]
        if held.opened_by is not None:
            parts.append(f"opened by {escape(held.opened_by, backslash=False)}")
        detail = "; ".join(parts)
        lines.append(f"    {socket_line(held.socket)}" + (f"  {detail}" if detail else ""))
    return "\n".join(lines) + "\n"
