"""``jsonl``: one JSON document a line: a record (``show``) or an event (``watch``).

Each line is :func:`~sockdiff.formats.json.inert`: no name in it opens a CI command.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from .json import inert

__all__ = ["event_line", "record_lines"]

_encode = msgspec.json.Encoder().encode


def record_lines(records: Iterable[msgspec.Struct]) -> Iterator[bytes]:
    """Each record as it stands in a snapshot file, one a line."""
    for record in records:
        yield inert(_encode(record)) + b"\n"


def event_line(time: str, section: str, kind: str, **members: Any) -> bytes:
    """A watch event: ``{"time", "section", "kind", ...members}`` on one line."""
    return inert(_encode({"time": time, "section": section, "kind": kind, **members})) + b"\n"
