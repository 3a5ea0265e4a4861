"""The pytest plugin, run on a suite of leaking and clean tests in a private network namespace.

Every run is a real pytest in a subprocess (pytester's ``runpytest_subprocess``)
started inside the test's own namespace, so the sockets it finds are exactly the
suite's: the expectations below are exact.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest

from sockdiff.pytest_plugin import TOKEN_VARIABLE
from tests.helpers.daemon import DAEMON
from tests.helpers.netns import netns_exec_argv
from tests.helpers.runner_commands import parse

pytest_plugins = ("pytester",)

CONFTEST = """
import socket

import pytest

HELD = []


@pytest.fixture(scope="module")
def module_listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


@pytest.fixture(scope="session")
def session_listener():
    server = socket.create_server(("127.0.0.1", 0))
    HELD.append(server)  # open until the process ends
    return server


PENDING = []  # children that listen once told to, at the end of the session


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish():
    for child in PENDING:
        child.stdin.write("go\\n")
        child.stdin.flush()
        assert child.stdout.readline()
"""

SUITE = """
import os
import socket
import subprocess
import sys

import pytest

HELD = []
CHILD = '''
import socket, sys
server = socket.create_server((sys.argv[1], 0))
print("ready", flush=True)
sys.stdin.read()  # until the pytest that started it ends
'''
DAEMON = DAEMON_CODE


# Listens once told to: a process that opens its socket after its test ended.
LATE = '''
import socket, sys, time
sys.stdin.readline()
server = socket.create_server(("127.0.0.1", 0))
print("ready", flush=True)
time.sleep(600)
'''
LATE_CHILDREN = []


def late_child():
    pipe = subprocess.PIPE
    return subprocess.Popen([sys.executable, "-c", LATE], stdin=pipe, stdout=pipe, text=True)


def listen(host="127.0.0.1"):
    HELD.append(socket.create_server((host, 0)))  # LISTEN_LINE


def start(code, *argv, wrapper=()):
    pipe = subprocess.PIPE
    argv = [*wrapper, sys.executable, "-c", code, *argv]
    child = subprocess.Popen(argv, stdin=pipe, stdout=pipe, text=True)
    assert child.stdout.readline()  # listening
    return child


def test_listener():
    listen()


def test_clean():
    with socket.create_server(("127.0.0.1", 0)):
        pass


def test_child():
    HELD.append(start(CHILD, "127.0.0.1"))


def test_other_namespace():
    HELD.append(start(CHILD, "0.0.0.0", wrapper=["unshare", "--net"]))


def test_daemon():
    first = start(DAEMON)
    first.stdout.close()
    assert first.wait() == 0


def test_udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    HELD.append(sock)


def test_outgoing():
    with socket.create_server(("127.0.0.1", 0)) as server:
        HELD.append(socket.create_connection(server.getsockname()))
        HELD.append(server.accept()[0])


def test_module_fixture_first(module_listener):
    pass


def test_module_fixture_second(module_listener):
    pass


def test_session_fixture(session_listener):
    pass


@pytest.mark.sockdiff_ignore("src 127.0.0.2")
def test_marker():
    listen("127.0.0.2")
    listen("127.0.0.4")


@pytest.mark.sockdiff_ignore
def test_marker_unchecked():
    listen()


def test_ini_ignored():
    listen("127.0.0.3")


def test_late_opener():
    LATE_CHILDREN.append(late_child())


def test_late_trigger():
    for child in LATE_CHILDREN:
        child.stdin.write("go\\n")
        child.stdin.flush()
        assert child.stdout.readline()


def test_late_at_exit():
    from conftest import PENDING

    PENDING.append(late_child())


def test_probe(request):
    hunter = request.config.pluginmanager.get_plugin("sockdiff-leak-hunter")
    off = request.config.getoption("sockdiff_mode") is None
    # Off, the plugin has loaded nothing of the library but the package itself.
    assert off == ({"sockdiff.model", "sockdiff.snapshots", "msgspec", "pyroute2"}.isdisjoint(sys.modules))
    from sockdiff.proctree import is_subreaper

    if off:
        assert hunter is None
        assert "SOCKDIFF_PYTEST_TOKEN" not in os.environ
        assert not is_subreaper()
    else:
        assert hunter is not None
        assert os.environ["SOCKDIFF_PYTEST_TOKEN"]
        assert is_subreaper()
