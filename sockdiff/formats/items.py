"""The differences of a diff as a flat list of items, in report order.

Every line-oriented format (text, JUnit, GitHub, markdown) walks this one list,
so they agree on order, wording and on which differences ``fail_on`` counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .notation import change_detail, interface_line, record_detail, route_line, socket_line, socket_where

if TYPE_CHECKING:
    from ..differ import Diff, SectionDiff
    from ..model import Interface, Route, Socket

__all__ = ["Item", "items", "short_lived_items"]


@dataclass(frozen=True, slots=True)
class Item:
    """One difference, worded: ``sign subject  detail``.

    ``section``: sockets, interfaces or routes. ``kind``: new, closed or changed
    (sockets), added, removed or changed (interfaces, routes). ``counted``:
    whether ``fail_on`` counts it.
    """

    section: str
    kind: str
    sign: str
    subject: str
    detail: str
    counted: bool

    @property
    def line(self) -> str:
        """The difference as one line of text (its parts are escaped already)."""
        text = f"{self.sign} {self.subject}"
        return f"{text}  {self.detail}" if self.detail else text


def items(result: Diff, fail_on: tuple[str, ...]) -> Iterator[Item]:
    """Sockets first (new, closed, changed), then interfaces and routes (added, removed, changed)."""
    counts = result.counter(fail_on)
    for sock in result.opened:
        yield Item("sockets", "new", "+", socket_line(sock), "", counts("new", sock))
    for sock in result.closed:
        yield Item("sockets", "closed", "-", socket_line(sock), "", counts("closed", sock))
    for change in result.changed:
        yield Item(
            "sockets",
            "changed",
            "~",
            socket_where(change.new),
            change_detail(change.old, change.new, change.fields),
            counts("changed", change.new),
        )
    yield from _section_items("interfaces", result.interfaces, interface_line, counts)
    yield from _section_items("routes", result.routes, route_line, counts)


def short_lived_items(sockets: Iterable[Socket]) -> Iterator[Item]:
    """Sockets that opened and closed between two polls (watch): closed, ``short-lived``."""
    for sock in sockets:
        yield Item("sockets", "closed", "-", socket_line(sock), "short-lived", True)


R = TypeVar("R", "Interface", "Route")


def _section_items(
    name: str,
    section: SectionDiff[R] | None,
    line: Callable[[R], str],
    counts: Callable[[str, Socket | Interface | Route], bool],
) -> Iterator[Item]:
    if section is None:
        return
    for record in section.added:
        yield Item(name, "added", "+", line(record), "", counts(name, record))
    for record in section.removed:
        yield Item(name, "removed", "-", line(record), "", counts(name, record))
    for change in section.changed:
        yield Item(name, "changed", "~", line(change.new), record_detail(change), counts(name, change.new))
