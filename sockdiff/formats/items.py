"""The differences of a diff as a flat list of items, in report order.

Every line-oriented format (text, JUnit, GitHub, markdown) walks this one list,
so they agree on order, wording and on which differences ``fail_on`` counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..model import namespace_description, namespace_labels, netns_of
from .notation import (
    change_detail,
    escape,
    interface_line,
    record_detail,
    route_line,
    socket_line,
    socket_where,
)

if TYPE_CHECKING:
    from ..differ import Diff, SectionDiff
    from ..model import Interface, Route, Socket

__all__ = ["Item", "folded", "items", "placed", "short_lived_items"]


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
    """Sockets first (new, closed, changed), then interfaces and routes (added, removed, changed).

    Between snapshots of every namespace, a namespace on one side only comes
    first, one item with its sockets (and interfaces and routes, when compared) counted
    under it (``+ netns web (docker 3f2a9c1b0d4e)  3 sockets, 1 interface, 2 routes``),
    and every other difference names its
    namespace first (``[web] tcp ...``).
    """
    counts = result.counter(fail_on)
    labels = {**namespace_labels(result.old.namespaces), **namespace_labels(result.new.namespaces)}
    whole: set[int] = set()
    if result.namespaces is not None:
        for sign, kind, namespaces, socks in (
            ("+", "appeared", result.namespaces.appeared, result.opened),
            ("-", "gone", result.namespaces.gone, result.closed),
        ):
            for namespace in namespaces:
                whole.add(namespace.inode)
                inside = [s for s in socks if netns_of(s) == namespace.inode]
                counted = any(counts("new" if sign == "+" else "closed", s) for s in inside)
                detail = [_counted(len(inside), "socket")]
                for name, records in folded(result, sign, namespace.inode).items():
                    counted = counted or any(counts(name, r) for r in records)
                    detail.append(_counted(len(records), name[:-1]))
                subject = f"netns {escape(labels[namespace.inode])} ({namespace_description(namespace)})"
                yield Item("namespaces", kind, sign, subject, ", ".join(detail), counted)

    def where(record: Socket | Interface | Route, text: str) -> str:
        return placed(record, labels, text)

    for sock in result.opened:
        if netns_of(sock) not in whole or netns_of(sock) is None:
            yield Item("sockets", "new", "+", where(sock, socket_line(sock)), "", counts("new", sock))
    for sock in result.closed:
        if netns_of(sock) not in whole or netns_of(sock) is None:
            yield Item("sockets", "closed", "-", where(sock, socket_line(sock)), "", counts("closed", sock))
    for change in result.changed:
        yield Item(
            "sockets",
            "changed",
            "~",
            where(change.new, socket_where(change.new)),
            change_detail(change.old, change.new, change.fields),
            counts("changed", change.new),
        )
    yield from _section_items(
        "interfaces", result.interfaces, lambda r: where(r, interface_line(r)), counts, whole
    )
    yield from _section_items("routes", result.routes, lambda r: where(r, route_line(r)), counts, whole)


def folded(result: Diff, sign: str, inode: int) -> dict[str, list[Interface] | list[Route]]:
    """The interfaces and routes (each section compared) that came (``sign`` +) or went (-)
    with namespace ``inode``: counted under its line, not each a line of its own."""
    found: dict[str, list[Interface] | list[Route]] = {}
    if result.interfaces is not None:
        side = result.interfaces.added if sign == "+" else result.interfaces.removed
        found["interfaces"] = [r for r in side if netns_of(r) == inode]
    if result.routes is not None:
        routes = result.routes.added if sign == "+" else result.routes.removed
        found["routes"] = [r for r in routes if netns_of(r) == inode]
    return found


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def placed(record: Socket | Interface | Route, labels: Mapping[int, str], text: str) -> str:
    """``text`` about ``record``, led by its namespace's label in brackets when it has one
    (``labels``: inode -> label; an inode not there is written ``net:[INODE]``)."""
    inode = netns_of(record)
    return text if inode is None else f"[{escape(labels.get(inode, f'net:[{inode}]'))}] {text}"


def short_lived_items(sockets: Iterable[Socket], labels: Mapping[int, str] | None = None) -> Iterator[Item]:
    """Sockets that opened and closed between two polls (watch): closed, ``short-lived``;
    in a watch of every namespace, each led by its namespace's label (``labels``: inode -> label)."""
    for sock in sockets:
        subject = placed(sock, labels or {}, socket_line(sock))
        yield Item("sockets", "closed", "-", subject, "short-lived", True)


R = TypeVar("R", "Interface", "Route")


def _section_items(
    name: str,
    section: SectionDiff[R] | None,
    line: Callable[[R], str],
    counts: Callable[[str, Socket | Interface | Route], bool],
    whole: set[int],
) -> Iterator[Item]:
    if section is None:
        return
    for record in section.added:
        if netns_of(record) not in whole:
            yield Item(name, "added", "+", line(record), "", counts(name, record))
    for record in section.removed:
        if netns_of(record) not in whole:
            yield Item(name, "removed", "-", line(record), "", counts(name, record))
    for change in section.changed:
        yield Item(name, "changed", "~", line(change.new), record_detail(change), counts(name, change.new))
