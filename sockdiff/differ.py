"""What changed between two snapshots: sockets new, closed and changed; interfaces and routes.

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

Only what both sides covered is compared: sockets within the common scope (the
protocols both took, matching both filters), and only the sections both took.
A filter one side was not taken with never drops a socket whose value that
side cannot know (no processes, no device): such a socket is compared with the
other side's socket in scope, so an open socket is never called closed.
Interfaces are matched by name, routes by (family, table, type, destination,
metric, dev); interface counters only when asked, and then as deltas.

In snapshots of every namespace, each record is matched within its namespace,
and namespaces pair by label (:func:`~sockdiff.model.namespace_pairings`: the
``ip netns`` name, else the container, else the inode), not by inode, which a
restarted container does not keep. A namespace on one side only is in
:attr:`Diff.namespaces`; its records are still new or closed, each.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ._perf import gc_paused
from .coverage import route_coverage
from .errors import UsageError
from .model import (
    COUNTER_NAMES,
    PROTOS,
    UNNUMBERED_TABLE,
    Endpoint,
    Interface,
    Namespace,
    Route,
    Socket,
    namespace_pairings,
    netns_of,
)
from .snapshots import Scope, Snapshot
from .ssview import is_listening

__all__ = [
    "COMPARABLE_FIELDS",
    "DEFAULT_FIELDS",
    "FAIL_ON",
    "INTERFACE_FIELDS",
    "ROUTE_FIELDS",
    "Change",
    "Diff",
    "Filters",
    "NamespaceDiff",
    "SectionDiff",
    "common_scope",
    "counter_deltas",
    "diff",
    "identity",
    "parse_fail_on",
    "parse_fields",
    "same_process_name",
]

DEFAULT_FIELDS = ("state", "processes", "inode")
# Socket fields, then ``counters``: the interfaces' traffic counters.
# ``programs``: the owners' names only (pids aside), what a role comparison
# (sockdiff.roles) compares; ``all`` leaves it out, as ``processes`` holds it.
COMPARABLE_FIELDS = (
    "state",
    "processes",
    "inode",
    "uid",
    "recv_q",
    "send_q",
    "remote",
    "counters",
    "programs",
)
FAIL_ON = ("any", "new", "closed", "changed", "listening", "interfaces", "routes")
# What makes an interface or a route changed (SPEC.md); counters only when asked.
INTERFACE_FIELDS = ("flags", "operstate", "mtu", "mac", "index", "addresses")
ROUTE_FIELDS = ("gateway", "protocol", "scope", "nexthops")


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


R = TypeVar("R", Socket, Interface, Route)


@dataclass(frozen=True, slots=True)
class Change(Generic[R]):
    """One record on both sides, and the names of the fields that changed."""

    old: R
    new: R
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SectionDiff(Generic[R]):
    """The differences in one section (interfaces or routes), each sorted."""

    added: tuple[R, ...]
    removed: tuple[R, ...]
    changed: tuple[Change[R], ...]

    @property
    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}

    def __len__(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)


@dataclass(frozen=True, slots=True)
class NamespaceDiff:
    """Namespaces on one side only (each sorted by inode), paired by label, not inode."""

    appeared: tuple[Namespace, ...]
    gone: tuple[Namespace, ...]

    def __len__(self) -> int:
        return len(self.appeared) + len(self.gone)


# Where a record lives, for matching: its namespace's pairing label (None: one namespace).
Places = dict[int, Hashable]


def _places(snapshot: Snapshot) -> Places:
    places: Places = {}
    places.update(namespace_pairings(snapshot.namespaces))
    return places


def _placed(key: Callable[[R], Hashable], places: Places | None) -> Callable[[R], Hashable]:
    """``key`` within the record's namespace, when the snapshot has several."""
    if places is None:
        return key

    def placed(record: R) -> Hashable:
        return (places.get(netns_of(record) or 0), key(record))

    return placed


