"""pytest plugin: which test, or which fixture, left a socket open.

Registered under the ``pytest11`` entry point ``sockdiff`` and inert unless asked
for (``--sockdiff``, ``--sockdiff-strict``, ``--sockdiff-trace`` or ini
``sockdiff = report|strict``): until then it only declares its options and its
marker, and registers no other hook.

When on, it is pytest's hooks over the library's leak engine
(:class:`sockdiff.leaks.LeakEngine`): each test is a window, each fixture wider
than a test a window held until pytest finalizes it, and what ran before the
first test the session's. The leaks found (:class:`sockdiff.model.Leak`) travel
on the teardown report (``report.sockdiff_leaks``, as :func:`sockdiff.model.encode_leaks`
writes them, and a ``sockdiff`` user property a socket, which JUnit XML shows),
so under pytest-xdist each worker checks its own tests and the controller's
summary lists every leak.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .leaks import TOKEN_VARIABLE, LeakEngine, Window

if TYPE_CHECKING:
    from .model import Leak

__all__ = ["TOKEN_VARIABLE", "SockdiffLeakWarning"]

#: The name of the leak hunter in pytest's plugin manager, once switched on.
PLUGIN_NAME = "sockdiff-leak-hunter"
#: The report attribute carrying a teardown's leaks, as encode_leaks writes them.
REPORT_ATTRIBUTE = "sockdiff_leaks"
#: The report attribute set (True) on the teardown report of each test checked.
CHECKED_ATTRIBUTE = "sockdiff_checked"
MODES = ("off", "report", "strict")


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


_FOUND = pytest.StashKey[list[tuple["Leak", ...]]]()
_CHECKED = pytest.StashKey[bool]()


class LeakHunter:
    """The hooks of a run with leak hunting on."""

    def __init__(self, config: pytest.Config, *, strict: bool, trace: bool) -> None:
        from .errors import SockdiffError
        from .leaks import parse_leak_kinds

        self.config = config
        self.strict = strict
        try:
            parse_leak_kinds(str(config.getini("sockdiff_fail_on")))
        except SockdiffError as err:
            raise pytest.UsageError(f"ini sockdiff_fail_on: {err}") from None
        ignore = tuple(str(line) for line in config.getini("sockdiff_ignore"))
        try:
            self.engine = LeakEngine(str(config.getini("sockdiff_fail_on")), ignore)
        except SockdiffError as err:
            raise pytest.UsageError(f"ini sockdiff_ignore: {err}") from None
        self.trace = trace
        self._tearing_down: pytest.Item | None = None
        self._setting_up: pytest.Item | None = None
        self._checked = 0  # tests checked (here, or by the workers whose reports came here)
        self.leaks: list[tuple[Leak, ...]] = []  # what each test or fixture left, a check each

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> None:
        # Traced from here on: collection (the import of every test module) is slow enough
        # under tracemalloc without it. An xdist controller runs no test: its workers trace theirs.
        if self.trace and not self.config.pluginmanager.has_plugin("dsession"):
            self.engine.trace()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        from .errors import SockdiffError

        self.engine.start()  # what runs already, threads and children, is the session's
        path, line, _ = item.location
        message: str | None = None
        try:  # now, so that a mistake shows whether or not the test leaks
            expressions = _marker_expressions(item)
            self.engine.begin(item.nodeid, Window(item.nodeid, "test", path, (line or 0) + 1), expressions)
        except SockdiffError as err:
            message = f"sockdiff_ignore marker: {err}"
        if message is not None:  # raised outside the handler, so no chained traceback is shown
            pytest.fail(message, pytrace=False)
        item.stash[_CHECKED] = expressions is not None
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
        self._check_test(item, fail=self.strict)

    def _check_test(self, item: pytest.Item, *, fail: bool) -> None:
        from .formats.leaks import leak_line

        found = self.engine.end(item.nodeid)
        self._found(item, found)
        own = [leak_line(leak) for leak in found if not leak.late]
        if not own:
            return
        count = f"{len(own)} socket{'s' if len(own) > 1 else ''}"
        # Each line is escaped (formats/leaks.py): a name can neither end it nor open a CI command.
        if fail:
            pytest.fail("sockdiff: left {} open:\n  {}".format(count, "\n  ".join(own)), pytrace=False)
        if not self.strict:  # shown at the test, not here
            warning = SockdiffLeakWarning(f"left {count} open: {'; '.join(own)}")
            path, line, _ = item.location
            warnings.warn_explicit(
                warning, SockdiffLeakWarning, str(self.config.rootpath / path), (line or 0) + 1
            )

    def _found(self, item: pytest.Item | None, leaks: Sequence[Leak]) -> None:
        """Send leaks with ``item``'s teardown report (or keep them, when no test is being torn down)."""
        from .formats.leaks import by_owner, leak_line

        if item is None:
            self.leaks.extend(by_owner(leaks))
            return
        if not leaks:
            return
        item.stash.setdefault(_FOUND, []).extend(by_owner(leaks))
        for leak in leaks:
            prefix = "" if leak.owner == item.nodeid else f"{leak.owner}: "
            item.user_properties.append(("sockdiff", prefix + leak_line(leak)))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        from .model import encode_leaks

        report = yield
        if report.failed and call.excinfo is not None:
            self._address_in_use(report, call.excinfo.value)
        if report.when == "teardown" and _FOUND in item.stash:
            found = item.stash[_FOUND]
            setattr(report, REPORT_ATTRIBUTE, encode_leaks(found))
            del item.stash[_FOUND]
        if report.when == "teardown" and item.stash.get(_CHECKED, False):
            setattr(report, CHECKED_ATTRIBUTE, True)
            del item.stash[_CHECKED]
        return report

    def _address_in_use(self, report: pytest.TestReport, error: BaseException) -> None:
        """A test that failed with EADDRINUSE: a section saying who holds that port now."""
        from .formats.leaks import port_section, port_title
        from .leaks import address_in_use

        found = address_in_use(error)
        if found is not None:
            port = found[1]
            report.sections.append((port_title(port), port_section(port, self.engine.port_holders(port))))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .model import decode_leaks

        # In one process and on an xdist controller alike: the leaks come with the reports.
        if report.when == "teardown":
            self.leaks.extend(decode_leaks(getattr(report, REPORT_ATTRIBUTE, "[]")))
            self._checked += getattr(report, CHECKED_ATTRIBUTE, False) is True

    # Fixtures wider than a test

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        from .errors import SockdiffError

        if fixturedef.scope == "function":
            return (yield)
        window = _fixture_place(fixturedef, self.config.rootpath)
        message: str | None = None
        try:
            self.engine.hold(fixturedef, window, _module_expressions(fixturedef))
        except SockdiffError as err:
            message = f"sockdiff_ignore mark of {window.label}'s module: {err}"
        if message is not None:  # raised outside the handler, so no chained traceback is shown
            pytest.fail(message, pytrace=False)
        try:
            return (yield)
        finally:
            self.engine.held(fixturedef)

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        # What its processes and threads opened during the test being torn down (or set up) is
        # its own too: that test is checked only after this.
        item = self._tearing_down or self._setting_up
        found = self.engine.release(fixturedef, None if item is None else item.nodeid)
        self._found(item, found)

    # The end of the run

    def pytest_report_header(self) -> str:
        what = "every socket" if self.engine.every_socket else "listening sockets"
        return f"sockdiff: {'strict' if self.strict else 'report'} mode, counting {what} left open"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from .model import encode_leaks

        if self.engine.watching:  # tests ran here: what their processes opened since the last one ended
            found = self.engine.finish()
            reported = len(self.leaks)
            self._found(None, found)
            # On an xdist worker, these came with no report: the controller learns them this way.
            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[REPORT_ATTRIBUTE] = encode_leaks(self.leaks[reported:])
        self.engine.stop()
        if self.strict and self.leaks and session.exitstatus == pytest.ExitCode.OK:
            # A fixture leaked, or a test's process did after the test: no test failed for it.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any) -> None:
        """On an xdist controller: the leaks a worker found after its last test."""
        from .model import decode_leaks

        self.leaks.extend(decode_leaks(getattr(node, "workeroutput", {}).get(REPORT_ATTRIBUTE, "[]")))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from .formats.leaks import clean_line, leak_annotations, leak_summary

        if not self.leaks:  # one line, so that a quiet run still shows the plugin ran
            terminalreporter.write_line(clean_line(self._checked, self.engine.every_socket))
            return
        terminalreporter.write_sep("=", "sockdiff: sockets left open")
        for line in leak_summary(self.leaks):
            terminalreporter.write_line(line)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in leak_annotations(self.leaks, "error" if self.strict else "warning"):
                terminalreporter.write_line(line)


