"""What changed between two snapshots: sockets new, closed and changed; interfaces and routes.

Sockets are matched by identity (SPEC.md): inet by protocol, family, both
endpoints and the device the socket is bound to; UNIX by type, name and inode.
Several sockets with one identity (SO_REUSEPORT listeners, inode-0 TIME-WAIT
sockets) pair by value alone: those equal in every field first (unchanged), then
by inode where both have a non-zero one, then one to one in an order of their
values, so neither the order a snapshot lists them in nor how a file is written
changes the result. A value one side cannot know (None, or no processes) is
never a change.

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
metric, dev), a type or metric one side cannot know (None) matching any;
interface counters only when asked, and then as deltas. A saved netstat -i
shows of the flags only its letters: against one, flags compare by those.

In snapshots of every namespace, each record is matched within its namespace,
and namespaces pair by label (:func:`~sockdiff.model.namespace_pairings`: the
``ip netns`` name, else the container, else the inode), not by inode, which a
restarted container does not keep. A namespace on one side only is in
:attr:`Diff.namespaces`; its records are still new or closed, each.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from ._perf import gc_paused, in_step
from .coverage import NETSTAT_INTERFACES, NETSTAT_UP_INTERFACES, route_coverage
from .errors import UsageError
from .model import (
    COUNTER_NAMES,
    PROTOS,
    UNNUMBERED_TABLE,
    Endpoint,
    Interface,
    Namespace,
    Process,
    Route,
    Socket,
    gateway_known,
    namespace_pairings,
    netns_of,
    netstat_flag_letters,
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
    "netstat_name_alike",
    "netstat_path",
    "netstat_program",
    "parse_fail_on",
    "parse_fields",
    "renamed_links",
    "same_process_name",
    "split_changes",
    "ss_name_alike",
    "taken_again",
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
    ``role``: a role comparison (:mod:`sockdiff.roles`): the sockets are the sides'
    role views (listeners only), interfaces and routes not compared, while ``old``
    and ``new`` are the snapshots whole.
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
    role: bool = False

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


def parse_fail_on(text: str, what: str = "fail_on", choices: Sequence[str] = FAIL_ON) -> tuple[str, ...]:
    """``fail_on`` as text: a comma list of any, new, closed, changed, listening, interfaces, routes
    (or of ``choices``, where fewer make sense: what ``run`` and the plugin may count).

    An unknown kind, or none at all (``--fail-on ''``: counting everything would
    be a guess), raises :class:`~sockdiff.errors.UsageError` naming ``what`` (the
    command line passes its option's name) and the choices. The one reading of fail-on
    kinds: compare's, run's, the pytest plugin's, the configuration file's.

    >>> parse_fail_on("new, routes")
    ('new', 'routes')
    """
    kinds = tuple(item.strip() for item in text.split(",") if item.strip())
    if not kinds:
        raise UsageError(f"{what} names no kind (choose from {', '.join(choices)})")
    for kind in kinds:
        if kind not in choices:
            raise UsageError(f"unknown {what} kind {kind!r} (choose from {', '.join(choices)})")
    return kinds


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


def netstat_name_alike(pid: int, shown: str, comm: str) -> bool:
    """Whether the name netstat -p showed for process ``pid`` names the process whose comm is ``comm``.

    net-tools' netstat names a process by its command line's first string
    (argv[0]), the part after its last ``/`` when it starts with one, and cuts
    ``PID/name`` at 19 characters; the kernel's comm is the executable's name,
    cut at 15. A daemon that rewrote its argv[0] (``nginx: master process``,
    ``sshd: root@pts/0``, ``postgres: checkpointer``) is shown by it, and is
    its first word (less a ``:``); a relative argv[0] (``./bin/app``) is its
    last part.

    >>> netstat_name_alike(1234, "nginx: master", "nginx"), netstat_name_alike(9, "./bin/app", "app")
    (True, True)
    >>> netstat_name_alike(1234, "nginx: master", "nginz")
    False
    """
    first = shown.split(" ", 1)[0].removesuffix(":")
    candidates = {shown, first, first.rpartition("/")[2]} - {""}
    return any(same_process_name(pid, name, comm) for name in candidates)


def netstat_program(command: str) -> str:
    """The name netstat -p shows for a process whose argv[0] is ``command``: its part after
    the last ``/`` when it starts with one (uncut).

    >>> netstat_program("/usr/bin/python3"), netstat_program("nginx: master process")
    ('python3', 'nginx: master process')
    """
    return command.rpartition("/")[2] if command.startswith("/") else command


def ss_name_alike(pid: int, shown: str, comm: str) -> bool:
    """Whether the name ss -p showed for process ``pid`` names the process whose comm is ``comm``.

    ss reads the name from /proc/PID/stat up to the first ``)`` (``%[^)]``), so a
    comm holding one is shown cut there.

    >>> ss_name_alike(7, "a b", "a b)c"), ss_name_alike(7, "a b", "a bc")
    (True, False)
    """
    return same_process_name(pid, shown, comm) or (")" in comm and comm.partition(")")[0] == shown)


# How the owners a saved listing shows name a process, by the listing's backend:
# netstat -p shows one owner of a socket that several processes hold (the first
# it finds), named from its command line; ss -p every owner, named from its comm.
_SHOWN_NAMES: dict[str, Callable[[int, str, str], bool]] = {
    "netstat-text": netstat_name_alike,
    "ss-text": ss_name_alike,
}


NETSTAT_TEXT = "netstat-text"
# What C's isspace() holds: net-tools reads /proc/net/unix's path with scanf's %s.
_SCANF_WORD = re.compile(r"[ \t\n\v\f\r]*([^ \t\n\v\f\r]*)")


def netstat_path(path: str) -> str | None:
    """A UNIX socket's path as netstat -x shows it: cut at its first blank (None: nothing left).

    >>> netstat_path("/run/my app.sock"), netstat_path(" x"), netstat_path("@abstract")
    ('/run/my', 'x', '@abstract')
    """
    match = _SCANF_WORD.match(path)
    return (match.group(1) if match else path) or None


def _pair_cut_paths(
    closed: list[Socket], opened: list[Socket], old_is_netstat: bool
) -> tuple[Pairs, list[Socket], list[Socket]]:
    """Pair UNIX sockets a saved netstat -x listing shows with a path cut at a blank:
    by inode and type, where its path is the other side's as netstat would cut it."""
    shown, whole = (closed, opened) if old_is_netstat else (opened, closed)
    by_inode = {(s.inode, s.type): s for s in whole if s.proto == "unix" and s.inode}
    pairs: Pairs = []
    for sock in shown:
        other = by_inode.get((sock.inode, sock.type)) if sock.proto == "unix" and sock.inode else None
        if other is None or not isinstance(other.local.path, str):
            continue
        if netstat_path(other.local.path) == sock.local.path:
            pairs.append((sock, other) if old_is_netstat else (other, sock))
            del by_inode[(sock.inode, sock.type)]
    if not pairs:
        return pairs, closed, opened
    paired = {id(s) for pair in pairs for s in pair}
    return pairs, [s for s in closed if id(s) not in paired], [s for s in opened if id(s) not in paired]


