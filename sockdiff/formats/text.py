"""``text``: one line a difference (``+`` new, ``-`` closed, ``~`` changed), then a summary; watch's lines.

When ``fail_on`` counts some kinds only, a difference it counts ends in
``  [counted]``, as the other formats tell a failure from a warning. The mark
follows the line's last column, which always ends in a socket's own text (an
inode, a port, an owner's closing parenthesis, a value), so no name can forge
it; with ``any`` (the default) every difference counts and none is marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ..model import namespace_labels
from .base import DiffFormat, EventFormat, ReportOptions, RunFormat, RunOptions
from .items import Item, items, short_lived_items
from .notation import summary_line

if TYPE_CHECKING:
    from ..differ import Diff
    from ..model import RunReport, Socket
    from .base import Spaces

__all__ = ["COUNTED", "TextEvents", "TextFormat", "TextRun", "item_line"]

_COLOURS = {"+": "\033[32m", "-": "\033[31m", "~": "\033[33m"}
_RESET = "\033[0m"
COUNTED = "  [counted]"


def item_line(item: Item, colour: bool = False) -> str:
    """One difference as a line, coloured by its sign when asked."""
    return f"{_COLOURS[item.sign]}{item.line}{_RESET}" if colour else item.line


class TextFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        mark = "any" not in options.fail_on
        lines = [
            item_line(item, options.colour) + (COUNTED if mark and item.counted else "")
            for item in items(result, options.fail_on)
        ]
        lines.append(summary_line(result))
        return "\n".join(lines) + "\n"


class TextEvents(EventFormat):
    """watch's lines: each difference as compare's text writes it, after the time it was seen.

    Sockets that opened and closed between two polls follow a poll's
    differences, closed and ``short-lived``. Watching every namespace, each
    line leads with its namespace's label (``[web] + tcp ...``), and a namespace
    that appears or goes is one line (``+ netns web (docker 3f2a9c1b0d4e)  3 sockets``).
    """

    def __init__(self, colour: bool = False) -> None:
        self.colour = colour

    def overrun(self, out: TextIO, time: str, lost: str) -> None:
        del out, time, lost  # a diagnostic, which watch writes on stderr: no line of the report

    def poll(
        self, out: TextIO, time: str, found: Diff | None, short_lived: Sequence[Socket], spaces: Spaces = None
    ) -> None:
        for item in items(found, ("any",)) if found is not None else ():
            out.write(f"{time} {item_line(item, self.colour)}\n")
        for item in short_lived_items(short_lived, namespace_labels(spaces)):
            out.write(f"{time} {item_line(item, self.colour)}\n")


class TextRun(RunFormat):
    """``sockdiff run``: a line a leaked socket, the processes the tree left running, a summary."""

    def render(self, report: RunReport, options: RunOptions) -> str:
        from .leaks import holder_text, run_items, run_summary

        lines = [item_line(item, options.colour) for item in run_items(report, options.timeline)]
        lines += [f"still running: {holder_text(holder)}" for holder in report.left_running]
        lines.append(run_summary(report))
        return "\n".join(lines) + "\n"
