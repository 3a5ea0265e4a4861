"""``json``: SPEC.md's diff document, version 2, encoded by msgspec from the records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .base import DiffFormat, ReportOptions

if TYPE_CHECKING:
    from ..differ import Diff

__all__ = ["FORMAT", "VERSION", "JsonFormat", "document"]

FORMAT = "sockdiff.diff"
VERSION = 2
NOTE_PERSISTENT = "live against live: only differences seen in two consecutive reads"


def document(result: Diff) -> dict[str, Any]:
    """The diff document as a mapping of records (msgspec encodes them as they are)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "snapshots": {"old": result.old.meta(), "new": result.new.meta()},
        "summary": result.summary,
        "new": result.opened,
        "closed": result.closed,
        "changed": [{"old": c.old, "new": c.new, "fields": c.fields} for c in result.changed],
    }
    if result.persistent_only:
        doc["note"] = NOTE_PERSISTENT
    return doc


class JsonFormat(DiffFormat):
    def render(self, result: Diff, options: ReportOptions) -> str:
        del options  # the document holds every difference; --fail-on only sets the exit code
        return msgspec.json.encode(document(result)).decode() + "\n"