def _diff_namespaces(old: Snapshot, new: Snapshot) -> NamespaceDiff | None:
    if old.namespaces is None or new.namespaces is None:
        return None
    old_places = namespace_pairings(old.namespaces)
    new_places = namespace_pairings(new.namespaces)
    old_labels = set(old_places.values())
    new_labels = set(new_places.values())
    return NamespaceDiff(
        tuple(ns for ns in new.namespaces if new_places[ns.inode] not in old_labels),
        tuple(ns for ns in old.namespaces if old_places[ns.inode] not in new_labels),
    )


@dataclass(frozen=True, slots=True)
class Diff:
    """The differences between ``old`` and ``new``, in a stable order.

    ``opened``, ``closed`` and ``changed`` are the sockets (within ``scope``, the
    scope both sides covered; None when either side took no sockets);
    ``interfaces`` and ``routes`` are None when either side did not take them.
    """

    old: Snapshot
    new: Snapshot
    opened: tuple[Socket, ...]
    closed: tuple[Socket, ...]
    changed: tuple[Change[Socket], ...]
    interfaces: SectionDiff[Interface] | None = None
    routes: SectionDiff[Route] | None = None
    scope: Scope | None = None
    persistent_only: bool = field(default=False)
    # Snapshots of every namespace: those on one side only (None: either side read one).
    namespaces: NamespaceDiff | None = None

    @property
    def summary(self) -> dict[str, int]:
        """The socket differences' counts; each section has its own ``summary``."""
        return {"new": len(self.opened), "closed": len(self.closed), "changed": len(self.changed)}

    @property
    def narrowed(self) -> bool:
        """Whether sockets were compared within less than every protocol, unfiltered."""
        return self.scope is not None and (self.scope.filter is not None or self.scope.protos != PROTOS)

    def counter(self, fail_on: Iterable[str]) -> Callable[[str, Socket | Interface | Route], bool]:
        """Whether ``fail_on`` counts one difference: ``counts(kind, record)``.

        ``kind`` is new, closed or changed for a socket (``listening`` counts new
        sockets that wait for peers, :func:`~sockdiff.ssview.is_listening`), and
        the section's name, interfaces or routes, for any of their differences.
        """
        kinds = frozenset(fail_on)

        def counts(kind: str, record: Socket | Interface | Route) -> bool:
            if "any" in kinds or kind in kinds:
                return True
            return (
                kind == "new" and "listening" in kinds and isinstance(record, Socket) and is_listening(record)
            )

        return counts

    def counted(self, fail_on: Iterable[str]) -> int:
        """How many differences ``fail_on`` counts (see :data:`FAIL_ON`)."""
        counts = self.counter(fail_on)
        total = (
            sum(counts("new", s) for s in self.opened)
            + sum(counts("closed", s) for s in self.closed)
            + sum(counts("changed", c.new) for c in self.changed)
        )
        sections: tuple[tuple[str, SectionDiff[Interface] | SectionDiff[Route] | None], ...] = (
            ("interfaces", self.interfaces),
            ("routes", self.routes),
        )
        for kind, section in sections:
            if section is not None:
                total += sum(counts(kind, r) for r in (*section.added, *section.removed))
                total += sum(counts(kind, c.new) for c in section.changed)
        return total


def parse_fields(text: str | None, what: str = "fields") -> tuple[str, ...]:
    """``fields`` as text: a comma list replacing the default, ``+NAME`` adding to it, or ``all``.

    An unknown name raises :class:`~sockdiff.errors.UsageError` naming ``what``
    (the command line passes its option's name).
    """
    if not text:
        return DEFAULT_FIELDS
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if item == "all":
            chosen.extend(name for name in COMPARABLE_FIELDS if name != "programs")
            continue
        name = item.removeprefix("+")
        if name not in COMPARABLE_FIELDS:
            choices = ", ".join(COMPARABLE_FIELDS)
            raise UsageError(f"unknown field {name!r} for {what} (choose from {choices})")
        if item.startswith("+"):
            chosen.extend(DEFAULT_FIELDS)
        chosen.append(name)
    return tuple(dict.fromkeys(chosen))


