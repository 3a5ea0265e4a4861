"""What each kind of document sockdiff writes implements, and the options each takes.

Four kinds, one interface each: a diff (compare's reports, :class:`DiffFormat`),
a listing of records (show's table, json and jsonl, :class:`ListingFormat`),
a stream of events (watch's lines and jsonl, :class:`EventFormat`), and what a
command's process tree left open (``sockdiff run``'s reports, :class:`RunFormat`). A
format module implements the kinds it can write; a command offers the formats
of its kind, so no format is ever asked for a document it cannot write.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from ..differ import Diff
    from ..model import Namespace, RunReport, Socket
    from ..snapshots import Snapshot

    #: Watching every namespace, those of the last read (they label short-lived sockets).
    Spaces = tuple[Namespace, ...] | None

__all__ = [
    "DiffFormat",
    "EventFormat",
    "ListingFormat",
    "ListingOptions",
    "ReportOptions",
    "RunFormat",
    "RunOptions",
    "Section",
]

Section = Literal["sockets", "interfaces", "routes"]


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """How to write a report.

    ``fail_on``: the kinds of difference counted (a counted difference is a JUnit
    failure, a GitHub error; the others are passing cases and warnings).
    ``colour``: ANSI colours in text (only ever on a terminal).
    """

    fail_on: tuple[str, ...] = ("any",)
    colour: bool = False


class DiffFormat(abc.ABC):
    """Renders a :class:`~sockdiff.differ.Diff` as one document."""

    @abc.abstractmethod
    def render(self, result: Diff, options: ReportOptions) -> str:
        """The whole report, ending in a newline."""


@dataclass(frozen=True, slots=True)
class ListingOptions:
    """How to lay a listing out; a document format (json, jsonl) writes the records whole.

    ``header``: the heading lines (ss -H and netstat's leave them out).
    Sockets: ``processes`` (ss -p's column), ``resolve`` (ss -r), ``extended``
    (ss -e's details). Routes: ``families`` (each gets its table, headed even
    when empty), ``all_tables`` (each line ends in its table and type),
    ``null_entries`` (netstat -6rn's null entry ending each IPv6 table that has
    no default route).
    """

    header: bool = True
    processes: bool = False
    resolve: bool = False
    extended: bool = False
    families: Sequence[str] = ("inet", "inet6")
    all_tables: bool = False
    null_entries: bool = False


class ListingFormat(abc.ABC):
    """Writes the records ``show`` chose: one section of a snapshot."""

    @abc.abstractmethod
    def write(self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions) -> None:
        """``listing``'s ``section`` (the snapshot narrowed to what was chosen) onto ``out``."""


class EventFormat(abc.ABC):
    """Writes what ``watch`` sees as it happens, one event after another."""

    @abc.abstractmethod
    def overrun(self, out: TextIO, time: str, lost: str) -> None:
        """Events were lost to a full receive buffer (``lost`` says which)."""

    @abc.abstractmethod
    def poll(
        self, out: TextIO, time: str, found: Diff | None, short_lived: Sequence[Socket], spaces: Spaces = None
    ) -> None:
        """A poll's differences (None: none read), and the sockets that opened and closed before it;
        ``spaces``: in a watch of every namespace, those of the last read, which label the
        short-lived sockets."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to write ``sockdiff run``'s report: ``timeline``, when each leaked socket appeared
    (json always has it); ``colour``: ANSI colours in text."""

    timeline: bool = False
    colour: bool = False


class RunFormat(abc.ABC):
    """Renders a :class:`~sockdiff.model.RunReport` as one document."""

    @abc.abstractmethod
    def render(self, report: RunReport, options: RunOptions) -> str:
        """The whole report, ending in a newline."""
