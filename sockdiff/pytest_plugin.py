"""pytest plugin: which test, or which fixture, left a socket open.

Registered under the ``pytest11`` entry point ``sockdiff`` and inert unless asked
for (``--sockdiff``, ``--sockdiff-strict``, ``--sockdiff-trace`` or ini
``sockdiff = report|strict``): until then it only declares its options and its
marker, and registers no other hook.

When on, around every test it reads the socket inodes held by the test process's
tree (:class:`sockdiff.proctree.ProcessTree`: the pytest process, everything it
started, and detached daemons, kept in the tree by making pytest their child
subreaper and by a marker in the environment they inherit). Only when a test
leaves the tree holding inodes it did not hold before are the sockets' details
read (a snapshot, of which those inodes are kept), counted by ``sockdiff_fail_on``
and filtered by ``sockdiff_ignore`` and the ``sockdiff_ignore`` marker. Inodes
opened while a wider-scoped fixture was set up belong to that fixture and are
checked when pytest finalizes it. Each process of the tree, and each thread of
the pytest process (:mod:`sockdiff.threads`, from Python's audit events), belongs
to the test or fixture running when it appeared (or, before the first test, to
the session, checked at its end): a socket it opens after that one ended is
reported for it, filtered by its own ``sockdiff_ignore`` marks, not for the test
running then. A socket is checked
where it lives (:func:`sockdiff.netns.socket_netns`), whichever namespace its
holder is in now.

What was found travels on the teardown report (``report.sockdiff_leaks``, and a
``sockdiff`` user property a socket, which JUnit XML shows), so under
pytest-xdist each worker checks its own tests and the controller's summary lists
every leak.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import secrets
import socket
import sys
import sysconfig
import time
import tracemalloc
import warnings
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .threads import SocketMakers

if TYPE_CHECKING:
    from .model import Process, Socket
    from .processes import Owners
    from .proctree import ProcessTree
    from .threads import Maker

__all__ = ["TOKEN_VARIABLE", "SockdiffLeakWarning"]

#: The environment entry that marks processes started by this pytest process (or xdist worker).
TOKEN_VARIABLE = "SOCKDIFF_PYTEST_TOKEN"
#: The name of the leak hunter in pytest's plugin manager, once switched on.
PLUGIN_NAME = "sockdiff-leak-hunter"
#: The report attribute carrying a teardown's leaks: a list of {"owner", "kind", "sockets"}.
REPORT_ATTRIBUTE = "sockdiff_leaks"
#: The report attribute set (True) on the teardown report of each test checked.
CHECKED_ATTRIBUTE = "sockdiff_checked"
MODES = ("off", "report", "strict")
# Kinds of --fail-on that can describe a socket left open.
_LEAK_KINDS = frozenset({"any", "new", "listening"})
# How long a leak may take to go when its holder is about to close it: a child killed by
# the teardown but not waited for is still closing its descriptors, a server thread still
# running closes its side of a connection the test closed. 0.78 s in all, and only when
# such a holder holds a socket the test left: time enough for a busy machine to run it.
_GRACE_SECONDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
_TRACE_FRAMES = 32


class _Session:
    """Who started what appeared before the first test (a thread or a child a conftest started)."""

    def __repr__(self) -> str:
        return "<the session>"


#: The starter of what appeared before the first test: no test's, checked at the session's end.
_SESSION = _Session()
_SESSION_LABEL = "the session (started before the first test)"


class SockdiffLeakWarning(UserWarning):
    """A test left sockets open (``--sockdiff`` report mode)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sockdiff", "which test left a socket open (sockdiff)")
    group.addoption(
        "--sockdiff",
        action="store_const",
        const="report",
        dest="sockdiff_mode",
        help="report the tests and fixtures that leave sockets open (a warning each, and a summary)",
    )
    group.addoption(
        "--sockdiff-strict",
        action="store_const",
        const="strict",
        dest="sockdiff_mode",
        help="fail the tests that leave sockets open (an error in their teardown)",
    )
    group.addoption(
        "--sockdiff-trace",
        action="store_true",
        dest="sockdiff_trace",
        help="start tracemalloc, to tell where the test process created each leaked socket"
        " (implies --sockdiff unless --sockdiff-strict is given)",
    )
    parser.addini("sockdiff", "leak hunting: off (default), report or strict", default="off")
    parser.addini(
        "sockdiff_fail_on",
        "the sockets that count as leaks, as sockdiff compare --fail-on: listening (default), new",
        default="listening",
    )
    parser.addini(
        "sockdiff_ignore", "sockets never reported: filter expressions, one a line", type="linelist"
    )


