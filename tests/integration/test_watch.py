"""``sockdiff watch`` as a user runs it, inside a private namespace.

Polls alone miss a connection that opens and closes between two of them; the
kernel's socket-destroy events (``ss -E``) do not. These tests make such
connections for real, between polls, and read what watch prints.

watch says on stderr when its first read is done (``sockdiff: watching ...``):
the tests wait for that line before they open anything, so that their sockets
are not in that first read.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from tests.helpers.cli import TIMEOUT
from tests.helpers.netns import netns_exec_argv, run_in_netns

# Opens a listener, connects to it, sends a byte each way, closes all three;
# prints the ports. With --keep PORT, first opens a listener on PORT kept open until stdin closes.
CONNECT = """
import json, socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
client.sendall(b"?")
server.recv(1)
server.sendall(b"!")
client.recv(1)
ports = {"server": listener.getsockname()[1], "client": client.getsockname()[1]}
client.close()
server.close()
listener.close()
print(json.dumps(ports))
"""

# Opens a TCP listener, kept until stdin closes; then COUNT UDP sockets, closed all
# at once by one close_range(2): a burst of destroy events. Prints the listener's port.
BURST = """
import os, resource, socket, sys
kept = socket.socket()
kept.bind(("127.0.0.1", 0))
kept.listen()
count = int(sys.argv[1])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
fds = []
for _ in range(count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    fds.append(sock.detach())
if fds:
    os.closerange(min(fds), max(fds) + 1)
print(kept.getsockname()[1], flush=True)
sys.stdin.read()
"""


class Watcher:
    """A running ``python -m sockdiff watch ARGV`` inside a namespace, its output read line by line."""

    def __init__(self, netns: str, argv: Sequence[str], cwd: Path | str = "/") -> None:
        env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "SOCKDIFF_HOME")}
        self.process = subprocess.Popen(
            netns_exec_argv(netns, [sys.executable, "-m", "sockdiff", "watch", *argv]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.threads = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            assert stream is not None
            thread = threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
            thread.start()
            self.threads.append(thread)

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    @staticmethod
    def _next(lines: queue.Queue[str | None], kept: list[str]) -> str:
        try:
            line = lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"nothing more from watch within {TIMEOUT} s; so far: {kept}") from None
        if line is None:
            raise AssertionError(f"watch ended; it said: {kept}")
        kept.append(line)
        return line

    def wait_stdout(self, wanted: str) -> list[str]:
        """Read standard output until a line containing ``wanted``; the lines read."""
        read = []
        while True:
            line = self._next(self.out, self.stdout)
            read.append(line)
            if wanted in line:
                return read

    def wait_ready(self) -> None:
        """Wait for watch to say it has made its first read."""
        while not self._next(self.err, self.stderr).startswith("sockdiff: watching every "):
            pass

    def interrupt(self) -> int:
        """SIGINT, as Ctrl-C sends it; then read everything left; the exit status."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(TIMEOUT)
        for lines, kept in ((self.out, self.stdout), (self.err, self.stderr)):
            while (line := lines.get(timeout=TIMEOUT)) is not None:
                kept.append(line)
        return status

    def close(self) -> None:
        """Kill watch if it still runs; close its pipes once they are read to the end."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for thread in self.threads:
            thread.join(TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def watching(netns: str, *argv: str, cwd: Path | str = "/") -> Iterator[Watcher]:
    watcher = Watcher(netns, argv, cwd)
    try:
        watcher.wait_ready()
        yield watcher
    finally:
        watcher.close()


@contextmanager
def burst(netns: str, count: int) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """:data:`BURST` running in ``netns``: the process and its listener's port."""
    with subprocess.Popen(
        netns_exec_argv(netns, [sys.executable, "-c", BURST, str(count)]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        yield process, int(process.stdout.readline())
        if process.poll() is None:
            process.kill()


def connect_and_close(netns: str) -> dict[str, int]:
    """A TCP connection opened, used and closed in ``netns``: its server and client ports."""
    ports: dict[str, int] = json.loads(run_in_netns(netns, [sys.executable, "-c", CONNECT]).stdout)
    return ports


def test_short_lived_connection_in_text_and_sigint_summary(netns: str) -> None:
    """A connection that lives between two polls shows as two closed ends and a listener, short-lived,
    as it happens: the next poll is ten minutes away.

    Ctrl-C then ends watch: exit 0, the summary last on stderr, no traceback.
    """
    with watching(netns, "--interval", "600") as watcher:
        # Sockets never bound nor connected are destroyed too: nothing was there to report.
        unused = "import socket\nfor f in (socket.AF_INET, socket.AF_INET6): socket.socket(f).close()"
        run_in_netns(netns, [sys.executable, "-c", unused])
        ports = connect_and_close(netns)
        server, client = ports["server"], ports["client"]
        ends = {
            f"- tcp CLOSE 127.0.0.1:{client} 127.0.0.1:{server}  short-lived",
            f"- tcp CLOSE 127.0.0.1:{server} 127.0.0.1:{client}  short-lived",
            f"- tcp CLOSE 127.0.0.1:{server} 0.0.0.0:*  short-lived",
        }
        seen: set[str] = set()
        while not ends <= seen:
            line = watcher.wait_stdout("short-lived")[-1]
            seen.add(line.split(" ", 1)[1])  # after the time
        assert watcher.interrupt() == 0
    texts = [line.split(" ", 1)[1] for line in watcher.stdout]
    assert sorted(texts) == sorted(ends), watcher.stdout
    assert not [line for line in watcher.stderr if "Traceback" in line], watcher.stderr
    summary = watcher.stderr[-1]
    assert re.fullmatch(r"sockdiff: 0 polls, 3 differences \(.*\)", summary), watcher.stderr
    assert "of which 3 short-lived" in summary, summary


def jsonl_records(lines: Sequence[str]) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in lines]
    for record in records:
        assert list(record)[:3] == ["time", "section", "kind"], record
    return records


def test_jsonl_reports_each_close_once(netns: str) -> None:
    """jsonl: every line an object led by time, section and kind.

    A listener the polls saw, then closed, is closed once and not short-lived
    (its destroy event and the next poll agree); a connection no poll saw is
    short-lived, once an end.
    """
    with watching(netns, "--interval", "0.2", "--format", "jsonl") as watcher:
        with burst(netns, 0) as (keeper, kept):
            assert keeper.stdin is not None
            watcher.wait_stdout(f'"port":{kept}')  # a poll saw it
            keeper.stdin.close()  # the listener closes
            assert keeper.wait(TIMEOUT) == 0
        watcher.wait_stdout('"kind":"closed"')
        ports = connect_and_close(netns)
        for _ in range(3):
            watcher.wait_stdout('"short_lived":')
        assert watcher.interrupt() == 0
    records = jsonl_records(watcher.stdout)
    for record in records:
        assert record["section"] == "sockets" and record["kind"] in ("new", "closed", "changed"), record
        assert record["time"].endswith("Z")
    closed = [r for r in records if r["kind"] == "closed"]
    listener = [r for r in closed if r["socket"]["local"]["port"] == kept]
    assert [r["short_lived"] for r in listener] == [False], closed
    assert listener[0]["socket"]["state"] == "LISTEN" and listener[0]["socket"]["inode"] > 0
    server, client = ports["server"], ports["client"]
    connection = [r for r in closed if r["socket"]["local"]["port"] in (server, client)]
    assert sorted(
        (r["socket"]["local"]["port"], r["socket"]["remote"]["port"]) for r in connection
    ) == sorted([(server, 0), (server, client), (client, server)]), closed
    # Short-lived, unless a poll fell within the connection's millisecond: then it saw it open.
    opened = [r["socket"] for r in records if r["kind"] == "new"]
    short = [r["socket"] for r in connection if r["short_lived"]]
    assert all(r["socket"] in opened for r in connection if not r["short_lived"]), records
    for sock in short:
        # What a destroy event carries: addresses, ports and state; not the uid, nor an inode.
        assert (sock["proto"], sock["family"], sock["state"]) == ("tcp", "inet", "CLOSE")
        assert sock["local"]["address"] == "127.0.0.1" and sock["inode"] == 0
        assert sock["uid"] is None and sock["processes"] == []


def test_overrun_is_reported_and_followed_by_a_poll(netns: str) -> None:
    """A burst of destroy events overflows a tiny receive buffer: watch says so and polls at once.

    The interval is an hour: the new listener shows up only because of the poll
    that follows the overrun.
    """
    with watching(netns, "--interval", "3600", "--format", "jsonl", "--buffer-size", "1024") as watcher:
        with burst(netns, 2000) as (_, port):
            read = watcher.wait_stdout('"kind":"overrun"')
            new = watcher.wait_stdout(f'"port":{port}')
        assert watcher.interrupt() == 0
    records = jsonl_records([*read, *new])
    assert records[-1]["kind"] == "new" and records[-1]["socket"]["state"] == "LISTEN"
    overrun = next(r for r in records if r["kind"] == "overrun")
    assert overrun["section"] == "watch" and overrun["lost"] == "socket events"
    assert any("ENOBUFS" in line and "warning" in line for line in watcher.stderr), watcher.stderr
    assert "events lost" in watcher.stderr[-1], watcher.stderr


@pytest.mark.parametrize("argv", [["--ignore", "sport = :1"], ["--no-processes"]])
def test_count_ends_watch_with_a_summary(netns: str, argv: list[str]) -> None:
    """--count N: N polls after the first read, then exit 0 with the summary line."""
    done = subprocess.run(
        netns_exec_argv(
            netns, [sys.executable, "-m", "sockdiff", "watch", "-i", "0.05", "--count", "2", *argv]
        ),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0 and done.stdout == "", done
    assert done.stderr.splitlines() == [
        "sockdiff: watching every 0.05 s (Ctrl-C to stop)",
        "sockdiff: 2 polls, 0 differences (0 new, 0 closed of which 0 short-lived, 0 changed;"
        " interfaces: 0; routes: 0)",
    ], done.stderr


def ip(netns: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", netns, *argv], check=True, capture_output=True, timeout=TIMEOUT)


def test_interface_down_reported_as_it_happens(netns: str) -> None:
    """A veth set down: its change, and the routes the kernel drops with it (no message for
    IPv4 ones), show at once, from rtnetlink's word: the next poll is an hour away."""
    ip(netns, "link", "add", "sdw0", "type", "veth", "peer", "name", "sdw1")
    ip(netns, "addr", "add", "10.91.0.1/24", "dev", "sdw0")
    ip(netns, "link", "set", "sdw0", "up")
    ip(netns, "link", "set", "sdw1", "up")
    with watching(netns, "--interval", "3600", "--format", "jsonl") as watcher:
        ip(netns, "link", "set", "sdw0", "down")
        watcher.wait_stdout('"name":"sdw0"')
        watcher.wait_stdout('"destination":"10.91.0.0/24"')
        assert watcher.interrupt() == 0
    records = jsonl_records(watcher.stdout)
    # sdw0 went down; its peer lost its carrier with it.
    changed = {r["new"]["name"]: r for r in records if r["section"] == "interfaces"}
    assert {r["kind"] for r in changed.values()} == {"changed"} and set(changed) <= {"sdw0", "sdw1"}, records
    down = changed["sdw0"]
    assert "UP" in down["old"]["flags"] and "UP" not in down["new"]["flags"] and "flags" in down["fields"]
    removed = [r["route"] for r in records if r["section"] == "routes" and r["kind"] == "removed"]
    assert "10.91.0.0/24" in {r["destination"] for r in removed}, records
    assert {r["dev"] for r in removed} <= {"sdw0", "sdw1"}, removed
    assert not [r for r in records if r["section"] == "sockets"], records
    assert watcher.stderr[-1].startswith("sockdiff: 0 polls, "), watcher.stderr


# Two listeners, kept until stdin closes; prints their ports.
TWO_LISTENERS = """
import socket, sys
held = []
for _ in range(2):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    held.append(sock)
print(*(sock.getsockname()[1] for sock in held), flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("clear", [False, True])
def test_project_ignore_list_and_clearing_it(netns: str, tmp_path: Path, clear: bool) -> None:
    """watch honours the project's ignore list; ``--ignore ''`` clears it."""
    with subprocess.Popen(
        netns_exec_argv(netns, [sys.executable, "-c", TWO_LISTENERS]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        ignored, reported = (int(word) for word in holder.stdout.readline().split())
        (tmp_path / ".sockdiff.toml").write_text(f'ignore = ["sport = :{ignored}"]\n')
        argv = ["--interval", "0.2", "--format", "jsonl", *(["--ignore", ""] if clear else [])]
        with watching(netns, *argv, cwd=tmp_path) as watcher:
            holder.stdin.close()  # both close, after watch's first read
            holder.wait(TIMEOUT)
            watcher.wait_stdout(f'"port":{reported}')
            assert watcher.interrupt() == 0
    ports = {r["socket"]["local"]["port"] for r in jsonl_records(watcher.stdout)}
    assert ports == ({ignored, reported} if clear else {reported}), watcher.stdout
