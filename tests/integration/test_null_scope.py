"""Null never narrows: a scope's filter does not drop a socket whose value its side cannot know.

Real sockets in a private namespace: one side filtered on processes or on the
device, the other taken without processes or from /proc (no device). The open
socket is never called closed; the one really closed still is.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from sockdiff.filter import compile_verdict
from sockdiff.model import Process, Socket, inet
from sockdiff.netns import entered
from tests.helpers.cli import sockdiff
from tests.helpers.netns import netns_exec_argv


def _listeners(netns: str, ports: tuple[int, ...], device: bytes | None = None) -> list[socket.socket]:
    found = []
    for port in ports:
        with entered(netns):
            sock = socket.socket()
        if device is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        found.append(sock)
    return found


def _closed_ports(result_stdout: str) -> list[int]:
    document = json.loads(result_stdout)
    return sorted(s["local"]["port"] for s in document["closed"])


def _compare(*argv: str, netns: str | None = None) -> tuple[int, list[int], list[int]]:
    done = sockdiff("compare", "--format", "json", *argv, netns=netns)
    assert done.returncode in (0, 1), done.stderr
    document = json.loads(done.stdout)
    opened = sorted(s["local"].get("port", -1) for s in document["new"])
    return done.returncode, _closed_ports(done.stdout), opened


def test_a_process_filter_against_a_side_without_processes(netns: str, tmp_path: Path) -> None:
    name = Path("/proc/self/comm").read_text().strip()
    kept, gone = _listeners(netns, (7501, 7502))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with kept:
        assert (
            sockdiff("snapshot", "-o", str(a), f"process '{name}' and sport >= :7501", netns=netns).returncode
            == 0
        )
        gone.close()
        assert sockdiff("snapshot", "--no-processes", "-o", str(b), netns=netns).returncode == 0
        assert _compare(str(a), str(b)) == (1, [7502], [])
        # The other way round too, and nothing of b outside a's scope is called new.
        assert _compare(str(b), str(a)) == (1, [], [7502])


def test_a_device_filter_against_proc(netns: str, tmp_path: Path) -> None:
    kept, gone = _listeners(netns, (7601, 7602), device=b"lo")
    other = _listeners(netns, (7603,))[0]  # unbound: outside 'dev lo' on either side
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with kept, other:
        taken = sockdiff("snapshot", "-b", "netlink", "-o", str(a), "dev lo", netns=netns)
        assert taken.returncode == 0, taken.stderr
        assert _compare(str(a), "live:proc", netns=netns) == (0, [], [])
        gone.close()
        assert sockdiff("snapshot", "-b", "proc", "-o", str(b), netns=netns).returncode == 0
        assert _compare(str(a), str(b)) == (1, [7602], [])
        assert _compare(str(a), "live:proc", netns=netns) == (1, [7602], [])


def test_unknown_stays_unknown_under_not() -> None:
    unowned = Socket(
        "tcp", "inet", "stream", "LISTEN", inet("0.0.0.0", 80), inet("0.0.0.0", 0), 7, None, 0, 0, ()
    )
    owned = Socket(
        "tcp",
        "inet",
        "stream",
        "LISTEN",
        inet("0.0.0.0", 80),
        inet("0.0.0.0", 0),
        7,
        0,
        0,
        0,
        (Process(1, "nginx", 3),),
    )
    for text, on_unowned, on_owned in (
        ("process nginx", None, True),
        ("not process nginx", None, False),
        ("process != nginx", None, False),
        ("pid 1", None, True),
        ("uid 0", None, True),
        ("dev lo", None, None),
        ("not dev lo or sport = :80", True, True),
        ("process nginx and sport = :22", False, False),
        ("not (process nginx and uid = 0)", None, False),
    ):
        assert compile_verdict(text)(unowned) is on_unowned, text
        assert compile_verdict(text)(owned) is on_owned, text


# Filters a /proc snapshot cannot judge (no device; no uid for a UNIX socket), alone,
# under not, and mixed with what it can judge.
UNJUDGED = (
    "dev lo",
    "not dev lo",
    "dev lo and sport >= :7701",
    "not dev lo or sport = :7701",
    "not (dev lo and uid 0)",
    "uid 0",
    "not uid 0",
    "proto unix and uid 0",
)


def test_a_snapshot_filter_its_backend_cannot_judge(netns: str, tmp_path: Path) -> None:
    """A snapshot's own filter is three-valued, as compare's narrowing is: /proc keeps a socket
    whose device or uid it cannot know (the scope's filter says which), so compare against
    netlink (a file or live) calls no open socket new or closed; a closed one is reported
    where a side knew it was in scope."""
    bound, _ = held = _listeners(netns, (7701,), device=b"lo") + _listeners(netns, (7702,))
    with entered(netns):
        unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "u.sock"))
    unix.listen()
    try:
        for number, text in enumerate(UNJUDGED):
            proc, net = tmp_path / f"p{number}.json", tmp_path / f"n{number}.json"
            for backend, path in (("proc", proc), ("netlink", net)):
                taken = sockdiff("snapshot", "-b", backend, "-o", str(path), text, netns=netns)
                assert taken.returncode == 0, (text, taken.stderr)
            for pair in ((str(proc), "live:netlink"), (str(proc), str(net)), (str(net), str(proc))):
                assert _compare(*pair, netns=netns) == (0, [], []), (text, pair)
            assert _compare(str(proc), str(proc)) == (0, [], []), text
        bound.close()
        # Closed where a side knew it in scope; where neither can say, it is not reported.
        assert _compare(str(tmp_path / "n0.json"), "live:proc", netns=netns) == (1, [7701], [])
        assert _compare(str(tmp_path / "n0.json"), str(tmp_path / "p0.json")) == (0, [], [])
        assert _compare(str(tmp_path / "p0.json"), "live:netlink", netns=netns) == (0, [], [])
    finally:
        for sock in (*held, unix):
            sock.close()


def test_a_process_filter_as_a_user_who_cannot_read_the_owner(netns: str, tmp_path: Path) -> None:
    """nobody's ``snapshot 'process NAME'`` of root's listener: the owner it could not read is
    unknown, not "not NAME", so root's compare of that file with live calls nothing closed or new."""
    from tests.helpers.unprivileged import NOBODY, readable_copy

    name = Path("/proc/self/comm").read_text().strip()
    place = Path(tempfile.mkdtemp(prefix="sockdiff-nobody-out-"))
    place.chmod(0o755)
    os.chown(place, NOBODY, NOBODY)
    try:
        (kept,) = _listeners(netns, (7801,))
        with kept, readable_copy() as copy:
            for number, text in enumerate(
                (f"process '{name}'", f"not process '{name}'", f"process '{name}' or pid 1")
            ):
                path = place / f"nobody{number}.json"
                python = os.path.realpath(sys.executable)
                argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-s"]
                done = subprocess.run(
                    netns_exec_argv(netns, [*argv, "-m", "sockdiff", "snapshot", "-o", str(path), text]),
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(copy)},
                )
                assert done.returncode == 0, done.stderr
                ports = [s["local"].get("port") for s in json.loads(path.read_text())["sockets"]]
                assert 7801 in ports, (text, ports)
                assert _compare(str(path), "live", netns=netns) == (0, [], []), text
    finally:
        shutil.rmtree(place)
