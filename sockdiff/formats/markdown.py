"""``markdown``: a table fit for ``$GITHUB_STEP_SUMMARY`` or a merge request comment."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import DiffFormat, ReportOptions, RunFormat, RunOptions
from .items import Item, items
from .notation import summary_line

if TYPE_CHECKING:
    from ..differ import Diff
    from ..model import RunReport

__all__ = ["MarkdownFormat", "MarkdownRun", "code", "table"]

_BACKTICKS = re.compile("`+")


def code(text: str, cell: bool = True) -> str:
    """``text`` as a code span (its fence longer than any backtick run), inside a table cell
    (``cell``: pipes escaped) or not (a heading, a list item).

    >>> code("a|b"), code("a`b", cell=False)
    ('`a\\\\|b`', '``a`b``')
    """
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|') if cell else text}{pad}{fence}"


class MarkdownFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        found = list(items(result, options.fail_on))
        lines = [f"### sockdiff: {summary_line(result)}", ""]
        if not found:
            lines.append("No differences.")
            return "\n".join(lines) + "\n"
        return "\n".join(lines + table(found)) + "\n"


class MarkdownRun(RunFormat):
    """``sockdiff run``: the summary as a heading, the leaked sockets' table, what still runs."""

    def render(self, report: RunReport, options: RunOptions) -> str:
        from .leaks import holder_text, run_items, run_summary

        found = list(run_items(report, options.timeline))
        lines = [f"### {run_summary(report, lambda command: code(command, cell=False))}", ""]
        lines += table(found) if found else ["No sockets left open."]
        if report.left_running:
            lines += ["", "Still running:", ""]
            lines += [f"- {code(holder_text(holder), cell=False)}" for holder in report.left_running]
        return "\n".join(lines) + "\n"


def table(found: list[Item]) -> list[str]:
    """The items as a table's lines: sign, section, subject, detail, whether counted."""
    lines = ["| | What | Difference | Detail | Counted |", "| --- | --- | --- | --- | --- |"]
    for item in found:
        detail = code(item.detail) if item.detail else ""
        counted = "**yes**" if item.counted else "no"
        lines.append(f"| {item.sign} | {item.section} | {code(item.subject)} | {detail} | {counted} |")
    return lines