def as_fields(value: str | Sequence[str], what: str = "fields") -> tuple[str, ...]:
    """What the library takes for ``fields``: a comma list as :func:`parse_fields` takes it,
    or a list of field names; anything else, or a name that is no field, raises
    :class:`~sockdiff.errors.UsageError` naming ``what``.

    >>> as_fields("state,uid"), as_fields(["remote"])
    (('state', 'uid'), ('remote',))
    """
    if isinstance(value, str):
        return parse_fields(value, what)
    if isinstance(value, bytes) or not isinstance(value, Sequence):
        kind = type(value).__name__
        raise UsageError(f"{what}: expected a comma list or a list of field names, not {kind}")
    for name in value:
        if not isinstance(name, str):
            raise UsageError(f"{what}: expected field names, not {type(name).__name__}")
        if name not in COMPARABLE_FIELDS:
            choices = ", ".join(COMPARABLE_FIELDS)
            raise UsageError(f"unknown field {name!r} for {what} (choose from {choices})")
    return tuple(dict.fromkeys(value))


def parse_fail_on(text: str, what: str = "fail_on") -> tuple[str, ...]:
    """``fail_on`` as text: a comma list of any, new, closed, changed, listening, interfaces, routes.

    An unknown kind raises :class:`~sockdiff.errors.UsageError` naming ``what``
    (the command line passes its option's name).

    >>> parse_fail_on("new, routes"), parse_fail_on("")
    (('new', 'routes'), ('any',))
    """
    kinds = tuple(item.strip() for item in text.split(",") if item.strip())
    for kind in kinds:
        if kind not in FAIL_ON:
            raise UsageError(f"unknown {what} kind {kind!r} (choose from {', '.join(FAIL_ON)})")
    return kinds or ("any",)


def _owners(sock: Socket) -> frozenset[tuple[int, str]]:
    return frozenset((p.pid, p.name) for p in sock.processes)


def _programs(sock: Socket) -> frozenset[str]:
    return frozenset(p.name for p in sock.processes)


# How long a process name can be when it may have been cut: the kernel's comm
# (TASK_COMM_LEN 16, with its NUL), and net-tools netstat's "PID/name" column
# (PROGNAME_WIDTH 20, with its NUL).
COMM_LENGTH = 15
NETSTAT_PROGRAM_LENGTH = 19


def same_process_name(pid: int, one: str, other: str) -> bool:
    """Whether two names of process ``pid`` name it alike, one perhaps cut short.

    A name as long as comm, or as long as netstat's column leaves it, may have
    been cut: it matches any name it begins.

    >>> same_process_name(1, "systemd-resolve", "systemd-resolved"), same_process_name(1, "ssh", "sshd")
    (True, False)
    """
    if one == other:
        return True
    short, long = sorted((one, other), key=len)
    return long.startswith(short) and (
        len(short) == COMM_LENGTH or len(str(pid)) + 1 + len(short) == NETSTAT_PROGRAM_LENGTH
    )


def _same_owners(old: Socket, new: Socket) -> bool:
    """The same set of owning (pid, name), a name that may have been cut matching its whole."""
    olds, news = _owners(old), _owners(new)
    if olds == news:
        return True
    if len(olds) != len(news):
        return False
    left = sorted(news - olds)
    for pid, name in sorted(olds - news):
        match = next(
            (i for i, (p, n) in enumerate(left) if p == pid and same_process_name(pid, name, n)), None
        )
        if match is None:
            return False
        left.pop(match)
    return True


# Sources that name one owner of a socket several processes hold: netstat -p
# shows the first process it finds holding the inode.
ONE_OWNER_SHOWN = frozenset({"netstat-text"})


