"""``table``: show's listing as ss and netstat lay it out (ss's socket table, netstat -i, -rn and -6rn)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO, TypeVar, assert_never

from ..model import Interface, Route, Socket, namespace_labels, netns_of
from .base import ListingFormat, ListingOptions, Section
from .netstat import interface_table, route_tables
from .notation import netns_word
from .ss import socket_table

if TYPE_CHECKING:
    from ..snapshots import Snapshot

__all__ = ["TableListing"]


R = TypeVar("R", Socket, Interface, Route)


def _by_namespace(listing: Snapshot, records: Sequence[R]) -> list[tuple[str, list[R]]]:
    """The records of each namespace, in the snapshot's order of namespaces, with its label."""
    labels = namespace_labels(listing.namespaces)
    groups: dict[int | None, list[R]] = {inode: [] for inode in labels}
    for record in records:
        groups.setdefault(netns_of(record), []).append(record)
    return [
        (netns_word(labels.get(inode, "-") if inode is not None else "-"), group)
        for inode, group in groups.items()
        if group
    ]


def _netns_column(
    listing: Snapshot,
    records: Sequence[R],
    render: Callable[[Sequence[R], bool], str],
    header: bool,
    heading: int,
) -> str:
    """``render``'s table with a leading Netns column: each namespace's lines after its label.

    The whole table is rendered once, records grouped by namespace, so its
    columns line up; ``heading`` lines of it come before the records, which
    then take one line each.
    """
    groups = _by_namespace(listing, records)
    ordered = [record for _, group in groups for record in group]
    labels: list[str] = [label for label, group in groups for _ in group]
    lines = render(ordered, header).split("\n") if ordered or header else []
    width = max([len("Netns"), *(len(label) for label in labels)])
    heads = lines[:heading] if header else []
    body = lines[len(heads) :]
    out = [
        f"{'Netns' if index == len(heads) - 1 else '':<{width}} {line}" for index, line in enumerate(heads)
    ]
    out += [f"{label:<{width}} {line}" for label, line in zip(labels, body, strict=True)]
    return "\n".join(out)


def _netns_routes(listing: Snapshot, options: ListingOptions) -> str:
    """--route with a leading Netns column: each namespace's routing tables, its label on each line."""
    parts = []
    groups = _by_namespace(listing, listing.routes or ())
    width = max([len("Netns"), *(len(label) for label, _ in groups)])
    for label, group in groups:
        text = route_tables(
            group,
            options.families,
            all_tables=options.all_tables,
            header=options.header,
            null_entries=options.null_entries,
        )
        parts += [f"{label:<{width}} {line}" for line in text.split("\n") if line]
    return "\n".join(parts)


class TableListing(ListingFormat):
    def write(self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions) -> None:
        if listing.namespaces is not None:
            self._write_namespaced(out, listing, section, options)
            return
        match section:
            case "sockets":
                text = socket_table(
                    listing.sockets or (),
                    processes=options.processes,
                    resolve=options.resolve,
                    header=options.header,
                    extended=options.extended,
                )
            case "interfaces":
                text = interface_table(listing.interfaces or (), header=options.header)
            case "routes":
                text = route_tables(
                    listing.routes or (),
                    options.families,
                    all_tables=options.all_tables,
                    header=options.header,
                    null_entries=options.null_entries,
                    from_text=listing.header.backend == "netstat-text",
                )
            case _:
                assert_never(section)
        if text:  # nothing at all when there is no line, not an empty one
            out.write(text + "\n")

    def _write_namespaced(
        self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions
    ) -> None:
        match section:
            case "sockets":

                def sockets(records: Sequence[Socket], header: bool) -> str:
                    return socket_table(
                        records,
                        processes=options.processes,
                        resolve=options.resolve,
                        header=header,
                        extended=options.extended,
                    )

                text = _netns_column(listing, listing.sockets or (), sockets, options.header, 1)
            case "interfaces":
                text = _netns_column(listing, listing.interfaces or (), interface_table, options.header, 2)
            case "routes":
                text = _netns_routes(listing, options)
            case _:
                assert_never(section)
        if text:
            out.write(text + "\n")
