"""``table``: show's listing as ss and netstat lay it out (ss's socket table, netstat -i, -rn and -6rn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO, assert_never

from .base import ListingFormat, ListingOptions, Section
from .netstat import interface_table, route_tables
from .ss import socket_table

if TYPE_CHECKING:
    from ..snapshots import Snapshot

__all__ = ["TableListing"]


class TableListing(ListingFormat):
    def write(self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions) -> None:
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
                )
            case _:
                assert_never(section)
        if text:  # nothing at all when there is no line, not an empty one
            out.write(text + "\n")
