"""Records against the zoo's own account of a socket (its manifest, or expected.json)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from sockdiff import Socket

__all__ = ["differences", "locate"]


def locate(sockets: Iterable[Socket], record: dict[str, Any]) -> list[Socket]:
    """The sockets that can be ``record``: same inode, else (inode 0) same addresses."""
    if record["inode"]:
        return [s for s in sockets if s.inode == record["inode"]]
    return [
        s
        for s in sockets
        if s.proto == record["proto"]
        and s.family == record["family"]
        and msgspec.to_builtins(s.local) == record["local"]
        and s.remote is not None
        and msgspec.to_builtins(s.remote) == record["remote"]
    ]


def differences(
    sock: Socket,
    record: dict[str, Any],
    *,
    knows_unix_peers: bool,
    processes: list[dict[str, Any]],
    knows_options: bool | None = None,
) -> list[str]:
    """Where ``sock`` departs from ``record``, a line each.

    ``knows_unix_peers``: whether the backend knows a UNIX socket's peer and
    owner uid (netlink does; /proc does not, and says null). ``processes``: the
    owners the record should carry, in order. ``knows_options``: whether it
    knows the bound device and IPV6_V6ONLY (inet_diag does, /proc does not, and
    says null); by default, as it knows UNIX peers.
    """
    got: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(sock))  # as a snapshot file holds it
    name = record.get("name", record["inode"])
    problems = [
        f"{name}: {key} {got[key]!r} != {record[key]!r}"
        for key in ("proto", "family", "type", "state", "local", "inode")
        if got[key] != record[key]
    ]
    knows = knows_unix_peers or sock.proto != "unix"
    want_remote = record["remote"] if knows else None
    if got["remote"] != want_remote:
        problems.append(f"{name}: remote {got['remote']!r} != {want_remote!r}")
    want_uid = record["uid"] if knows else None
    if sock.uid != want_uid:
        problems.append(f"{name}: uid {sock.uid!r} != {want_uid!r}")
    if knows_options is None:
        knows_options = knows_unix_peers
    for key in ("interface", "v6only"):
        want = record.get(key) if knows_options else None
        if got[key] != want:
            problems.append(f"{name}: {key} {got[key]!r} != {want!r}")
    if got["processes"] != processes:
        problems.append(f"{name}: processes {got['processes']} != {processes}")
    return problems
