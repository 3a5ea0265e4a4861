"""``watch``: polls at an interval, and the kernel's events in between.

Polling alone misses a socket that opens and closes between two reads. So the
watch also listens to sock_diag's socket-destroy events (see
:mod:`sockdiff.events`) and, at each poll, reports the destroyed sockets no poll
accounts for as closed and *short-lived*. Each close is reported once: a
destroy event is the poll's when its socket (by identity, as the differ matches
sockets) is one the poll diff reports closed or changed now or reported at the
previous poll (its event may come late), or one the poll has just read (it was
destroyed during the dump, and the next poll reports it). A short-lived socket
that shares its identity with one of those (the same four-tuple reused within
two polls) is taken for it: the event carries no inode to tell them apart.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import msgspec

from .differ import Diff, diff, identity
from .errors import BackendUnavailable
from .events import DEFAULT_BUFFER, DESTROY_GROUPS, Destroyed, Listener, Overrun
from .model import PROTOS, Socket
from .processes import OwnerTracker
from .snapshots import Snapshot, take

__all__ = ["Report", "Watch", "watch"]

Predicate = Callable[[Socket], bool]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Report:
    """One thing the watch saw, at ``time`` (ISO 8601, UTC, milliseconds).

    First the ``baseline``, the first read. Then a poll's ``diff`` with the
    ``short_lived`` sockets destroyed since the previous poll that no poll saw;
    or an ``overrun``: events lost to a full receive buffer (what was lost),
    after which a poll follows at once.
    """

    time: str
    baseline: Snapshot | None = None
    diff: Diff | None = None
    short_lived: tuple[Socket, ...] = ()
    overrun: str | None = None


class _Claims:
    """Which destroy events the polls account for, so each close is reported once."""

    def __init__(self) -> None:
        self._late: Counter[Hashable] = Counter()  # closes of the previous poll not yet heard of

    def short_lived(self, result: Diff, destroyed: Sequence[Socket]) -> list[Socket]:
        """The ``destroyed`` sockets that neither this poll nor the previous one reports."""
        reported: Counter[Hashable] = Counter(identity(s) for s in result.closed)
        reported.update(identity(c.old) for c in result.changed)
        if not destroyed:
            self._late = reported
            return []
        # Sockets the poll has just read but whose destroy event is already here:
        # the next poll reports them closed. Only ports that events name are looked at.
        ports = {s.local.port for s in destroyed}
        just_read: Counter[Hashable] = Counter(
            identity(s)
            for s in result.new.sockets or ()
            if s.local.port in ports and s.proto in DESTROY_GROUPS and s.state != "TIME_WAIT"
        )
        found = []
        for sock in destroyed:
            key = identity(sock)
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
        protos: Sequence[str],
        where: str | None,
        ignore: Predicate | None,
        processes: bool,
        events: bool,
        buffer_size: int,
    ) -> None:
        self.interval = interval
        self.count = count
        self.backend = backend
        self.netns = netns
        self.protos = tuple(protos)
        self.where: Predicate | None = None
        if where is not None:
            from .filter import compile_filter

            self.where = compile_filter(where)
        self.ignore = ignore
        self.processes = processes
        self.events = events
        self.buffer_size = buffer_size
        self.polls = 0
        self.counts = {"new": 0, "closed": 0, "changed": 0, "short_lived": 0}
        self.overruns = 0
        #: Why no kernel events are heard, when they are not (None: they are, or were not asked for).
        self.deaf: str | None = None
        self._listener: Listener | None = None
        self._owners = OwnerTracker() if processes else None

    def _wanted(self, sock: Socket) -> bool:
        if self.ignore is not None and self.ignore(sock):
            return False
        return self.where is None or self.where(sock)

    def _take(self) -> Snapshot:
        tracker = self._owners
        taken = take(
            backend=self.backend,
            netns=self.netns,
            protos=self.protos,
            sections=("sockets",),
            owners=tracker.owners if tracker is not None else {},
        )
        # Resolved once: a fallback from netlink to /proc is warned about once, not every poll.
        self.backend = taken.header.backend
        sockets = taken.sockets or ()
        if tracker is None:
            return taken
        # Owners read after the sockets, and only as far as the sockets changed:
        # records whose holders the update changed are made again.
        inodes = {s.inode for s in sockets}
        # Holders that changed elsewhere (in another namespace) are no concern of this read.
        changed = tracker.update(inodes) & inodes
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
        heard = [p for p in self.protos if p in DESTROY_GROUPS]
        if not self.events or not heard:
            return None
        try:
            return Listener(heard, netns=self.netns, buffer_size=self.buffer_size)
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
        previous = self._take()
        yield Report(_now(), baseline=previous)
        destroyed: list[Socket] = []
        deadline = time.monotonic() + self.interval
        while self.count is None or self.polls < self.count:
            poll_now = False
            if listener is None:
                time.sleep(max(0.0, deadline - time.monotonic()))
            else:
                for event in listener.wait(max(0.0, deadline - time.monotonic())):
                    if isinstance(event, Destroyed):
                        destroyed.append(event.socket)
                    elif isinstance(event, Overrun):
                        self.overruns += 1
                        poll_now = True
                        yield Report(_now(), overrun=event.source)
            if not poll_now and time.monotonic() < deadline:
                continue
            current = self._take()
            stamp = _now()
            if listener is not None:
                # What came in during the read belongs to this poll.
                destroyed += (e.socket for e in listener.wait(0) if isinstance(e, Destroyed))
            result = diff(previous, current)
            short = [s for s in claims.short_lived(result, destroyed) if self._wanted(s)]
            destroyed = []
            result = self._narrowed(result)
            self.polls += 1
            self.counts["new"] += len(result.opened)
            self.counts["closed"] += len(result.closed) + len(short)
            self.counts["changed"] += len(result.changed)
            self.counts["short_lived"] += len(short)
            yield Report(stamp, diff=result, short_lived=tuple(short))
            previous = current
            now = time.monotonic()
            deadline = deadline + self.interval if deadline > now else now + self.interval

    def close(self) -> None:
        """Stop listening (the iteration ends with it)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def summary(self) -> str:
        """``3 polls, 4 differences (1 new, 2 closed of which 1 short-lived, 1 changed)``."""
        counts = self.counts
        total = counts["new"] + counts["closed"] + counts["changed"]
        text = (
            f"{_plural(self.polls, 'poll')}, {_plural(total, 'difference')} ({counts['new']} new,"
            f" {counts['closed']} closed of which {counts['short_lived']} short-lived,"
            f" {counts['changed']} changed)"
        )
        if self.overruns:
            text += f"; events lost {_plural(self.overruns, 'time')}"
        return text


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def watch(
    interval: float = 1.0,
    count: int | None = None,
    *,
    backend: str = "auto",
    netns: str | None = None,
    protos: Sequence[str] = PROTOS,
    where: str | None = None,
    ignore: Predicate | None = None,
    processes: bool = True,
    events: bool = True,
    buffer_size: int = DEFAULT_BUFFER,
) -> Watch:
    """Like ``netstat -c``, and more: poll every ``interval`` seconds, yield what changed.

    ``count`` bounds the number of polls after the first read (None: until
    interrupted or :meth:`Watch.close`). ``where`` (a filter expression) keeps,
    and ``ignore`` drops, differences involving the sockets they match.
    ``processes=False`` skips attributing sockets to processes. With ``events`` (the default) the kernel's
    socket-destroy events are heard between polls, each event socket with a
    receive buffer of ``buffer_size`` bytes; where they cannot be,
    :attr:`Watch.deaf` says why and only polls are made.
    """
    return Watch(
        interval,
        count,
        backend=backend,
        netns=netns,
        protos=protos,
        where=where,
        ignore=ignore,
        processes=processes,
        events=events,
        buffer_size=buffer_size,
    )