"""

SUITE = SUITE.replace("DAEMON_CODE", repr(DAEMON))

INI = """
[pytest]
sockdiff_ignore =
    src 127.0.0.3
"""

TESTS = 17


def line_of(source: str, text: str) -> int:
    """The line number of ``text`` in a file pytester writes from ``source`` (stripped of blank ends)."""
    return 1 + source.strip("\n").splitlines().index(text)


# Where a fixture is defined is where its code starts: its decorator.
SESSION_LINE = line_of(CONFTEST, '@pytest.fixture(scope="session")')
SESSION_FIXTURE = f"session fixture 'session_listener' (conftest.py:{SESSION_LINE})"
LEAKING_TESTS = sorted(
    f"test_leaks.py::test_{name}"
    for name in ("listener", "child", "other_namespace", "daemon", "udp", "marker")
)
LATE_TESTS = ["test_leaks.py::test_late_opener", "test_leaks.py::test_late_at_exit"]
PROCESS = re.compile(r'users:\(\("[^"]+",pid=(\d+),fd=\d+\)\)')


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)  # set by the tests that want annotations
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)  # when this suite itself runs with --sockdiff
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_leaks=SUITE)
    pytester.makeini(INI)
    return pytester


def run(pytester: pytest.Pytester, netns: str, *args: str) -> pytest.RunResult:
    """pytest in a subprocess, as runpytest_subprocess starts it, but inside ``netns``.

    Through ``ip netns exec`` rather than setns in this process: pyroute2 0.9.2's setns
    leaves a socket to the collector, which pytest 8.4 turns into an error at exit.
    """
    basetemp = f"--basetemp={pytester.path / 'basetemp'}"
    argv = [sys.executable, "-m", "pytest", basetemp, "-p", "no:cacheprovider", "-ra", *args]
    return pytester.run(*netns_exec_argv(netns, argv), timeout=120)


def leaks(result: pytest.RunResult) -> dict[str, list[str]]:
    """The summary section: owner -> its socket lines."""
    found: dict[str, list[str]] = {}
    lines = iter(result.outlines)
    for line in lines:
        if re.fullmatch(r"=+ sockdiff: sockets left open =+", line):
            break
    else:
        return found
    for line in lines:
        if re.fullmatch(r"\d+ tests? and \d+ fixtures? left \d+ sockets? open", line):
            return found
        if line.startswith("    "):
            found[list(found)[-1]].append(line.strip())
        else:
            found[line] = []
    raise AssertionError("the sockdiff section has no closing count line")


def errors(result: pytest.RunResult) -> list[str]:
    return sorted(line.split()[1] for line in result.outlines if line.startswith("ERROR "))


def pid_of(line: str) -> int:
    match = PROCESS.search(line)
    assert match, line
    return int(match.group(1))


def check_leaks(found: dict[str, list[str]], late: Sequence[str] = LATE_TESTS, workers: int = 1) -> None:
    """The six leaking tests and the session fixture, each with its one socket, as ss writes it;
    and the ``late`` tests, whose children opened a listener after the test ended. With
    ``workers`` (xdist), the in-process leaks are held by that many pytest processes."""
    assert sorted(found) == sorted([*LEAKING_TESTS, SESSION_FIXTURE, *late])
    for name in late:
        (line,) = found.pop(name)
        pattern = (
            r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern + r"  \(opened after it ended\)"
        )
        assert re.fullmatch(pattern, line)
    assert all(len(lines) == 1 for lines in found.values()), found
    (listener,) = found["test_leaks.py::test_listener"]
    (child,) = found["test_leaks.py::test_child"]
    (elsewhere,) = found["test_leaks.py::test_other_namespace"]
    (daemon,) = found["test_leaks.py::test_daemon"]
    (udp,) = found["test_leaks.py::test_udp"]
    (marker,) = found["test_leaks.py::test_marker"]
    (fixture,) = found[SESSION_FIXTURE]
    assert re.fullmatch(r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, listener)
    assert re.fullmatch(r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, child)
    # The namespace it lives in first (unshare --net: no name, its inode), as compare names one.
    assert re.fullmatch(
        r"\[net:\[\d+\]\] tcp LISTEN 0\.0\.0\.0:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, elsewhere
    )
    assert re.fullmatch(r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, daemon)
    assert re.fullmatch(r"udp CLOSE 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, udp)
    assert re.fullmatch(r"tcp LISTEN 127\.0\.0\.4:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, marker)
    assert re.fullmatch(r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, fixture)
    in_process = {pid_of(line) for line in (listener, udp, marker, fixture)}
    assert 1 <= len(in_process) <= workers  # which worker runs which test is the scheduler's choice
    assert not in_process & {pid_of(child), pid_of(elsewhere), pid_of(daemon)}
    assert len({pid_of(child), pid_of(elsewhere), pid_of(daemon)}) == 3


def test_report_mode_names_exactly_the_leakers(
    suite: pytest.Pytester, netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run(suite, netns, "--sockdiff", "--junitxml=report.xml")
    result.assert_outcomes(passed=TESTS, warnings=len(LEAKING_TESTS))
    assert result.ret == 0
    check_leaks(leaks(result))
    result.stdout.fnmatch_lines(
        ["*test_leaks.py::test_udp*", "*SockdiffLeakWarning: left 1 socket open: udp CLOSE*"]
    )
    assert "8 tests and 1 fixture left 9 sockets open" in result.outlines
    cases = {case.get("name"): case for case in ET.parse(suite.path / "report.xml").iter("testcase")}
    properties = {
        name: [p.get("value") for p in case.iter("property") if p.get("name") == "sockdiff"]
        for name, case in cases.items()
    }
    assert properties["test_udp"] == leaks(result)["test_leaks.py::test_udp"]
    assert properties["test_clean"] == properties["test_outgoing"] == []
    # On GitHub Actions, an annotation at each leaking test and fixture (workflow-command escapes).
    annotations = [line for line in result.outlines if line.startswith("::")]
    title = "title=sockdiff%3A sockets left open::"
    # A test's place is where its code starts, its first decorator if it has one.
    starts = [f"def test_{name}():" for name in ("listener", "child", "other_namespace", "daemon", "udp")]
    starts.append('@pytest.mark.sockdiff_ignore("src 127.0.0.2")')
    places = [f"::warning file=test_leaks.py,line={line_of(SUITE, start)},{title}" for start in starts]
    late = [
        f"::warning file=test_leaks.py,line={line_of(SUITE, f'def {name}():')},{title}"
        for name in ("test_late_opener", "test_late_at_exit")
    ]
    assert sorted(line[: line.index("::", 2) + 2] for line in annotations) == sorted(
        [*places, f"::warning file=conftest.py,line={SESSION_LINE},{title}", *late]
    )
    (udp,) = leaks(result)["test_leaks.py::test_udp"]
    assert f"{places[4]}test_leaks.py::test_udp%0A{udp}" in annotations


def test_strict_mode_fails_exactly_the_leakers(suite: pytest.Pytester, netns: str) -> None:
    result = run(suite, netns, "--sockdiff-strict", "--junitxml=report.xml")
    result.assert_outcomes(passed=TESTS, errors=len(LEAKING_TESTS))
    assert result.ret == 1
    assert errors(result) == LEAKING_TESTS
    check_leaks(leaks(result))
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_daemon*", "sockdiff: left 1 socket open:"])
    suites = ET.parse(suite.path / "report.xml").getroot()
    failed = sorted(
        f"test_leaks.py::{case.get('name')}"
        for case in suites.iter("testcase")
        if case.find("error") is not None
    )
    assert failed == LEAKING_TESTS


def test_strict_mode_under_xdist(suite: pytest.Pytester, netns: str) -> None:
    # Which worker runs the test after test_late_opener is the scheduler's choice: those two stay out.
    # test_late_at_exit's listener opens as its worker ends: the controller learns it from the worker.
    result = run(suite, netns, "--sockdiff-strict", "-n", "2", "-k", "not late_opener and not late_trigger")
    result.assert_outcomes(passed=TESTS - 2, errors=len(LEAKING_TESTS))  # xdist counts no deselected
    assert result.ret == 1
    assert errors(result) == LEAKING_TESTS
    check_leaks(leaks(result), late=["test_leaks.py::test_late_at_exit"], workers=2)


def test_a_leaking_fixture_fails_the_run_and_no_test(suite: pytest.Pytester, netns: str) -> None:
    result = run(suite, netns, "--sockdiff-strict", "-k", "fixture")
    result.assert_outcomes(passed=3, deselected=TESTS - 3)
    assert result.ret == 1
    assert list(leaks(result)) == [SESSION_FIXTURE]


def test_fail_on_new_counts_connections(suite: pytest.Pytester, netns: str) -> None:
    result = run(suite, netns, "--sockdiff", "-o", "sockdiff_fail_on=new", "-k", "outgoing or clean")
    result.assert_outcomes(passed=2, deselected=TESTS - 2, warnings=1)
    found = leaks(result)
    assert list(found) == ["test_leaks.py::test_outgoing"]
    assert [line.split()[:2] for line in found["test_leaks.py::test_outgoing"]] == [
        ["tcp", "ESTABLISHED"]
    ] * 2


def test_trace_tells_where_the_test_process_made_the_socket(suite: pytest.Pytester, netns: str) -> None:
    result = run(suite, netns, "--sockdiff-trace", "-k", "listener or child")
    found = leaks(result)
    line = line_of(SUITE, "    HELD.append(socket.create_server((host, 0)))  # LISTEN_LINE")
    assert found["test_leaks.py::test_listener"][0].endswith(f"  created at test_leaks.py:{line}")
    assert (
        "created at" not in found["test_leaks.py::test_child"][0]
    )  # another process: tracemalloc cannot know


def test_inert_without_the_switch(suite: pytest.Pytester, netns: str) -> None:
    result = run(suite, netns)
    result.assert_outcomes(passed=TESTS)
    assert result.ret == 0
    # pytest's header names the plugin as installed; nothing else says a word of it.
    assert [
        line for line in result.outlines if "sockdiff" in line.lower() and not line.startswith("plugins:")
    ] == []


def test_bad_settings_are_usage_errors(suite: pytest.Pytester, netns: str) -> None:
    result = run(suite, netns, "--sockdiff", "-o", "sockdiff_fail_on=closed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*sockdiff_fail_on: unknown fail_on kind 'closed' (choose from listening, new, any)*"]
    )
    result = run(suite, netns, "-o", "sockdiff=loud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini sockdiff = 'loud': choose from off, report, strict*"])
    result = run(suite, netns, "--sockdiff", "-o", "sockdiff_ignore=sport = :nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini sockdiff_ignore: bad filter: * at column *"])
    # A marker's mistake is that test's error, in its setup, whether it leaks or not.
    suite.makepyfile(
        test_bad_marker='import pytest\n@pytest.mark.sockdiff_ignore("sport = :nope")\ndef test_x(): pass\n'
    )
    result = run(suite, netns, "--sockdiff", "test_bad_marker.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_x*", "sockdiff_ignore marker: bad filter: * at column *"]
    )
    result.stdout.no_fnmatch_line("*During handling of the above exception*")  # one clean line
    # A keyword is no expression: were it read as none, the test would go unchecked.
    marked = '@pytest.mark.sockdiff_ignore(expr="sport = :1")'
    suite.makepyfile(test_keyword_marker=f"import pytest\n{marked}\ndef test_k(): pass\n")
    result = run(suite, netns, "--sockdiff", "test_keyword_marker.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["sockdiff_ignore marker: takes filter expressions as arguments, not keywords (expr)"]
    )


def test_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (point,) = entry_points(group="pytest11", name="sockdiff")
    assert point.value == "sockdiff.pytest_plugin"
    assert Path(point.load().__file__).name == "pytest_plugin.py"


PARAMETRIZED = """
import socket

