"""``github``: GitHub Actions workflow commands, one annotation a difference.

A counted difference is an ``::error``, any other a ``::warning``. GitHub shows
at most ten annotations of each kind in a step, so past ten of a kind the rest
are printed as plain log lines and one ``::notice`` says how many were left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .base import DiffFormat, ReportOptions, RunFormat, RunOptions
from .items import Item, items
from .notation import summary_line

if TYPE_CHECKING:
    from ..differ import Diff
    from ..model import RunReport

__all__ = ["SHOWN", "GithubFormat", "GithubRun", "command", "escape_data", "escape_property", "item_commands"]

SHOWN = 10  # annotations of one kind GitHub displays for a step


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner reads it (``%``, CR, LF).

    >>> escape_data("50%\\ndone")
    '50%25%0Adone'
    """
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: the message's escapes, and ``:`` and ``,``.

    >>> escape_property("a:b,c")
    'a%3Ab%2Cc'
    """
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, title: str, message: str, **where: str | int) -> str:
    """One workflow command line, e.g. ``::error title=...::...``.

    ``where`` places the annotation in a file (``file=``, ``line=``), for the
    pull request's diff view.

    >>> command("error", "t", "m", file="tests/test_a.py", line=7)
    '::error file=tests/test_a.py,line=7,title=t::m'
    """
    properties = {**where, "title": title}
    text = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name} {text}::{escape_data(message)}"


def _title(item: Item) -> str:
    """``sockdiff: new socket``, ``sockdiff: routes added``."""
    if item.section == "sockets":
        return f"sockdiff: {item.kind} socket"
    return f"sockdiff: {item.section} {item.kind}"


class GithubFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        lines = item_commands(items(result, options.fail_on))
        lines.append(summary_line(result))
        return "\n".join(lines) + "\n"


class GithubRun(RunFormat):
    """``sockdiff run``: an error a leaked socket, a notice a process left running, the summary."""

    def render(self, report: RunReport, options: RunOptions) -> str:
        from .leaks import holder_text, run_items, run_summary

        lines = item_commands(run_items(report, options.timeline))
        title = "sockdiff: left running"
        lines += [command("notice", title, holder_text(holder)) for holder in report.left_running[:SHOWN]]
        lines.append(run_summary(report))
        return "\n".join(lines) + "\n"


def item_commands(found: Iterable[Item]) -> list[str]:
    """An ``::error`` a counted item, a ``::warning`` any other, past ten of a kind plain lines."""
    lines: list[str] = []
    left_out: list[Item] = []
    shown = {"error": 0, "warning": 0}
    for item in found:
        name = "error" if item.counted else "warning"
        if shown[name] < SHOWN:
            shown[name] += 1
            lines.append(command(name, _title(item), item.line))
        else:
            left_out.append(item)
    if left_out:
        errors = sum(item.counted for item in left_out)
        warnings = len(left_out) - errors
        message = (
            f"{errors} more errors and {warnings} more warnings than GitHub shows; they follow in the log"
        )
        lines.append(command("notice", "sockdiff: more differences", message))
        lines += [item.line for item in left_out]
    return lines
