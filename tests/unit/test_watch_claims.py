"""watch's account of destroy events (watching._Claims): the identities a poll saw, kept up to
date from each poll's difference, are those counted afresh from its read."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff.backends.netlink.events import DESTROY_GROUPS
from sockdiff.differ import diff
from sockdiff.model import Socket
from sockdiff.watching import _Claims, _key
from tests.helpers.made import snap, tcp, unix

STATES = ("LISTEN", "ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT")
SOCKET = st.one_of(
    st.builds(tcp, st.integers(1, 6), st.sampled_from(STATES), st.integers(0, 4)),
    st.builds(unix, st.sampled_from(["/a", "/b", None]), st.integers(1, 4)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(SOCKET, max_size=8), min_size=2, max_size=5))
def test_identities_follow_each_polls_difference(reads: list[list[Socket]]) -> None:
    claims = _Claims()
    previous = snap(*reads[0])
    claims.polled(previous)
    claims.unseen(reads[0][0] if reads[0] else tcp(9))  # counts the identities: kept from now on
    for sockets in reads[1:]:
        current = snap(*sockets)
        claims.polled(current, diff(previous, current))
        fresh = Counter(_key(s) for s in sockets if s.proto in DESTROY_GROUPS)
        assert claims._seen == fresh
        previous = current
