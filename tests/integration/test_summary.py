"""show -s against ss -s in a namespace of known sockets, TIME_WAIT ones among them.

ss -s reads /proc/net/sockstat: its Transport table and its Total are the
namespace's, but its TCP total, closed and orphaned come from counters of
every namespace (alloc, orphan), which other processes move at any time, so
they are held to the formula rather than to a second read.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockdiff.formats.ss import sockets_summary
from sockdiff.netns import entered
from tests.helpers.cli import sockdiff
from tests.helpers.netns import run_in_netns

_TCP_LINE = re.compile(r"TCP: +(\d+) \(estab (\d+), closed (\d+), orphaned (\d+), timewait (\d+)\)")
_TIME_WAITS = 3


@pytest.fixture
def known(netns: str) -> Iterator[list[socket.socket]]:
    """2 listeners, 2 connections (4 ESTABLISHED), 3 TIME_WAIT, 2 UDP, 1 raw, 1 UNIX socket."""
    held: list[socket.socket] = []
    with entered(netns):
        listener = socket.create_server(("127.0.0.1", 7100))
        held += [listener, socket.create_server(("::1", 7101), family=socket.AF_INET6)]
        for _ in range(2):
            held.append(socket.create_connection(("127.0.0.1", 7100)))
            held.append(listener.accept()[0])
        for _ in range(_TIME_WAITS):  # the side that closes first keeps TIME_WAIT
            client = socket.create_connection(("127.0.0.1", 7100))
            server = listener.accept()[0]
            client.close()
            server.close()
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((host, 0))
            held.append(udp)
        held.append(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(b"\0sockdiff-summary")
        held.append(unix)
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


def tcp_line(line: str) -> tuple[int, ...]:
    found = _TCP_LINE.search(line)
    assert found, line
    return tuple(int(figure) for figure in found.groups())


def settled(netns: str, used: int) -> None:
    """Until the namespace counts ``used`` sockets: the kernel frees a closed netlink socket (ip's,
    setting the namespace up) after an RCU grace period, and counts it until then."""
    line = ""
    with entered(netns):
        for _ in range(500):
            with open("/proc/thread-self/net/sockstat", encoding="ascii") as file:
                line = file.readline()
            if line == f"sockets: used {used}\n":
                return
            time.sleep(0.01)
    pytest.fail(f"the namespace never settled at {used} sockets: {line.strip()}")


def test_show_s_against_ss_s(netns: str, known: list[socket.socket], tmp_path: Path) -> None:
    settled(netns, 10)
    ss = run_in_netns(netns, ["ss", "-s"]).stdout.splitlines()
    settled(netns, 10)  # ss's own netlink sockets freed, as sockdiff's counters are read
    done = sockdiff("show", "-s", "--netns", netns)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    mine = done.stdout.splitlines()
    # Counted from the tables: TIME_WAIT sockets are TCP's, and not in Total (the kernel's
    # "sockets: used" counts full sockets only): ss's Total, as the namespace holds no other.
    assert mine[:2] == ["Total: 10", f"TCP:   9 (estab 4, closed 0, orphaned 0, timewait {_TIME_WAITS})"]
    assert ss[0] == "Total: 10"
    table = ss.index("Transport Total     IP        IPv6")
    assert mine[table : table + 5] == [line.rstrip() for line in ss[table : table + 5]]
    assert mine[table + 1 : table + 5] == [
        "RAW\t  1         1         0",
        "UDP\t  2         1         1",
        "TCP\t  6         5         1",
        "INET\t  9         7         2",
    ]
    # The namespace's own figures agree with ss's; the rest is said in words, and in ss's figures.
    ss_total, ss_estab, ss_closed, _, ss_timewait = tcp_line(ss[1])
    assert (ss_estab, ss_timewait) == (4, _TIME_WAITS)
    assert ss_total >= 9 and ss_closed == ss_total - (6 - _TIME_WAITS) - _TIME_WAITS
    note = mine[table + 6 :]
    assert "every network namespace" in " ".join(note) and "no table lists" in " ".join(note)
    [says] = [line for line in note if line.startswith("ss -s says: ")]
    assert says.startswith("ss -s says: Total: 10, TCP: ")
    total, estab, closed, _, timewait = tcp_line(says)
    assert (estab, timewait) == (4, _TIME_WAITS) and total >= 9
    assert closed == total - (6 - _TIME_WAITS) - _TIME_WAITS  # ss's alloc - (inuse - tw)
    # A saved snapshot has no counters to show: the same counts, the note without ss's figures.
    saved = tmp_path / "s.json"
    assert sockdiff("snapshot", "-o", str(saved), "--netns", netns).returncode == 0
    from_file = sockdiff("show", str(saved), "-s").stdout.splitlines()
    assert from_file[: table + 5] == mine[: table + 5]
    assert from_file[table + 6 :] == [line for line in note if line != says]


def test_ss_s_figures_are_iproute2s_formula() -> None:
    """iproute2 print_summary: TCP is alloc + tw, closed alloc - (inuse + inuse6 - tw)."""
    counters = {
        "sockets used": 3,
        "TCP inuse": 1,
        "TCP orphan": 0,
        "TCP tw": 1,
        "TCP alloc": 2,
        "TCP6 inuse": 0,
        "Tcp CurrEstab": 0,
    }
    text = sockets_summary([], counters).splitlines()
    assert text[-1] == "ss -s says: Total: 3, TCP: 3 (estab 0, closed 2, orphaned 0, timewait 1)"
    assert not any(line.startswith("ss -s says") for line in sockets_summary([], {}).splitlines())


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_fin_wait2_timewait_socks_are_timewait_and_close_wait_is_estab(netns: str, backend: str) -> None:
    """The side that closes first while the other keeps its socket is left a FIN_WAIT2 timewait
    sock (no inode): ss -s counts it in timewait, not in Total, TCP or orphaned; and its estab
    is the kernel's CurrEstab, which counts the peers' CLOSE_WAIT."""
    held: list[socket.socket] = []
    with entered(netns):
        listener = socket.create_server(("127.0.0.1", 7102))
        held.append(listener)
        for _ in range(3):
            client = socket.create_connection(("127.0.0.1", 7102))
            held.append(listener.accept()[0])
            client.close()
    try:
        settled(netns, 4)
        ss = run_in_netns(netns, ["ss", "-s"]).stdout.splitlines()
        listed = run_in_netns(netns, ["ss", "-tanH", "state", "fin-wait-2"]).stdout.splitlines()
        assert len(listed) == 3, listed  # the premise, by ss: three FIN-WAIT-2 sockets
        settled(netns, 4)  # ss's own netlink sockets freed, as sockdiff's counters are read
        done = sockdiff("show", "-s", "--backend", backend, "--netns", netns)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        mine = done.stdout.splitlines()
        assert mine[0] == ss[0] == "Total: 4"
        _, estab, _, orphaned, timewait = tcp_line(ss[1])
        assert (estab, orphaned, timewait) == (3, 0, 3)
        assert mine[1] == "TCP:   7 (estab 3, closed 0, orphaned 0, timewait 3)"
        table = ss.index("Transport Total     IP        IPv6")
        assert mine[table : table + 5] == [line.rstrip() for line in ss[table : table + 5]]
        assert mine[table + 3] == "TCP\t  4         4         0"
    finally:
        for sock in held:
            sock.close()