import pytest

HELD = []


@pytest.fixture(scope="module", params=[1, 2])
def pmod(request):
    HELD.append(socket.create_server(("127.0.0.1", 0)))
    return request.param


def test_pm(pmod):
    pass
"""


def test_a_parametrized_fixtures_leaks_each_reach_the_junit_report(
    pytester: pytest.Pytester, netns: str
) -> None:
    """pmod[1] is finalized in the setup of test_pm[2], not in a teardown: its leak still has a test case."""
    pytester.makepyfile(test_param=PARAMETRIZED)
    result = run(pytester, netns, "--sockdiff", "--junitxml=report.xml")
    assert result.ret == 0
    properties = [
        p.get("value")
        for p in ET.parse(pytester.path / "report.xml").iter("property")
        if p.get("name") == "sockdiff"
    ]
    assert "0 tests and 2 fixtures left 2 sockets open" in result.outlines
    assert len(properties) == 2, properties


THREADS = """
import socket
import threading
import time

import pytest

HELD = []
GO = threading.Event()
DONE = threading.Event()
ACCEPTED = threading.Event()


def listen_when_told():
    GO.wait()
    HELD.append(socket.create_server(("127.0.0.1", 0)))
    DONE.set()
    threading.Event().wait()  # runs on, holding it


def serve(accepted, close_after):
    with socket.create_server(("127.0.0.1", 0)) as server:
        accepted.append(server.getsockname())
        conn, _ = server.accept()
    accepted.append(conn)
    while conn.recv(1024):
        pass
    if close_after is not None:  # the client left: the connection is CLOSE_WAIT until this
        time.sleep(close_after)
        conn.close()
    threading.Event().wait()


