"""Listening sockets as plain data: Ansible's ``sockdiff_listening`` fact.

Like ``listen_ports_facts`` (address, port, protocol, owners), with the family,
the device a socket is bound to, its namespace and every owner; UNIX listeners
too (``path``). Names are the records' text (bytes that are not UTF-8 as
``\\xNN``); the data is JSON, so no name can forge another entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..model import namespace_labels
from ..ssview import is_listening
from .notation import record_netns

if TYPE_CHECKING:
    from ..snapshots import Snapshot

__all__ = ["listening_facts"]


def listening_facts(snapshot: Snapshot) -> list[dict[str, Any]]:
    """One mapping a listening socket of ``snapshot``, in the snapshot's order.

    ``netns``: the record's namespace where it names one, else the namespace
    the snapshot was read in (None: the reader's own).
    """
    found: list[dict[str, Any]] = []
    labels = namespace_labels(snapshot.namespaces)
    for sock in snapshot.sockets or ():
        if not is_listening(sock):
            continue
        unix = sock.proto == "unix"
        found.append(
            {
                "proto": sock.proto,
                "family": sock.family,
                "address": None if unix else sock.local.address,
                "port": None if unix else sock.local.port,
                "path": sock.local.path if unix else None,
                "interface": sock.interface,
                "netns": record_netns(sock, labels) or snapshot.header.netns,
                "uid": sock.uid,
                "processes": [{"pid": p.pid, "name": p.name, "fd": p.fd} for p in sock.processes],
            }
        )
    return found
