"""``watch``: polls at an interval, and the kernel's events in between.

Interfaces and routes are read again, and compared, whenever rtnetlink says
they changed (``ip monitor``'s link, address and route groups), so their
changes show as they happen; sockets at each poll.

Polling alone misses a socket that opens and closes between two reads. So the
watch also listens to sock_diag's socket-destroy events (see
:mod:`sockdiff.backends.netlink.events`) and, at each poll, reports the destroyed sockets no poll
accounts for as closed and *short-lived*. Each close is reported once: a
destroy event is the poll's when its socket (by identity, as the differ matches
sockets) is one the poll diff reports closed or changed now or reported at the
previous poll (its event may come late), or one the poll has just read (it was
destroyed during the dump, and the next poll reports it). A short-lived socket
that shares its identity with one of those (the same four-tuple reused within
two polls) is taken for it: the event carries no inode to tell them apart.

Watching every namespace (``all_netns``), each poll reads every namespace
(:func:`~sockdiff.acquire.take`), and events are heard from each: one listener
socket per namespace and group, opened from inside it (setns on this thread),
for the namespaces found at the first read and for each one a poll finds
since; one that goes is let go. Every record, and every destroyed socket,
carries its namespace, which is part of its identity here.
"""

from __future__ import annotations

import dataclasses
import datetime
import operator
import os
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from .acquire import check_namespaces, take
from .backends.netlink.events import (
    DEFAULT_BUFFER,
    DESTROY_GROUPS,
    MAX_BUFFER,
    MIN_BUFFER,
    Destroyed,
    Event,
    Listener,
    SectionChanged,
)
from .backends.netlink.sockets import Reuse, reusing
from .differ import Diff, diff, identity, renamed_links
from .errors import BackendUnavailable, UsageError
from .model import PROTOS, Interface, Namespace, Route, Socket, netns_of
from .processes import OwnerTracker
from .snapshots import Snapshot

__all__ = ["Report", "Watch", "watch"]

Predicate = Callable[[Socket], bool]
R = TypeVar("R", Interface, Route)
_INODE: Callable[[Socket], int] = operator.attrgetter("inode")


def _key(sock: Socket) -> Hashable:
    """A socket's identity within its namespace: what a destroy event is matched by."""
    return (netns_of(sock), identity(sock))


# Seconds to wait for more rtnetlink messages after one, and at most in all.
_SETTLE = 0.05
_SETTLE_MAX = 0.5


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Report:
    """One thing the watch saw, at ``time`` (ISO 8601, UTC, milliseconds).

    First the ``baseline``, the first read. Then a poll's ``diff`` with the
    ``short_lived`` sockets destroyed since the previous poll that no poll saw;
    or an ``overrun``: events lost to a full receive buffer (what was lost),
    after which a poll follows at once. ``namespaces``: watching every
    namespace, those of the last read (they label short-lived sockets).
    """

    time: str
    baseline: Snapshot | None = None
    diff: Diff | None = None
    short_lived: tuple[Socket, ...] = ()
    overrun: str | None = None
    namespaces: tuple[Namespace, ...] | None = None


class _Claims:
    """Which destroy events the polls account for, so each close is reported once."""

    def __init__(self) -> None:
        self._late: Counter[Hashable] = Counter()  # closes of the previous poll not yet heard of
        self._last: Snapshot | None = None  # the last poll's read
        self._seen: Counter[Hashable] | None = None  # its sockets' identities, counted when first asked

    def polled(self, snapshot: Snapshot, since: Diff | None = None) -> None:
        """A poll read ``snapshot``: what it saw is no longer short-lived when it goes.

        ``since``: the whole difference from the last poll's read, by which the identities
        counted already are brought up to date (counting 100k sockets again at every poll
        that hears a close would cost more than the poll's read).
        """
        self._last = snapshot
        seen = self._seen
        if seen is None or since is None:
            self._seen = None
            return
        seen.subtract(_key(s) for s in since.closed if s.proto in DESTROY_GROUPS)
        seen.subtract(_key(c.old) for c in since.changed if c.old.proto in DESTROY_GROUPS)
        seen.update(_key(s) for s in since.opened if s.proto in DESTROY_GROUPS)
        seen.update(_key(c.new) for c in since.changed if c.new.proto in DESTROY_GROUPS)

    def unseen(self, sock: Socket) -> bool:
        """Whether no poll saw the destroyed ``sock``: it opened and closed since the last one.

        Such a socket is reported at once; one a poll saw (or whose close the last
        poll reported already) waits for the next poll's account.
        """
        if self._seen is None:
            sockets = self._last.sockets or () if self._last is not None else ()
            self._seen = Counter(_key(s) for s in sockets if s.proto in DESTROY_GROUPS)
        key = _key(sock)
        return self._seen[key] == 0 and self._late[key] == 0

    def short_lived(self, result: Diff, destroyed: Sequence[Socket]) -> list[Socket]:
        """The ``destroyed`` sockets that neither this poll nor the previous one reports."""
        reported: Counter[Hashable] = Counter(_key(s) for s in result.closed)
        reported.update(_key(c.old) for c in result.changed)
        if not destroyed:
            self._late = reported
            return []
        # Sockets the poll has just read but whose destroy event is already here:
        # the next poll reports them closed. Only ports that events name are looked at.
        ports = {s.local.port for s in destroyed}
        just_read: Counter[Hashable] = Counter(
            _key(s)
            for s in result.new.sockets or ()
            if s.local.port in ports and s.proto in DESTROY_GROUPS and s.state != "TIME_WAIT"
        )
        found = []
        for sock in destroyed:
            key = _key(sock)
            for pool in (reported, just_read, self._late):
                if pool[key] > 0:
                    pool[key] -= 1
                    break
            else:
                found.append(sock)
        self._late = +reported
        return found


