"""Text output cannot be forged: a name holding a newline stays on its socket's line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec
import pytest

from sockdiff.formats.notation import escape, unix_name
from tests.helpers.cli import TIMEOUT, sockdiff
from tests.helpers.netns import netns_exec_argv
from tests.helpers.runner_commands import parse

pytest_plugins = ("pytester",)

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
        ("\x1b[2J\x00\x7f\x85", "\\x1b[2J\\x00\\x7f\\u0085"),
        ("left\u202eright\u2028", "left\\u202eright\\u2028"),
        ("back\\slash", "back\\\\slash"),
        ("\\n", "\\\\n"),  # a backslash and an n stay apart from a newline
        ("naïve ✓", "naïve ✓"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown
    assert escape(shown, backslash=False) == shown  # idempotent on a record's form


def test_a_character_never_reads_as_a_byte_a_record_escaped() -> None:
    """U+0085 and the byte 0x85 (a record writes it ``\\x85``) are two names, shown apart."""
    character, byte = escape("d\x85", backslash=False), escape("d\\x85", backslash=False)
    assert character == "d\\u0085" and byte == "d\\x85"


def test_a_forged_name_stays_on_one_line(netns: str, tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    assert sockdiff("snapshot", "--netns", netns, "-o", str(before)).returncode == 0
    # Not under tmp_path: xdist's is long enough to take the name past sun_path's 108 bytes.
    short = Path(tempfile.mkdtemp(prefix="sd-"))
    try:
        path = short / "a\n+ tcp LISTEN 0.0.0.0:22 0.0.0.0:*"
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
        escaped_path = unix_name(str(path))
        assert any(f"{escaped_path} " in line and "evil\\n+ tcp" in line for line in lines)
        listener = "+ tcp LISTEN 127.0.0.1:7999"
        assert any(line.startswith(listener) and "evil\\n+ tcp" in line for line in lines)

        table = sockdiff("show", str(after), "-a", "-p").stdout.splitlines()
        assert len(table) == 3 and table[0].startswith("Netid")
        assert {row.split()[0] for row in table[1:]} == {"tcp", "u_str"}
    finally:
        shutil.rmtree(short)


def test_every_text_report_keeps_a_difference_on_one_line() -> None:
    """compare's text and markdown and watch's lines (formats.items), from records named to forge."""
    import dataclasses

    from sockdiff import Process, diff, report
    from sockdiff import unix_name as unix_endpoint
    from sockdiff.formats.items import items
    from sockdiff.formats.text import item_line
    from tests.helpers.made import sample

    before = sample()
    assert before.sockets is not None
    forged = [
        msgspec.structs.replace(s, processes=(Process(9, EVIL, 3),)) if s.proto == "tcp" else s
        for s in before.sockets
    ]
    forged.append(
        msgspec.structs.replace(
            before.sockets[-1], local=unix_endpoint("/tmp/x\n+ tcp LISTEN *:22"), inode=99
        )
    )
    result = diff(before, dataclasses.replace(before, sockets=tuple(forged)))
    lines = [item_line(item) for item in items(result, ("any",))]
    assert len(lines) == 2 and all("\n" not in line and line[:2] in ("+ ", "~ ") for line in lines)
    text = report(result, "text").splitlines()
    assert text[:-1] == lines
    markdown = report(result, "markdown")
    assert EVIL not in markdown and "/tmp/x\n" not in markdown


# A process that names itself as the runner's older command syntax, listening on
# TCP and on UNIX names built to forge: twelve annotations' worth of abstract
# names that would stop the runner's commands, one that would be an error, a
# path holding a fake owner, and the two abstract names /proc writes alike.
_FORGER = r"""
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(15, b"##[warning]x", 0, 0, 0) == 0  # PR_SET_NAME
names = [b"\0##[stop-commands]t%d" % n for n in range(12)]
names += [b"\0##[error]forged", b"\0a\0b", b"\0a@b", sys.argv[1].encode(), sys.argv[2].encode()]
held = []
for name in names:
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(name)
    unix.listen()
    held.append(unix)
