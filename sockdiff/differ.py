"""What changed between two snapshots: new, closed and changed sockets.

Sockets are matched by identity (SPEC.md): inet by protocol, family, both
endpoints and the device the socket is bound to; UNIX by type, name and inode.
Several sockets with one identity (SO_REUSEPORT listeners) pair by inode where
both have a non-zero one, then one to one. A value one side cannot know (None,
or no processes) is never a change.

The device is unknown (None) to a backend that cannot see it (/proc), and None
is also what an unbound socket has. So a socket left over on one side with no
device pairs with one left over on the other that has a device and is
otherwise the same: ``0.0.0.0:7401`` read from /proc is ``0.0.0.0%lo:7401``
read through netlink. Two sockets bound to different devices never pair.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._perf import gc_paused
from .errors import UsageError
from .model import Endpoint, Socket, is_listening
from .snapshots import Snapshot

__all__ = [
    "COMPARABLE_FIELDS",
    "DEFAULT_FIELDS",
    "FAIL_ON",
    "Change",
    "Diff",
    "diff",
    "identity",
    "parse_fail_on",
    "parse_fields",
]

DEFAULT_FIELDS = ("state", "processes", "inode")
COMPARABLE_FIELDS = ("state", "processes", "inode", "uid", "recv_q", "send_q", "remote")
FAIL_ON = ("any", "new", "closed", "changed", "listening")


# Identities as C-level getters over the record's fields: inet
# (proto, family, local, remote, interface); UNIX (proto, type, local, inode).
_INET_IDENTITY: Callable[[Socket], Hashable] = operator.attrgetter(
    "proto", "family", "local", "remote", "interface"
)
_UNBOUND_IDENTITY: Callable[[Socket], Hashable] = operator.attrgetter("proto", "family", "local", "remote")
_UNIX_IDENTITY: Callable[[Socket], Hashable] = operator.attrgetter("proto", "type", "local", "inode")


def identity(sock: Socket) -> Hashable:
    """The key two snapshots match a socket by."""
    return _UNIX_IDENTITY(sock) if sock.proto == "unix" else _INET_IDENTITY(sock)


def _identities(sockets: Sequence[Socket]) -> list[Hashable]:
    inet, unix = _INET_IDENTITY, _UNIX_IDENTITY
    return [unix(s) if s.proto == "unix" else inet(s) for s in sockets]


@dataclass(frozen=True, slots=True)
class Change:
    old: Socket
    new: Socket
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diff:
    """The differences between ``old`` and ``new``, in a stable order."""

    old: Snapshot
    new: Snapshot
    opened: tuple[Socket, ...]
    closed: tuple[Socket, ...]
    changed: tuple[Change, ...]
    persistent_only: bool = field(default=False)

    @property
    def summary(self) -> dict[str, int]:
        return {"new": len(self.opened), "closed": len(self.closed), "changed": len(self.changed)}

    def counter(self, fail_on: Iterable[str]) -> Callable[[str, Socket], bool]:
        """Whether ``--fail-on`` counts one difference: ``counts(kind, socket)``.

        ``kind`` is new, closed or changed; ``listening`` counts new sockets that
        wait for peers (:func:`~sockdiff.model.is_listening`).
        """
        kinds = frozenset(fail_on)

        def counts(kind: str, sock: Socket) -> bool:
            if "any" in kinds or kind in kinds:
                return True
            return kind == "new" and "listening" in kinds and is_listening(sock)

        return counts

    def counted(self, fail_on: Iterable[str]) -> int:
        """How many differences ``--fail-on`` counts (any, new, closed, changed, listening)."""
        counts = self.counter(fail_on)
        return (
            sum(counts("new", s) for s in self.opened)
            + sum(counts("closed", s) for s in self.closed)
            + sum(counts("changed", c.new) for c in self.changed)
        )


def parse_fields(text: str | None) -> tuple[str, ...]:
    """``--fields``: a comma list replacing the default, ``+NAME`` adding to it, or ``all``."""
    if not text:
        return DEFAULT_FIELDS
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if item == "all":
            chosen.extend(COMPARABLE_FIELDS)
            continue
        name = item.removeprefix("+")
        if name not in COMPARABLE_FIELDS:
            choices = ", ".join(COMPARABLE_FIELDS)
            raise UsageError(f"unknown field {name!r} for --fields (choose from {choices})")
        if item.startswith("+"):
            chosen.extend(DEFAULT_FIELDS)
        chosen.append(name)
    return tuple(dict.fromkeys(chosen))


def parse_fail_on(text: str) -> tuple[str, ...]:
    """``--fail-on``: a comma list of any, new, closed, changed, listening."""
    kinds = tuple(item.strip() for item in text.split(",") if item.strip())
    for kind in kinds:
        if kind not in FAIL_ON:
            raise UsageError(f"unknown --fail-on kind {kind!r} (choose from {', '.join(FAIL_ON)})")
    return kinds or ("any",)


def _owners(sock: Socket) -> frozenset[tuple[int, str]]:
    return frozenset((p.pid, p.name) for p in sock.processes)


def _changed_fields(old: Socket, new: Socket, fields: Sequence[str]) -> tuple[str, ...]:
    found = []
    for name in fields:
        if name == "processes":
            if old.processes and new.processes and _owners(old) != _owners(new):
                found.append(name)
            continue
        before = getattr(old, name)
        after = getattr(new, name)
        if before != after and before is not None and after is not None:
            # inode 0 (TIME_WAIT, request sockets) is no inode at all.
            if name == "inode" and (before == 0 or after == 0):
                continue
            found.append(name)
    return tuple(found)


Pairs = list[tuple[Socket, Socket]]


def _pair(olds: list[Socket], news: list[Socket]) -> tuple[Pairs, list[Socket], list[Socket]]:
    """Pair sockets sharing one identity: by equal non-zero inode, then in order."""
    by_inode = {s.inode: s for s in news if s.inode}
    pairs = []
    left_old = []
    taken: set[int] = set()
    for sock in olds:
        match = by_inode.get(sock.inode) if sock.inode else None
        if match is not None and id(match) not in taken:
            pairs.append((sock, match))
            taken.add(id(match))
        else:
            left_old.append(sock)
    left_new = [s for s in news if id(s) not in taken]
    count = min(len(left_old), len(left_new))
    pairs += zip(left_old[:count], left_new[:count], strict=True)
    return pairs, left_old[count:], left_new[count:]


def _pair_unknown_devices(
    closed: list[Socket], opened: list[Socket]
) -> tuple[Pairs, list[Socket], list[Socket]]:
    """Pair what is left where one side knows the device and the other has None.

    See the module's docstring: None is "not bound, or cannot know", so it
    does not stop a pairing that the rest of the identity makes.
    """
    groups: dict[Hashable, tuple[list[Socket], list[Socket]]] = {}
    for side, socks in enumerate((closed, opened)):
        for sock in socks:
            if sock.proto != "unix":
                groups.setdefault(_UNBOUND_IDENTITY(sock), ([], []))[side].append(sock)
    pairs: Pairs = []
    paired: set[int] = set()
    for olds, news in groups.values():
        if not olds or not news:
            continue
        for old_side, new_side in (
            ([s for s in olds if s.interface is None], [s for s in news if s.interface is not None]),
            ([s for s in olds if s.interface is not None], [s for s in news if s.interface is None]),
        ):
            found, _, _ = _pair(old_side, new_side)
            pairs += found
            paired.update(id(s) for pair in found for s in pair)
    if not pairs:
        return pairs, closed, opened
    return pairs, [s for s in closed if id(s) not in paired], [s for s in opened if id(s) not in paired]


def _repeated(keys: list[Hashable]) -> set[Hashable]:
    return {key for key, count in Counter(keys).items() if count > 1}


def _groups(
    keys: list[Hashable], sockets: Sequence[Socket], wanted: set[Hashable]
) -> dict[Hashable, list[Socket]]:
    groups: dict[Hashable, list[Socket]] = {}
    for key, sock in zip(keys, sockets, strict=True):
        if key in wanted:
            groups.setdefault(key, []).append(sock)
    return groups


def _sort_key(sock: Socket) -> tuple[Any, ...]:
    return (
        sock.proto,
        sock.family,
        sock.type,
        _endpoint_key(sock.local),
        _endpoint_key(sock.remote),
        sock.interface or "",
        sock.inode,
    )


def _endpoint_key(end: Endpoint | None) -> tuple[str, int]:
    """Orders endpoints by address then port (numerically), UNIX ones by path then peer."""
    if end is None:
        return ("", -1)
    if isinstance(end.port, int):
        return (str(end.address), end.port)
    return (
        end.path if isinstance(end.path, str) else "",
        end.peer_inode if isinstance(end.peer_inode, int) else -1,
    )


def diff(
    old: Snapshot,
    new: Snapshot,
    fields: Sequence[str] = DEFAULT_FIELDS,
    ignore: Callable[[Socket], bool] | None = None,
    only: Callable[[Socket], bool] | None = None,
) -> Diff:
    """The new, closed and changed sockets from ``old`` to ``new``.

    ``ignore`` drops every difference involving a socket it matches (either side
    of a change); ``only`` keeps just the differences involving one it matches.
    """
    # A section one side did not take is never compared.
    both = old.sockets is not None and new.sockets is not None
    old_sockets = old.sockets if both and old.sockets is not None else ()
    new_sockets = new.sockets if both and new.sockets is not None else ()
    with gc_paused():
        old_keys = _identities(old_sockets)
        new_keys = _identities(new_sockets)
        old_map = dict(zip(old_keys, old_sockets, strict=True))
        new_map = dict(zip(new_keys, new_sockets, strict=True))
        pairs: Pairs = []
        opened: list[Socket] = []
        closed: list[Socket] = []
        if len(old_map) < len(old_keys) or len(new_map) < len(new_keys):
            # Several sockets share an identity (SO_REUSEPORT listeners): pair
            # those groups apart, and leave the one-to-one rest to the fast path.
            shared = _repeated(old_keys) | _repeated(new_keys)
            old_groups = _groups(old_keys, old_sockets, shared)
            new_groups = _groups(new_keys, new_sockets, shared)
            for key in shared:
                found, gone, came = _pair(old_groups.get(key, []), new_groups.get(key, []))
                pairs += found
                closed += gone
                opened += came
                old_map.pop(key, None)
                new_map.pop(key, None)
        # One pass, one hash of each key: what is left of old_map has closed.
        take = old_map.pop
        add_opened = opened.append
        add_pair = pairs.append
        for key, sock in new_map.items():
            before = take(key, None)
            if before is None:
                add_opened(sock)
            elif before != sock:
                add_pair((before, sock))
        closed += old_map.values()
        if closed and opened:
            found, closed, opened = _pair_unknown_devices(closed, opened)
            pairs += found
        changed: list[Change] = []
        for before, after in pairs:
            if before == after:
                continue
            names = _changed_fields(before, after, fields)
            if names:
                changed.append(Change(before, after, names))

    def wanted(*socks: Socket) -> bool:
        if ignore is not None and any(ignore(s) for s in socks):
            return False
        return only is None or any(only(s) for s in socks)

    if ignore is not None or only is not None:
        opened = [s for s in opened if wanted(s)]
        closed = [s for s in closed if wanted(s)]
        changed = [c for c in changed if wanted(c.old, c.new)]
    opened.sort(key=_sort_key)
    closed.sort(key=_sort_key)
    changed.sort(key=lambda c: _sort_key(c.new))
    return Diff(old, new, tuple(opened), tuple(closed), tuple(changed))


def persistent(first: Diff, second: Diff) -> Diff:
    """The differences of ``second`` that ``first`` saw too (live against live)."""
    opened = {identity(s) for s in first.opened}
    closed = {identity(s) for s in first.closed}
    changed = {(identity(c.new), c.fields) for c in first.changed}
    return Diff(
        second.old,
        second.new,
        tuple(s for s in second.opened if identity(s) in opened),
        tuple(s for s in second.closed if identity(s) in closed),
        tuple(c for c in second.changed if (identity(c.new), c.fields) in changed),
        persistent_only=True,
    )
