"""ss's view rules: which sockets ``ss`` lists for its flags, and which it counts as listening.

``show`` and the filter language use them (``-l``, ``-a``, ``-t -4``, the
state word ``connected``); the differ's ``listening`` kind of ``fail_on`` too.
"""

from __future__ import annotations

from collections.abc import Collection

from .model import PROTOS, TCP_STATES, Socket

__all__ = ["CONNECTED_STATES", "is_listening", "ss_kinds", "ss_view"]


def is_listening(sock: Socket) -> bool:
    """Whether a socket waits for peers, as ``ss -l`` lists it (less unnamed UNIX).

    TCP LISTEN; UDP and raw CLOSE; UNIX LISTENING, and UNCONNECTED datagram
    sockets bound to a name.
    """
    if sock.proto == "tcp":
        return sock.state == "LISTEN"
    if sock.proto == "unix":
        if sock.state == "LISTENING":
            return True
        return sock.state == "UNCONNECTED" and sock.type == "dgram" and isinstance(sock.local.path, str)
    return sock.state == "CLOSE"


# What ss lists without -a or -l: connected sockets only (its SS_CONN).
# ss's SS_CONN (ss.c): every TCP state but LISTEN, CLOSE, TIME_WAIT and SYN_RECV,
# and the UNIX states ss shows as connected or connecting. What ss lists without
# -l or -a, and its filter word "connected".
CONNECTED_STATES = frozenset(TCP_STATES.values()) - {"LISTEN", "CLOSE", "TIME_WAIT", "SYN_RECV"} | {
    "CONNECTED",
    "CONNECTING",
    "DISCONNECTING",
}
# What ss -l lists: sockets waiting for peers, unnamed UNIX ones included.
_WAITING = frozenset({"LISTEN", "CLOSE", "LISTENING", "UNCONNECTED"})


def ss_view(listening: bool, everything: bool) -> frozenset[str] | None:
    """The states ss would list with ``-l`` / ``-a`` / neither; None for all.

    >>> sorted(ss_view(listening=True, everything=False))
    ['CLOSE', 'LISTEN', 'LISTENING', 'UNCONNECTED']
    """
    if everything:
        return None
    if listening:
        return _WAITING
    return CONNECTED_STATES


_PROTO_FAMILIES = {
    "tcp": {"inet", "inet6"},
    "udp": {"inet", "inet6"},
    "raw": {"inet", "inet6"},
    "unix": {"unix"},
}
_FAMILY_PROTOS = {"inet": {"tcp", "udp", "raw"}, "inet6": {"tcp", "udp", "raw"}, "unix": {"unix"}}


def ss_kinds(protos: Collection[str], families: Collection[str]) -> frozenset[tuple[str, str]]:
    """The (proto, family) pairs ss lists for its flags: -t -u -w name protocols,
    -4 -6 -x families (none of either: every kind).

    As ss merges them (misc/ss.c, filter_merge_defaults): a protocol none of whose
    families is named brings all of them, a family none of whose protocols is
    named brings all of its own. So ``-t -4`` is TCP over IPv4, ``-t -x`` TCP
    and UNIX, ``-4`` every IPv4 protocol.

    >>> sorted(ss_kinds(["tcp"], ["inet", "unix"]))
    [('tcp', 'inet'), ('unix', 'unix')]
    """
    chosen_protos, chosen_families = set(protos), set(families)
    if not chosen_protos and not chosen_families:
        chosen_protos = set(PROTOS)
    for proto in list(chosen_protos):
        if not _PROTO_FAMILIES[proto] & chosen_families:
            chosen_families |= _PROTO_FAMILIES[proto]
    for family in list(chosen_families):
        if not _FAMILY_PROTOS[family] & chosen_protos:
            chosen_protos |= _FAMILY_PROTOS[family]
    return frozenset(
        (proto, family)
        for proto in chosen_protos
        for family in chosen_families
        if family in _PROTO_FAMILIES[proto]
    )
