"""compare (and the differ under it) refuses to pair a one-namespace snapshot with an
every-namespace one (each record of the latter carries its namespace, none of the former's
does: everything came out new and closed)."""

from __future__ import annotations

import msgspec
import pytest

from sockdiff import compare, diff
from sockdiff.errors import UsageError
from sockdiff.model import Namespace
from sockdiff.snapshots import Snapshot
from tests.helpers.made import sample


def _every(snapshot: Snapshot) -> Snapshot:
    inode = 4026531840
    sockets = tuple(msgspec.structs.replace(s, netns=inode) for s in snapshot.sockets or ())
    namespace = Namespace(inode, (), (1,), None)
    return Snapshot(snapshot.header, sockets, namespaces=(namespace,))


@pytest.mark.parametrize("every_first", [True, False])
def test_one_namespace_against_every_one_is_refused(every_first: bool) -> None:
    one, every = sample(), _every(sample())
    sides = (every, one) if every_first else (one, every)
    for comparing in (compare, diff):  # the command's comparison, and the API's differ
        with pytest.raises(UsageError, match="compare like with like"):
            comparing(*sides)


def test_netns_with_all_netns_is_refused() -> None:
    with pytest.raises(UsageError, match="exclude each other"):
        compare(sample(), "live", netns="x", all_netns=True)