def _one_owner_shown(changed: list[Change[Socket]], old_shows_one: bool) -> list[Change[Socket]]:
    """``changed`` less the owners' changes where the one owner shown is among the other side's."""
    kept = []
    for change in changed:
        shown, whole = (change.old, change.new) if old_shows_one else (change.new, change.old)
        names = change.fields
        if "processes" in names and len(shown.processes) == 1:
            one = shown.processes[0]
            if any(p.pid == one.pid and same_process_name(p.pid, p.name, one.name) for p in whole.processes):
                names = tuple(name for name in names if name != "processes")
        if names:
            kept.append(Change(change.old, change.new, names))
    return kept


def _changed_fields(old: Socket, new: Socket, fields: Sequence[str]) -> tuple[str, ...]:
    found = []
    for name in fields:
        if name == "processes":
            if old.processes and new.processes and not _same_owners(old, new):
                found.append(name)
            continue
        if name == "programs":
            if old.processes and new.processes and _programs(old) != _programs(new):
                found.append(name)
            continue
        # inode 0 (TIME_WAIT, request sockets) is no inode at all.
        if name == "inode" and (old.inode == 0 or new.inode == 0):
            continue
        found += _record_fields(old, new, (name,))
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
    closed: list[Socket],
    opened: list[Socket],
    old_places: Places | None = None,
    new_places: Places | None = None,
) -> tuple[Pairs, list[Socket], list[Socket]]:
    """Pair what is left where one side knows the device and the other has None,
    each within its namespace (``*_places``, as :func:`_diff_sockets` takes them).

    See the module's docstring: None is "not bound, or cannot know", so it
    does not stop a pairing that the rest of the identity makes.
    """
    groups: dict[Hashable, tuple[list[Socket], list[Socket]]] = {}
    for side, socks, places in ((0, closed, old_places), (1, opened, new_places)):
        for sock in socks:
            if sock.proto != "unix":
                place = None if places is None else places.get(netns_of(sock) or 0)
                groups.setdefault((place, _UNBOUND_IDENTITY(sock)), ([], []))[side].append(sock)
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


def common_scope(old: Scope, new: Scope) -> Scope:
    """What both scopes cover: the protocols both took, matching both filters.

    >>> common_scope(Scope(("tcp", "udp")), Scope(("tcp", "unix"), "sport = :80"))
    Scope(protos=('tcp',), filter='sport = :80')
    >>> common_scope(Scope(("tcp",), "sport = :80"), Scope(("tcp",), "dport = :22")).filter
    '(sport = :80) and (dport = :22)'
    """
    protos = tuple(p for p in old.protos if p in new.protos)
    filters = [text for text in dict.fromkeys((old.filter, new.filter)) if text is not None]
    if len(filters) > 1:
        return Scope(protos, " and ".join(f"({text})" for text in filters))
    return Scope(protos, filters[0] if filters else None)


def _within(snapshot: Snapshot, scope: Scope, filters: Sequence[str]) -> tuple[list[Socket], list[Socket]]:
    """The sockets of ``snapshot`` that ``scope`` covers, and those it may cover.

    ``filters`` are the texts the scope's filter joins (each side's own). A
    socket is in when it is of the scope's protocols and every filter holds for
    it; it may be in when one of them reads a value the socket leaves unknown
    (no processes, no device, no uid: :func:`~sockdiff.filter.compile_verdict`).
    The snapshot's own filter is judged again: a snapshot keeps the sockets its
    filter could not judge (see :func:`~sockdiff.acquire.take`). Null never narrows.
    """
    sockets = snapshot.sockets or ()
    protos = frozenset(scope.protos)
    if not filters:
        if snapshot.header.scope == scope:
            return list(sockets), []
        return [s for s in sockets if s.proto in protos], []
    from .filter import compile_verdict

    # Each compiled alone: joined as text, two filters nested as deep as a filter
    # may be would be one level too deep.
    verdicts = [compile_verdict(text, snapshot.namespaces) for text in dict.fromkeys(filters)]
    inside: list[Socket] = []
    unknown: list[Socket] = []
    for sock in sockets:
        if sock.proto in protos:
            found = [verdict(sock) for verdict in verdicts]
            if False in found:
                continue
            if None in found:
                unknown.append(sock)
            else:
                inside.append(sock)
    return inside, unknown


