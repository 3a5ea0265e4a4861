"""The leak engine: which window of a process tree's life left a socket open.

A :class:`LeakEngine` watches the tree of this process
(:class:`sockdiff.proctree.ProcessTree`: this process, everything it starts, and
detached daemons, kept in the tree by making this process their child subreaper
and by a token in the environment they inherit). The caller marks *windows*:
a test (:meth:`~LeakEngine.begin` .. :meth:`~LeakEngine.end`), a wider one whose
sockets stay its own until it is released (a fixture: :meth:`~LeakEngine.hold`
.. :meth:`~LeakEngine.held` .. :meth:`~LeakEngine.release`), and the *session*,
the window of everything before the first, checked by :meth:`~LeakEngine.finish`
(``sockdiff run`` marks no other window: the session is the command's run).

Only when a window leaves the tree holding inodes it did not hold before are the
sockets' details read (a snapshot, of which those inodes are kept), counted by
the fail-on kinds and filtered by the ignore expressions. Each process of the
tree, and each thread of this process (:mod:`sockdiff.threads`, from Python's
audit events), belongs to the window current when it appeared: a socket it opens
after that window ended is reported for that window (``late``), filtered by its
own expressions. A socket is read where it lives (:func:`sockdiff.netns.socket_netns`),
whichever namespace its holder is in now. What leaked comes back as
:class:`sockdiff.model.Leak` records.

Importing it costs nothing more than the standard library: the pytest plugin
imports it in every run, switched on or not.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import os
import re
import secrets
import socket
import sysconfig
import time
import tracemalloc
from collections import ChainMap
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeGuard

from .threads import SocketMakers

if TYPE_CHECKING:
    import ast
    from types import FrameType

    from .model import Leak, PortHolder, Process, Socket
    from .processes import Owners
    from .proctree import ProcessTree
    from .threads import Maker

__all__ = [
    "LEAK_KINDS",
    "TOKEN_VARIABLE",
    "LeakEngine",
    "Window",
    "address_in_use",
    "parse_leak_kinds",
    "port_holders",
]

#: The environment entry that marks the processes a watching process started.
TOKEN_VARIABLE = "SOCKDIFF_PYTEST_TOKEN"
#: The fail-on kinds that can describe a socket left open (``any`` is ``new`` here).
LEAK_KINDS = ("listening", "new", "any")
# How long a leak may take to go when its holder is about to close it: a child killed by
# the teardown but not waited for is still closing its descriptors, a server thread still
# running closes its side of a connection the test closed. 0.78 s in all, and only when
# such a holder holds a socket the window left: time enough for a busy machine to run it.
_GRACE_SECONDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
_TRACE_FRAMES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """Who a window's leaks are blamed on: a label, a kind, and where it is defined, when known."""

    label: str
    kind: Literal["test", "fixture", "command"]
    file: str = ""
    line: int = 0


#: The session's window in a test run: what appeared before the first test.
SESSION_WINDOW = Window("the session (started before the first test)", "fixture")
# The key of the session's window.
_SESSION = "<the session>"


def parse_leak_kinds(text: str, what: str = "fail_on") -> bool:
    """Whether fail-on kinds ``text`` count every socket left open (``any``, ``new``), or
    listening ones only; a kind that cannot describe a socket left open raises."""
    from .differ import parse_fail_on

    kinds = parse_fail_on(text, what, LEAK_KINDS)
    return bool({"any", "new"}.intersection(kinds))


@dataclasses.dataclass(frozen=True, slots=True)
class _Held:
    """What a wider window opened while it was set up."""

    window: Window
    inodes: frozenset[int]


