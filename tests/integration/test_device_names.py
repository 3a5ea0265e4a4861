"""Every device name the kernel allows is read back from a snapshot, and no other.

The reader's rule is dev_valid_name's (net/core/dev.c) on the name's bytes, as
sockdiff writes them (``\\xNN`` for a byte that is not UTF-8). The kernel itself
is the oracle: a tun device is created with each name tried.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sockdiff.errors import BadSnapshot
from sockdiff.model import escape_name
from sockdiff.netns import entered
from sockdiff.snapshots import loads
from sockdiff.validation import device_name_problem
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.netns import netns_exec_argv

# Names ip accepts and the kernel keeps: a control character, NEL (C2 85) and
# LINE SEPARATOR (E2 80 A8), which Unicode calls whitespace and the kernel does
# not, a byte that is not UTF-8, and a backslash.
ODD_NAMES = (b"a\x1fb", b"nel\xc2\x85x", b"ls\xe2\x80\xa8x", b"b\xffc", b"q\\r", b"e\x85", b"d\\x")

# Asks the kernel to create a tun device (gone when its descriptor closes) for
# each name on stdin (JSON, a list of latin-1 texts), and prints which it took.
_PROBE = r"""
import fcntl, json, os, struct, sys
TUNSETIFF, IFF_TUN = 0x400454CA, 0x0001
taken = []
for text in json.load(sys.stdin):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", text.encode("latin-1"), IFF_TUN))
        taken.append(True)
    except OSError:
        taken.append(False)
    finally:
        os.close(fd)