def _loose_identity(sock: Socket) -> Hashable:
    """An identity that a socket whose device is unknown shares with its bound self."""
    return _UNIX_IDENTITY(sock) if sock.proto == "unix" else _UNBOUND_IDENTITY(sock)


def _facing(
    unknown: list[Socket], inside: list[Socket], places: tuple[Places, Places] | None = None
) -> list[Socket]:
    """The sockets of ``unknown`` (in scope or not, their side cannot tell) that are the
    other side's sockets that are or may be in scope: compared with them, so an open
    socket is never called closed. The rest stay out, for nothing says they are in scope.
    ``places``: each side's namespaces (``unknown``'s, ``inside``'s), where a socket
    faces only one of its own namespace."""
    if not unknown:
        return []
    if places is None:
        keys = {_loose_identity(s) for s in inside}
        return [s for s in unknown if _loose_identity(s) in keys]
    mine, theirs = places
    placed = {(theirs.get(netns_of(s) or 0), _loose_identity(s)) for s in inside}
    return [s for s in unknown if (mine.get(netns_of(s) or 0), _loose_identity(s)) in placed]


# What ``ignore`` and ``only`` take: an expression, a predicate, or a list of them.
Filters = str | Callable[[Socket], bool] | Sequence[str | Callable[[Socket], bool]] | None


def diff(
    old: Snapshot,
    new: Snapshot,
    fields: str | Sequence[str] = DEFAULT_FIELDS,
    ignore: Filters = None,
    only: Filters = None,
) -> Diff:
    """What changed from ``old`` to ``new``, within what both sides covered.

    Sockets are compared within :func:`common_scope` of the two headers; a
    section either side did not take is not compared (None in the result).
    ``ignore`` drops every socket difference involving a socket it matches
    (either side of a change); ``only`` keeps just those involving one it
    matches. ``fields`` names the socket fields compared, and ``counters`` the
    interfaces' counters (a list of names, or a comma list as :func:`parse_fields`
    takes); an unknown name raises :class:`~sockdiff.errors.UsageError`.
    ``ignore`` and ``only`` each take a filter expression
    (:mod:`sockdiff.filter`'s language), a predicate such as
    :func:`~sockdiff.filter.compile_filter` gives, or a list of either (any one
    holding); a malformed expression raises :class:`~sockdiff.errors.BadFilter`.
    Between snapshots of every namespace, an expression's ``netns LABEL`` names
    a namespace of either side in any form the filter takes (a name, container
    name or id prefix, ``net:[INODE]``); one that names none is a ``BadFilter``.
    """
    from .filter import as_predicate

    for side, what in ((old, "old"), (new, "new")):
        if not isinstance(side, Snapshot):
            raise UsageError(f"{what}: expected a Snapshot, not {type(side).__name__}")
    fields = as_fields(fields)
    namespaced = old.namespaces is not None or new.namespaces is not None
    # netns LABEL in an expression names a namespace of either side.
    sides = (old.namespaces or (), new.namespaces or ()) if namespaced else None
    ignore = as_predicate(ignore, "ignore", sides)
    only = as_predicate(only, "only", sides)
    old_places = _places(old) if namespaced else None
    new_places = _places(new) if namespaced else None
    scope = None
    old_sockets: tuple[Socket, ...] = ()
    new_sockets: tuple[Socket, ...] = ()
    if old.sockets is not None and new.sockets is not None:
        scope = common_scope(old.header.scope, new.header.scope)
        filters = [text for text in (old.header.scope.filter, new.header.scope.filter) if text is not None]
        old_in, old_unknown = _within(old, scope, filters)
        new_in, new_unknown = _within(new, scope, filters)
        placed = None if old_places is None or new_places is None else (old_places, new_places)
        old_sockets = (*old_in, *_facing(old_unknown, [*new_in, *new_unknown], placed))
        back = None if placed is None else (placed[1], placed[0])
        new_sockets = (*new_in, *_facing(new_unknown, [*old_in, *old_unknown], back))
    socket_fields = tuple(name for name in fields if name != "counters")
    opened, closed, changed = _diff_sockets(old_sockets, new_sockets, socket_fields, old_places, new_places)
    if old.header.backend in ONE_OWNER_SHOWN or new.header.backend in ONE_OWNER_SHOWN:
        changed = _one_owner_shown(changed, old.header.backend in ONE_OWNER_SHOWN)

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
    interface_fields = INTERFACE_FIELDS + (("counters",) if "counters" in fields else ())
    return Diff(
        old,
        new,
        tuple(opened),
        tuple(closed),
        tuple(changed),
        interfaces=_diff_section(
            old.interfaces,
            new.interfaces,
            (_placed(_INTERFACE_KEY, old_places), _placed(_INTERFACE_KEY, new_places)),
            interface_fields,
        ),
        routes=_diff_section(
            *_common_routes(old, new),
            (_placed(_ROUTE_KEY, old_places), _placed(_ROUTE_KEY, new_places)),
            ROUTE_FIELDS,
            None if namespaced else _pair_untyped_routes,
        ),
        scope=scope,
        namespaces=_diff_namespaces(old, new),
    )


