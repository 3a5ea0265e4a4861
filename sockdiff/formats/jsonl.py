"""``jsonl``: one JSON document a line: a record (``show``) or an event (``watch``).

Each line is :func:`~sockdiff.formats.json.inert`: no name in it opens a CI command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from ..model import namespace_labels, netns_of
from .base import EventFormat, ListingFormat, ListingOptions, Section
from .items import folded
from .json import inert

if TYPE_CHECKING:
    from ..differ import Diff, SectionDiff
    from ..model import Interface, Route, Socket
    from ..snapshots import Snapshot
    from .base import Spaces

__all__ = ["JsonlEvents", "JsonlListing", "event_line", "record_lines"]

_encode = msgspec.json.Encoder().encode


def record_lines(records: Iterable[msgspec.Struct]) -> Iterator[bytes]:
    """Each record as it stands in a snapshot file, one a line."""
    for record in records:
        yield inert(_encode(record)) + b"\n"


def event_line(
    time: str, section: str, kind: str, identity: Mapping[str, str | None] | None = None, **members: Any
) -> bytes:
    """A watch event: ``{"time", "section", "kind", [host, machine_id, boot_id,] ...members}`` on one line."""
    head: dict[str, Any] = {"time": time, "section": section, "kind": kind, **(identity or {})}
    return inert(_encode({**head, **members})) + b"\n"


class JsonlListing(ListingFormat):
    """Each record of the section, one a line."""

    def write(self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions) -> None:
        del options  # a record is written whole
        out.flush()
        out.buffer.writelines(record_lines(getattr(listing, section) or ()))


class JsonlEvents(EventFormat):
    """Each event a line, led by ``time``, ``section`` and ``kind``.

    Sockets: ``new``, ``closed`` (``short_lived``: whether a poll ever saw it)
    and ``changed`` (``old``, ``new``, ``fields``); interfaces and routes:
    ``added``, ``removed`` and ``changed``; an overrun is section ``watch``.
    Watching every namespace, each line about a record carries ``netns`` (its
    namespace's label) after the identity, and a namespace that appeared or went
    is one line of section ``namespaces`` (``netns``, ``namespace``, ``sockets``, and
    ``interfaces`` and ``routes`` when watched: how many of its records came or went
    with it, which have no line of their own).
    With an ``identity`` (``host``, ``machine_id``, ``boot_id``: see
    :meth:`~sockdiff.snapshots.Header.identity`), each line carries it after ``kind``.
    """

    def __init__(self, identity: Mapping[str, str | None] | None = None) -> None:
        self._identity = identity

    def overrun(self, out: TextIO, time: str, lost: str) -> None:
        out.flush()
        out.buffer.write(event_line(time, "watch", "overrun", self._identity, lost=lost))

    def poll(
        self, out: TextIO, time: str, found: Diff | None, short_lived: Sequence[Socket], spaces: Spaces = None
    ) -> None:
        out.flush()
        out.buffer.writelines(self._lines(time, found, short_lived, spaces))

    def _lines(
        self, time: str, found: Diff | None, short_lived: Sequence[Socket], namespaces: Spaces
    ) -> Iterator[bytes]:
        who = self._identity
        labels = namespace_labels(namespaces)
        whole: set[int] = set()  # namespaces that appeared or went: one line each, for their sockets too
        if found is not None:
            labels.update(namespace_labels(found.old.namespaces))
            labels.update(namespace_labels(found.new.namespaces))
            if found.namespaces is not None:
                for kind, spaces, socks in (
                    ("appeared", found.namespaces.appeared, found.opened),
                    ("gone", found.namespaces.gone, found.closed),
                ):
                    for space in spaces:
                        whole.add(space.inode)
                        inside = sum(1 for s in socks if netns_of(s) == space.inode)
                        label = labels[space.inode]
                        sign = "+" if kind == "appeared" else "-"
                        records = {name: len(r) for name, r in folded(found, sign, space.inode).items()}
                        yield event_line(
                            time,
                            "namespaces",
                            kind,
                            who,
                            netns=label,
                            namespace=space,
                            sockets=inside,
                            **records,
                        )

        def at(record: Socket | Interface | Route) -> dict[str, str]:
            """``{"netns": label}`` for a record of a watch of every namespace, else nothing."""
            inode = netns_of(record)
            return {} if inode is None else {"netns": labels.get(inode, f"net:[{inode}]")}

        if found is not None:
            for sock in found.opened:
                if netns_of(sock) not in whole:
                    yield event_line(time, "sockets", "new", who, **at(sock), socket=sock)
            for sock in found.closed:
                if netns_of(sock) not in whole:
                    yield event_line(
                        time, "sockets", "closed", who, **at(sock), socket=sock, short_lived=False
                    )
        for sock in short_lived:
            yield event_line(time, "sockets", "closed", who, **at(sock), socket=sock, short_lived=True)
        if found is not None:
            for change in found.changed:
                yield event_line(
                    time,
                    "sockets",
                    "changed",
                    who,
                    **at(change.new),
                    old=change.old,
                    new=change.new,
                    fields=change.fields,
                )
            yield from _section_events(time, "interfaces", "interface", found.interfaces, who, at, whole)
            yield from _section_events(time, "routes", "route", found.routes, who, at, whole)


def _section_events(
    time: str,
    section: str,
    noun: str,
    found: SectionDiff[Any] | None,
    who: Mapping[str, str | None] | None,
    at: Callable[[Any], dict[str, str]],
    whole: set[int],
) -> Iterator[bytes]:
    """One section's differences: ``added`` and ``removed`` records, ``changed`` pairs
    (``at``: a record's namespace member, if any); none of a namespace that came or went
    (``whole``: its line counts them)."""
    if found is None:
        return
    for record in found.added:
        if netns_of(record) not in whole:
            yield event_line(time, section, "added", who, **at(record), **{noun: record})
    for record in found.removed:
        if netns_of(record) not in whole:
            yield event_line(time, section, "removed", who, **at(record), **{noun: record})
    for change in found.changed:
        members = {"old": change.old, "new": change.new, "fields": change.fields}
        yield event_line(time, section, "changed", who, **at(change.new), **members)
