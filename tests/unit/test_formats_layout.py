"""formats/ holds every rendering: the same bytes through each kind's interface, and no kernel read.

``fixtures/formats/outputs.json`` was written by the code before the move (render.py,
render_net.py and cli.watch's hand-written loop) from the records below: show's
table, -s, -i and --route and watch's lines and jsonl events must stay those bytes.
"""

from __future__ import annotations

import ast
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

import sockdiff.formats
from sockdiff import Process, Socket, inet, unix_name, unix_peer
from sockdiff.differ import diff
from sockdiff.formats import (
    EventChoice,
    Format,
    ListingChoice,
    ListingOptions,
    Section,
    event_format,
    listing_format,
)
from sockdiff.formats.leaks import clean_line, leak_summary
from sockdiff.formats.netstat import netstat_routes, select_interfaces, select_routes
from sockdiff.formats.ss import sockets_summary
from sockdiff.model import Counters, Interface, Leak, Nexthop, Route
from sockdiff.snapshots import Snapshot, dumps
from tests.helpers.made import HEADER

ROOT = Path(__file__).resolve().parents[2]
EXPECTED: dict[str, str] = json.loads((ROOT / "fixtures" / "formats" / "outputs.json").read_text())
STAMP = "2026-12-01T11:54:51.451Z"

ANY = inet("0.0.0.0", 0)
LISTENER = Socket(
    "tcp",
    "inet",
    "stream",
    "LISTEN",
    inet("127.0.0.1", 8080),
    ANY,
    41,
    1000,
    0,
    128,
    (Process(4888, "python3", 3),),
)
V6 = Socket(
    "udp",
    "inet6",
    "dgram",
    "UNCONN",
    inet("::", 5353),
    inet("::", 0),
    42,
    0,
    0,
    0,
    (Process(612, "avahi\x1b[31m", 12),),
    v6only=True,
)
CONN = Socket(
    "tcp", "inet", "stream", "ESTABLISHED", inet("10.0.0.2", 22), inet("10.0.0.9", 50000), 43, 0, 0, 36, ()
)
UNIX = Socket(
    "unix",
    "unix",
    "stream",
    "LISTENING",
    unix_name("/run/a b.sock"),
    unix_peer(0),
    44,
    0,
    0,
    0,
    (Process(1, "systemd", 40),),
)
CLOSED = Socket(
    "tcp",
    "inet",
    "stream",
    "LISTEN",
    inet("0.0.0.0", 6379),
    ANY,
    45,
    0,
    0,
    511,
    (Process(901, "redis-server", 6),),
)
SHORT = Socket(
    "tcp", "inet", "stream", "CLOSE", inet("127.0.0.1", 54282), inet("127.0.0.1", 7000), 0, 0, None, None, ()
)
LO = Interface(
    "lo",
    1,
    ("LOOPBACK", "RUNNING", "UP"),
    "UNKNOWN",
    65536,
    None,
    ("127.0.0.1/8", "::1/128"),
    Counters(5, 0, 0, 0, 5, 0, 0, 0, 500, 500),
)
ETH = Interface(
    "eth0",
    2,
    ("BROADCAST", "MULTICAST", "RUNNING", "UP"),
    "UP",
    1500,
    "02:00:00:00:00:01",
    ("10.0.0.2/24",),
    Counters(100, 1, 2, 0, 90, 0, 0, 0, 10000, 9000),
)
DOWN = Interface("dummy0", 3, ("BROADCAST", "NOARP"), "DOWN", 1500, "02:00:00:00:00:02", (), None)
ROUTES = (
    Route("inet", 254, "unicast", "0.0.0.0/0", "10.0.0.1", "eth0", 100, "dhcp", "universe"),
    Route("inet", 254, "unicast", "10.0.0.0/24", None, "eth0", 0, "kernel", "link"),
    Route("inet", 255, "local", "10.0.0.2/32", None, "eth0", 0, "kernel", "host"),
    Route(
        "inet",
        100,
        "unicast",
        "10.9.0.0/16",
        None,
        None,
        0,
        "static",
        "universe",
        nexthops=(Nexthop("10.0.0.1", "eth0", 1), Nexthop("10.0.0.3", "eth0", 2)),
    ),
    Route("inet6", 254, "unicast", "fe80::/64", None, "eth0", 256, "kernel", "universe"),
    Route("inet6", 255, "local", "::1/128", None, "lo", 0, "kernel", "host"),
)
OLD = Snapshot(HEADER, (LISTENER, CONN, CLOSED, UNIX), (LO, ETH), ROUTES[:4])
NEW = Snapshot(
    HEADER,
    (msgspec.structs.replace(LISTENER, processes=(Process(5120, "python3", 6),), inode=48), V6, CONN, UNIX),
    (
        LO,
        msgspec.structs.replace(ETH, mtu=1400, counters=Counters(150, 1, 2, 0, 95, 0, 0, 0, 15000, 9500)),
        DOWN,
    ),
    ROUTES[:1] + ROUTES[2:],
)


