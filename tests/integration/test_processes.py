"""Process attribution: one scan of /proc/PID/fd, skipping what it cannot read."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from sockdiff.model import Process
from sockdiff.processes import Scan, scan_owners
from tests.helpers.unprivileged import as_nobody, readable_copy


def test_processes_that_vanish_mid_scan_are_skipped(tmp_path: Path) -> None:
    """A /proc tree as the scan can find it while processes come and go."""
    proc = tmp_path / "proc"
    server = proc / "100"
    (server / "fd").mkdir(parents=True)
    (server / "comm").write_bytes(b"srv\n")
    (server / "fd" / "3").symlink_to("socket:[77]")
    (server / "fd" / "4").symlink_to("/dev/null")
    (server / "fd" / "5").symlink_to("socket:[78]")
    (server / "fd" / "9").symlink_to("socket:[77]")
    worker = proc / "101"  # shares socket 77
    (worker / "fd").mkdir(parents=True)
    (worker / "comm").write_bytes(b"w\xffker\n")
    (worker / "fd" / "6").symlink_to("socket:[77]")
    exited = proc / "102"  # gone after its comm was read: no fd directory
    exited.mkdir()
    (exited / "comm").write_bytes(b"gone\n")
    (proc / "103").mkdir()  # gone before anything was read
    (proc / "self").mkdir()
    assert scan_owners(str(proc)) == {
        77: (Process(100, "srv", 3), Process(100, "srv", 9), Process(101, "w\\xffker", 6)),
        78: (Process(100, "srv", 5),),
    }


def test_processes_we_may_not_read_are_skipped() -> None:
    """As nobody, root's descriptors are closed to the scan; its own are not.

    The package runs from a copy anyone can read: the checkout may sit where
    nobody cannot enter.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ours, readable_copy() as copy:
        root_inode = os.fstat(ours.fileno()).st_ino
        code = (
            "import json, os, socket, warnings\n"
            "from sockdiff.processes import scan_owners\n"
            "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    owners = scan_owners()\n"
            "print(json.dumps({'mine': os.fstat(s.fileno()).st_ino, 'pid': os.getpid(),\n"
            "    'warnings': [str(w.message) for w in caught],\n"
            "    'owners': {str(k): [p.pid for p in v] for k, v in owners.items()}}))\n"
        )
        result = as_nobody(copy, ["-c", code])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["owners"][str(seen["mine"])] == [seen["pid"]]
    assert str(root_inode) not in seen["owners"]
    assert seen["warnings"] == [
        "not every process could be read: sockets of other users' processes show no owner"
        " (run as root to see them all)"
    ]


def test_a_scan_in_its_own_thread_gives_the_scan_or_its_error(tmp_path: Path) -> None:
    """Scan (what a snapshot runs while it reads the sockets): scan_owners' result, or what it raised."""
    proc = tmp_path / "proc"
    (proc / "100" / "fd").mkdir(parents=True)
    (proc / "100" / "comm").write_bytes(b"srv\n")
    (proc / "100" / "fd" / "3").symlink_to("socket:[77]")
    assert Scan(str(proc)).result() == scan_owners(str(proc)) == {77: (Process(100, "srv", 3),)}
    missing = Scan(str(tmp_path / "none"))
    missing.join()
    with pytest.raises(FileNotFoundError):
        missing.result()
