"""Output formats: every rendering sockdiff writes, one module a format.

Four kinds of document, one interface each (:mod:`.base`): a diff (compare's
reports), a listing of records (show), a stream of events (watch) and what a
command's tree left open (run, in compare's formats). Each command offers the
formats of its kind (:data:`COMPARE_FORMATS`, :data:`SHOW_FORMATS`,
:data:`WATCH_FORMATS`, typed as such) and gets its writer from
:func:`diff_format`, :func:`listing_format`, :func:`event_format` or :func:`run_format`,
each a match over its choices ending in ``assert_never``: a new format is a new
module and one member (pip-audit's ``_format/`` is the model). The notation
every text output shares is :mod:`.notation`; ss's and netstat's layouts are
:mod:`.ss` and :mod:`.netstat`; compare's notes on stderr, :mod:`.notes`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, TypeVar, assert_never

from ..errors import UsageError
from .base import (
    DiffFormat,
    EventFormat,
    ListingFormat,
    ListingOptions,
    ReportOptions,
    RunFormat,
    RunOptions,
    Section,
)

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = [
    "COMPARE_FORMATS",
    "RUN_FORMATS",
    "SHOW_FORMATS",
    "WATCH_FORMATS",
    "DiffChoice",
    "DiffFormat",
    "EventChoice",
    "EventFormat",
    "Format",
    "ListingChoice",
    "ListingFormat",
    "ListingOptions",
    "ReportOptions",
    "RunChoice",
    "RunFormat",
    "RunOptions",
    "Section",
    "diff_format",
    "event_format",
    "listing_format",
    "parse_format",
    "report",
    "run_format",
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
    PROMETHEUS = "prometheus"

    @property
    def lines(self) -> bool:
        """Whether the format is lines that add up, rather than one document.

        A report in lines (text, a table, JSON lines, GitHub's commands,
        markdown) written onto an existing file is added to it, as ``>>``
        would: a CI step summary or a log is written by others too. JSON and
        JUnit XML are documents, whole or nothing: a file of them is replaced,
        and so is Prometheus's text (node_exporter's textfile collector reads it whole).
        """
        match self:
            case Format.TEXT | Format.TABLE | Format.JSONL | Format.GITHUB | Format.MARKDOWN:
                return True
            case Format.JSON | Format.JUNIT | Format.PROMETHEUS:
                return False
            case _:
                assert_never(self)


# The formats of each kind of document, as types: a command holds a choice of its kind only.
DiffChoice = Literal[
    Format.TEXT, Format.JSON, Format.JUNIT, Format.GITHUB, Format.MARKDOWN, Format.PROMETHEUS
]
ListingChoice = Literal[Format.TABLE, Format.JSON, Format.JSONL, Format.PROMETHEUS]
EventChoice = Literal[Format.TEXT, Format.JSONL]
RunChoice = Literal[Format.TEXT, Format.JSON, Format.JUNIT, Format.GITHUB, Format.MARKDOWN]

COMPARE_FORMATS: tuple[DiffChoice, ...] = (
    Format.TEXT,
    Format.JSON,
    Format.JUNIT,
    Format.GITHUB,
    Format.MARKDOWN,
    Format.PROMETHEUS,
)
SHOW_FORMATS: tuple[ListingChoice, ...] = (Format.TABLE, Format.JSON, Format.JSONL, Format.PROMETHEUS)
WATCH_FORMATS: tuple[EventChoice, ...] = (Format.TEXT, Format.JSONL)
RUN_FORMATS: tuple[RunChoice, ...] = (Format.TEXT, Format.JSON, Format.JUNIT, Format.GITHUB, Format.MARKDOWN)


def diff_format(choice: DiffChoice) -> DiffFormat:
    """The writer of a diff (compare's report) in ``choice``."""
    match choice:
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
        case Format.PROMETHEUS:
            from .prometheus import PrometheusFormat

            return PrometheusFormat()
        case _:
            assert_never(choice)


def run_format(choice: RunChoice) -> RunFormat:
    """The writer of ``sockdiff run``'s report in ``choice`` (compare's formats)."""
    match choice:
        case Format.TEXT:
            from .text import TextRun

            return TextRun()
        case Format.JSON:
            from .json import JsonRun

            return JsonRun()
        case Format.JUNIT:
            from .junit import JunitRun

            return JunitRun()
        case Format.GITHUB:
            from .github import GithubRun

            return GithubRun()
        case Format.MARKDOWN:
            from .markdown import MarkdownRun

            return MarkdownRun()
        case _:
            assert_never(choice)


def listing_format(choice: ListingChoice) -> ListingFormat:
    """The writer of show's listing in ``choice``."""
    match choice:
        case Format.TABLE:
            from .table import TableListing

            return TableListing()
        case Format.JSON:
            from .json import JsonListing

            return JsonListing()
        case Format.JSONL:
            from .jsonl import JsonlListing

            return JsonlListing()
        case Format.PROMETHEUS:
            from .prometheus import PrometheusListing

            return PrometheusListing()
        case _:
            assert_never(choice)


def event_format(
    choice: EventChoice, colour: bool = False, identity: Mapping[str, str | None] | None = None
) -> EventFormat:
    """The writer of watch's events in ``choice`` (``colour``: ANSI colours in text; ``identity``:
    the host's, which each jsonl line carries)."""
    match choice:
        case Format.TEXT:
            from .text import TextEvents

            return TextEvents(colour)
        case Format.JSONL:
            from .jsonl import JsonlEvents

            return JsonlEvents(identity)
        case _:
            assert_never(choice)


def _names(formats: tuple[Format, ...]) -> str:
    return ", ".join(f.value for f in formats)


F = TypeVar("F", bound=Format)


def parse_format(text: str, offered: tuple[F, ...]) -> F:
    """The format named ``text``, one of ``offered`` (a command's choices)."""
    for choice in offered:
        if choice.value == text:
            return choice
    raise UsageError(f"unknown format {text!r} (choose from {_names(offered)})")


def _diff_choice(chosen: Format) -> DiffChoice:
    match chosen:
        case Format.TEXT | Format.JSON | Format.JUNIT | Format.GITHUB | Format.MARKDOWN | Format.PROMETHEUS:
            return chosen
        case Format.TABLE | Format.JSONL:
            raise UsageError(
                f"a diff cannot be written as {chosen.value} (choose from {_names(COMPARE_FORMATS)})"
            )
        case _:
            assert_never(chosen)


def report(
    result: Diff, output_format: Format | str = Format.TEXT, options: ReportOptions | None = None
) -> str:
    """``result`` as a report in ``output_format`` (text, json, junit, github, markdown, prometheus).

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
        _diff_choice(output_format)
        if isinstance(output_format, Format)
        else parse_format(output_format, COMPARE_FORMATS)
    )
    return diff_format(chosen).render(result, options or ReportOptions())
