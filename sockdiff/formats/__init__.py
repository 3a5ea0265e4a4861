"""Output formats: one module a format, one enum of the formats the CLI offers.

Each format module renders the library's results (a :class:`~sockdiff.differ.Diff`,
or the sockets a ``show`` chose); :class:`Format` maps a name to its module, and
each command offers the subset that makes sense for it. A new format is a new
module and one enum member (pip-audit's ``_format/`` is the model).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, assert_never

from ..errors import UsageError
from .base import DiffFormat, ReportOptions

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = [
    "COMPARE_FORMATS",
    "SHOW_FORMATS",
    "WATCH_FORMATS",
    "DiffFormat",
    "Format",
    "ReportOptions",
    "parse_format",
    "report",
]


class Format(enum.Enum):
    """Every output format sockdiff writes."""

    TEXT = "text"
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"
    JUNIT = "junit"
    GITHUB = "github"
    MARKDOWN = "markdown"

    def diff_format(self) -> DiffFormat:
        """The renderer of a diff in this format."""
        match self:
            case Format.TEXT:
                from .text import TextFormat

                return TextFormat()
            case Format.JSON:
                from .json import JsonFormat

                return JsonFormat()
            case Format.JUNIT:
                from .junit import JunitFormat

                return JunitFormat()
            case Format.GITHUB:
                from .github import GithubFormat

                return GithubFormat()
            case Format.MARKDOWN:
                from .markdown import MarkdownFormat

                return MarkdownFormat()
            case Format.TABLE | Format.JSONL:
                raise UsageError(
                    f"a diff cannot be written as {self.value} (choose from {_names(COMPARE_FORMATS)})"
                )
            case _:
                assert_never(self)

    @property
    def lines(self) -> bool:
        """Whether the format is lines that add up, rather than one document.

        A report in lines (text, a table, JSON lines, GitHub's commands,
        markdown) written onto an existing file is added to it, as ``>>``
        would: a CI step summary or a log is written by others too. JSON and
        JUnit XML are documents, whole or nothing: a file of them is replaced.
        """
        match self:
            case Format.TEXT | Format.TABLE | Format.JSONL | Format.GITHUB | Format.MARKDOWN:
                return True
            case Format.JSON | Format.JUNIT:
                return False
            case _:
                assert_never(self)


COMPARE_FORMATS = (Format.TEXT, Format.JSON, Format.JUNIT, Format.GITHUB, Format.MARKDOWN)
SHOW_FORMATS = (Format.TABLE, Format.JSON, Format.JSONL)
WATCH_FORMATS = (Format.TEXT, Format.JSONL)


def _names(formats: tuple[Format, ...]) -> str:
    return ", ".join(f.value for f in formats)


def parse_format(text: str, offered: tuple[Format, ...]) -> Format:
    """The format named ``text``, one of ``offered`` (a command's choices)."""
    for choice in offered:
        if choice.value == text:
            return choice
    raise UsageError(f"unknown format {text!r} (choose from {_names(offered)})")


def report(
    result: Diff, output_format: Format | str = Format.TEXT, options: ReportOptions | None = None
) -> str:
    """``result`` as a report in ``output_format`` (text, json, junit, github, markdown).

    A ``result`` that is no :class:`~sockdiff.differ.Diff`, or ``options`` that
    are no :class:`ReportOptions`, raise :class:`~sockdiff.errors.UsageError`.
    """
    from ..differ import Diff

    if not isinstance(result, Diff):
        kind = type(result).__name__
        raise UsageError(f"result: expected a Diff (what diff() and compare() give), not {kind}")
    if options is not None and not isinstance(options, ReportOptions):
        raise UsageError(f"options: expected ReportOptions, not {type(options).__name__}")
    if not isinstance(output_format, Format | str):
        raise UsageError(f"output_format: expected a format's name, not {type(output_format).__name__}")
    chosen = (
        output_format if isinstance(output_format, Format) else parse_format(output_format, COMPARE_FORMATS)
    )
    return chosen.diff_format().render(result, options or ReportOptions())
