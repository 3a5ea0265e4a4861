"""``json``: SPEC.md's diff document, version 2, show's listing as a snapshot file, and
``sockdiff run``'s report (``sockdiff.run``, version 1: the run's record whole)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from ..differ import counter_deltas
from .base import DiffFormat, ListingFormat, ListingOptions, ReportOptions, RunFormat, RunOptions, Section
from .notes import ROLE_NOTE

if TYPE_CHECKING:
    from ..differ import Change, Diff, SectionDiff
    from ..model import RunReport
    from ..snapshots import Snapshot

__all__ = ["FORMAT", "RUN_FORMAT", "VERSION", "JsonFormat", "JsonListing", "JsonRun", "document", "inert"]

FORMAT = "sockdiff.diff"
VERSION = 2
RUN_FORMAT = "sockdiff.run"
RUN_VERSION = 1
NOTE_PERSISTENT = "live against live: only differences seen in two consecutive reads"


# ``#``, ``#``, ``[`` with only characters past ASCII between them (see
# sockdiff.formats.notation.escape: the runner's search may skip any of those); the second
# ``#`` is written as a JSON escape.
_OLD_COMMAND = re.compile(rb"#([\x80-\xff]*)#([\x80-\xff]*)\[")
# U+0085, U+2028, U+2029: valid in a JSON string, but line breaks to str.splitlines()
# and to some JSON Lines readers; written as escapes, one record stays one line.
_LINE_BREAKS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


def inert(data: bytes) -> bytes:
    r"""JSON text in which no name opens a GitHub workflow command or breaks a line, printed into a CI log.

    The runner reads ``##[name]`` anywhere in a line (see :func:`sockdiff.formats.notation.escape`);
    in JSON text ``##[`` can only stand inside a string, where ``\u0023`` is the
    same ``#``: every reader gets the name back exactly. So with the line breaks
    past ASCII. A document's lines start with ``{``, ``[`` or a space, never with ``::``.

    >>> inert(b'{"path":"@##[error]x"}')
    b'{"path":"@#\\u0023[error]x"}'
    >>> inert('{"path":"@#\u0640#[e]\u2028"}'.encode())
    b'{"path":"@#\xd9\x80\\u0023[e]\\u2028"}'
    """
    if b"#" in data and b"[" in data:
        data = _OLD_COMMAND.sub(rb"#\1\\u0023\2[", data)
    if data.isascii():
        return data
    for raw, escaped in _LINE_BREAKS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def document(result: Diff) -> dict[str, Any]:
    """The diff document as a mapping of records (msgspec encodes them as they are).

    ``host``, ``machine_id`` and ``boot_id`` are the new side's (the host checked
    against a baseline; null where its snapshot does not say): documents from
    many hosts merge by them.

    A section either side did not take is null, in ``summary`` too. A change of
    interface counters also carries ``deltas`` (new minus old, per counter).
    """
    sockets = result.old.sockets is not None and result.new.sockets is not None
    summary: dict[str, Any] = dict(result.summary) if sockets else dict.fromkeys(result.summary)
    summary["interfaces"] = None if result.interfaces is None else result.interfaces.summary
    summary["routes"] = None if result.routes is None else result.routes.summary
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "snapshots": {"old": result.old.meta(), "new": result.new.meta()},
        "summary": summary,
        "new": result.opened if sockets else None,
        "closed": result.closed if sockets else None,
        "changed": [_change(c) for c in result.changed] if sockets else None,
        "interfaces": _section(result.interfaces),
        "routes": _section(result.routes),
        **result.new.header.identity(),
    }
    notes = [NOTE_PERSISTENT] if result.persistent_only else []
    if result.role:
        notes.append(ROLE_NOTE)
    if notes:
        doc["note"] = "; ".join(notes)
    return doc


def _change(change: Change[Any]) -> dict[str, Any]:
    member: dict[str, Any] = {"old": change.old, "new": change.new, "fields": change.fields}
    if "counters" in change.fields:
        member["deltas"] = counter_deltas(change.old, change.new)
    return member


def _section(section: SectionDiff[Any] | None) -> dict[str, Any] | None:
    if section is None:
        return None
    return {
        "added": section.added,
        "removed": section.removed,
        "changed": [_change(c) for c in section.changed],
    }


class JsonFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        del options  # the document holds every difference; fail_on only sets the exit code
        return inert(msgspec.json.encode(document(result))).decode() + "\n"


class JsonListing(ListingFormat):
    """The listing as a snapshot file holding what was chosen (its header, that section)."""

    def write(self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions) -> None:
        del section, options  # the snapshot is narrowed to its section already, and written whole
        from ..snapshots import dumps

        out.flush()
        out.buffer.write(inert(dumps(listing)))


class JsonRun(RunFormat):
    """The run's record whole (every leak with when it appeared), after its format and version."""

    def render(self, report: RunReport, options: RunOptions) -> str:
        del options  # the document holds the timeline always
        doc = {"format": RUN_FORMAT, "version": RUN_VERSION, **msgspec.structs.asdict(report)}
        return inert(msgspec.json.encode(doc)).decode() + "\n"