def _owners_shown(
    changed: list[Change[Socket]], old_backend: str, new_backend: str, commands: Mapping[int, str]
) -> list[Change[Socket]]:
    """``changed`` less the owners' changes a saved listing's way of showing them explains:
    each owner it shows is one of the other side's, by pid and by the tool's naming rule
    (and, but for netstat, which shows one, it shows them all); netstat's name may also
    be the one the process's argv[0] (``commands``) gives."""
    old_text = old_backend in _SHOWN_NAMES
    one = (old_backend if old_text else new_backend) == NETSTAT_TEXT  # netstat shows one owner
    alike = _SHOWN_NAMES[old_backend if old_text else new_backend]

    def by_command(pid: int, shown: str, comm: str) -> bool:
        command = commands.get(pid)
        return netstat_name_alike(pid, shown, comm) or (
            command is not None and same_process_name(pid, shown, netstat_program(command))
        )

    if one and commands:
        alike = by_command

    kept = []
    for change in changed:
        shown, whole = (change.old, change.new) if old_text else (change.new, change.old)
        names = change.fields
        if "processes" in names and _explained(shown.processes, whole.processes, alike, one):
            names = tuple(name for name in names if name != "processes")
        if names:
            kept.append(Change(change.old, change.new, names))
    return kept


def _explained(
    shown: tuple[Process, ...], whole: tuple[Process, ...], alike: Callable[[int, str, str], bool], one: bool
) -> bool:
    if (one and len(shown) != 1) or (not one and len(shown) != len(whole)):
        return False
    left = list(whole)
    for owner in shown:
        match = next((p for p in left if p.pid == owner.pid and alike(p.pid, owner.name, p.name)), None)
        if match is None:
            return False
        left.remove(match)
    return True


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
    """Pair sockets sharing one identity, by their values alone (SPEC.md, README "Choices").

    Records equal in every field pair first (unchanged); the rest by equal
    non-zero inode, then by their owners (pid and name: a saved listing without
    inodes), then by the owners' program names (another program joining
    a port with SO_REUSEPORT, or a role's listeners: one record a program),
    then one to one, each side in :func:`_value_order`. Neither the order the
    records are listed in nor which equal record is which object (a file
    sharing another's records) changes the result.
    """
    news_by_value: dict[Socket, list[Socket]] = {}
    for sock in news:
        news_by_value.setdefault(sock, []).append(sock)
    pairs: Pairs = []
    left_old: list[Socket] = []
    for sock in olds:
        equal = news_by_value.get(sock)
        if equal:
            pairs.append((sock, equal.pop()))
        else:
            left_old.append(sock)
    left_new = sorted((s for group in news_by_value.values() for s in group), key=_value_order)
    left_old.sort(key=_value_order)
    by_inode: dict[int, int] = {}  # an inode: the place of the first new record holding it
    for place, sock in enumerate(left_new):
        if sock.inode:
            by_inode.setdefault(sock.inode, place)
    rest_old: list[Socket] = []
    taken: set[int] = set()
    for sock in left_old:
        match = by_inode.pop(sock.inode, None) if sock.inode else None
        if match is not None:
            pairs.append((sock, left_new[match]))
            taken.add(match)
        else:
            rest_old.append(sock)
    rest_new = [sock for place, sock in enumerate(left_new) if place not in taken]
    for owned in (_owners, _programs):
        rest_old, rest_new = _pair_owned(rest_old, rest_new, owned, pairs)
    count = min(len(rest_old), len(rest_new))
    pairs += zip(rest_old[:count], rest_new[:count], strict=True)
    return pairs, rest_old[count:], rest_new[count:]