def pytest_configure(config: pytest.Config) -> None:
    # The marker is declared even when off, so --strict-markers accepts it in every run.
    config.addinivalue_line(
        "markers",
        "sockdiff_ignore(*expressions): sockets matching these filter expressions are not this"
        " test's leaks; with no expression, sockdiff does not check the test",
    )
    mode = config.getoption("sockdiff_mode") or str(config.getini("sockdiff")).strip() or "off"
    if mode not in MODES:
        raise pytest.UsageError(f"ini sockdiff = {mode!r}: choose from {', '.join(MODES)}")
    trace = bool(config.getoption("sockdiff_trace"))
    if mode == "off" and trace:
        mode = "report"
    if mode != "off":
        config.pluginmanager.register(LeakHunter(config, strict=mode == "strict", trace=trace), PLUGIN_NAME)


@dataclasses.dataclass(frozen=True, slots=True)
class _Held:
    """What a wider-scoped fixture opened while it was set up."""

    label: str
    file: str
    line: int
    inodes: frozenset[int]


_BEFORE = pytest.StashKey[frozenset[int]]()
_FOUND = pytest.StashKey[list[dict[str, Any]]]()
_CHECKED = pytest.StashKey[bool]()


class LeakHunter:
    """The hooks of a run with leak hunting on."""

    def __init__(self, config: pytest.Config, *, strict: bool, trace: bool) -> None:
        from .differ import parse_fail_on
        from .errors import SockdiffError

        self.config = config
        self.strict = strict
        try:
            kinds = set(parse_fail_on(str(config.getini("sockdiff_fail_on"))))
        except SockdiffError as err:
            raise pytest.UsageError(f"ini sockdiff_fail_on: {err}") from None
        if kinds - _LEAK_KINDS:
            wrong = ", ".join(sorted(kinds - _LEAK_KINDS))
            raise pytest.UsageError(
                f"ini sockdiff_fail_on: {wrong} cannot describe a socket left open (use listening or new)"
            )
        self.every_socket = bool(kinds & {"any", "new"})
        self.ignore_lines = tuple(str(line) for line in config.getini("sockdiff_ignore"))
        self._ignores: dict[tuple[str, ...], Callable[[Socket], bool] | None] = {}
        try:
            self._ignore_for(self.ignore_lines)
        except SockdiffError as err:
            raise pytest.UsageError(f"ini sockdiff_ignore: {err}") from None
        self.trace = trace
        self._tracing = False  # tracemalloc started here, and stopped when the tests are done
        self._tree: ProcessTree | None = None
        self._held: dict[object, _Held] = {}  # FixtureDef -> what it opened, until it is finalized
        self._fixtures_opened: set[int] = set()  # never a test's, even once its fixture is gone
        self._places: dict[
            object, tuple[str, str, int]
        ] = {}  # test nodeid or FixtureDef -> label, file, line
        self._tearing_down: pytest.Item | None = None
        self._setting_up: pytest.Item | None = None
        # Who started each process of the tree: the test (nodeid) or fixture (FixtureDef) that ran
        # when it appeared, or None. A socket a process opens after its starter ended is the starter's.
        self._window: object = _SESSION
        # Which thread made each of our socket objects (those made outside the main thread), and
        # the test or fixture that ran when that thread appeared: a thread's sockets are its starter's.
        self._makers = SocketMakers()
        self._checked = 0  # tests checked (here, or by the workers whose reports came here)
        self._origin: dict[int, object] = {}
        # Each starter's sockdiff_ignore expressions (None: not checked), to filter its late sockets.
        self._expressions: dict[object, tuple[str, ...] | None] = {_SESSION: ()}
        self._places[_SESSION] = (_SESSION_LABEL, "", 0)
        self._session_inodes: set[int] = set()  # opened by what the session started, checked at its end
        self._members: frozenset[int] = frozenset()
        self._last_seen: frozenset[int] = frozenset()  # the tree's inodes after the last test
        self.leaks: list[dict[str, Any]] = []

    # The process tree, set up on first use: an xdist controller runs no test and never needs it.

    def _holders(self) -> Owners:
        from .processes import owners_among

        if self._tree is None:
            from .proctree import ProcessTree, become_subreaper

            token = secrets.token_hex(8)
            os.environ[TOKEN_VARIABLE] = token
            become_subreaper()
            self._tree = ProcessTree(marker=f"{TOKEN_VARIABLE}={token}")
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

    def _ignore_for(self, expressions: tuple[str, ...]) -> Callable[[Socket], bool] | None:
        if expressions not in self._ignores:
            from .filter import compile_filters

            self._ignores[expressions] = compile_filters(expressions)
        return self._ignores[expressions]

    # Tests

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> None:
        if not self.trace or tracemalloc.is_tracing() or self.config.pluginmanager.has_plugin("dsession"):
            return  # (an xdist controller runs no test: its workers trace theirs)
        # Traced from here on: collection (the import of every test module) is slow enough
        # under tracemalloc without it. One read of the sockets first, untraced: what it
        # imports (pyroute2, and what pyroute2 imports on first use) takes ten seconds and more.
        from . import differ  # noqa: F401
        from .acquire import take
        from .formats import leaks  # noqa: F401

        take(processes=False, sections=("sockets",))
        tracemalloc.start(_TRACE_FRAMES)
        self._tracing = True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        from .errors import SockdiffError

        if self._tree is None:  # what runs already, threads and children, is the session's
            self._holders()
        message: str | None = None
        expressions: tuple[str, ...] | None = None
        try:  # now, so that a mistake shows whether or not the test leaks
            expressions = _marker_expressions(item)
            if expressions is not None:
                self._ignore_for(self.ignore_lines + expressions)
        except SockdiffError as err:
            message = f"sockdiff_ignore marker: {err}"
        if message is not None:  # raised outside the handler, so no chained traceback is shown
            pytest.fail(message, pytrace=False)
        if expressions is not None:
            item.stash[_BEFORE] = frozenset(self._holders())
        path, line, _ = item.location
        self._places[item.nodeid] = (item.nodeid, path, (line or 0) + 1)
        self._expressions[item.nodeid] = None if expressions is None else self.ignore_lines + expressions
        self._enter(item.nodeid)
        # A fixture is also finalized in the setup of the next test (the next parameter of a
        # parametrized one): its leak then goes with that test's report.
        self._setting_up = item
        try:
            return (yield)
        finally:
            self._setting_up = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        self._tearing_down = item
        try:
            yield
        except BaseException:
            self._check_test(item, fail=False)  # the teardown already failed: say what leaked, no more
            raise
        finally:
            self._tearing_down = None
        try:
            self._check_test(item, fail=self.strict)
        finally:
            self._enter(None)

    def _enter(self, window: object) -> None:
        """Make ``window`` (a nodeid, a FixtureDef, None) the one new processes and threads belong to."""
        self._makers.enter(window)
        self._window = window

    def _check_test(self, item: pytest.Item, *, fail: bool) -> None:
        before = item.stash.get(_BEFORE, None)
        if before is None:
            return  # not checked: marked so, or its marker was refused in setup
        expressions = _marker_expressions(item)
        if expressions is None:
            return
        del item.stash[_BEFORE]
        item.stash[_CHECKED] = True
        holders = self._holders()
        self._last_seen = frozenset(holders)
        opened = holders.keys() - before - self._fixtures_opened
        if not opened:
            return
        own = self._sort_out(opened, holders, item.nodeid, item)
        if not own:
            return
        lines = self._lines(own)
        _, path, lineno = self._places[item.nodeid]
        record = {"owner": item.nodeid, "kind": "test", "sockets": lines, "file": path, "line": lineno}
        self._found(item, record)
        count = f"{len(lines)} socket{'s' if len(lines) > 1 else ''}"
        # Each line is escaped (formats/leaks.py): a name can neither end it nor open a CI command.
        if fail:
            pytest.fail("sockdiff: left {} open:\n  {}".format(count, "\n  ".join(lines)), pytrace=False)
        if not self.strict:  # shown at the test, not here
            warning = SockdiffLeakWarning(f"left {count} open: {'; '.join(lines)}")
            warnings.warn_explicit(warning, SockdiffLeakWarning, str(self.config.rootpath / path), lineno)

    def _sort_out(
        self, inodes: Iterable[int], holders: Owners, owner: object, item: pytest.Item | None
    ) -> tuple[Socket, ...]:
        """The leaked sockets among ``inodes`` that are ``owner``'s; the others go to whoever
        started their processes or threads, each filtered by its starter's own ignores.

        A process or a thread started by an earlier test, or by a fixture, that opens a
        socket only later (a daemon slow to start, a server thread, a pool that grows)
        leaks for its starter: a live fixture keeps it as its own, and so does the
        session what it started before the first test; an ended test or fixture is
        reported for it, late, unless its ``sockdiff_ignore`` markers leave it out.
        """
        inodes = tuple(inodes)
        starters = self._starters({inode: holders[inode] for inode in inodes})
        own: set[int] = set()
        late: dict[object, set[int]] = {}
        for inode in inodes:
            starter = starters[inode]
            if starter is None or starter == owner:
                own.add(inode)
            elif not self._keep_for_fixture(starter, inode):
                late.setdefault(starter, set()).add(inode)
        for starter, found in late.items():
            expressions = self._expressions.get(starter, ())
            if expressions is None:  # @pytest.mark.sockdiff_ignore(): not checked
                continue
            sockets = self._leaked(found, holders, self._ignore_for(expressions))
            if sockets:
                label, path, line = self._places[starter]
                kind = "test" if isinstance(starter, str) else "fixture"
                lines = [f"{text}  (opened after it ended)" for text in self._lines(sockets)]
                self._found(
                    item, {"owner": label, "kind": kind, "sockets": lines, "file": path, "line": line}
                )
        if not own or item is None:  # at the session's end: what the main thread opened is no test's
            return ()
        expressions = self._expressions.get(owner, ())
        return () if expressions is None else self._leaked(own, holders, self._ignore_for(expressions))

    def _found(self, item: pytest.Item | None, record: dict[str, Any]) -> None:
        """Send a leak with ``item``'s teardown report (or keep it, when no test is being torn down)."""
        if item is None:
            self.leaks.append(record)
            return
        item.stash.setdefault(_FOUND, []).append(record)
        prefix = "" if record["owner"] == item.nodeid else f"{record['owner']}: "
        item.user_properties.extend(("sockdiff", prefix + line) for line in record["sockets"])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "teardown" and _FOUND in item.stash:
            setattr(report, REPORT_ATTRIBUTE, item.stash[_FOUND])
            del item.stash[_FOUND]
        if report.when == "teardown" and item.stash.get(_CHECKED, False):
            setattr(report, CHECKED_ATTRIBUTE, True)
            del item.stash[_CHECKED]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # In one process and on an xdist controller alike: the leaks come with the reports.
        if report.when == "teardown":
            self.leaks.extend(getattr(report, REPORT_ATTRIBUTE, ()))
            self._checked += getattr(report, CHECKED_ATTRIBUTE, False) is True

    # Fixtures wider than a test

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        from .errors import SockdiffError

        if fixturedef.scope == "function":
            return (yield)
        before = self._holders().keys()
        place = self._places[fixturedef] = _fixture_place(fixturedef, self.config.rootpath)
        message: str | None = None
        try:
            expressions = self._expressions[fixturedef] = _module_expressions(fixturedef, self.ignore_lines)
            if expressions is not None:
                self._ignore_for(expressions)
        except SockdiffError as err:
            message = f"sockdiff_ignore mark of {place[0]}'s module: {err}"
        if message is not None:  # raised outside the handler, so no chained traceback is shown
            pytest.fail(message, pytrace=False)
        window = self._window
        self._enter(fixturedef)
        try:
            return (yield)
        finally:
            # Fixtures it requested were set up inside this one and kept their own sockets.
            holders = self._holders()
            opened = holders.keys() - before - self._fixtures_opened
            self._enter(window)
            # Only what it (its code, its threads and children) opened: what an earlier test's
            # thread or child opened meanwhile is left to the test being set up, which gives it
            # to its starter; a live wider fixture's, or the session's, is kept by them.
            starters = self._starters({inode: holders[inode] for inode in opened})
            opened = {
                inode
                for inode, starter in starters.items()
                if starter is None or starter is fixturedef or self._keep_for_fixture(starter, inode)
            } - self._fixtures_opened
            self._fixtures_opened |= opened
            self._held[fixturedef] = _Held(*place, frozenset(opened))

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        held = self._held.pop(fixturedef, None)
        if held is None:
            return
        holders = self._holders()
        still_open = held.inodes & holders.keys()
        # What its processes and threads opened during the test being torn down (or set up) is
        # its own too: that test is checked only after this.
        item = self._tearing_down or self._setting_up
        before = None if item is None else item.stash.get(_BEFORE, None)
        if before is not None:
            fresh = holders.keys() - before - self._fixtures_opened
            starters = self._starters({inode: holders[inode] for inode in fresh})
            still_open |= {inode for inode, starter in starters.items() if starter is fixturedef}
        if not still_open:
            return
        self._fixtures_opened |= still_open
        expressions = self._expressions.pop(fixturedef, self.ignore_lines)
        if expressions is None:  # its module says: do not check
            return
        lines = self._lines(self._leaked(still_open, holders, self._ignore_for(expressions)))
        if lines:
            record = {
                "owner": held.label,
                "kind": "fixture",
                "sockets": lines,
                "file": held.file,
                "line": held.line,
            }
            self._found(self._tearing_down or self._setting_up, record)

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
            holders = self._holders()
            sockets = self._counted({sock.inode for sock in sockets} & holders.keys(), holders, ignore)
        return sockets

    def _starters(self, held: Mapping[int, Sequence[Process]]) -> dict[int, object]:
        """inode -> who started its holder: the thread that made it, or the other processes holding it.

        None: the test running, or a socket this process shares with another.
        """
        makers = self._made(held)
        found: dict[int, object] = {}
        for inode, processes in held.items():
            pids = {process.pid for process in processes}
            if inode in makers:  # held by this process alone, made by a thread of it
                found[inode] = makers[inode].starter
            else:
                starters = {self._origin.get(pid) for pid in pids}
                found[inode] = starters.pop() if len(starters) == 1 and os.getpid() not in pids else None
        return found

    def _keep_for_fixture(self, starter: object, inode: int) -> bool:
        """Give ``inode`` to fixture ``starter`` if it is live (checked when pytest finalizes it)."""
        if starter is _SESSION:
            self._session_inodes.add(inode)
            self._fixtures_opened.add(inode)
            return True
        if starter is None or starter not in self._held:
            return False
        held = self._held[starter]
        self._held[starter] = dataclasses.replace(held, inodes=held.inodes | {inode})
        self._fixtures_opened.add(inode)
        return True

    def _made(self, held: Mapping[int, Sequence[Process]]) -> dict[int, Maker]:
        """inode -> the thread that made it, for the sockets held by this process alone."""
        pid = os.getpid()
        fds = {
            inode: processes[0].fd
            for inode, processes in held.items()
            if processes and all(process.pid == pid for process in processes)
        }
        return self._makers.made(fds)

    def _lines(self, sockets: Iterable[Socket]) -> list[str]:
        """Each socket in ss's notation, escaped; the thread that made it, when not the main one."""
        sockets = tuple(sockets)
        makers = self._made({sock.inode: sock.processes for sock in sockets})
        return _lines(sockets, {inode: maker.name for inode, maker in makers.items()})

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

    # The end of the run

    def pytest_report_header(self) -> str:
        what = "every socket" if self.every_socket else "listening sockets"
        return f"sockdiff: {'strict' if self.strict else 'report'} mode, counting {what} left open"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._tree is not None:  # tests ran here: what their processes opened since the last one ended
            holders = self._holders()
            opened = holders.keys() - self._last_seen - self._fixtures_opened
            reported = len(self.leaks)
            if opened:  # what the main thread opened between tests is no test's
                self._sort_out(opened, holders, None, None)
            session_open = self._session_inodes & holders.keys()
            if session_open:
                sockets = self._leaked(session_open, holders, self._ignore_for(self.ignore_lines))
                if sockets:
                    record = {"owner": _SESSION_LABEL, "kind": "fixture", "sockets": self._lines(sockets)}
                    self._found(None, {**record, "file": "", "line": 0})
            # On an xdist worker, these came with no report: the controller learns them this way.
            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[REPORT_ATTRIBUTE] = self.leaks[reported:]
        self._makers.stop()
        if self._tracing:  # what other plugins do at the end (hypothesis imports much) need not crawl
            tracemalloc.stop()
            self._tracing = False
        if self.strict and self.leaks and session.exitstatus == pytest.ExitCode.OK:
            # A fixture leaked, or a test's process did after the test: no test failed for it.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any) -> None:
        """On an xdist controller: the leaks a worker found after its last test."""
        self.leaks.extend(getattr(node, "workeroutput", {}).get(REPORT_ATTRIBUTE, ()))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from .formats.leaks import clean_line, leak_summary

        if not self.leaks:  # one line, so that a quiet run still shows the plugin ran
            terminalreporter.write_line(clean_line(self._checked, self.every_socket))
            return
        terminalreporter.write_sep("=", "sockdiff: sockets left open")
        for line in leak_summary((r["kind"], r["owner"], r["sockets"]) for r in self.leaks):
            terminalreporter.write_line(line)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in _annotations(self.leaks, "error" if self.strict else "warning"):
                terminalreporter.write_line(line)