class LeakEngine:
    """Leak hunting over this process's tree: mark windows, get their :class:`Leak` records.

    ``fail_on``: fail-on kinds as text (``listening``, the default, or ``new``/``any``:
    every socket); ``ignore``: filter expressions that never count, for every window.
    Windows are keyed by any hashable the caller chooses. Bad kinds or expressions
    raise :class:`~sockdiff.errors.UsageError`.
    """

    def __init__(
        self,
        fail_on: str = "listening",
        ignore: Sequence[str] = (),
        *,
        session: Window = SESSION_WINDOW,
        token_variable: str = TOKEN_VARIABLE,
    ) -> None:
        self.every_socket = parse_leak_kinds(fail_on)
        self.ignore_lines = tuple(ignore)
        self._ignores: dict[tuple[str, ...], Callable[[Socket], bool] | None] = {}
        self.compile(self.ignore_lines)
        self._token_variable = token_variable
        self._tracing = False  # tracemalloc started here, and stopped by stop()
        self._tree: ProcessTree | None = None
        self._held: dict[Hashable, _Held] = {}  # a live wider window -> what it opened
        self._holding: dict[Hashable, tuple[frozenset[int], Hashable]] = {}  # being set up: before, outer
        self._fixtures_opened: set[int] = set()  # never a test's, even once its wider window is gone
        self._places: dict[Hashable, Window] = {_SESSION: session}
        self._before: dict[Hashable, frozenset[int]] = {}  # a checked window -> the inodes before it
        self._window: Hashable = _SESSION
        # Which thread made each of our socket objects (those made outside the main thread), and
        # the window current when that thread appeared: a thread's sockets are its starter's.
        self._makers = SocketMakers()
        # Who started each process of the tree: the window current when it appeared.
        self._origin: dict[int, Hashable] = {}
        # Each window's ignore expressions (None: not checked), to filter its late sockets.
        self._expressions: dict[Hashable, tuple[str, ...] | None] = {_SESSION: self.ignore_lines}
        self._session_inodes: set[int] = set()  # opened by what the session started, checked at its end
        self._members: frozenset[int] = frozenset()
        self._last_seen: frozenset[int] = frozenset()  # the tree's inodes after the last window
        self._first_seen: dict[int, float] = {}  # inode -> when poll() first saw it
        self._opened_in: dict[int, Window] = {}  # inode -> the window that opened it, as last seen
        self._started = 0.0

    @property
    def watching(self) -> bool:
        return self._tree is not None

    def compile(self, expressions: tuple[str, ...]) -> Callable[[Socket], bool] | None:
        """The predicate of ``expressions`` (raises on a bad one), compiled once."""
        if expressions not in self._ignores:
            from .filter import compile_filters

            self._ignores[expressions] = compile_filters(expressions)
        return self._ignores[expressions]

    def start(self) -> None:
        """Start watching (once): the token in the environment, this process a subreaper.

        What runs already, threads and children, is the session's.
        """
        if self._tree is None:
            self._started = time.monotonic()
            self._holders()

    def trace(self) -> None:
        """Start tracemalloc, to tell where this process created each leaked socket.

        One read of the sockets first, untraced: what it imports (pyroute2, and what
        pyroute2 imports on first use) takes ten seconds and more under tracemalloc.
        """
        if tracemalloc.is_tracing():
            return
        from . import differ  # noqa: F401
        from .acquire import take
        from .formats import leaks  # noqa: F401

        take(processes=False, sections=("sockets",))
        tracemalloc.start(_TRACE_FRAMES)
        self._tracing = True

    def stop(self) -> None:
        """Stop listening to threads, and tracing when :meth:`trace` started it."""
        self._makers.stop()
        if self._tracing:
            tracemalloc.stop()
            self._tracing = False

    def members(self) -> frozenset[int]:
        """The pids of the tree now (some may have ended since they were seen)."""
        return frozenset() if self._tree is None else self._tree.members()

    def poll(self) -> None:
        """Note when each inode the tree holds now was first seen (``Leak.appeared``)."""
        if self._tree is None:
            return
        now = time.monotonic() - self._started
        for inode in self._holders().keys() - self._first_seen.keys():
            self._first_seen[inode] = now

    # The tree, set up on first use.

    def _holders(self) -> Owners:
        from .processes import owners_among

        if self._tree is None:
            from .proctree import ProcessTree, become_subreaper

            token = secrets.token_hex(8)
            os.environ[self._token_variable] = token
            become_subreaper()
            self._tree = ProcessTree(marker=f"{self._token_variable}={token}")
            self._makers.start(self._window)
        members = self._tree.members()
        if members is not self._members:  # the same set object while no process was created
            origin, tree = self._origin, self._tree
            for pid in sorted(members - origin.keys()):  # a parent's pid is most often lower
                parent = tree.parent(pid)
                origin[pid] = origin[parent] if parent in origin and parent != tree.root else self._window
            self._origin = {pid: origin[pid] for pid in members}
            self._members = members
        return owners_among(sorted(members))

    def _enter(self, key: Hashable) -> None:
        """Make window ``key`` (None: none) the one new processes and threads belong to."""
        self._makers.enter(key)
        self._window = key

    # A window checked at its end

    def begin(self, key: Hashable, window: Window, expressions: tuple[str, ...] | None) -> None:
        """Window ``key`` begins; ``expressions``: its own ignores (None: do not check it).

        A bad expression raises before anything changes.
        """
        self.start()
        if expressions is not None:
            self.compile(self.ignore_lines + expressions)
            self._before[key] = frozenset(self._holders())
        self._places[key] = window
        self._expressions[key] = None if expressions is None else self.ignore_lines + expressions
        self._enter(key)

    def end(self, key: Hashable) -> tuple[Leak, ...]:
        """Window ``key`` ends: what it left open, after what windows it outlived left (``late``)."""
        try:
            return self._end(key)
        finally:
            self._enter(None)

    def _end(self, key: Hashable) -> tuple[Leak, ...]:
        before = self._before.pop(key, None)
        if before is None:
            return ()  # not checked
        holders = self._holders()
        self._last_seen = frozenset(holders)
        opened = holders.keys() - before - self._fixtures_opened
        self._opened_in.update(dict.fromkeys(opened, self._places[key]))
        if not opened:
            return ()
        late, own = self._sort_out(opened, holders, key)
        window = self._places[key]
        return (*late, *self._leaks(own, window))

    def _sort_out(
        self, inodes: Iterable[int], holders: Owners, owner: Hashable
    ) -> tuple[list[Leak], tuple[Socket, ...]]:
        """The late leaks among ``inodes``, and the sockets that are ``owner``'s.

        A process or a thread started by an earlier window that opens a socket only
        later (a daemon slow to start, a server thread, a pool that grows) leaks for
        its starter: a live wider window keeps it as its own, and so does the session
        what it started before the first window; an ended window gets it, ``late``,
        filtered by its own expressions.
        """
        inodes = tuple(inodes)
        starters = self._starters({inode: holders[inode] for inode in inodes})
        own: set[int] = set()
        late: dict[Hashable, set[int]] = {}
        for inode in inodes:
            starter = starters[inode]
            if starter is None or starter == owner:
                own.add(inode)
            elif not self._keep_for_wider(starter, inode):
                late.setdefault(starter, set()).add(inode)
        found: list[Leak] = []
        for starter, inodes_late in late.items():
            expressions = self._expressions.get(starter, ())
            if expressions is None:  # not checked
                continue
            sockets = self._leaked(inodes_late, holders, self.compile(expressions))
            found += self._leaks(sockets, self._places[starter], late=True)
        if not own or owner is None:  # between windows, what the main thread opened is no window's
            return found, ()
        expressions = self._expressions.get(owner, ())
        if expressions is None:
            return found, ()
        return found, self._leaked(own, holders, self.compile(expressions))

    # A wider window: what it opened while set up stays its own until it is released

    def hold(self, key: Hashable, window: Window, expressions: tuple[str, ...] | None) -> None:
        """Wider window ``key`` starts being set up; a bad expression raises before anything changes."""
        self.start()
        if expressions is not None:
            expressions = self.ignore_lines + expressions
            self.compile(expressions)
        before = frozenset(self._holders().keys())
        self._places[key] = window
        self._expressions[key] = expressions
        self._holding[key] = (before, self._window)
        self._enter(key)

    def held(self, key: Hashable) -> None:
        """Wider window ``key`` is set up: what it opened since :meth:`hold` is its own."""
        before, outer = self._holding.pop(key)
        # Wider windows set up inside this one kept their own sockets.
        holders = self._holders()
        opened = holders.keys() - before - self._fixtures_opened
        self._enter(outer)
        # Only what it (its code, its threads and children) opened: what an earlier window's
        # thread or child opened meanwhile is left to the window being set up, which gives it
        # to its starter; a live wider window's, or the session's, is kept by them.
        starters = self._starters({inode: holders[inode] for inode in opened})
        mine = {
            inode
            for inode, starter in starters.items()
            if starter is None or starter is key or self._keep_for_wider(starter, inode)
        } - self._fixtures_opened
        self._fixtures_opened |= mine
        self._opened_in.update(dict.fromkeys(mine, self._places[key]))
        self._held[key] = _Held(self._places[key], frozenset(mine))

    def release(self, key: Hashable, during: Hashable = None) -> tuple[Leak, ...]:
        """Wider window ``key`` ends, while window ``during`` (None: none) runs: what it left open.

        What its processes and threads opened during ``during`` is its own too.
        """
        held = self._held.pop(key, None)
        if held is None:
            return ()
        holders = self._holders()
        still_open = held.inodes & holders.keys()
        before = None if during is None else self._before.get(during)
        if before is not None:
            fresh = holders.keys() - before - self._fixtures_opened
            starters = self._starters({inode: holders[inode] for inode in fresh})
            still_open |= {inode for inode, starter in starters.items() if starter is key}
        if not still_open:
            return ()
        self._fixtures_opened |= still_open
        expressions = self._expressions.pop(key, self.ignore_lines)
        if expressions is None:
            return ()
        return self._leaks(self._leaked(still_open, holders, self.compile(expressions)), held.window)

    def _keep_for_wider(self, starter: Hashable, inode: int) -> bool:
        """Give ``inode`` to wider window ``starter`` if it is live (checked when it is released)."""
        if starter == _SESSION:
            self._session_inodes.add(inode)
            self._fixtures_opened.add(inode)
            return True
        if starter is None or starter not in self._held:
            return False
        held = self._held[starter]
        self._held[starter] = dataclasses.replace(held, inodes=held.inodes | {inode})
        self._fixtures_opened.add(inode)
        return True

    # The end

    def finish(self) -> tuple[Leak, ...]:
        """The session ends: what the tree opened since the last window, and what the session left."""
        if self._tree is None:
            return ()
        holders = self._holders()
        opened = holders.keys() - self._last_seen - self._fixtures_opened
        found: list[Leak] = []
        if opened:  # what the main thread opened between windows is no window's
            found += self._sort_out(opened, holders, None)[0]
        session_open = self._session_inodes & holders.keys()
        if session_open:
            sockets = self._leaked(session_open, holders, self.compile(self.ignore_lines))
            found += self._leaks(sockets, self._places[_SESSION])
        return tuple(found)

    # Who holds a port

    def port_holders(self, port: int | None) -> tuple[PortHolder, ...]:
        """The sockets bound to ``port`` in this process's namespace now, each with its processes
        and the window that opened it, when one of this engine's windows did. ``port`` None (the
        failing bind's port is unknown): the listening sockets this engine's windows opened."""
        return port_holders(port, self._opened_in)

    # What leaked

    def _leaked(
        self, inodes: Iterable[int], holders: Owners, ignore: Callable[[Socket], bool] | None
    ) -> tuple[Socket, ...]:
        """The counted sockets among ``inodes``; waits a little for dying holders.

        Another process may be dying (a child killed in teardown, not waited for); a
        thread of this one that made the socket and still runs may be about to close
        it (a server thread's side of a connection the test closed).
        """
        sockets = self._counted(set(inodes), holders, ignore)
        waited = False
        for pause in _GRACE_SECONDS:
            made = self._made({sock.inode: sock.processes for sock in sockets})
            running = {inode for inode, maker in made.items() if maker.thread.is_alive()}
            if all(
                process.pid == os.getpid() and sock.inode not in running
                for sock in sockets
                for process in sock.processes
            ):
                break
            time.sleep(pause)
            waited = True
            holders = self._holders()
            sockets = self._counted({sock.inode for sock in sockets} & holders.keys(), holders, ignore)
        if waited and sockets:
            # A thread may have closed its socket between the holders' read and the makers':
            # its socket object then says no descriptor, and the socket is gone.
            holders = self._holders()
            sockets = tuple(sock for sock in sockets if sock.inode in holders)
        return sockets

    def _starters(self, held: Mapping[int, Sequence[Process]]) -> dict[int, Hashable]:
        """inode -> who started its holder: the thread that made it, or the other processes holding it.

        None: the window running, or a socket this process shares with another.
        """
        makers = self._made(held)
        found: dict[int, Hashable] = {}
        for inode, processes in held.items():
            pids = {process.pid for process in processes}
            if inode in makers:  # held by this process alone, made by a thread of it
                found[inode] = makers[inode].starter
            else:
                starters = {self._origin.get(pid) for pid in pids}
                found[inode] = starters.pop() if len(starters) == 1 and os.getpid() not in pids else None
        return found

    def _made(self, held: Mapping[int, Sequence[Process]]) -> dict[int, Maker]:
        """inode -> the thread that made it, for the sockets held by this process alone."""
        pid = os.getpid()
        fds = {
            inode: fd
            for inode, processes in held.items()
            if processes
            and (fd := processes[0].fd) is not None
            and all(process.pid == pid for process in processes)
        }
        return self._makers.made(fds)

    def _leaks(self, sockets: Iterable[Socket], window: Window, *, late: bool = False) -> tuple[Leak, ...]:
        """``sockets`` as leaks of ``window``, with where and by which thread this process made each."""
        import msgspec

        from .model import Holder, Leak, netns_of
        from .processes import holder

        sockets = tuple(sockets)
        if not sockets:
            return ()
        described: dict[int, Holder | None] = {}
        for pid in sorted({p.pid for sock in sockets for p in sock.processes}):
            described[pid] = holder(pid)
        threads = {
            inode: maker.name
            for inode, maker in self._made({sock.inode: sock.processes for sock in sockets}).items()
        }
        pid = os.getpid()
        origins = _origins(
            {p.fd for sock in sockets for p in sock.processes if p.pid == pid and p.fd is not None}
        )
        labels = _netns_labels({inode for sock in sockets if (inode := netns_of(sock)) is not None})
        found = []
        for sock in sockets:
            created = [
                origins[fd]
                for p in sock.processes
                if p.pid == pid and (fd := p.fd) is not None and fd in origins
            ]
            inode = netns_of(sock)
            found.append(
                Leak(
                    sock,
                    window.label,
                    window.kind,
                    window.file,
                    window.line,
                    late=late,
                    created=created[0] if created else None,
                    thread=threads.get(sock.inode),
                    appeared=self._first_seen.get(sock.inode),
                    holders=tuple(
                        described_pid
                        for pid in sorted({p.pid for p in sock.processes})
                        if (described_pid := described[pid]) is not None
                    ),
                    netns=msgspec.UNSET if inode is None else labels[inode],
                )
            )
        return tuple(found)

    def _counted(
        self, inodes: set[int], holders: Owners, ignore: Callable[[Socket], bool] | None
    ) -> tuple[Socket, ...]:
        if not inodes:
            return ()
        import msgspec

        from .acquire import take
        from .differ import diff
        from .ssview import is_listening

        details = take(processes=False, sections=("sockets",))
        found = {sock.inode: sock for sock in details.sockets or () if sock.inode in inodes}
        if len(found) < len(inodes):
            found.update(_elsewhere(inodes - found.keys(), holders))
        # The owners are known already: the tree's scan found them.
        held = tuple(msgspec.structs.replace(sock, processes=holders[inode]) for inode, sock in found.items())
        # Left open = new against the same sockets with none of them: diff sorts and applies the ignore list.
        opened = diff(
            dataclasses.replace(details, sockets=()),
            dataclasses.replace(details, sockets=held),
            ignore=ignore,
        ).opened
        return opened if self.every_socket else tuple(sock for sock in opened if is_listening(sock))