def connect_and_leave(name, close_after):
    accepted = []
    thread = threading.Thread(target=serve, args=(accepted, close_after), name=name, daemon=True)
    thread.start()
    while not accepted:
        time.sleep(0.001)
    client = socket.create_connection(accepted[0])
    while len(accepted) < 2:
        time.sleep(0.001)
    client.close()


def test_starts_a_late_listener():
    threading.Thread(target=listen_when_told, name="late-listener", daemon=True).start()


def test_innocent():
    GO.set()
    assert DONE.wait(60)


def test_server_thread_closes_soon():
    connect_and_leave("closes-soon", 0.05)


def test_server_thread_keeps_it():
    connect_and_leave("keeps-it", None)


def hold_every_connection(server):
    try:
        while True:
            HELD.append(server.accept()[0])
            ACCEPTED.set()
    except OSError:  # the fixture closed its listener
        threading.Event().wait()  # runs on, holding the connections


@pytest.fixture(scope="module")
def server():
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=hold_every_connection, args=(listener,), name="fixture-server")
    thread.daemon = True
    thread.start()
    yield listener.getsockname()
    listener.close()


def test_uses_the_fixtures_server(server):
    with socket.create_connection(server):
        assert ACCEPTED.wait(60)
"""


def test_a_threads_socket_is_its_starters(pytester: pytest.Pytester, netns: str) -> None:
    """test_starts_a_late_listener's thread listens during test_innocent: the starter is named, late;
    in new mode, a server thread's side of a connection closed within the grace is no leak; a
    module fixture's server thread's connections are the fixture's."""
    pytester.makepyfile(test_threads=THREADS)
    result = run(pytester, netns, "--sockdiff-strict", "-o", "sockdiff_fail_on=new")
    result.assert_outcomes(passed=5, errors=1)
    assert errors(result) == ["test_threads.py::test_server_thread_keeps_it"]
    assert result.ret == 1
    found = leaks(result)
    fixture_line = line_of(THREADS, '@pytest.fixture(scope="module")')
    fixture = f"module fixture 'server' (test_threads.py:{fixture_line})"
    assert sorted(found) == [
        fixture,
        "test_threads.py::test_server_thread_keeps_it",
        "test_threads.py::test_starts_a_late_listener",
    ]
    # The connection the fixture's server thread accepted, and holds, is the fixture's, not the test's.
    (accepted,) = found[fixture]
    pattern = r"tcp CLOSE_WAIT 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ {}  \(thread 'fixture-server'\)"
    assert re.fullmatch(pattern.format(PROCESS.pattern), accepted)
    (late,) = found["test_threads.py::test_starts_a_late_listener"]
    pattern = r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* {}  \(thread 'late-listener'\)"
    assert re.fullmatch(pattern.format(PROCESS.pattern) + r"  \(opened after it ended\)", late)
    (kept,) = found["test_threads.py::test_server_thread_keeps_it"]
    pattern = r"tcp CLOSE_WAIT 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ {}  \(thread 'keeps-it'\)"
    assert re.fullmatch(pattern.format(PROCESS.pattern), kept)


