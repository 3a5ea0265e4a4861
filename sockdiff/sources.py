"""What a command's SOURCE argument names: a file, ``-``, a stored snapshot, or live."""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import store
from .errors import BadSnapshot
from .snapshots import Snapshot, load, take

__all__ = ["LIVE", "is_source", "open_source"]

LIVE = ("live", "live:auto", "live:netlink", "live:proc")


def is_source(text: str) -> bool:
    """Whether ``text`` names a source (rather than starting a filter expression).

    A word that looks like a file name (a ``/`` or a snapshot suffix, no space)
    counts even when no such file exists, so the error names the missing file
    rather than a filter keyword.
    """
    if text in LIVE or text == "-" or os.path.isfile(text) or store.find(text) is not None:
        return True
    return not any(c.isspace() for c in text) and ("/" in text or text.endswith((".json", ".json.gz")))


def open_source(
    text: str,
    netns: str | None = None,
    processes: bool = True,
    sections: Sequence[str] | None = None,
) -> Snapshot:
    """The snapshot a source names; live sources are read now (in ``netns`` if given).

    ``sections`` narrows what a live source reads (default: every section).
    """
    if text in LIVE:
        backend = text.partition(":")[2] or "auto"
        return take(backend=backend, netns=netns, processes=processes, sections=sections)
    if text == "-":
        from .output import check_stdin

        check_stdin()
        return load(text)
    if os.path.exists(text):
        return load(text)
    stored = store.find(text)
    if stored is not None:
        return load(str(stored))
    raise BadSnapshot(
        f"{text}: no such file or stored snapshot (sources: a file, '-', a name from"
        " 'sockdiff list', live, live:netlink, live:proc)"
    )