def common_route_tables(old: Snapshot, new: Snapshot) -> dict[str, frozenset[int] | None]:
    """Per family, the routing tables both sides hold and number alike (None: every table).

    /proc shows IPv4's main table only, and IPv6's tables other than main and
    local without their numbers (table 0): those compare only with another
    /proc read's, never with tables a side numbers.
    """
    sides = [route_coverage(side.header.sources) for side in (old, new)]
    common: dict[str, frozenset[int] | None] = {}
    for family in ("inet", "inet6"):
        known = [tables for side in sides if (tables := side.tables(family)) is not None]
        if not known:
            common[family] = None
            continue
        seen = frozenset.intersection(*known)
        if len(known) < len(sides):
            seen -= {UNNUMBERED_TABLE}  # the other side numbers them: no pairing
        common[family] = seen
    return common


def _common_routes(old: Snapshot, new: Snapshot) -> tuple[tuple[Route, ...] | None, tuple[Route, ...] | None]:
    """Both sides' routes, in the tables both could see (:func:`common_route_tables`)."""
    if old.routes is None or new.routes is None:
        return old.routes, new.routes
    common = common_route_tables(old, new)
    if all(tables is None for tables in common.values()):
        return old.routes, new.routes

    def seen(route: Route) -> bool:
        tables = common[route.family]
        return tables is None or route.table in tables

    return tuple(filter(seen, old.routes)), tuple(filter(seen, new.routes))


def _diff_sockets(
    old_sockets: Sequence[Socket],
    new_sockets: Sequence[Socket],
    fields: Sequence[str],
    old_places: Places | None = None,
    new_places: Places | None = None,
) -> tuple[list[Socket], list[Socket], list[Change[Socket]]]:
    """Opened, closed and changed sockets, unsorted; with ``*_places``, each within its namespace.

    A record object on both sides (a file read sharing the other's unchanged
    records: :func:`~sockdiff.snapshots.loads`) is unchanged, and is left out
    before any pairing, once for each time it stands on both sides. So where
    several sockets share an identity (inode-0 TIME-WAIT sockets), those whose
    records stand on both sides count as unchanged, even where pairing them in
    order would have paired them crosswise and called both changed.
    """
    with gc_paused():
        old_sockets, new_sockets = _unshared(old_sockets, new_sockets)
        old_keys = _identities(old_sockets)
        new_keys = _identities(new_sockets)
        if old_places is not None and new_places is not None:
            old_keys = [
                (old_places.get(netns_of(s) or 0), k) for s, k in zip(old_sockets, old_keys, strict=True)
            ]
            new_keys = [
                (new_places.get(netns_of(s) or 0), k) for s, k in zip(new_sockets, new_keys, strict=True)
            ]
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
            found, closed, opened = _pair_unknown_devices(closed, opened, old_places, new_places)
            pairs += found
        changed: list[Change[Socket]] = []
        for before, after in pairs:
            if before == after:
                continue
            names = _changed_fields(before, after, fields)
            if names:
                changed.append(Change(before, after, names))
    return opened, closed, changed