NAMESPACES = """
import ctypes
import os
import socket
import subprocess
import sys

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)
HELD = []
# Listens in a namespace of its own, then moves to a third: its /proc/PID/ns/net is neither.
CHILD = '''
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x40000000) == 0, os.strerror(ctypes.get_errno())
server = socket.create_server(("0.0.0.0", 0))
assert libc.unshare(0x40000000) == 0, os.strerror(ctypes.get_errno())
print("ready", flush=True)
sys.stdin.read()
'''


def here():
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY)


def setns(fd):
    assert LIBC.setns(fd, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
    os.close(fd)


def unshare():
    assert LIBC.unshare(CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())


def test_unshare_listen_return():
    home = here()
    unshare()
    HELD.append(socket.create_server(("0.0.0.0", 0)))
    setns(home)


def test_setns_listen_return():
    home = here()
    unshare()
    other = here()
    setns(home)
    home = here()
    setns(other)
    HELD.append(socket.create_server(("0.0.0.0", 0)))
    setns(home)


def test_child_listens_elsewhere_and_moves_on():
    pipe = subprocess.PIPE
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=pipe, stdout=pipe, text=True)
    assert child.stdout.readline()
    HELD.append(child)


def test_clean_elsewhere():
    home = here()
    unshare()
    with socket.create_server(("0.0.0.0", 0)):
        pass
    setns(home)


def test_listen_then_leave():  # last: the tests after it would run in the namespace it made
    HELD.append(socket.create_server(("127.0.0.1", 0)))
    unshare()
"""