_MESSAGE_PORT = re.compile(r"address \(.*?, (\d+)[,)]")
# What a value the source names cannot be read as (a call, an index: reading it could run code).
_UNREAD = object()


def address_in_use(error: BaseException) -> tuple[OSError, int | None] | None:
    """The EADDRINUSE error in ``error``'s chain (causes, contexts, exception groups), and the port
    it wanted when its message or the failing call says; None: no such error."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.EADDRINUSE:
            return current, _wanted_port(current)
        if isinstance(current, BaseExceptionGroup):
            pending += current.exceptions
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return None


def _wanted_port(error: OSError) -> int | None:
    """The port in the error's message (asyncio's says it), or in the address the failing
    ``bind``/``connect`` call was given, when its source names it plainly: literals, names,
    ``self.attribute`` and tuples of them (``sock.bind(("127.0.0.1", port))``, the standard
    library's ``sock.bind(address)``, socketserver's ``bind(self.server_address)``).
    Anything else is unknown: a name that merely looks like a port is never trusted."""
    found = _MESSAGE_PORT.search(str(error))
    if found is not None:
        return int(found[1])
    innermost = error.__traceback__
    if innermost is None:
        return None
    while innermost.tb_next is not None:
        innermost = innermost.tb_next
    address = _called_with(innermost.tb_frame, innermost.tb_lasti)
    if type(address) is tuple and len(address) >= 2 and _is_port(address[1]):
        return address[1]
    return None


def _called_with(frame: FrameType, lasti: int) -> object:
    """The one argument of the ``.bind(...)`` or ``.connect(...)`` call at instruction ``lasti``
    of ``frame``, read from its source and the frame's names; :data:`_UNREAD` if not plain."""
    import ast
    import linecache

    code = frame.f_code
    positions = list(code.co_positions())
    if not 0 <= lasti // 2 < len(positions):
        return _UNREAD
    first, last, start, end = positions[lasti // 2]
    if first is None or last is None or start is None or end is None:
        return _UNREAD
    lines = [linecache.getline(code.co_filename, number).encode() for number in range(first, last + 1)]
    lines[-1] = lines[-1][:end]  # columns count UTF-8 bytes
    lines[0] = lines[0][start:]
    try:
        call = ast.parse(b"".join(lines).decode(), mode="eval").body
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return _UNREAD
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in ("bind", "connect")
        and len(call.args) == 1
        and not call.keywords
    ):
        return _UNREAD
    return _plain_value(call.args[0], ChainMap(frame.f_locals, frame.f_globals))


