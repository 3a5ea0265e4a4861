"""``markdown``: a table fit for ``$GITHUB_STEP_SUMMARY`` or a merge request comment."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import DiffFormat, ReportOptions
from .items import items
from .notation import summary_line

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["MarkdownFormat", "code"]

_BACKTICKS = re.compile("`+")


def code(text: str) -> str:
    """``text`` as a code span inside a table cell: pipes escaped, fence longer than any backtick run.

    >>> code("a|b")
    '`a\\\\|b`'
    """
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


class MarkdownFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        found = list(items(result, options.fail_on))
        lines = [f"### sockdiff: {summary_line(result)}", ""]
        if not found:
            lines.append("No differences.")
            return "\n".join(lines) + "\n"
        lines += ["| | What | Difference | Detail | Counted |", "| --- | --- | --- | --- | --- |"]
        for item in found:
            detail = code(item.detail) if item.detail else ""
            counted = "**yes**" if item.counted else "no"
            lines.append(f"| {item.sign} | {item.section} | {code(item.subject)} | {detail} | {counted} |")
        return "\n".join(lines) + "\n"
