"""The differences of a diff as a flat list of items, in report order.

Every line-oriented format (text, JUnit, GitHub, markdown) walks this one list,
so they agree on order, wording and on which differences ``--fail-on`` counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import render

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["Item", "items"]


@dataclass(frozen=True, slots=True)
class Item:
    """One difference, worded: ``sign subject  detail``.

    ``section``: sockets, interfaces or routes. ``kind``: new, closed or changed
    (sockets), added, removed or changed (interfaces, routes). ``counted``:
    whether ``--fail-on`` counts it.
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
    """Sockets first (new, closed, changed), each in the diff's order."""
    counts = result.counter(fail_on)
    for sock in result.opened:
        yield Item("sockets", "new", "+", render.socket_line(sock), "", counts("new", sock))
    for sock in result.closed:
        yield Item("sockets", "closed", "-", render.socket_line(sock), "", counts("closed", sock))
    for change in result.changed:
        yield Item(
            "sockets",
            "changed",
            "~",
            render.socket_where(change.new),
            render.change_detail(change.old, change.new, change.fields),
            counts("changed", change.new),
        )
