"""Netlink framing's one error policy, held for each of its three users."""

from __future__ import annotations

import struct

import pytest

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