def _unshared(olds: Sequence[Socket], news: Sequence[Socket]) -> tuple[Sequence[Socket], Sequence[Socket]]:
    """Both sides without the record objects they share (one for one: a record twice
    on one side and once on the other is left once on the first)."""
    old_ids = set(map(id, olds))
    new_ids = set(map(id, news))
    common = old_ids & new_ids
    if not common:
        return olds, news
    if len(old_ids) == len(olds) and len(new_ids) == len(news):  # each record once a side
        return [s for s in olds if id(s) not in common], [s for s in news if id(s) not in common]
    # Some record stands more than once on a side: as many times as it stands on both.
    shared = Counter(id(s) for s in olds if id(s) in common) & Counter(id(s) for s in news if id(s) in common)
    return _dropped(olds, shared.copy()), _dropped(news, shared)


def _dropped(socks: Sequence[Socket], counts: Counter[int]) -> list[Socket]:
    """``socks`` without the first ``counts[id(sock)]`` of each (``counts`` is used up)."""
    rest = []
    for sock in socks:
        if counts[id(sock)] > 0:
            counts[id(sock)] -= 1
        else:
            rest.append(sock)
    return rest


_INTERFACE_KEY: Callable[[Interface], Hashable] = operator.attrgetter("name")
_ROUTE_KEY: Callable[[Route], Hashable] = operator.attrgetter(
    "family", "table", "type", "destination", "metric", "dev"
)


def counter_deltas(old: Interface, new: Interface) -> dict[str, int]:
    """How much each counter that moved moved from ``old`` to ``new`` ({} when either is unknown).

    A counter that went down (the interface was recreated) shows as a negative delta.
    """
    if old.counters is None or new.counters is None:
        return {}
    deltas = {name: getattr(new.counters, name) - getattr(old.counters, name) for name in COUNTER_NAMES}
    return {name: delta for name, delta in deltas.items() if delta}


def _record_fields(
    old: Socket | Interface | Route, new: Socket | Interface | Route, fields: Sequence[str]
) -> tuple[str, ...]:
    """The fields that differ where both sides know them (None is unknown)."""
    found = []
    for name in fields:
        before, after = getattr(old, name), getattr(new, name)
        if before != after and before is not None and after is not None:
            found.append(name)
    return tuple(found)


def _match(
    olds: Sequence[R],
    news: Sequence[R],
    key: Callable[[R], Hashable],
    new_key: Callable[[R], Hashable] | None = None,
) -> tuple[list[tuple[R, R]], list[R], list[R]]:
    """Pairs of records with one key (in order, where several share it), and the rest of each side.

    ``new_key`` keys the new side where it differs (records of namespaces paired by label).
    """
    old_groups: dict[Hashable, list[R]] = {}
    for record in olds:
        old_groups.setdefault(key(record), []).append(record)
    pairs: list[tuple[R, R]] = []
    came: list[R] = []
    keyed = key if new_key is None else new_key
    for record in news:
        group = old_groups.get(keyed(record))
        if group:
            pairs.append((group.pop(0), record))
        else:
            came.append(record)
    gone = [record for group in old_groups.values() for record in group]
    return pairs, gone, came


Rematch = Callable[[list[R], list[R]], tuple[list[tuple[R, R]], list[R], list[R]]]