def stdout() -> io.TextIOWrapper:
    """A stand-in for sys.stdout: text over bytes, as the formats write both."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="\n")


def written(out: io.TextIOWrapper) -> bytes:
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue()


def listing(choice: ListingChoice, snap: Snapshot, section: Section, options: ListingOptions) -> bytes:
    out = stdout()
    listing_format(choice).write(out, snap, section, options)
    return written(out)


@pytest.mark.parametrize(
    ("name", "section", "records", "options"),
    [
        ("table", "sockets", NEW, ListingOptions()),
        ("table_pe", "sockets", NEW, ListingOptions(header=False, processes=True, extended=True)),
        (
            "interfaces",
            "interfaces",
            Snapshot(HEADER, None, tuple(select_interfaces(NEW.interfaces or (), True)), None),
            ListingOptions(),
        ),
        (
            "routes",
            "routes",
            Snapshot(HEADER, None, None, tuple(netstat_routes(NEW.routes or (), ("inet", "inet6")))),
            ListingOptions(null_entries=True),
        ),
        (
            "routes_all",
            "routes",
            Snapshot(HEADER, None, None, tuple(select_routes(NEW.routes or (), ("inet", "inet6"), None))),
            ListingOptions(all_tables=True),
        ),
    ],
)
def test_show_table_bytes_are_unchanged(
    name: str, section: Section, records: Snapshot, options: ListingOptions
) -> None:
    """show's table, -i and --route write, byte for byte, what render.py and render_net.py wrote."""
    assert listing(Format.TABLE, records, section, options) == EXPECTED[name].encode()


def test_show_summary_bytes_are_unchanged() -> None:
    assert (sockets_summary(NEW.sockets or ()) + "\n").encode() == EXPECTED["summary"].encode()


def test_show_json_and_jsonl_write_the_chosen_records() -> None:
    """json: the snapshot narrowed to the section, as a file holds it; jsonl: a record a line."""
    assert listing(Format.JSON, NEW, "sockets", ListingOptions()) == dumps(NEW)
    lines = listing(Format.JSONL, NEW, "routes", ListingOptions()).splitlines()
    assert [msgspec.json.decode(line, type=Route) for line in lines] == list(NEW.routes or ())
    assert (
        listing(Format.TABLE, Snapshot(HEADER, (), None, None), "sockets", ListingOptions(header=False))
        == b""
    )


@pytest.mark.parametrize(
    ("choice", "colour", "name"),
    [
        (Format.TEXT, False, "watch_text"),
        (Format.TEXT, True, "watch_text_colour"),
        (Format.JSONL, False, "watch_jsonl"),
    ],
)
def test_watch_event_bytes_are_unchanged(choice: EventChoice, colour: bool, name: str) -> None:
    """watch's lines and jsonl events, in the order cli.watch wrote them (jsonl: short-lived after closed)."""
    events = event_format(choice, colour)
    out = stdout()
    events.overrun(out, STAMP, "socket events")
    events.poll(out, STAMP, diff(OLD, NEW), (SHORT,))
    events.poll(out, STAMP, None, ())  # a report with nothing read writes nothing
    assert written(out) == EXPECTED[name].encode()


def test_plugin_summary_lines() -> None:
    """The summary the pytest plugin writes, from formats/ (README's example, names escaped)."""
    fixture = "session fixture 'srv' (conftest.py:8)"
    lines = leak_summary(
        [
            [Leak(LISTENER, "t.py::test_a\n", "test", created="t.py:13")],
            [Leak(UNIX, fixture, "fixture"), Leak(CLOSED, fixture, "fixture", thread="w")],
        ]
    )
    assert lines == [
        "t.py::test_a\\n",
        '    tcp LISTEN 127.0.0.1:8080 0.0.0.0:* users:(("python3",pid=4888,fd=3))  created at t.py:13',
        "session fixture 'srv' (conftest.py:8)",
        '    u_str LISTENING /run/a\\x20b.sock 44 * 0 users:(("systemd",pid=1,fd=40))',
        "    tcp LISTEN 0.0.0.0:6379 0.0.0.0:* users:((\"redis-server\",pid=901,fd=6))  (thread 'w')",
        "1 test and 1 fixture left 3 sockets open",
    ]
    assert clean_line(1, False) == "sockdiff: 1 test checked, no test or fixture left a listening socket open"
    assert clean_line(12, True) == "sockdiff: 12 tests checked, no test or fixture left a socket open"


