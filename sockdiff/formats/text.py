"""``text``: one line a difference (``+`` new, ``-`` closed, ``~`` changed), then a summary.

When ``--fail-on`` counts some kinds only, a difference it counts ends in
``  [counted]``, as the other formats tell a failure from a warning. The mark
follows the line's last column, which always ends in a socket's own text (an
inode, a port, an owner's closing parenthesis, a value), so no name can forge
it; with ``any`` (the default) every difference counts and none is marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import render
from .base import DiffFormat, ReportOptions
from .items import Item, items

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["COUNTED", "TextFormat", "item_line"]

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
        lines.append(render.summary_line(result))
        return "\n".join(lines) + "\n"
