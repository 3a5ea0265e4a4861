"""Records checked by sockdiff's own snapshot reader: the tests have no record checker of their own.

The reader (:func:`sockdiff.snapshots.loads`) checks every field's type and range
through the msgspec schema of :mod:`sockdiff.model`, then what types cannot say
through :mod:`sockdiff.validation` (endpoint shapes, states, canonical addresses,
device, UNIX and process names). A record that passes is one sockdiff could have
written; these helpers fail a test, in the reader's words, on one that does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sockdiff import BadSnapshot, Snapshot, Socket
from sockdiff.snapshots import dumps, loads
from tests.helpers.made import HEADER

__all__ = ["read_back", "read_back_record", "read_back_sockets"]


def _read(data: bytes) -> Snapshot:
    try:
        return loads(data, "records")
    except BadSnapshot as err:
        raise AssertionError(str(err)) from None


def read_back(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` written and read back by sockdiff; its records come back equal."""
    back = _read(dumps(snapshot))
    assert (back.sockets, back.interfaces, back.routes) == (
        snapshot.sockets,
        snapshot.interfaces,
        snapshot.routes,
    )
    return back


def read_back_sockets(sockets: Iterable[Socket]) -> None:
    """The sockets, in a snapshot of their own, pass the reader and come back equal."""
    read_back(Snapshot(HEADER, tuple(sockets)))


def read_back_record(record: Mapping[str, Any]) -> Socket:
    """A socket record as JSON holds it (a diff document's, say), read as a snapshot's record."""
    document = json.loads(dumps(Snapshot(HEADER, ())))
    document["sockets"] = [record]
    back = _read(json.dumps(document).encode())
    assert back.sockets is not None
    return back.sockets[0]