def _pair_owned(
    olds: list[Socket], news: list[Socket], owned: Callable[[Socket], Hashable], pairs: Pairs
) -> tuple[list[Socket], list[Socket]]:
    """Pair (into ``pairs``) sockets with owners alike by ``owned``, each side in order; what is left."""
    by_owners: dict[Hashable, list[int]] = {}  # owners: the places of new records owned so
    for place, sock in enumerate(news):
        if sock.processes:
            by_owners.setdefault(owned(sock), []).append(place)
    unpaired: list[Socket] = []
    joined: set[int] = set()
    for sock in olds:
        group = by_owners.get(owned(sock)) if sock.processes else None
        if group:
            place = group.pop(0)
            pairs.append((sock, news[place]))
            joined.add(place)
        else:
            unpaired.append(sock)
    return unpaired, [sock for place, sock in enumerate(news) if place not in joined]


_ENCODE = msgspec.json.Encoder().encode


def _value_order(sock: Socket) -> tuple[tuple[Any, ...], bytes]:
    """A total order of socket values: :func:`_sort_key`, then the record's JSON bytes."""
    return _sort_key(sock), _ENCODE(sock)


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


def split_changes(result: Diff) -> Diff:
    """``result`` with each changed socket as one closed and one new: in a role comparison a
    listener's program is part of what it is (:mod:`sockdiff.roles`), so another program on a
    port is a listener gone and one come, counted as such by ``--fail-on new``, ``closed`` and
    ``listening``."""
    if not result.changed:
        return result
    opened = sorted([*result.opened, *(c.new for c in result.changed)], key=_sort_key)
    closed = sorted([*result.closed, *(c.old for c in result.changed)], key=_sort_key)
    return dataclasses.replace(result, opened=tuple(opened), closed=tuple(closed), changed=())


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
    commands: Mapping[int, str] | None = None,
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
    ``commands``: the argv[0] of processes by pid, as the live system has them
    (:func:`sockdiff.comparison.compare` reads them): a saved netstat -p
    listing named its owners by it (a script run through its ``#!`` line shows
    its interpreter), so such a name is the process's too.
    """
    from .filter import as_predicate

    for side, what in ((old, "old"), (new, "new")):
        if not isinstance(side, Snapshot):
            raise UsageError(f"{what}: expected a Snapshot, not {type(side).__name__}")
    if (old.namespaces is None) != (new.namespaces is None):
        # Records of one namespace carry none; every namespace's each carry theirs: no pairing.
        one, every = ("old", "new") if old.namespaces is None else ("new", "old")
        raise UsageError(
            f"the {one} side holds one namespace and the {every} side every one (--all-netns):"
            " compare like with like (both taken with --all-netns, or neither)"
        )
    fields = as_fields(fields)
    namespaced = old.namespaces is not None
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
    if NETSTAT_TEXT in (old.header.backend, new.header.backend) and opened and closed:
        found, closed, opened = _pair_cut_paths(closed, opened, old.header.backend == NETSTAT_TEXT)
        changed += [Change(a, b, names) for a, b in found if (names := _changed_fields(a, b, socket_fields))]
    if old.header.backend in _SHOWN_NAMES or new.header.backend in _SHOWN_NAMES:
        changed = _owners_shown(changed, old.header.backend, new.header.backend, commands or {})

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
            *_common_interfaces(old, new),
            (_placed(_INTERFACE_KEY, old_places), _placed(_INTERFACE_KEY, new_places)),
            interface_fields,
            project=_interface_projection(old, new),
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


def _common_interfaces(
    old: Snapshot, new: Snapshot
) -> tuple[tuple[Interface, ...] | None, tuple[Interface, ...] | None]:
    """Both sides' interfaces, less the other side's down ones where a side listed only those up
    (netstat -i without -a): a down interface it does not list is one it could not show."""
    if old.interfaces is None or new.interfaces is None:
        return old.interfaces, new.interfaces
    olds, news = old.interfaces, new.interfaces
    if old.header.sources.get("interfaces") == NETSTAT_UP_INTERFACES:
        names = {i.name for i in olds}
        news = tuple(i for i in news if "UP" in i.flags or i.name in names)
    if new.header.sources.get("interfaces") == NETSTAT_UP_INTERFACES:
        names = {i.name for i in news}
        olds = tuple(i for i in olds if "UP" in i.flags or i.name in names)
    return olds, news


def _interface_projection(old: Snapshot, new: Snapshot) -> dict[str, Callable[[Any], Any]]:
    """How flags compare: by netstat -i's letters where a side has no more of them (a saved listing)."""
    sources = (old.header.sources.get("interfaces", ""), new.header.sources.get("interfaces", ""))
    if any(source.startswith(NETSTAT_INTERFACES) for source in sources):
        return {"flags": _letters}
    return {}