def _marker_expressions(item: pytest.Item) -> tuple[str, ...] | None:
    """The expressions of the ``sockdiff_ignore`` markers on ``item``; None: do not check it."""
    return _ignore_expressions(item.iter_markers("sockdiff_ignore"))


def _module_expressions(fixturedef: pytest.FixtureDef[Any]) -> tuple[str, ...] | None:
    """The ignores of a fixture: the ``sockdiff_ignore`` marks of the module that defines it
    (``pytestmark``); None: that module is not checked."""
    module = sys.modules.get(getattr(fixturedef.func, "__module__", None) or "")
    marks = getattr(module, "pytestmark", [])
    found = [
        m.mark if isinstance(m, pytest.MarkDecorator) else m
        for m in (marks if isinstance(marks, list) else [marks])
    ]
    expressions = _ignore_expressions(
        m for m in found if isinstance(m, pytest.Mark) and m.name == "sockdiff_ignore"
    )
    return expressions


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


def _fixture_place(fixturedef: pytest.FixtureDef[Any], rootpath: Path) -> Window:
    """A fixture's label for the summary, and its file and line."""
    code = getattr(fixturedef.func, "__code__", None)
    path = Path(code.co_filename if code is not None else "?")
    shown = str(path.relative_to(rootpath) if path.is_relative_to(rootpath) else path)
    line = code.co_firstlineno if code is not None else 0
    return Window(
        f"{fixturedef.scope} fixture {fixturedef.argname!r} ({shown}:{line})", "fixture", shown, line
    )