class Watch:
    """Iterate for :class:`Report` s; the counts so far stay readable (for a summary).

    See :func:`watch` for the parameters.
    """

    def __init__(
        self,
        interval: float,
        count: int | None,
        *,
        backend: str,
        netns: str | None,
        all_netns: bool,
        protos: Sequence[str],
        where: str | None,
        ignore: Predicate | None,
        processes: bool,
        events: bool,
        buffer_size: int,
        sections: Sequence[str],
    ) -> None:
        from .backends import check_backend

        if not MIN_BUFFER <= buffer_size <= MAX_BUFFER:  # setsockopt takes a C int, and no less
            raise UsageError(f"--buffer-size must be {MIN_BUFFER} to {MAX_BUFFER} bytes, not {buffer_size}")
        check_backend(backend, sections)
        check_namespaces(netns, all_netns)
        self.interval = interval
        self.count = count
        self.backend = backend
        self.netns = netns
        self.all_netns = all_netns
        self.protos = tuple(protos)
        self.where: Predicate | None = None
        if where is not None:
            from .filter import compile_filter_for

            self.where = compile_filter_for(where, processes)
        self.ignore = ignore
        self.processes = processes
        self.events = events
        self.buffer_size = buffer_size
        self.sockets = "sockets" in sections
        #: The sections besides sockets watched: interfaces, routes.
        self.sections = tuple(name for name in ("interfaces", "routes") if name in sections)
        self.polls = 0
        self.counts = {
            "new": 0,
            "closed": 0,
            "changed": 0,
            "short_lived": 0,
            "interfaces": 0,
            "routes": 0,
            "namespaces": 0,
        }
        self.overruns = 0
        #: Why no kernel events are heard, when they are not (None: they are, or were not asked for).
        self.deaf: str | None = None
        self._listener: Listener | None = None
        self._owners = OwnerTracker() if processes else None
        # The sockets of the last read, by inode (None: not counted, see _inodes_of), and how many.
        self._inodes: set[int] | None = set()
        self._last: Sequence[Socket] = ()
        self._last_count: int | None = None
        self._namespaces: tuple[Namespace, ...] | None = None  # those of the last read (all_netns)
        self._held_netns: dict[int, str] = {}  # namespaces descriptors hold: inode -> path
        #: Namespaces of the last read not listened to: no descriptors left (RLIMIT_NOFILE) for their
        #: event sockets. Their polls go on; their interfaces and routes are read at every one.
        self.unheard = 0
        # Each poll's sock_diag records, for the next poll to take again where unchanged.
        self._reuse = Reuse()

    def _wanted(self, sock: Socket) -> bool:
        if self.ignore is not None and self.ignore(sock):
            return False
        return self.where is None or self.where(sock)

    def _take(self, sections: Sequence[str]) -> Snapshot:
        tracker = self._owners
        # Namespaces held only by a descriptor: as the owner tracker last saw them; until it has
        # read the processes once, and without it, the read looks through every descriptor.
        held = tracker.held_netns if tracker is not None and tracker.processes_read else None
        with reusing(self._reuse):
            taken = take(
                backend=self.backend,
                netns=self.netns,
                protos=self.protos,
                sections=sections,
                owners=tracker.owners if tracker is not None else {},
                all_netns=self.all_netns,
                held_netns=held if self.all_netns else None,
            )
        # Resolved once: a fallback from netlink to /proc is warned about once, not every poll.
        self.backend = taken.header.backend
        if taken.namespaces is not None and ("sockets" in sections or not self.sockets):
            # Namespaces followed by the sockets' reads (by the sections' without them).
            self._namespaces = taken.namespaces
            self._held_netns = held if held is not None else {}
            self._follow_namespaces(taken.namespaces)
        sockets = taken.sockets or ()
        if tracker is None or taken.sockets is None:
            return taken
        # Owners read after the sockets, and only as far as the sockets changed: the
        # tracker hears which came and went; records whose holders the update changed are
        # made again. Which came and went is told by the records the read made and those of
        # the last it did not take again (sets of a few), else by every socket's inode.
        delta = self._reuse.delta(len(sockets), self._last_count)
        self._last_count = len(sockets)
        if delta is not None:
            made = set(map(_INODE, delta[0]))
            gone = set(map(_INODE, delta[1]))
            came, went = made - gone, gone - made
            self._inodes = None
        else:
            now = self._inodes_of(sockets)
            last = self._inodes if self._inodes is not None else self._inodes_of(self._last)
            self._inodes = now
            came, went = now - last, last - now
        came.discard(0)
        went.discard(0)
        self._last = sockets
        changed = tracker.follow(came, went)
        self._reuse.stale |= changed  # the next read makes their records again
        if not changed:
            return taken
        owners = tracker.owners
        replace = msgspec.structs.replace
        return dataclasses.replace(
            taken,
            sockets=tuple(
                replace(s, processes=owners.get(s.inode, ())) if s.inode in changed else s for s in sockets
            ),
        )

    @staticmethod
    def _inodes_of(sockets: Sequence[Socket]) -> set[int]:
        inodes = set(map(_INODE, sockets))
        inodes.discard(0)
        return inodes

    def _follow_namespaces(self, namespaces: tuple[Namespace, ...]) -> None:
        """Listen in each namespace of a read, and no more in those gone; as many as the
        descriptor limit leaves room for (:attr:`unheard`: those left out, tried again each read)."""
        listener = self._listener
        if listener is None:
            return
        now = {namespace.inode: namespace for namespace in namespaces}
        for inode in listener.namespaces - now.keys():
            listener.leave(inode)
        missing = [(inode, ns) for inode, ns in now.items() if inode not in listener.namespaces]
        room = listener.room() if missing else 0
        self.unheard = max(0, len(missing) - room)
        for inode, namespace in missing[:room]:
            # Ways in: its ip netns names, a process inside, a descriptor that holds it.
            ways = [*namespace.names, *(f"/proc/{pid}/ns/net" for pid in namespace.pids)]
            if inode in self._held_netns:
                ways.append(self._held_netns[inode])
            for way in ways:
                if listener.join(way, inode):
                    break

    def _narrowed(self, result: Diff) -> Diff:
        """The diff less what ``where`` and ``ignore`` leave out (both sides of a change)."""
        if self.where is None and self.ignore is None:
            return result
        wanted = self._wanted
        return dataclasses.replace(
            result,
            opened=tuple(s for s in result.opened if wanted(s)),
            closed=tuple(s for s in result.closed if wanted(s)),
            changed=tuple(c for c in result.changed if wanted(c.old) or wanted(c.new)),
        )

    def _listen(self) -> Listener | None:
        heard = [p for p in self.protos if p in DESTROY_GROUPS] if self.sockets else []
        if not self.events or not (heard or self.sections):
            return None
        # Watching every namespace, ours is one of them: its events carry its inode.
        own = os.stat("/proc/thread-self/ns/net").st_ino if self.all_netns else None
        try:
            return Listener(
                heard, routes=bool(self.sections), netns=self.netns, buffer_size=self.buffer_size, inode=own
            )
        except BackendUnavailable as err:
            self.deaf = str(err)
            return None

    def __iter__(self) -> Iterator[Report]:
        # Events first, so that nothing destroyed after the first read goes unheard.
        self._listener = self._listen()
        try:
            yield from self._run(self._listener)
        finally:
            self.close()

    def _run(self, listener: Listener | None) -> Iterator[Report]:
        claims = _Claims()
        # Interfaces and routes are read again when rtnetlink says they changed;
        # with no one to say so, at every poll. Watching every namespace without
        # sockets, the sections' reads are what finds namespaces: at every poll too.
        heard = listener is not None and listener.routes and not (self.all_netns and not self.sockets)
        previous = self._take(("sockets",)) if self.sockets else None
        sections = self._take(self.sections) if self.sections else None
        if sections is not None and previous is not None and self._namespaces is not None:
            # A namespace made between the two reads: its records wait for the poll that says so.
            sections = _aligned(sections, sections, {n.inode for n in self._namespaces})
        baseline = previous or sections
        assert baseline is not None  # check_backend refused an empty list of sections
        yield Report(_now(), baseline=baseline)
        if previous is not None:
            claims.polled(previous)
        destroyed: list[Socket] = []
        deadline = time.monotonic() + self.interval
        while self.count is None or self.polls < self.count:
            poll_now = False
            changed: set[str] = set()
            if listener is None:
                time.sleep(max(0.0, deadline - time.monotonic()))
            else:
                for event in self._events(listener, deadline):
                    if isinstance(event, Destroyed):
                        sock = event.socket
                        if not sock.local.port and not (sock.remote is not None and sock.remote.port):
                            continue  # never bound nor connected: nothing was there to see
                        if previous is not None and claims.unseen(sock):
                            # Opened and closed since the last poll: said now, as it happens.
                            if self._wanted(sock):
                                self._count_short_lived()
                                yield Report(_now(), short_lived=(sock,), namespaces=self._namespaces)
                            continue
                        destroyed.append(sock)
                    elif isinstance(event, SectionChanged):
                        changed |= event.sections
                    else:
                        self.overruns += 1
                        poll_now = True
                        yield Report(_now(), overrun=event.source)
            due = poll_now or time.monotonic() >= deadline
            # A namespace not listened to says nothing: the sections are polled then.
            told = heard and not self.unheard
            if sections is not None and (changed or (due and not told) or poll_now):
                current_sections, report = self._sections(sections)
                yield report
                sections = current_sections
            if not due:
                continue
            self.polls += 1
            now = time.monotonic()
            if now >= deadline:  # not a poll brought forward by lost events
                deadline += self.interval
                if deadline <= now:  # a poll took longer than the interval: start afresh
                    deadline = now + self.interval
            if previous is None:
                continue
            current = self._take(("sockets",))
            stamp = _now()
            if listener is not None:
                # What came in during the read belongs to this poll.
                destroyed += (e.socket for e in listener.wait(0) if isinstance(e, Destroyed))
            result = whole = diff(previous, current)
            short = [s for s in claims.short_lived(result, destroyed) if self._wanted(s)]
            destroyed = []
            result = self._narrowed(result)
            if result.namespaces and sections is not None:
                # Namespaces came or went: their interfaces and routes now, in the same
                # report, where they are counted under their namespace's line.
                sections, read = self._read_sections(sections)
                result = dataclasses.replace(result, interfaces=read.interfaces, routes=read.routes)
            self._count(result, short)
            yield Report(stamp, diff=result, short_lived=tuple(short), namespaces=self._namespaces)
            previous = current
            claims.polled(current, whole)

    def _sections(self, sections: Snapshot) -> tuple[Snapshot, Report]:
        """Interfaces and routes read again, and what changed since ``sections``."""
        current, result = self._read_sections(sections)
        self._count(result)
        return current, Report(_now(), diff=result, namespaces=self._namespaces)

    def _read_sections(self, sections: Snapshot) -> tuple[Snapshot, Diff]:
        current = self._take(self.sections)
        if self.sockets and self._namespaces is not None:
            current = _aligned(current, sections, {n.inode for n in self._namespaces})
        # A device renamed is the same link (by index), not one removed and one added.
        result = renamed_links(diff(sections, current))
        if self.sockets and result.namespaces is not None:
            result = dataclasses.replace(result, namespaces=None)  # the sockets' polls say it
        return current, result

    @staticmethod
    def _events(listener: Listener, deadline: float) -> list[Event]:
        """What the kernel says before ``deadline``; after word that a section
        changed, what follows within a moment too (one ``ip link set down``
        brings a link, an address and routes message), so the sections are read once."""
        events = listener.wait(max(0.0, deadline - time.monotonic()))
        settle = time.monotonic() + _SETTLE_MAX
        while any(isinstance(e, SectionChanged) for e in events) and time.monotonic() < settle:
            more = listener.wait(_SETTLE)
            if not more:
                break
            events += more
        return events

    def _count_short_lived(self) -> None:
        self.counts["closed"] += 1
        self.counts["short_lived"] += 1

    def _count(self, result: Diff, short: Sequence[Socket] = ()) -> None:
        counts = self.counts
        counts["new"] += len(result.opened)
        counts["closed"] += len(result.closed) + len(short)
        counts["changed"] += len(result.changed)
        counts["short_lived"] += len(short)
        counts["interfaces"] += len(result.interfaces or ())
        counts["routes"] += len(result.routes or ())
        counts["namespaces"] += len(result.namespaces or ())

    def close(self) -> None:
        """Stop listening (the iteration ends with it)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._reuse.close()

    def summary(self) -> str:
        """E.g. ``3 polls, 4 differences (1 new, 2 closed of which 1 short-lived, 0 changed; interfaces: 1;
        routes: 0)``: every difference counted, each section apart (and, watching every
        namespace, the namespaces that came or went)."""
        counts = self.counts
        kinds = ["new", "closed", "changed", "interfaces", "routes"]
        if self.all_netns:
            kinds.append("namespaces")
        total = sum(counts[kind] for kind in kinds)
        parts = []
        if self.sockets:
            parts.append(
                f"{counts['new']} new, {counts['closed']} closed of which {counts['short_lived']}"
                f" short-lived, {counts['changed']} changed"
            )
        parts += (f"{name}: {counts[name]}" for name in self.sections)
        if self.all_netns:
            parts.append(f"namespaces: {counts['namespaces']}")
        text = f"{_plural(self.polls, 'poll')}, {_plural(total, 'difference')} ({'; '.join(parts)})"
        if self.overruns:
            text += f"; events lost {_plural(self.overruns, 'time')}"
        if self.unheard:
            text += f"; {_plural(self.unheard, 'namespace')} not listened to (descriptor limit)"
        return text


def _aligned(current: Snapshot, last: Snapshot, known: set[int]) -> Snapshot:
    """``current``'s interfaces and routes as of the namespaces the sockets' last poll
    ``known``: those of a namespace it has not announced yet left out, those of one it
    has not yet seen go kept from ``last``. The poll that says a namespace came or went
    brings its records, counted under its line, not before it, each a line of its own."""
    read = {n.inode for n in current.namespaces or ()}
    kept = known - read

    def records(now: tuple[R, ...] | None, before: tuple[R, ...] | None) -> tuple[R, ...] | None:
        if now is None:
            return None
        carried = [r for r in before or () if netns_of(r) in kept]
        return tuple([r for r in now if netns_of(r) in known] + carried)

    return dataclasses.replace(
        current,
        interfaces=records(current.interfaces, last.interfaces),
        routes=records(current.routes, last.routes),
    )


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def watch(
    interval: float = 1.0,
    count: int | None = None,
    *,
    backend: str = "auto",
    netns: str | None = None,
    all_netns: bool = False,
    protos: Sequence[str] = PROTOS,
    where: str | None = None,
    ignore: Predicate | None = None,
    processes: bool = True,
    events: bool = True,
    buffer_size: int = DEFAULT_BUFFER,
    sections: Sequence[str] = ("sockets", "interfaces", "routes"),
) -> Watch:
    """Like ``netstat -c``, and more: poll every ``interval`` seconds, yield what changed.

    ``count`` bounds the number of polls after the first read (None: until
    interrupted or :meth:`Watch.close`). ``where`` (a filter expression) keeps,
    and ``ignore`` drops, differences involving the sockets they match.
    ``processes=False`` skips attributing sockets to processes. ``sections``:
    what is watched among sockets, interfaces and routes. With ``events`` (the
    default) the kernel's socket-destroy events are heard between polls, and
    rtnetlink's link, address and route messages, on which interfaces and
    routes are read again and compared at once; each event socket has a
    receive buffer of ``buffer_size`` bytes. Where events cannot be heard,
    :attr:`Watch.deaf` says why, and polls read every section. ``all_netns``
    watches every network namespace of the host instead of one (``netns``: a
    named one instead of ours): each record carries its namespace, events are
    heard from each, and namespaces that come or go are in the polls' diffs.
    """
    return Watch(
        interval,
        count,
        backend=backend,
        netns=netns,
        all_netns=all_netns,
        protos=protos,
        where=where,
        ignore=ignore,
        processes=processes,
        events=events,
        buffer_size=buffer_size,
        sections=sections,
    )
