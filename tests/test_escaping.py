"""Text output cannot be forged: a name holding a newline stays on its socket's line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from cli import TIMEOUT, sockdiff
from netns import netns_exec_argv

from sockdiff.render import escape

EVIL = "evil\n+ tcp"
# A child that names itself EVIL (prctl PR_SET_NAME) and listens on TCP and on a
# UNIX path that holds a forged line of its own.
_CHILD = r"""
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(15, sys.argv[2].encode(), 0, 0, 0) == 0  # PR_SET_NAME
unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
unix.bind(sys.argv[1])
unix.listen()
tcp = socket.socket()
tcp.bind(("127.0.0.1", 7999))
tcp.listen()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", "plain"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\x1b[2J\x00\x7f\x85", "\\x1b[2J\\x00\\x7f\\x85"),
        ("left\u202eright\u2028", "left\\u202eright\\u2028"),
        ("back\\slash", "back\\\\slash"),
        ("\\n", "\\\\n"),  # a backslash and an n stay apart from a newline
        ("naïve ✓", "naïve ✓"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown
    assert escape(shown, backslash=False) == shown  # idempotent on a record's form


def test_a_forged_name_stays_on_one_line(netns: str, tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    assert sockdiff("snapshot", "--netns", netns, "-o", str(before)).returncode == 0
    path = tmp_path / "a\n+ tcp LISTEN 0.0.0.0:22 0.0.0.0:*"
    with subprocess.Popen(
        netns_exec_argv(netns, [sys.executable, "-c", _CHILD, str(path), EVIL]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        taken = sockdiff("snapshot", "--netns", netns, "-o", str(after))
        assert taken.returncode == 0, taken.stderr
        child.communicate(timeout=TIMEOUT)
    compared = sockdiff("compare", str(before), str(after))
    lines = compared.stdout.splitlines()
    assert lines[-1].startswith("2 new, 0 closed, 0 changed"), compared.stdout
    assert [line[:2] for line in lines[:-1]] == ["+ ", "+ "]
    escaped_path = escape(str(path))
    assert any(f"{escaped_path} " in line and "evil\\n+ tcp" in line for line in lines)
    assert any(line.startswith("+ tcp LISTEN 127.0.0.1:7999") and "evil\\n+ tcp" in line for line in lines)

    table = sockdiff("show", str(after), "-a", "-p").stdout.splitlines()
    assert len(table) == 3 and table[0].startswith("Netid")
    assert {row.split()[0] for row in table[1:]} == {"tcp", "u_str"}


def test_every_text_report_keeps_a_difference_on_one_line() -> None:
    """compare's text and markdown and watch's lines (formats.items), from records named to forge."""
    import dataclasses

    from test_snapshot_file import sample

    from sockdiff import Process, UnixName, diff, report
    from sockdiff.formats.items import items
    from sockdiff.formats.text import item_line

    before = sample()
    assert before.sockets is not None
    forged = [
        msgspec.structs.replace(s, processes=(Process(9, EVIL, 3),)) if s.proto == "tcp" else s
        for s in before.sockets
    ]
    forged.append(
        msgspec.structs.replace(before.sockets[-1], local=UnixName("/tmp/x\n+ tcp LISTEN *:22"), inode=99)
    )
    result = diff(before, dataclasses.replace(before, sockets=tuple(forged)))
    lines = [item_line(item) for item in items(result, ("any",))]
    assert len(lines) == 2 and all("\n" not in line and line[:2] in ("+ ", "~ ") for line in lines)
    text = report(result, "text").splitlines()
    assert text[:-1] == lines
    markdown = report(result, "markdown")
    assert EVIL not in markdown and "/tmp/x\n" not in markdown
