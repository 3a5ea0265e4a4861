"""Saved ``ss`` and ``netstat`` listings as sources: foreign text in, one snapshot out.

One reader per tool (:mod:`.ss`, :mod:`.netstat`), each pure over text and
building its records through :func:`sockdiff.model.make_socket`, as the
backends do. :func:`read_listing` picks the reader (by the listing's first
line, or as told), and makes the snapshot: ``backend`` ``ss-text`` or
``netstat-text``, taken at the file's mtime, its scope what the listing
covered (the protocols it shows, the states it was limited to; the interfaces
and routing tables netstat -i and -r show, as ``sources`` words of
:mod:`sockdiff.coverage`). What the text cannot hold is null (or 0 for an
inode, which is never compared as a change).
"""

from __future__ import annotations

import datetime
import warnings

from .._version import __version__
from ..coverage import NETSTAT_INTERFACES, NETSTAT_ROUTES, NETSTAT_UP_INTERFACES, BackendName
from ..errors import BadSnapshot, UsageError
from ..model import PROTOS
from ..snapshots import Header, Scope, Snapshot
from . import netstat, ss
from .common import Listing, Unreadable, as_bytes_text, bad_listing

__all__ = ["INPUT_FORMATS", "SavedListingNote", "detect", "fail", "read_listing"]

INPUT_FORMATS = ("ss", "netstat")
_BACKENDS: dict[str, BackendName] = {"ss": "ss-text", "netstat": "netstat-text"}


class SavedListingNote(UserWarning):
    """Something a saved listing could not say exactly (host names, lines skipped)."""


# The dates a line above a listing may hold (``date; ss -tanp`` saved together), with
# their offsets: date -R, date -Is / --rfc-3339, and date's own form in UTC or GMT.
_DATE_FORMATS = (
    "%a, %d %b %Y %H:%M:%S %z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%a %b %d %H:%M:%S %Z %Y",
)


def _date(line: str) -> datetime.datetime | None:
    words = " ".join(line.split())
    for form in _DATE_FORMATS:
        try:
            when = datetime.datetime.strptime(words, form)
        except ValueError:
            continue
        if form.endswith("%Z %Y") and words.split()[-2] not in ("UTC", "GMT"):
            return None  # a zone by name: its offset is not in the text
        return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)
    return None


def dated(text: str) -> tuple[datetime.datetime | None, str]:
    """The date on a listing's first line that is not blank (None: none) and the text with
    that line blanked (its line numbers kept); a UTF-8 byte order mark before it is read past."""
    text = text.removeprefix("\ufeff")
    head, newline, rest = text.partition("\n")
    blank = ""
    while not head.strip() and newline:
        blank += head + newline
        head, newline, rest = rest.partition("\n")
    when = _date(head)
    return (None, text) if when is None else (when, blank + newline + rest)


def detect(text: str) -> str | None:
    """``ss`` or ``netstat`` by a listing's first line that is not blank (past a date); None: neither."""
    for line in dated(text)[1].split("\n", 50)[:50]:
        if line.strip():
            if netstat.looks_like(line):
                return "netstat"
            if ss.looks_like(line):
                return "ss"
            return None
    return None


def fail(listing: Listing, origin: str, number: int, err: Unreadable, lenient: bool) -> None:
    """An unreadable line: one error naming file, line and column, or (``lenient``) counted."""
    if not lenient:
        raise bad_listing(origin, number, err.column, err.reason)
    listing.skipped += 1


def read_listing(
    text: str, origin: str, taken_at: datetime.datetime, tool: str | None = None, lenient: bool = False
) -> Snapshot:
    """The snapshot a saved listing holds; ``tool`` (``ss``/``netstat``) when its first line does not say."""
    written, text = dated(text)
    taken_at = written or taken_at
    if tool is None:
        tool = detect(text)
        if tool is None:
            raise BadSnapshot(
                f"{as_bytes_text(origin)}: neither a sockdiff snapshot nor a listing saved by ss or netstat"
                " (name it ss:PATH or netstat:PATH if it is one)"
            )
    elif tool not in INPUT_FORMATS:
        raise UsageError(f"unknown input format {tool!r} (choose from {', '.join(INPUT_FORMATS)})")
    reader = ss.read if tool == "ss" else netstat.read
    listing = reader(text, lenient, origin)
    if listing.protos_unknown:
        raise BadSnapshot(
            f"{as_bytes_text(origin)}: a socket table of this listing has no row, so which protocols it"
            f" covered cannot be known ({tool} prints one header for TCP, UDP and raw): nothing to compare"
            " it with"
        )
    if listing.skipped:
        warnings.warn(
            SavedListingNote(
                f"{as_bytes_text(origin)}: {listing.skipped} unreadable line(s) skipped (--lenient)"
            ),
            stacklevel=2,
        )
    if listing.host_names:
        count = len(listing.host_names)
        warnings.warn(
            SavedListingNote(
                f"{as_bytes_text(origin)}: {count} address{' was' if count == 1 else 'es were'} saved as host"
                f" name{'' if count == 1 else 's'}; take `-n` next time"
            ),
            stacklevel=2,
        )
    backend = _BACKENDS[tool]
    protos = tuple(p for p in PROTOS if p in listing.protos)
    sources: dict[str, str] = {proto: backend for proto in protos}
    if listing.interfaces is not None:
        sources["interfaces"] = NETSTAT_INTERFACES if listing.every_interface else NETSTAT_UP_INTERFACES
    if listing.routes is not None:
        sources["routes"] = NETSTAT_ROUTES[listing.route_families].source
    header = Header(
        taken_at=taken_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        host="",
        kernel="",
        backend=backend,
        netns=None,
        sources=sources,
        scope=Scope(protos, listing.filter),
        tool_version=__version__,
    )
    return Snapshot(
        header,
        tuple(listing.sockets) if listing.has_sockets else None,
        None if listing.interfaces is None else tuple(listing.interfaces),
        None if listing.routes is None else tuple(listing.routes),
        origin=origin,
    )
