"""The leak engine as a library (sockdiff.leaks): windows marked by hand, typed leaks back.

The engine makes its process a subreaper and marks the environment, so it runs in
a child process, in a namespace of its own; the pytest plugin's tests
(test_pytest_plugin.py) cover it through pytest's hooks.
"""

from __future__ import annotations

import sys

import pytest

from sockdiff import UsageError
from sockdiff.leaks import parse_leak_kinds
from sockdiff.model import Leak, decode_leaks, encode_leaks
from tests.helpers.cli import TIMEOUT
from tests.helpers.netns import run_in_netns

ENGINE = """
import socket, subprocess, sys
from sockdiff.leaks import LeakEngine, Window
from sockdiff.model import encode_leaks

engine = LeakEngine("listening", ["sport = :7003"], session=Window("the command", "command"))
engine.start()
# The session's: listens on 7002 once told, after the window ended.
early = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
engine.begin("w", Window("window w", "test", "w.py", 3), ())
kept = socket.create_server(("127.0.0.1", 7001))
ignored = socket.create_server(("127.0.0.1", 7003))
closed = socket.create_server(("127.0.0.1", 7004))
closed.close()
engine.poll()
in_window = engine.end("w")
early.stdin.write(b"go\\n")
early.stdin.flush()
assert early.stdout.readline() == b"listening\\n"
found = engine.finish()
print(encode_leaks([in_window, found]))
print(early.pid)
early.kill()
"""
LATE = (
    "import socket, sys; sys.stdin.readline(); s = socket.create_server(('127.0.0.1', 7002));"
    " print('listening', flush=True); sys.stdin.readline()"
)


def test_windows_give_typed_leaks(netns: str) -> None:
    done = run_in_netns(netns, [sys.executable, "-c", ENGINE, LATE], check=False, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (in_window, found), child = decode_leaks(lines[0]), int(lines[1])
    (leak,) = in_window
    assert (leak.owner, leak.kind, leak.file, leak.line, leak.late) == ("window w", "test", "w.py", 3, False)
    assert (leak.socket.state, leak.socket.local.port) == ("LISTEN", 7001)
    assert leak.appeared is not None and leak.appeared >= 0  # poll() saw it
    (late,) = found
    assert (late.owner, late.kind, late.socket.local.port) == ("the command", "command", 7002)
    assert [p.pid for p in late.socket.processes] == [child]


def test_leak_kinds_and_the_encoder() -> None:
    assert parse_leak_kinds("listening") is False
    assert parse_leak_kinds("new, listening") is True
    with pytest.raises(
        UsageError, match=r"unknown fail_on kind 'closed' \(choose from listening, new, any\)"
    ):
        parse_leak_kinds("closed")
    with pytest.raises(UsageError):
        parse_leak_kinds("nonsense")
    assert decode_leaks(encode_leaks([[], []])) == ((), ())
    assert Leak.__struct_config__.frozen