# What reads the kernel: formats/ renders records it is given, and imports none of these.
KERNEL_READERS = ("sockdiff.backends", "sockdiff.processes", "sockdiff.proctree", "sockdiff.netns")
KERNEL_MODULES = (
    "sockdiff.backends.netlink.framing",
    "sockdiff.backends.netlink.sockets",
    "sockdiff.backends.netlink.links",
    "sockdiff.backends.netlink.routes",
    "sockdiff.backends.netlink.events",
    "sockdiff.backends.proc.sockets",
    "sockdiff.backends.proc.links",
    "sockdiff.backends.proc.routes",
    "sockdiff.processes",
    "sockdiff.proctree",
    "sockdiff.netns",
    "sockdiff._pyroute2",
    "pyroute2",
)


def _imported(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, wherever the import stands (a function's too), as absolute names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_formats_import_no_module_that_reads_the_kernel() -> None:
    """No formats/ module names a kernel reader; importing every one of them loads none."""
    directory = Path(sockdiff.formats.__file__).parent
    modules = sorted(path.stem for path in directory.glob("*.py") if path.stem != "__init__")
    assert {"notation", "ss", "netstat", "notes", "table", "leaks"} <= set(modules)
    for path in directory.glob("*.py"):
        bad = {
            name
            for name in _imported(path, "sockdiff.formats")
            if any(name == reader or name.startswith(reader + ".") for reader in KERNEL_READERS)
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"
    code = (
        "import sys, sockdiff.formats\n"
        f"for name in {modules!r}: __import__('sockdiff.formats.' + name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert "sockdiff.formats.notation" in loaded
    assert not loaded & set(KERNEL_MODULES)


def test_run_reports() -> None:
    """sockdiff run's report in each of compare's formats: one item a leaked socket, names escaped."""
    from sockdiff.formats import Format, RunOptions, run_format
    from sockdiff.model import Holder, RunReport

    hostile = Holder(4888, ("python3", "-c", "x\n::error::forged"), 12.34)
    leak = Leak(LISTENER, "sh suite.sh", "command", appeared=1.5, holders=(hostile,))
    report = RunReport(
        ("sh", "suite.sh"), 0, "2026-12-04T17:00:00.000Z", 3.2, ("listening",), (leak,), (hostile,)
    )
    text = run_format(Format.TEXT).render(report, RunOptions(timeline=True))
    assert text.splitlines() == [
        '+ tcp LISTEN 127.0.0.1:8080 0.0.0.0:* users:(("python3",pid=4888,fd=3))'
        "  pid 4888 up 12.3s: python3 -c 'x\\n::error::forged'; appeared 1.50s after the start",
        "still running: pid 4888 up 12.3s: python3 -c 'x\\n::error::forged'",
        "sockdiff run: 1 listening socket left open by sh suite.sh (exit 0)",
    ]
    assert "appeared" not in run_format(Format.TEXT).render(report, RunOptions())
    github = run_format(Format.GITHUB).render(report, RunOptions())
    assert [line.split(" ", 1)[0] for line in github.splitlines()[:2]] == ["::error", "::notice"]
    assert not any(line.startswith("::") for line in github.splitlines()[2:])
    junit = run_format(Format.JUNIT).render(report, RunOptions())
    assert 'tests="1" failures="1"' in junit and "forged" in junit
    assert "| + | sockets |" in run_format(Format.MARKDOWN).render(report, RunOptions())
    document = json.loads(run_format(Format.JSON).render(report, RunOptions()))
    assert document["format"] == "sockdiff.run" and document["leaks"][0]["appeared"] == 1.5
    clean = msgspec.structs.replace(report, leaks=(), left_running=())
    assert run_format(Format.TEXT).render(clean, RunOptions()) == (
        "sockdiff run: sh suite.sh (exit 0) left no listening socket open\n"
    )
    assert 'name="no sockets left open"' in run_format(Format.JUNIT).render(clean, RunOptions())


def test_run_markdown_sets_the_command_off_as_code() -> None:
    """The command line (a heading) and each process still running (a list item) are code spans:
    a CMD holding a link, HTML or backticks renders as itself in $GITHUB_STEP_SUMMARY."""
    from markdown_it import MarkdownIt

    from sockdiff.formats import RunOptions, run_format
    from sockdiff.model import Holder, RunReport

    command = ("sh", "-c", "[x](http://e.example) <b>`hi`</b> | y")
    holder = Holder(7, command, 1.0)
    report = RunReport(command, 0, "2026-12-04T17:00:00.000Z", 3.2, ("listening",), (), (holder,))
    tokens = (
        MarkdownIt("commonmark")
        .enable("table")
        .parse(run_format(Format.MARKDOWN).render(report, RunOptions()))
    )
    inline = [token for token in tokens if token.type == "inline"]
    heading, item = inline[0], inline[-1]
    for token in (heading, item):
        kinds = {child.type for child in token.children or ()}
        assert kinds <= {"text", "code_inline"}, token.children
    (span,) = [child.content for child in heading.children or () if child.type == "code_inline"]
    assert span == shlex.join(command)
    (span,) = [child.content for child in item.children or () if child.type == "code_inline"]
    assert span.endswith(shlex.join(command))