def test_a_socket_is_checked_in_the_namespace_it_lives_in(pytester: pytest.Pytester, netns: str) -> None:
    """Tests that listen in a namespace and come back, or that listen and leave, are blamed."""
    pytester.makepyfile(test_namespaces=NAMESPACES)
    result = run(pytester, netns, "--sockdiff-strict", "-p", "no:randomly")
    leakers = [
        f"test_namespaces.py::test_{name}"
        for name in ("unshare_listen_return", "setns_listen_return", "child_listens_elsewhere_and_moves_on")
    ]
    leakers.append("test_namespaces.py::test_listen_then_leave")
    result.assert_outcomes(passed=5, errors=4)
    assert errors(result) == sorted(leakers)
    found = leaks(result)
    assert sorted(found) == sorted(leakers)
    # Each named by the namespace it lives in, which is not the test process's (unnamed ones by inode).
    anywhere = r"\[net:\[\d+\]\] tcp LISTEN 0\.0\.0\.0:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern
    for name in leakers[:3]:
        (line,) = found[name]
        assert re.fullmatch(anywhere, line), line
    (left,) = found["test_namespaces.py::test_listen_then_leave"]
    where = re.escape(f"[{netns}] ")  # the test process left it: it lives in the namespace named
    assert re.fullmatch(where + r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern, left)


GONE = """
import os
import socket
import tempfile

HELD = []


def test_leaves_no_directory():
    gone = tempfile.mkdtemp()
    os.chdir(gone)
    os.rmdir(gone)
    HELD.append(socket.create_server(("127.0.0.1", 0)))
"""


def test_trace_when_a_test_removed_its_working_directory(pytester: pytest.Pytester, netns: str) -> None:
    pytester.makepyfile(test_gone=GONE)
    result = run(pytester, netns, "--sockdiff-trace")
    assert result.ret == 0, result.errlines
    assert not [line for line in [*result.outlines, *result.errlines] if "Traceback" in line]
    (line,) = leaks(result)["test_gone.py::test_leaves_no_directory"]
    created = line_of(GONE, '    HELD.append(socket.create_server(("127.0.0.1", 0)))')
    assert line.endswith(f"  created at {pytester.path / 'test_gone.py'}:{created}")


def test_a_clean_run_says_so_in_one_line(suite: pytest.Pytester, netns: str) -> None:
    for workers in ([], ["-n", "2"]):
        result = run(suite, netns, "-q", "--sockdiff", "-k", "clean or outgoing", *workers)
        assert result.ret == 0
        assert [line for line in result.outlines if "sockdiff" in line] == [
            "sockdiff: 2 tests checked, no test or fixture left a listening socket open"
        ]


BLAME_CONFTEST = """
import socket
import threading

HELD = []
SESSION_GO = threading.Event()
SESSION_DONE = threading.Event()


def listen_when_told():
    SESSION_GO.wait()
    HELD.append(socket.create_server(("127.0.0.1", 0)))
    SESSION_DONE.set()
    threading.Event().wait()  # runs on, holding it


# Started at import, before any test: what it opens is the session's.
threading.Thread(target=listen_when_told, name="from-conftest", daemon=True).start()
"""