def _plain_value(node: ast.expr, names: Mapping[str, object]) -> object:
    """``node``'s value when reading it runs no code: a literal, a name, ``name.attribute`` as
    stored (no property runs), a tuple of these; else :data:`_UNREAD`."""
    import ast
    import inspect

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id, _UNREAD)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
        value = inspect.getattr_static(names[node.value.id], node.attr, _UNREAD)
        return value if type(value) is tuple else _UNREAD  # an address as stored; nothing runs
    if isinstance(node, ast.Tuple):
        return tuple(_plain_value(element, names) for element in node.elts)
    return _UNREAD


def _is_port(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 < value < 65536  # exactly an int: no subclass's code runs


def port_holders(port: int | None, opened_in: Mapping[int, Window] | None = None) -> tuple[PortHolder, ...]:
    """The sockets bound to ``port`` (TCP, UDP) in this process's namespace now, each with
    its holders' command lines and ages, and (``opened_in``: inode -> window) who opened it.

    ``port`` None: the port is unknown, and the listening sockets among ``opened_in`` stand in.
    """
    from .acquire import take
    from .model import PortHolder
    from .processes import holder
    from .ssview import is_listening

    opened_in = opened_in or {}
    found = []
    for sock in take(sections=("sockets",), protos=("tcp", "udp")).sockets or ():
        if sock.local.port == port if port is not None else sock.inode in opened_in and is_listening(sock):
            pids = sorted({p.pid for p in sock.processes})
            described = tuple(h for h in map(holder, pids) if h is not None)
            window = opened_in.get(sock.inode)
            found.append(PortHolder(sock, described, None if window is None else window.label))
    return tuple(found)


def _elsewhere(inodes: set[int], holders: Owners) -> dict[int, Socket]:
    """The sockets among ``inodes`` that live in another network namespace than the one read.

    A socket lives where it was made, wherever its holder went since: a test that
    entered a namespace, listened and came back, or listened and then left. Each
    socket's namespace is asked of the socket (:func:`sockdiff.netns.socket_netns`),
    or, where the kernel will not say, taken to be its holder's (``/proc/PID/ns/net``).
    Each namespace is read once; entering one takes root, so without it they stay
    unread (and uncounted).
    """
    import msgspec

    from .acquire import take
    from .errors import SockdiffError
    from .netns import socket_netns

    here = os.stat("/proc/thread-self/ns/net").st_ino  # read already
    namespaces: dict[int, tuple[str, int | None]] = {}  # namespace inode -> path to enter, fd to close
    try:
        for inode in inodes:
            holder = holders[inode][0]
            if holder.fd is None:  # a live holder always has its fd
                continue
            fd = socket_netns(holder.pid, holder.fd, inode)
            path = f"/proc/{holder.pid}/ns/net" if fd is None else f"/proc/self/fd/{fd}"
            try:
                namespace = os.stat(path).st_ino
            except OSError:
                namespace = here  # the holder is gone: so is the socket, most likely
            if namespace == here or namespace in namespaces:
                if fd is not None:
                    os.close(fd)
            else:
                namespaces[namespace] = (path, fd)
        found: dict[int, Socket] = {}
        for namespace, (path, _) in namespaces.items():
            try:
                there = take(netns=path, processes=False, sections=("sockets",))
            except SockdiffError:
                continue
            found.update(
                (sock.inode, msgspec.structs.replace(sock, netns=namespace))  # where it lives, said
                for sock in there.sockets or ()
                if sock.inode in inodes
            )
        return found
    finally:
        for _, fd in namespaces.values():
            if fd is not None:
                os.close(fd)


def _netns_labels(inodes: set[int]) -> dict[int, str]:
    """Inode -> label of each namespace among ``inodes``: its first ``ip netns`` name, else
    ``net:[INODE]`` (as :func:`sockdiff.model.namespace_label` names one with no container)."""
    if not inodes:
        return {}
    from .namespaces import netns_names

    names = netns_names()
    return {inode: min(names[inode]) if names.get(inode) else f"net:[{inode}]" for inode in inodes}


def _origins(fds: set[int]) -> Mapping[int, str]:
    """Where the socket objects of this process holding ``fds`` were created (tracemalloc on)."""
    if not fds or not tracemalloc.is_tracing():
        return {}
    found: dict[int, str] = {}
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket):
            fd = obj.fileno()
            if fd in fds and fd not in found:
                traceback = tracemalloc.get_object_traceback(obj)
                if traceback is not None:
                    found[fd] = _caller(traceback)
    return found


def _caller(traceback: tracemalloc.Traceback) -> str:
    """The newest frame outside the standard library (socket.create_server's caller, say)."""
    stdlib = (sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"))
    frames = list(traceback)  # oldest first
    chosen = next((f for f in reversed(frames) if not f.filename.startswith(stdlib)), frames[-1])
    path = Path(chosen.filename)
    try:
        cwd = Path.cwd()
    except OSError:  # a test removed the directory it ran in: the path is shown whole
        cwd = None
    shown = path.relative_to(cwd) if cwd is not None and path.is_relative_to(cwd) else path
    return f"{shown}:{chosen.lineno}"