def _elsewhere(inodes: set[int], holders: Owners) -> dict[int, Socket]:
    """The sockets among ``inodes`` that live in another network namespace than the one read.

    A socket lives where it was made, wherever its holder went since: a test that
    entered a namespace, listened and came back, or listened and then left. Each
    socket's namespace is asked of the socket (:func:`sockdiff.netns.socket_netns`),
    or, where the kernel will not say, taken to be its holder's (``/proc/PID/ns/net``).
    Each namespace is read once; entering one takes root, so without it they stay
    unread (and uncounted).
    """
    from .acquire import take
    from .errors import SockdiffError
    from .netns import socket_netns

    here = os.stat("/proc/thread-self/ns/net").st_ino  # read already
    namespaces: dict[int, tuple[str, int | None]] = {}  # namespace inode -> path to enter, fd to close
    try:
        for inode in inodes:
            holder = holders[inode][0]
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
        for path, _ in namespaces.values():
            try:
                there = take(netns=path, processes=False, sections=("sockets",))
            except SockdiffError:
                continue
            found.update((sock.inode, sock) for sock in there.sockets or () if sock.inode in inodes)
        return found
    finally:
        for _, fd in namespaces.values():
            if fd is not None:
                os.close(fd)


def _annotations(records: list[dict[str, Any]], level: str) -> list[str]:
    """GitHub Actions workflow commands: an annotation at each leaking test or fixture."""
    from .formats.github import SHOWN, command

    title = "sockdiff: sockets left open"
    lines = [
        command(
            level,
            title,
            "\n".join([record["owner"], *record["sockets"]]),
            **({"file": record["file"], "line": record["line"]} if record["file"] else {}),
        )
        for record in records[:SHOWN]
    ]
    if len(records) > SHOWN:
        more = (
            f"{len(records) - SHOWN} more tests or fixtures left sockets open: the sockdiff section has all"
        )
        lines.append(command("notice", title, more))
    return lines


