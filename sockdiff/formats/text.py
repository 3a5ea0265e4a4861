"""``text``: one line a difference (``+`` new, ``-`` closed, ``~`` changed), then a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import render
from .base import DiffFormat, ReportOptions
from .items import Item, items

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["TextFormat", "item_line"]

_COLOURS = {"+": "\033[32m", "-": "\033[31m", "~": "\033[33m"}
_RESET = "\033[0m"


def item_line(item: Item, colour: bool = False) -> str:
    """One difference as a line, coloured by its sign when asked."""
    return f"{_COLOURS[item.sign]}{item.line}{_RESET}" if colour else item.line


class TextFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        lines = [item_line(item, options.colour) for item in items(result, options.fail_on)]
        lines.append(render.summary_line(result))
        return "\n".join(lines) + "\n"
