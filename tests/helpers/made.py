"""Hand-made snapshot parts for the tests that build snapshots without reading a system."""

from __future__ import annotations

from sockdiff.snapshots import EVERYTHING, Header

__all__ = ["HEADER"]

# A header covering every protocol, as a netlink snapshot's would.
HEADER = Header(
    taken_at="2026-11-25T10:00:00Z",
    host="h",
    kernel="k",
    backend="netlink",
    netns=None,
    sources={"tcp": "netlink", "interfaces": "netlink", "routes": "netlink"},
    scope=EVERYTHING,
    tool_version="0.2.0",
)
