"""compare's shared reading of a second file refuses what the whole reading refuses.

:func:`sockdiff.snapshots.loads` with ``like=`` takes the records the first file
holds byte for byte from it; a file that the plain reading refuses must be refused
the same way, whichever of its parts the shortcut would not have checked.
"""

from __future__ import annotations

import pytest

from sockdiff.errors import BadSnapshot
from sockdiff.snapshots import loads
from tests.helpers.made import GOOD


def _refused_alike(data: bytes) -> None:
    first = loads(GOOD, "a.json")
    with pytest.raises(BadSnapshot) as plain:
        loads(data, "b.json")
    with pytest.raises(BadSnapshot) as shared:
        loads(data, "b.json", like=first)
    assert str(shared.value) == str(plain.value)


def test_a_record_naming_an_unlisted_namespace_is_refused() -> None:
    data = GOOD.replace(b'"state":"LISTEN",', b'"state":"LISTEN","netns":99,', 1)
    assert data != GOOD
    _refused_alike(data)


def test_a_second_sockets_member_is_refused() -> None:
    data = GOOD.replace(b'"sockets":[', b'"sockets":[{"proto":"bogus"},42,"x"],"sockets":[', 1)
    assert data != GOOD
    _refused_alike(data)


@pytest.mark.parametrize("name", [b'"sockets" :', b'"\\u0073ockets":', b'"sockets"\n:'])
def test_a_second_sockets_member_written_otherwise_is_refused(name: bytes) -> None:
    """JSON lets a member's name be followed by blanks, or spelled with \\u escapes."""
    data = GOOD.replace(b'"sockets":[', b'"sockets":[{"proto":"bogus"},42,"x"],' + name + b"[", 1)
    assert data != GOOD
    _refused_alike(data)


def test_the_good_file_is_read_alike() -> None:
    first = loads(GOOD, "a.json")
    assert loads(GOOD, "b.json", like=first).sockets == loads(GOOD, "b.json").sockets
