"""What every diff format implements, and the options a report takes."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["DiffFormat", "ReportOptions"]


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """How to write a report.

    ``fail_on``: the kinds ``--fail-on`` counts (a counted difference is a JUnit
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