def _letters(flags: tuple[str, ...]) -> frozenset[str]:
    # A set: net-tools 2.10's P (PROMISC, or POINTOPOINT after O) is one letter either way.
    return frozenset(netstat_flag_letters(flags))


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
    before any pairing, once for each time it stands on both sides: only a
    shortcut, as :func:`_pair` pairs records equal in every field first, and
    pairs the rest by value, whichever equal record is left.
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
    on one side and once on the other is left once on the first), in their order.

    A file read sharing another's records keeps its order: both sides are walked in
    step first (:func:`~sockdiff._perf.in_step`), then what the walk leaves is looked
    up by object.
    """
    _, left_old, left_new = in_step(olds, news, operator.is_)
    if len(left_old) == len(olds):
        return _unshared_by_object(olds, news)
    return _unshared_by_object([olds[i] for i in left_old], [news[j] for j in left_new])


def _unshared_by_object(
    olds: Sequence[Socket], news: Sequence[Socket]
) -> tuple[Sequence[Socket], Sequence[Socket]]:
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
    deltas = {}
    for name in COUNTER_NAMES:
        before, after = getattr(old.counters, name), getattr(new.counters, name)
        if before is not None and after is not None and after != before:  # None: netstat -i's bytes
            deltas[name] = after - before
    return deltas


def _record_fields(
    old: Socket | Interface | Route,
    new: Socket | Interface | Route,
    fields: Sequence[str],
    project: Mapping[str, Callable[[Any], Any]] | None = None,
) -> tuple[str, ...]:
    """The fields that differ where both sides know them (None is unknown); ``project``
    maps a field to what of it both sides can show, compared instead."""
    found = []
    for name in fields:
        before, after = getattr(old, name), getattr(new, name)
        if name == "gateway" and isinstance(old, Route) and isinstance(new, Route):
            # No gateway is a known value (gateway_known): gaining or losing one is a change.
            if before != after and gateway_known(old) and gateway_known(new):
                found.append(name)
            continue
        if project and name in project and before is not None and after is not None:
            before, after = project[name](before), project[name](after)
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
    project: Mapping[str, Callable[[Any], Any]] | None = None,
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
            names = _record_fields(before, after, fields, project)
            if names:
                changed.append(Change(before, after, names))
    order = _section_sort_key
    return SectionDiff(
        tuple(sorted(added, key=order)),
        tuple(sorted(removed, key=order)),
        tuple(sorted(changed, key=lambda c: order(c.new))),
    )


_ROUTE_PLACE: Callable[[Route], Hashable] = operator.attrgetter("family", "table", "destination", "dev")


def _pair_untyped_routes(
    gone: list[Route], came: list[Route]
) -> tuple[list[tuple[Route, Route]], list[Route], list[Route]]:
    """A route whose type or metric one side cannot know (None: /proc's IPv6 blackhole and
    the like, netstat -rn's metric) pairs with the other side's route of the same key but
    for what it does not know; in order, where several could."""
    by_place: dict[Hashable, list[Route]] = {}
    for route in came:
        by_place.setdefault(_ROUTE_PLACE(route), []).append(route)
    pairs: list[tuple[Route, Route]] = []
    left: list[Route] = []
    for route in gone:
        group = by_place.get(_ROUTE_PLACE(route), [])
        match = next((other for other in group if _alike(route, other)), None)
        if match is None:
            left.append(route)
        else:
            group.remove(match)
            pairs.append((route, match))
    paired = {id(new) for _, new in pairs}
    return pairs, left, [route for route in came if id(route) not in paired]


def _alike(one: Route, other: Route) -> bool:
    """Equal type and metric where both sides know them."""
    return all(
        a is None or b is None or a == b for a, b in ((one.type, other.type), (one.metric, other.metric))
    )


def _section_sort_key(record: Socket | Interface | Route) -> tuple[Any, ...]:
    if isinstance(record, Interface):
        return (record.name,)
    if isinstance(record, Route):
        return (
            record.family,
            record.table,
            record.destination,
            -1 if record.metric is None else record.metric,
            record.type or "",
            record.dev or "",
        )
    return _sort_key(record)  # sections hold no sockets; this keeps the key total


def taken_again(old: Snapshot, new: Snapshot) -> bool:
    """Whether ``new`` holds what ``old`` holds, taken again: the same header but the
    time it was taken, the same sections, and no difference a comparison with the
    default fields would report (interface counters aside), no namespace on one
    side only. What tells an unchanged baseline from one worth writing again.
    """
    same_header = msgspec.structs.replace(old.header, taken_at=new.header.taken_at) == new.header
    sections = ("sockets", "interfaces", "routes")
    if not same_header or (old.namespaces is None) != (new.namespaces is None):
        return False
    if any((getattr(old, name) is None) != (getattr(new, name) is None) for name in sections):
        return False
    found = diff(old, new)
    return found.counted(("any",)) == 0 and not found.namespaces


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
        role=second.role,
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


def renamed_links(result: Diff) -> Diff:
    """``result`` with each device renamed between its two reads (the same index in the same
    namespace, removed under one name and added under another) as one link that changed
    (``name``, and any other field), and each route that moved with it only by its device
    name as a route that changed (``dev``), instead of each removed and added.

    For ``watch``, whose two reads are moments apart: between snapshots of two boots an
    index names no particular link, so :func:`diff` never pairs by it.
    """
    interfaces = result.interfaces
    if not interfaces or not interfaces.removed or not interfaces.added:
        return result
    gone = {(netns_of(i), i.index): i for i in interfaces.removed if i.index is not None}
    renames: dict[tuple[int | None, str], str] = {}  # (namespace, old name) -> new name
    paired: set[int] = set()  # ids of the removed records paired
    link_changes = list(interfaces.changed)
    added = []
    for record in interfaces.added:
        old = gone.get((netns_of(record), record.index)) if record.index is not None else None
        if old is None or id(old) in paired:
            added.append(record)
            continue
        paired.add(id(old))
        renames[(netns_of(old), old.name)] = record.name
        link_changes.append(Change(old, record, ("name", *_record_fields(old, record, INTERFACE_FIELDS))))
    if not renames:
        return result
    order = _section_sort_key
    renamed = SectionDiff(
        tuple(added),
        tuple(i for i in interfaces.removed if id(i) not in paired),
        tuple(sorted(link_changes, key=lambda c: order(c.new))),
    )
    return dataclasses.replace(result, interfaces=renamed, routes=_moved_routes(result.routes, renames))


def _moved_routes(
    routes: SectionDiff[Route] | None, renames: Mapping[tuple[int | None, str], str]
) -> SectionDiff[Route] | None:
    """The routes of ``routes`` removed and added again only under a renamed device's new name, paired."""
    if not routes or not routes.removed or not routes.added:
        return routes
    moved: dict[Route, list[Route]] = {}  # the route under its device's new name -> the removed ones
    for route in routes.removed:
        new_dev = renames.get((netns_of(route), route.dev)) if route.dev is not None else None
        if new_dev is not None:
            moved.setdefault(msgspec.structs.replace(route, dev=new_dev), []).append(route)
    if not moved:
        return routes
    pairs: list[Change[Route]] = []
    added = []
    for route in routes.added:
        olds = moved.get(route)
        if olds:
            pairs.append(Change(olds.pop(0), route, ("dev",)))
        else:
            added.append(route)
    paired = {id(change.old) for change in pairs}
    order = _section_sort_key
    return SectionDiff(
        tuple(added),
        tuple(r for r in routes.removed if id(r) not in paired),
        tuple(sorted([*routes.changed, *pairs], key=lambda c: order(c.new))),
    )
