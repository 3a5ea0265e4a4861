"""Faults a real system has: an unprivileged user, a read-only directory.

The others have their tests beside the code they exercise: a full disk, a
symlinked, device or FIFO target (test_output.py); a dump the kernel
interrupted (test_parsers.py); a process exiting mid-scan and an unreadable
/proc/PID/fd (test_processes.py); netlink unavailable (test_cli_live.py).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import TIMEOUT, created_mode, one_line_error, sockdiff
from tests.helpers.netns import private_netns
from tests.helpers.unprivileged import NOBODY, as_nobody, readable_copy

HIDDEN = (
    "sockdiff: warning: not every process could be read: sockets of other users' processes"
    " show no owner (run as root to see them all)\n"
)


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    with readable_copy() as path:
        yield path


def test_as_nobody_show_says_once_that_owners_are_hidden(copy: Path) -> None:
    """netstat -p's notice, in one line: the table itself is whole."""
    result = as_nobody(copy, ["-m", "sockdiff", "show", "-a", "-p", "-x"])
    assert result.returncode == 0
    assert result.stderr == HIDDEN
    assert result.stdout.startswith("Netid")


def test_as_nobody_all_netns_says_once_that_namespaces_are_missed(copy: Path) -> None:
    """Not root, --all-netns reads what this user may enter (its own namespace), and says so."""
    with private_netns():  # at least one namespace nobody may not enter
        result = as_nobody(copy, ["-m", "sockdiff", "snapshot", "--all-netns", "--no-processes", "-o", "-"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "sockdiff: warning: not root: --all-netns reads only the namespaces this user may see and"
        " enter (run as root to read them all)\n"
    )


def test_as_root_no_notice() -> None:
    result = sockdiff("show", "-a", "-p", "-x")
    assert (result.returncode, result.stderr) == (0, "")


def test_as_nobody_a_store_of_its_own(copy: Path, tmp_path: Path) -> None:
    home = Path(f"/tmp/sockdiff-nobody-home-{os.getpid()}")
    home.mkdir(mode=0o700)
    os.chown(home, NOBODY, NOBODY)
    try:
        result = as_nobody(
            copy, ["-m", "sockdiff", "snapshot", "--name", "mine"], env={"SOCKDIFF_HOME": str(home)}
        )
        assert result.returncode == 0, result.stderr
        stored = home / "mine.json"
        assert result.stdout == f"{stored}\n"
        status = stored.stat()
        assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (NOBODY, created_mode())
        # root's store, seen by nobody: not its own, refused in one line
        refused = as_nobody(copy, ["-m", "sockdiff", "list"], env={"SOCKDIFF_HOME": str(tmp_path)})
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=True)


def test_a_read_only_directory(tmp_path: Path) -> None:
    """-o into a read-only filesystem, and a store there: one line each, nothing left behind."""
    command = [sys.executable, "-m", "sockdiff"]
    script = (
        'DISK=$(mktemp -d) && mount -t tmpfs -o size=64k,ro sockdiff-test "$DISK" && '
        f'{" ".join(command)} snapshot --no-processes -o "$DISK/snap.json"; echo "rc=$?"; '
        f'SOCKDIFF_HOME="$DISK/store" {" ".join(command)} snapshot --no-processes; echo "rc=$?";'
        'ls -A "$DISK"'
    )
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd="/",
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("sockdiff: ") and lines[0].endswith(
        "/snap.json: cannot write: Read-only file system"
    )
    assert lines[1].startswith("sockdiff: cannot create the snapshot store ")
    assert lines[1].endswith("/store: Read-only file system")
    assert result.stdout == "rc=2\nrc=2\n"


def test_a_missing_namespace_is_not_a_usage_error() -> None:
    """NetnsError stands beside UsageError in the tree: a namespace is a fact of the system."""
    from sockdiff.errors import NetnsError, UsageError

    assert not issubclass(NetnsError, UsageError)
    assert "no network namespace" in one_line_error(sockdiff("show", "--netns", "sockdiff-no-such-ns"))