print(json.dumps(taken))
"""


def _kernel_takes(netns: str, names: list[bytes]) -> list[bool]:
    done = subprocess.run(
        netns_exec_argv(netns, [sys.executable, "-c", _PROBE]),
        input=json.dumps([name.decode("latin-1") for name in names]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    taken: list[bool] = json.loads(done.stdout)
    return taken


def test_the_rule_is_the_kernels(netns: str) -> None:
    """Each byte between two others, the lengths at IFNAMSIZ, '.' and '..': the reader takes
    exactly the names the kernel takes. '%' is left out: the kernel reads a name holding
    it as a pattern (``eth%d``), so no device is ever named with one, and dev_valid_name,
    the rule held here, allows it."""
    names = [b"x" + bytes([byte]) + b"y" for byte in range(1, 256) if byte != ord("%")]
    # (Sixteen bytes cannot be asked for: the ioctl's field holds 15 and a NUL.)
    names += [b".", b"..", b"...", b"a" * 15, b"\xc3\xa9" * 7 + b"a", b"a\xc3\xa0"]
    kernel = _kernel_takes(netns, names)
    ours = [device_name_problem(escape_name(name)) is None for name in names]
    disagree = [name for name, k, o in zip(names, kernel, ours, strict=True) if k != o]
    assert disagree == []
    assert sum(kernel) == len(names) - 12  # 9 bytes refused, '.', '..' and an 'à' (C3 A0)
    assert device_name_problem("\xe9" * 7 + "a") is None
    assert device_name_problem("\xe9" * 8) is not None  # 16 bytes


def test_text_not_as_sockdiff_writes_it_is_refused() -> None:
    """One text for one name: an escape sockdiff would not write (``\\x41`` for A) is not read."""
    assert device_name_problem("x\\x41") is not None
    assert device_name_problem("x\\q") is not None
    assert device_name_problem("x\\\\q") is None


def _link(netns: str, *args: bytes) -> None:
    subprocess.run([b"ip", b"-n", netns.encode(), *args], check=True, timeout=30)


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_snapshot_of_odd_names_reads_back(netns: str, tmp_path: Path, backend: str) -> None:
    """Links, a route and a socket bound to each name the kernel allows (one not UTF-8,
    one with a backslash among them): written, then read by show and compare (the file
    against itself, and against live). A bound socket's device is named as its link is."""
    for name in ODD_NAMES:
        _link(netns, b"tuntap", b"add", name, b"mode", b"tun")
        _link(netns, b"link", b"set", name, b"up")
    _link(netns, b"route", b"add", b"10.77.0.0/16", b"dev", ODD_NAMES[1])
    listeners = []
    for port, name in enumerate(ODD_NAMES, 7401):
        with entered(netns):
            listener = socket.socket()
        listeners.append(listener)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, name)
        listener.bind(("0.0.0.0", port))
        listener.listen()
    try:
        path = tmp_path / "odd.json"
        taken = sockdiff("snapshot", "-b", backend, "-o", str(path), netns=netns)
        assert taken.returncode == 0, taken.stderr
        snapshot = loads(path.read_bytes(), "odd.json")
        assert snapshot.interfaces is not None and snapshot.routes is not None
        assert {escape_name(name) for name in ODD_NAMES} <= {i.name for i in snapshot.interfaces}
        assert escape_name(ODD_NAMES[1]) in {r.dev for r in snapshot.routes}
        bound = {
            s.local.port: s.interface
            for s in snapshot.sockets or ()
            if isinstance(s.local.port, int) and 7401 <= s.local.port < 7500
        }
        want = [escape_name(name) if backend == "netlink" else None for name in ODD_NAMES]
        assert [bound[port] for port in range(7401, 7401 + len(ODD_NAMES))] == want
        for argv in (
            ("show", "-a", str(path)),
            ("show", "-l", "--format", "json", str(path)),
            ("show", "-i", "-a", str(path)),
            ("show", "--route", str(path)),
        ):
            shown = sockdiff(*argv)
            assert shown.returncode == 0, (argv, shown.stderr)
        same = sockdiff("compare", str(path), str(path))
        assert same.returncode == 0, same.stderr
        live = sockdiff("compare", str(path), f"live:{backend}", netns=netns)
        assert live.returncode == 0, (live.stdout, live.stderr)
        # Straight from the kernel too: show --format json of a live namespace writes each name.
        shown = sockdiff("show", "-l", "-b", backend, "--format", "json", netns=netns)
        assert shown.returncode == 0, shown.stderr
    finally:
        for listener in listeners:
            listener.close()


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        # Each value is named by its own rule, not by another member's of the same last name.
        (b'"name":"srv"', b'"name":"' + b"s" * 5000 + b'"', "expected a name of at most 4096 characters"),
        (b'"interface":null', b'"interface":"abcdefghijklmnopqrst"', "20 bytes (1 to 15)"),
        (b'"interface":null', b'"interface":"a\\u00a0"', "0xa0, which the kernel refuses"),
        (b'"name":"lo"', b'"name":".."', "the kernel refuses '.' and '..'"),
        (b'"pid":10,', b'"pid":0,', "expected a process id from 1 to 4194304"),
        (b'"fd":3', b'"fd":-3', "expected a descriptor number from 0 to 2**31-1"),
        (b'"uid":0', b'"uid":"root"', "expected a uid from 0 to 2**32-1, or null"),
    ],
)
def test_each_rule_is_named_for_its_member(old: bytes, new: bytes, words: str) -> None:
    from tests.helpers.made import GOOD

    assert old in GOOD
    with pytest.raises(BadSnapshot, match=words.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")):
        loads(GOOD.replace(old, new, 1), "bad.json")


def test_a_name_the_kernel_allows_is_read_from_a_file(tmp_path: Path) -> None:
    """What the kernel allows but Unicode calls space is read; a file holding one shows."""
    from tests.helpers.made import GOOD

    for name in ("a\x1fb", "nel\x85x", "ls\u2028x", "a\\\\b"):
        text = GOOD.replace(b'"name":"lo"', b'"name":' + json.dumps(name).encode(), 1)
        snapshot = loads(text, "odd.json")
        assert snapshot.interfaces is not None and snapshot.interfaces[0].name == name
    path = tmp_path / "odd.json"
    path.write_bytes(GOOD.replace(b'"name":"lo"', b'"name":"ls\\u2028x"', 1))
    assert sockdiff("show", "-i", "-a", str(path)).returncode == 0
    path.write_bytes(GOOD.replace(b'"name":"lo"', b'"name":"l/o"', 1))
    assert "at $.interfaces[0].name" in one_line_error(sockdiff("show", "-i", str(path)))