def _marker_expressions(item: pytest.Item) -> tuple[str, ...] | None:
    """The expressions of the ``sockdiff_ignore`` markers on ``item``; None: do not check it."""
    return _ignore_expressions(item.iter_markers("sockdiff_ignore"))


def _module_expressions(fixturedef: pytest.FixtureDef[Any], ini: tuple[str, ...]) -> tuple[str, ...] | None:
    """The ignores of a fixture: the ini's, and the ``sockdiff_ignore`` marks of the module that
    defines it (``pytestmark``); None: that module is not checked."""
    module = sys.modules.get(getattr(fixturedef.func, "__module__", None) or "")
    marks = getattr(module, "pytestmark", [])
    found = [
        m.mark if isinstance(m, pytest.MarkDecorator) else m
        for m in (marks if isinstance(marks, list) else [marks])
    ]
    expressions = _ignore_expressions(
        m for m in found if isinstance(m, pytest.Mark) and m.name == "sockdiff_ignore"
    )
    return None if expressions is None else (*ini, *expressions)


def _ignore_expressions(marks: Iterable[pytest.Mark]) -> tuple[str, ...] | None:
    """The filter expressions of ``sockdiff_ignore`` marks; None where one has no argument (do not check)."""
    from .errors import UsageError

    expressions: list[str] = []
    for mark in marks:
        if mark.kwargs:
            # A keyword would otherwise read as "no expressions": the test left unchecked.
            raise UsageError(
                f"takes filter expressions as arguments, not keywords ({', '.join(sorted(mark.kwargs))})"
            )
        if not mark.args:
            return None
        expressions.extend(str(arg) for arg in mark.args)
    return tuple(expressions)


def _fixture_place(fixturedef: pytest.FixtureDef[Any], rootpath: Path) -> tuple[str, str, int]:
    """A fixture's label for the summary, and its file and line."""
    code = getattr(fixturedef.func, "__code__", None)
    path = Path(code.co_filename if code is not None else "?")
    shown = str(path.relative_to(rootpath) if path.is_relative_to(rootpath) else path)
    line = code.co_firstlineno if code is not None else 0
    return f"{fixturedef.scope} fixture {fixturedef.argname!r} ({shown}:{line})", shown, line


def _lines(sockets: Iterable[Socket], threads: Mapping[int, str]) -> list[str]:
    """Each socket in ss's notation, escaped, with where this process created it when tracemalloc
    knows, and the name of the thread (``threads``: inode -> name) that made it."""
    from .formats.leaks import leak_line

    sockets = tuple(sockets)
    origins = _origins({p.fd for sock in sockets for p in sock.processes if p.pid == os.getpid()})
    lines = []
    for sock in sockets:
        created = [origins[p.fd] for p in sock.processes if p.pid == os.getpid() and p.fd in origins]
        lines.append(leak_line(sock, created[0] if created else None, threads.get(sock.inode)))
    return lines


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