tcp = socket.socket()
tcp.bind(("127.0.0.1", 7998))
tcp.listen()
print("ready", flush=True)
sys.stdin.read()
"""
FAKE_OWNER = ' users:(("sshd",pid=1,fd=3))'
MEANT = ("error", "warning", "notice")


def test_names_never_open_a_ci_command_nor_forge_a_column(netns: str, tmp_path: Path) -> None:
    """Issue 14: every line compare (text, github) and show write, read as GitHub's runner reads it."""
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    assert sockdiff("snapshot", "--netns", netns, "-o", str(before)).returncode == 0
    owner_path, command_path = tmp_path / f"x{FAKE_OWNER}", tmp_path / "::error::forged"
    with subprocess.Popen(
        netns_exec_argv(netns, [sys.executable, "-c", _FORGER, str(owner_path), str(command_path)]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        taken = sockdiff("snapshot", "--netns", netns, "-o", str(after))
        assert taken.returncode == 0, taken.stderr
        child.communicate(timeout=TIMEOUT)

    github = sockdiff("compare", str(before), str(after), "--format", "github").stdout.splitlines()
    plain = [line for line in github if not line.startswith("::")]
    assert len(github) == 20 and len(plain) == 9, github  # 10 errors, a notice, 8 plain lines, the summary
    for line in github:
        command = parse(line)
        if line.startswith("::"):
            assert command is not None and command.syntax == "v2" and command.name in MEANT, line
        else:
            assert command is None, line
    assert any("@#\\x23[error]forged" in line for line in github)

    text = sockdiff("compare", str(before), str(after)).stdout.splitlines()
    assert len(text) == 19 and [parse(line) for line in text] == [None] * 19, text
    assert '("#\\x23[warning]x",pid=' in "\n".join(text)
    # /proc's notation: a NUL inside an abstract name is "@", as a literal "@" is.
    # The two sockets stay two: a UNIX socket is matched by its inode too.
    assert sum(" @a@b " in line for line in text) == 2

    # JSON keeps the name exactly ("#\u0023[" is "##["), and no line of it is a command either.
    as_json = sockdiff("compare", str(before), str(after), "--format", "json").stdout
    as_jsonl = sockdiff("show", str(after), "-a", "--format", "jsonl").stdout
    for printed in (as_json, as_jsonl):
        assert "##[" not in printed and [parse(line) for line in printed.split("\n")] == [None] * (
            printed.count("\n") + 1
        )
    assert "@##[error]forged" in {sock["local"].get("path") for sock in json.loads(as_json)["new"]}

    table = sockdiff("show", str(after), "-a", "-p").stdout.splitlines()
    assert [parse(line) for line in table] == [None] * len(table)
    (row,) = [line for line in table if "users:((" in line and "x\\x20users" in line]
    assert row.count("users:((") == 2 and row.index(unix_name(str(owner_path))) < row.rindex("users:((")
    assert row.split()[4] == unix_name(str(owner_path))  # the name is one column


@pytest.mark.parametrize(
    "name",
    [
        "##[error]x",
        "@##[stop-commands]tok",
        "::error::x",
        " \u3000::warning::x",
        "#\u200b#[error]x",
        "#\u3164#[x]",
    ],
)
def test_escape_leaves_no_command(name: str) -> None:
    shown = escape(name)
    assert parse(shown) is None and parse(f"+ u_str LISTEN {shown} 1 * 0") is None
    assert escape(shown, backslash=False) == shown  # applying it twice does no harm


def test_interface_and_route_lines_escape_once() -> None:
    """A record's names carry their backslashes doubled: compare shows them as show -i does."""
    from sockdiff import Interface, Route, Socket, inet
    from sockdiff.formats.netstat import interface_table
    from sockdiff.formats.notation import interface_line, local_text, route_line

    link = Interface("bad\\xff", 3, ("UP",), "UP", 1500, None, (), None)
    assert interface_line(link).startswith("interface bad\\xff <UP>")
    assert interface_table([link], header=False).startswith("bad\\xff ")
    route = Route("inet", 254, "unicast", "10.0.0.0/24", None, "bad\\xff", 0, None, None)
    assert " dev bad\\xff " in route_line(route)
    bound = Socket("udp", "inet", "dgram", "CLOSE", inet("0.0.0.0", 53), inet("0.0.0.0", 0), 9, 0, 0, 0, ())
    bound = msgspec.structs.replace(bound, interface="bad\\xff")
    assert local_text(bound) == "0.0.0.0%bad\\xff:53"  # a socket's bound device, as ss -l shows it


def test_the_plugin_summary_opens_no_ci_command(pytester: pytest.Pytester, netns: str) -> None:
    """The summary of a test that leaks a socket named as a command, in a GitHub log."""
    pytester.makepyfile(
        test_forger="""
import socket
HELD = []
def test_leak():
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(b"\\0##[error]forged")
    server.listen()
    HELD.append(server)
"""
    )
    argv = ["env", "GITHUB_ACTIONS=true", sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    argv += [f"--basetemp={pytester.path / 'tmp'}", "--sockdiff", "-o", "sockdiff_fail_on=new"]
    ran = pytester.run(*netns_exec_argv(netns, argv), timeout=120)
    summary = ran.outlines[next(i for i, line in enumerate(ran.outlines) if "sockets left open" in line) :]
    assert any("@#\\x23[error]forged" in line for line in summary), ran.outlines
    for line in summary:
        command = parse(line)
        assert command is None or (command.syntax == "v2" and command.name in MEANT), line


@pytest.mark.parametrize("mode", ["--sockdiff", "--sockdiff-strict"])
def test_no_line_the_plugin_writes_opens_a_ci_command(
    pytester: pytest.Pytester, netns: str, mode: str
) -> None:
    """A thread named as a command: its name is in the teardown error, the warning and the summary."""
    pytester.makepyfile(
        test_thread_forger="""
import socket, threading
HELD = []
def test_leak_from_a_thread():
    def serve():
        HELD.append(socket.create_server(("127.0.0.1", 0)))
    thread = threading.Thread(target=serve, name="##[warning]forged-by-thread")
    thread.start()
    thread.join()
"""
    )
    argv = ["env", "GITHUB_ACTIONS=true", sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    argv += [f"--basetemp={pytester.path / 'tmp'}", mode, "-rA"]
    ran = pytester.run(*netns_exec_argv(netns, argv), timeout=120)
    assert any("#\\x23[warning]forged-by-thread" in line for line in ran.outlines), ran.outlines
    for line in ran.outlines:
        command = parse(line)
        assert command is None or (command.syntax == "v2" and command.name in MEANT), line


def test_show_i_keeps_its_columns_under_a_long_escaped_name() -> None:
    """A 15-byte name of control bytes escapes to 60 characters: the Iface column widens to it."""
    from sockdiff import Interface
    from sockdiff.formats.netstat import interface_table

    plain = Interface("eth0", 2, ("UP",), "UP", 1500, None, (), None)
    odd = Interface("".join(chr(c) for c in range(1, 16)), 3, ("UP",), "UP", 9000, None, (), None)
    narrow = interface_table([plain]).splitlines()
    assert narrow[1].startswith("Iface             MTU") and narrow[2].startswith("eth0             1500 ")
    heading, *rows = interface_table([plain, odd]).splitlines()[1:]
    mtu_end = heading.index("MTU") + 3
    assert [row[mtu_end - 4 : mtu_end] for row in rows] == ["1500", "9000"]
    assert rows[1].startswith(r"\x01\x02")