BLAME = """
import os
import socket
import threading

import pytest

import conftest

HELD = []
LATE = {}
STALE = []


def listen_when_told(go, done, host):
    go.wait()
    HELD.append(socket.create_server((host, 0)))
    done.set()
    threading.Event().wait()  # runs on, holding it


def later(host, name):
    go, done = threading.Event(), threading.Event()
    threading.Thread(target=listen_when_told, args=(go, done, host), name=name, daemon=True).start()
    return go, done


def test_forged_thread_name():
    go, done = later("127.0.0.1", "##[warning]forged-by-thread")
    go.set()
    assert done.wait(60)


def test_session_thread_listens():
    conftest.SESSION_GO.set()
    assert conftest.SESSION_DONE.wait(60)


def test_starts_a_thread_for_the_fixture():
    LATE["fixture"] = later("127.0.0.1", "for-the-fixture")


@pytest.fixture(scope="module")
def slow():
    go, done = LATE["fixture"]
    go.set()  # an earlier test's thread listens while this fixture is set up
    assert done.wait(60)


def test_uses_the_slow_fixture(slow):
    pass


@pytest.mark.sockdiff_ignore()
def test_unchecked_starts_a_thread():
    LATE["unchecked"] = later("127.0.0.1", "unchecked")


@pytest.mark.sockdiff_ignore("src 127.0.0.5")
def test_marked_starts_a_thread():
    LATE["marked"] = later("127.0.0.5", "marked")


def test_lets_them_listen():
    for name in ("unchecked", "marked"):
        go, done = LATE[name]
        go.set()
        assert done.wait(60)


def start_one_when_told(go, done):
    go.wait()
    # A thread started by a thread: its starter's, not the test's running now.
    threading.Thread(target=listen_when_told, args=(GO_NOW, done, "127.0.0.1"), name="grandchild").start()


GO_NOW = threading.Event()
GO_NOW.set()


def test_starts_a_thread_that_starts_one():
    go, done = threading.Event(), threading.Event()
    threading.Thread(target=start_one_when_told, args=(go, done), name="parent", daemon=True).start()
    LATE["grandchild"] = go, done


def test_tells_it_to():
    go, done = LATE["grandchild"]
    go.set()
    assert done.wait(60)


def test_a_thread_makes_a_socket_and_ends():
    thread = threading.Thread(target=lambda: STALE.append(socket.socket()), name="stale-maker")
    thread.start()
    thread.join()


def test_listens_on_a_reused_fd():
    server = socket.create_server(("127.0.0.1", 0))
    fd = STALE[0].fileno()
    os.close(fd)  # the thread's socket object still says this number
    os.dup2(server.fileno(), fd)
    HELD.append(socket.socket(fileno=fd))  # made by the main thread, in this test
    server.close()
"""

MARKED_MODULE = """
import socket

import pytest

pytestmark = pytest.mark.sockdiff_ignore("src 127.0.0.6")
HELD = []


@pytest.fixture(scope="module")
def ignored_server():
    HELD.append(socket.create_server(("127.0.0.6", 0)))


def test_uses_it(ignored_server):
    pass
"""


