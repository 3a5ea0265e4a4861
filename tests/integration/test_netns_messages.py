"""``--netns`` / ``-N`` errors say what is actually wrong: one line, exit 2."""

from __future__ import annotations

import os
import shutil
import warnings

import pytest

from sockdiff.cli import main
from tests.helpers.unprivileged import as_nobody, readable_copy


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with warnings.catch_warnings():
        code = main(list(argv))
    out, err = capsys.readouterr()
    assert (code, out, len(err.splitlines())) == (2, "", 1), (argv, out, err)
    assert err.startswith("sockdiff: ") and "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("/etc/passwd", "sockdiff: /etc/passwd is not a namespace file: give a name under /run/netns"),
        ("/", "sockdiff: / is not a namespace file"),
        ("/proc/self/ns/mnt", "sockdiff: /proc/self/ns/mnt is a mount namespace, not a network namespace"),
        ("/proc/self/ns/uts", "sockdiff: /proc/self/ns/uts is a UTS namespace, not a network namespace"),
        ("no-such-ns", "sockdiff: no network namespace 'no-such-ns' (/run/netns/no-such-ns does not exist)"),
    ],
)
def test_what_is_not_a_network_namespace(capsys: pytest.CaptureFixture[str], where: str, said: str) -> None:
    message = error_of(capsys, "show", "-N", where)
    assert message.startswith(said), message
    assert "root" not in message  # as root, that was the misleading hint


def test_a_user_without_the_right_is_told_it_needs_root(netns: str) -> None:
    """Not root: setns(2) says EPERM, and only then is root the answer."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to become another user")
    with readable_copy() as copy:  # the checkout may sit where nobody cannot enter
        result = as_nobody(copy, ["-m", "sockdiff", "show", "--no-header", "-N", netns])
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr == (
        f"sockdiff: cannot enter network namespace {netns!r}:"
        " entering a namespace needs root (CAP_SYS_ADMIN)\n"
    )