def _diff_section(
    olds: tuple[R, ...] | None,
    news: tuple[R, ...] | None,
    keys: tuple[Callable[[R], Hashable], Callable[[R], Hashable]],
    fields: Sequence[str],
    rematch: Rematch[R] | None = None,
) -> SectionDiff[R] | None:
    """Added, removed and changed records of one section; None when a side did not take it.

    Records sharing a key (which a backend should not produce) pair in order;
    ``rematch`` may pair some of what is left by a looser rule.
    """
    if olds is None or news is None:
        return None
    pairs, removed, added = _match(olds, news, *keys)
    if rematch is not None and removed and added:
        more, removed, added = rematch(removed, added)
        pairs += more
    changed: list[Change[R]] = []
    for before, after in pairs:
        if before != after:
            names = _record_fields(before, after, fields)
            if names:
                changed.append(Change(before, after, names))
    order = _section_sort_key
    return SectionDiff(
        tuple(sorted(added, key=order)),
        tuple(sorted(removed, key=order)),
        tuple(sorted(changed, key=lambda c: order(c.new))),
    )


_UNTYPED_ROUTE_KEY: Callable[[Route], Hashable] = operator.attrgetter(
    "family", "table", "destination", "metric", "dev"
)


def _pair_untyped_routes(
    gone: list[Route], came: list[Route]
) -> tuple[list[tuple[Route, Route]], list[Route], list[Route]]:
    """A route whose type one side cannot know (None: /proc's IPv6 blackhole and the like)
    pairs with the other side's route of the same key but for the type."""
    untyped_old = [r for r in gone if r.type is None]
    pairs, untyped_old, came = _match(untyped_old, came, _UNTYPED_ROUTE_KEY)
    gone = [r for r in gone if r.type is not None] + untyped_old
    untyped_new = [r for r in came if r.type is None]
    more, gone, untyped_new = _match(gone, untyped_new, _UNTYPED_ROUTE_KEY)
    came = [r for r in came if r.type is not None] + untyped_new
    return pairs + more, gone, came


def _section_sort_key(record: Socket | Interface | Route) -> tuple[Any, ...]:
    if isinstance(record, Interface):
        return (record.name,)
    if isinstance(record, Route):
        return (
            record.family,
            record.table,
            record.destination,
            record.metric,
            record.type or "",
            record.dev or "",
        )
    return _sort_key(record)  # sections hold no sockets; this keeps the key total


def persistent(first: Diff, second: Diff) -> Diff:
    """The differences of ``second`` that ``first`` saw too (live against live)."""

    def placed(sock: Socket) -> Hashable:
        return (netns_of(sock), identity(sock))

    opened = {placed(s) for s in first.opened}
    closed = {placed(s) for s in first.closed}
    changed = {(placed(c.new), c.fields) for c in first.changed}
    return Diff(
        second.old,
        second.new,
        tuple(s for s in second.opened if placed(s) in opened),
        tuple(s for s in second.closed if placed(s) in closed),
        tuple(c for c in second.changed if (placed(c.new), c.fields) in changed),
        interfaces=_both_times(first.interfaces, second.interfaces, _in_namespace(_INTERFACE_KEY)),
        routes=_both_times(first.routes, second.routes, _in_namespace(_ROUTE_KEY)),
        scope=second.scope,
        persistent_only=True,
        namespaces=second.namespaces,
    )


def _in_namespace(key: Callable[[R], Hashable]) -> Callable[[R], Hashable]:
    def keyed(record: R) -> Hashable:
        return (netns_of(record), key(record))

    return keyed


def _both_times(
    first: SectionDiff[R] | None, second: SectionDiff[R] | None, key: Callable[[R], Hashable]
) -> SectionDiff[R] | None:
    if first is None or second is None:
        return second
    added = {key(r) for r in first.added}
    removed = {key(r) for r in first.removed}
    changed = {(key(c.new), c.fields) for c in first.changed}
    return SectionDiff(
        tuple(r for r in second.added if key(r) in added),
        tuple(r for r in second.removed if key(r) in removed),
        tuple(c for c in second.changed if (key(c.new), c.fields) in changed),
    )