@pytest.fixture
def blame(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    pytester.makeconftest(BLAME_CONFTEST)
    pytester.makepyfile(test_blame=BLAME, test_marked_module=MARKED_MODULE)
    return pytester


def no_forged_command(result: pytest.RunResult, level: str) -> None:
    """Every line pytest wrote, as GitHub's runner reads it: only the plugin's own annotations."""
    commands = [(line, parse(line)) for line in result.outlines + result.errlines]
    found = [(line, command) for line, command in commands if command is not None]
    assert found
    for line, command in found:
        assert command is not None
        assert (command.syntax, command.name, command.properties.get("title")) == (
            "v2",
            level,
            "sockdiff: sockets left open",
        ), line


def test_blame_holds_for_threads_names_markers_and_fds(blame: pytest.Pytester, netns: str) -> None:
    """Strict, on GitHub Actions: a thread's name opens no workflow command in the teardown error;
    a conftest's thread is the session's; a fixture set up while an earlier test's thread listens
    is not blamed; a late socket is filtered by its starter's markers; a thread's socket object
    whose fd was closed under it does not take the blame for a later socket given that fd."""
    result = run(blame, netns, "--sockdiff-strict")
    no_forged_command(result, "error")
    assert "#\\x23[warning]forged-by-thread" in result.stdout.str()
    result.assert_outcomes(passed=12, errors=2)
    assert errors(result) == [
        "test_blame.py::test_forged_thread_name",
        "test_blame.py::test_listens_on_a_reused_fd",
    ]
    assert result.ret == 1
    found = leaks(result)
    assert sorted(found) == [
        "test_blame.py::test_forged_thread_name",
        "test_blame.py::test_listens_on_a_reused_fd",
        "test_blame.py::test_starts_a_thread_for_the_fixture",
        "test_blame.py::test_starts_a_thread_that_starts_one",
        "the session (started before the first test)",
    ]
    listener = r"tcp LISTEN 127\.0\.0\.1:\d+ 0\.0\.0\.0:\* " + PROCESS.pattern
    (session,) = found["the session (started before the first test)"]
    assert re.fullmatch(listener + r"  \(thread 'from-conftest'\)", session)
    (forged,) = found["test_blame.py::test_forged_thread_name"]
    assert re.fullmatch(listener + r"  \(thread '#\\x23\[warning\]forged-by-thread'\)", forged)
    (late,) = found["test_blame.py::test_starts_a_thread_for_the_fixture"]
    assert re.fullmatch(listener + r"  \(thread 'for-the-fixture'\)  \(opened after it ended\)", late)
    (grandchild,) = found["test_blame.py::test_starts_a_thread_that_starts_one"]
    assert re.fullmatch(listener + r"  \(thread 'grandchild'\)  \(opened after it ended\)", grandchild)
    (reused,) = found["test_blame.py::test_listens_on_a_reused_fd"]
    assert re.fullmatch(listener, reused)


def test_report_mode_warnings_forge_no_command(blame: pytest.Pytester, netns: str) -> None:
    """The leak warning, shown in pytest's warnings summary, escapes the thread's name too."""
    result = run(blame, netns, "--sockdiff", "-k", "forged_thread_name")
    result.assert_outcomes(passed=1, deselected=11, warnings=1)
    no_forged_command(result, "warning")
    result.stdout.fnmatch_lines(
        ["*SockdiffLeakWarning: left 1 socket open: tcp LISTEN*#\\x23[[]warning]forged*"]
    )


ADDRESS_IN_USE = """
import socket
import pytest

HELD = []


@pytest.fixture(scope="module")
def server():
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


def test_leaves_one():
    HELD.append(socket.create_server(("127.0.0.1", 0)))
    with open("port", "w") as out:
        out.write(str(HELD[0].getsockname()[1]))


def test_binds_it_again():
    socket.create_server(("127.0.0.1", int(open("port").read())))


def test_a_plain_bind_under_another_error(server):
    port = server
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise RuntimeError("could not start the app") from err


def test_a_literal_address_through_a_chain():
    def start():  # no local names the address: the port is unknown
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", int(open("port").read())))

    try:
        start()
    except OSError as err:
        raise RuntimeError("the app did not start") from err


def test_an_unrelated_port_nearby():
    port = 1  # not the port the failing bind wanted: never taken for it

    def start(wanted):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", wanted))

    start(int(open("port").read()))


def test_another_failure():
    assert False
"""


def test_address_in_use_names_who_holds_the_port(pytester: pytest.Pytester, netns: str) -> None:
    """A test failing with EADDRINUSE anywhere in its chain gets a section: who holds the port now."""
    pytester.makepyfile(test_ports=ADDRESS_IN_USE)
    result = run(pytester, netns, "--sockdiff")
    result.assert_outcomes(passed=1, failed=5)
    port = (pytester.path / "port").read_text()
    text = "\n".join(result.outlines)
    titles = re.findall(r"-+ (sockdiff: who holds .*?) -+\n", text)
    assert len(titles) == 4 and not [title for title in titles if "None" in title], titles
    # The port unknown: the listeners the run opened that are still open stand in, each with its opener.
    (unknown,) = re.findall(r"-+ sockdiff: who holds the port -+\n(.*?)\n(.*?)\n(.*?)\n", text)
    assert unknown[0].startswith("the port the failing bind wanted is unknown"), unknown
    ours = [line for line in unknown[1:] if f"127.0.0.1:{port} " in line]
    assert len(ours) == 1 and "opened by test_ports.py::test_leaves_one" in ours[0], unknown
    sections = re.findall(r"-+ sockdiff: who holds port (\d+) -+\n(.*?)\n(.*?)\n", text)
    assert len(sections) == 3, text  # the plain failure has none
    both = [s for s in sections if s[0] == port]
    assert len(both) == 2, sections  # the nearby 'port' is not it: the bind's own argument is
    for leaked in both:
        assert leaked[1] == f"port {port} is held now by:"
        assert f"127.0.0.1:{port} " in leaked[2] and "opened by test_ports.py::test_leaves_one" in leaked[2]
        assert re.search(r"users:\(\(\"python[^\"]*\",pid=\d+,fd=\d+\)\)  pid \d+ up [\d.]+s: ", leaked[2])
    (fixture,) = [s for s in sections if s[0] != port]
    assert "opened by module fixture 'server' (test_ports.py:7)" in fixture[2]
