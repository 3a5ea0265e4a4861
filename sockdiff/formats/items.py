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
    interface_line,
    netns_word,
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
    first, one item with its records counted under it (``+ netns web (docker
    3f2a9c1b0d4e)  3 sockets, 2 interfaces, 4 routes``: the sections both
    sides took), and every other difference names its namespace first (``[web]
    tcp ...``). A record is named by its own side's label: a closed or removed
    one by the old snapshot's, every other by the new one's (an inode the kernel
    gave a namespace that went may be another namespace's on the new side).
    """
    counts = result.counter(fail_on)
    old_labels = namespace_labels(result.old.namespaces)
    new_labels = namespace_labels(result.new.namespaces)
    whole: tuple[set[int], set[int]] = (set(), set())  # inodes reported whole: old side's, new side's
    if result.namespaces is not None:
        for sign, kind, namespaces, labels, side, socks, socket_kind in (
            ("+", "appeared", result.namespaces.appeared, new_labels, whole[1], result.opened, "new"),
            ("-", "gone", result.namespaces.gone, old_labels, whole[0], result.closed, "closed"),
        ):
            for namespace in namespaces:
                side.add(namespace.inode)
                inside = [s for s in socks if netns_of(s) == namespace.inode]
                counted = any(counts(socket_kind, s) for s in inside)
                detail = [_counted(len(inside), "socket")]
                for name, records in folded(result, sign, namespace.inode).items():
                    counted = counted or any(counts(name, r) for r in records)
                    detail.append(_counted(len(records), name[:-1]))
                subject = f"netns {netns_word(labels[namespace.inode])} ({namespace_description(namespace)})"
                yield Item("namespaces", kind, sign, subject, ", ".join(detail), counted)

    def new_where(record: Socket | Interface | Route, text: str) -> str:
        return placed(record, new_labels, text)

    def old_where(record: Socket | Interface | Route, text: str) -> str:
        return placed(record, old_labels, text)

    for sock in result.opened:
        if netns_of(sock) not in whole[1]:
            line = socket_line(sock, program_only=result.role)
            yield Item("sockets", "new", "+", new_where(sock, line), "", counts("new", sock))
    for sock in result.closed:
        if netns_of(sock) not in whole[0]:
            line = socket_line(sock, program_only=result.role)
            yield Item("sockets", "closed", "-", old_where(sock, line), "", counts("closed", sock))
    for change in result.changed:
        yield Item(
            "sockets",
            "changed",
            "~",
            new_where(change.new, socket_where(change.new)),
            change_detail(change.old, change.new, change.fields),
            counts("changed", change.new),
        )
    yield from _section_items(
        "interfaces", result.interfaces, interface_line, new_where, old_where, whole, counts
    )
    yield from _section_items("routes", result.routes, route_line, new_where, old_where, whole, counts)


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
    return text if inode is None else f"[{netns_word(labels.get(inode, f'net:[{inode}]'))}] {text}"


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
    new_where: Callable[[R, str], str],
    old_where: Callable[[R, str], str],
    whole: tuple[set[int], set[int]],
    counts: Callable[[str, Socket | Interface | Route], bool],
) -> Iterator[Item]:
    """A section's items, each named by its side's namespace label; the records of a
    namespace on one side only (``whole``: the old side's, the new side's) are
    counted under its one item instead."""
    if section is None:
        return
    for record in section.added:
        if netns_of(record) not in whole[1]:
            yield Item(name, "added", "+", new_where(record, line(record)), "", counts(name, record))
    for record in section.removed:
        if netns_of(record) not in whole[0]:
            yield Item(name, "removed", "-", old_where(record, line(record)), "", counts(name, record))
    for change in section.changed:
        text = new_where(change.new, line(change.new))
        yield Item(name, "changed", "~", text, record_detail(change), counts(name, change.new))
