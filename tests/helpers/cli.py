"""Running the sockdiff CLI as a user does, in a clean environment, and reading its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.netns import netns_exec_argv

__all__ = ["TIMEOUT", "created_mode", "one_line_error", "small_disk", "sockdiff", "sockdiff_command"]

TIMEOUT = 60.0
# Settings of the caller's shell that would change what sockdiff prints or where it stores.
_UNSET = ("SOCKDIFF_HOME", "XDG_STATE_HOME", "NO_COLOR")


def created_mode() -> int:
    """The mode a new file of sockdiff's gets here: 0666 less this process's umask (inherited)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def sockdiff(
    *argv: str,
    cwd: Path | str = "/",
    home: Path | None = None,
    netns: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m sockdiff ARGV`` in ``cwd`` (no project defaults there) with ``SOCKDIFF_HOME=home``.

    With ``netns`` the command itself runs inside that namespace (``ip netns
    exec``), so it needs no ``--netns``: a user's bare ``sockdiff snapshot``.
    """
    command, env = sockdiff_command(*argv, home=home)
    if netns is not None:
        command = netns_exec_argv(netns, command)
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=env)


def sockdiff_command(*argv: str, home: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and clean environment that run ``sockdiff ARGV``, for tests that wire its streams."""
    env = {key: value for key, value in os.environ.items() if key not in _UNSET}
    if home is not None:
        env["SOCKDIFF_HOME"] = str(home)
    return [sys.executable, "-m", "sockdiff", *argv], env


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 with one line on stderr, no traceback: that line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("sockdiff: ") and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


def small_disk(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) with ``$DISK`` a fresh 8 KiB tmpfs, in a private mount namespace."""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'DISK=$(mktemp -d) && mount -t tmpfs -o size=8k sockdiff-test "$DISK" && ' + script],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
