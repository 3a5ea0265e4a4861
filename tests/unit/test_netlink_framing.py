"""Netlink framing's one error policy, held for each of its three users."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sockdiff.backends.netlink import events, framing
from sockdiff.backends.netlink import routes as rtnetlink_routes

RTM_NEWROUTE = 24


def _route_message(attribute: bytes) -> bytes:
    """One RTM_NEWROUTE message (an IPv4 rtmsg) holding ``attribute``, then NLMSG_DONE."""
    body = struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 254, 2, 0, 1, 0) + attribute
    message = struct.pack("=IHHII", 16 + len(body), RTM_NEWROUTE, 2, 1, 0) + body
    done = struct.pack("=IHHIIi", 20, framing.NLMSG_DONE, 2, 1, 0, 0)
    return message + done


def test_an_attribute_past_its_message_fails_an_rtnetlink_dump() -> None:
    whole = _route_message(struct.pack("=HHI", 8, rtnetlink_routes.RTA_OIF, 1))
    assert len(rtnetlink_routes.decode_routes(framing.Dump([(whole, len(whole))]), {})) == 1
    past = _route_message(struct.pack("=HHI", 12, rtnetlink_routes.RTA_OIF, 1))  # says 12, holds 8
    with pytest.raises(framing.DumpFailed):
        rtnetlink_routes.decode_routes(framing.Dump([(past, len(past))]), {})


def test_a_message_past_its_datagram_fails_the_event_listener_too() -> None:
    datagram = struct.pack("=IHHII", 200, 20, 0, 0, 0) + bytes(16)  # says 200 bytes, holds 32
    with pytest.raises(framing.DumpFailed):
        events.decode_destroyed(datagram, len(datagram), "tcp")
    with pytest.raises(framing.DumpFailed):
        list(framing.Dump([(datagram, len(datagram))]))


def test_alignment() -> None:
    assert [framing.align(n) for n in (0, 1, 4, 5, 8)] == [0, 4, 4, 8, 8]


def test_a_dump_ending_in_an_error_past_any_errno_fails_as_a_dump() -> None:
    """NLMSG_DONE carrying INT_MIN (no errno negates it): DumpFailed, as any other code."""
    done = struct.pack("=IHHIIi", 20, framing.NLMSG_DONE, 2, 1, 0, -(2**31))
    with pytest.raises(framing.DumpFailed) as failed:
        list(framing.Dump([(done, len(done))]))
    assert failed.value.code == 2**31


# Messages of one length, of a reply's type or not, flagged or not: Dump.split finds each
# message where walking the headers one by one finds it, and the flags it tells.
_MESSAGE = st.tuples(
    st.sampled_from([20, 20, 20, framing.NLMSG_DONE, framing.NLMSG_ERROR, 1]),
    st.sampled_from([2, 2, 2, 2 | framing.NLM_F_DUMP_INTR]),
)


@given(st.lists(_MESSAGE, min_size=1, max_size=8), st.sampled_from([16, 18, 20, 24, 124]), st.integers(0, 3))
def test_split_of_a_datagram_of_alike_messages_is_the_walks(
    kinds: list[tuple[int, int]], length: int, tail: int
) -> None:
    datagram = b"".join(
        struct.pack("=IHHII", length, kind, flags, 1, 0) + bytes([n]) * (length - 16)
        for n, (kind, flags) in enumerate(kinds)
    ) + bytes(tail)  # a few bytes past the last message: no header fits there
    walked = framing.Dump([])
    uniform, framing._uniform = framing._uniform, lambda buffer, size: 0
    try:
        expected = _outcome(walked, datagram)
    finally:
        framing._uniform = uniform
    split = framing.Dump([])
    assert _outcome(split, datagram) == expected
    assert split.interrupted == walked.interrupted


def _outcome(dump: framing.Dump, datagram: bytes) -> object:
    try:
        return dump.split(datagram, len(datagram))
    except framing.DumpFailed as failure:
        return failure.code
