"""How sockdiff writes files: resolved once against a swapping attacker, inputs never
written over, line reports added to a shared file and documents replaced."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli import TIMEOUT
from unprivileged import NOBODY

from sockdiff.cli import main

# Run as nobody: swap a directory of theirs with their link to a directory of root's, as fast as it can.
_SWAPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
os.chdir(sys.argv[1])
os.mkdir("out")
os.symlink(sys.argv[2], "lnk")
print("ready", flush=True)
while True:
    if libc.renameat2(AT_FDCWD, b"out", AT_FDCWD, b"lnk", RENAME_EXCHANGE) != 0:
        sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
"""
# Runs of snapshot -o against the swapper: the old check-then-write lost within a few dozen.
_RUNS = 200


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A fresh directory of root's that nobody may enter (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="sockdiff-writes-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def _out_directory(theirs: Path) -> int:
    """A descriptor of nobody's ``out`` directory, under whichever name it has this instant."""
    while True:
        for name in ("out", "lnk"):
            try:
                return os.open(theirs / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except (NotADirectoryError, OSError):
                continue


def test_a_directory_swapped_for_a_link_never_redirects_the_write(
    shared_tmp: Path, netns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """nobody loops renameat2(out, lnk, RENAME_EXCHANGE), lnk leading to root's directory, while
    root runs ``snapshot -o DIR/out/x.json``: each run writes out/x.json or is one line, exit 2;
    root's directory never receives a file."""
    victim = shared_tmp / "victim"
    victim.mkdir()
    theirs = shared_tmp / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    python = os.path.realpath(sys.executable)  # the base interpreter: nobody cannot read the venv
    swapper = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-I", "-c", _SWAPPER,
         str(theirs), str(victim)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n", swapper.stderr
        out = _out_directory(theirs)
        outcomes = {0: 0, 2: 0}
        try:
            for _ in range(_RUNS):
                code = main(
                    ["snapshot", "--no-processes", "--netns", netns, "-o", str(theirs / "out" / "x.json")]
                )
                _, err = capsys.readouterr()
                assert os.listdir(victim) == [], f"root's directory received {os.listdir(victim)}"
                assert code in outcomes, (code, err)
                outcomes[code] += 1
                if code == 0:
                    assert os.listdir(out) == ["x.json"]
                    os.unlink("x.json", dir_fd=out)
                else:
                    assert len(err.splitlines()) == 1 and err.startswith("sockdiff: "), err
                    assert "refusing to use" in err and "a symlink that uid 65534 owns" in err, err
                    assert os.listdir(out) == []  # no temporary left behind either
        finally:
            os.close(out)
        assert swapper.poll() is None, swapper.communicate()  # it swapped all along
    finally:
        swapper.kill()
        swapper.communicate(timeout=TIMEOUT)
    # Both outcomes happened: the race was run, not missed.
    assert outcomes[0] and outcomes[2], outcomes
