"""Output safety: what -o points at, short writes, closed pipes and closed streams."""

from __future__ import annotations

import dataclasses
import os
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockdiff import WriteError, load, save
from sockdiff.snapshots import dumps
from tests.helpers.cli import TIMEOUT, created_mode, one_line_error, small_disk, sockdiff_command
from tests.helpers.made import sample

NOBODY = 65534


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """A 40 KiB snapshot file: more than a pipe or a small disk takes at once."""
    path = tmp_path / "big.json"
    sockets = sample().sockets
    assert sockets is not None
    save(dataclasses.replace(sample(), sockets=sockets * 40), str(path))
    return path


def run_with(argv: list[str], **streams: int) -> subprocess.CompletedProcess[bytes]:
    command, env = sockdiff_command(*argv)
    return subprocess.run(command, env=env, cwd="/", timeout=TIMEOUT, stderr=subprocess.PIPE, **streams)  # type: ignore[call-overload, no-any-return]


def test_a_device_is_written_through_never_replaced(tmp_path: Path) -> None:
    """``-o /dev/null`` as root writes to the device, never replaces it with a file (here: a copy of it)."""
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    save(sample(), str(null))
    assert stat.S_ISCHR(null.lstat().st_mode) and null.lstat().st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no temporary left beside it


def test_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    save(sample(), str(fifo))
    reader.join(TIMEOUT)
    assert received == [dumps(sample())]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_our_own_descriptors_are_written_through(tmp_path: Path) -> None:
    """``>>`` keeps appending: the descriptor is used as it is, never reopened or replaced."""
    out = tmp_path / "out"
    out.write_bytes(b"before\n")
    inode = out.stat().st_ino
    paths = ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1", "-"]
    code = "import sys, sockdiff; [sockdiff.save(sockdiff.load(sys.argv[1]), path) for path in sys.argv[2:]]"
    small = tmp_path / "small.json"
    save(sample(), str(small))
    with out.open("ab") as appending:
        subprocess.run(
            [sys.executable, "-c", code, small, *paths], stdout=appending, check=True, timeout=TIMEOUT
        )
    assert out.stat().st_ino == inode and stat.S_ISREG(out.stat().st_mode)
    assert out.read_bytes() == b"before\n" + dumps(sample()) * len(paths)


def test_a_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(b"old")
    path.chmod(0o640)
    save(sample(), str(path))
    assert path.read_bytes() == dumps(sample())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"]
    save(sample(), str(tmp_path / "new.json"))  # a new one: as a shell's '>' makes it
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == created_mode()


def test_a_symlink_leads_to_its_target_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "data" / "real.json"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to("data/real.json")
    chain = tmp_path / "chain.json"
    chain.symlink_to(link)
    save(sample(), str(chain))
    assert chain.is_symlink() and link.is_symlink()
    assert target.read_bytes() == dumps(sample())
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to("data/new.json")
    save(sample(), str(dangling))
    assert dangling.is_symlink() and (target.parent / "new.json").read_bytes() == dumps(sample())


@pytest.fixture
def sticky(tmp_path: Path) -> Iterator[Path]:
    """A world-writable sticky directory, as /tmp is (its owner: root, us)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    directory.chmod(0o1777)
    yield directory


def test_a_link_planted_in_a_sticky_directory_is_never_followed(sticky: Path, tmp_path: Path) -> None:
    """Another user's link in /tmp pointing at a file root owns: refused, the file untouched."""
    victim = tmp_path / "shadow"
    victim.write_bytes(b"precious")
    planted = sticky / "report.json"
    planted.symlink_to(victim)
    os.lchown(planted, NOBODY, NOBODY)
    with pytest.raises(WriteError, match=r"refusing to use .*report.json, a symlink that uid 65534 owns"):
        save(sample(), str(planted))
    assert victim.read_bytes() == b"precious" and planted.is_symlink()


@pytest.mark.parametrize("where", ["sticky", "theirs"])
def test_another_users_link_on_the_way_is_never_followed(sticky: Path, tmp_path: Path, where: str) -> None:
    """A planted link to a directory (in /tmp, or in a directory of theirs there) is refused too."""
    victim_dir = tmp_path / "etc"
    victim_dir.mkdir()
    (victim_dir / "o.json").write_bytes(b"precious")
    parent = sticky
    if where == "theirs":
        parent = sticky / "sub"
        parent.mkdir()
        os.chown(parent, NOBODY, NOBODY)
    planted = parent / "dirlink"
    planted.symlink_to(victim_dir)
    os.lchown(planted, NOBODY, NOBODY)
    with pytest.raises(WriteError, match="a symlink that uid 65534 owns"):
        save(sample(), str(planted / "o.json"))
    assert (victim_dir / "o.json").read_bytes() == b"precious"
    assert [p.name for p in victim_dir.iterdir()] == ["o.json"]


def test_a_fifo_planted_in_a_sticky_directory_is_refused(sticky: Path) -> None:
    fifo = sticky / "f.json"
    os.mkfifo(fifo)
    os.chown(fifo, NOBODY, NOBODY)
    with pytest.raises(WriteError, match="a FIFO that uid 65534 owns"):
        save(sample(), str(fifo))  # without the check this blocks until the planter reads


def test_a_descriptor_number_past_any_int_is_one_error() -> None:
    for path in ("/dev/fd/9999999999", "/proc/self/fd/99999999999999999999"):
        with pytest.raises(WriteError, match="Bad file descriptor"):
            save(sample(), path)


# Each path: what the kernel says to open(O_WRONLY), then what save says, one line each.
_KERNEL_AND_SAVE = """
import os, sys, sockdiff
snapshot = sockdiff.load(sys.argv[1])
for path in sys.argv[2:]:
    try:
        os.close(os.open(path, os.O_WRONLY))
        print("kernel: opened", file=sys.stderr)
    except OSError as err:
        print("kernel:", err.strerror, file=sys.stderr)
    try:
        sockdiff.save(snapshot, path)
        print("save: written", file=sys.stderr)
    except sockdiff.WriteError as err:
        print("save:", str(err).rpartition(": ")[2], file=sys.stderr)
"""


def test_a_trailing_slash_after_our_descriptor_is_not_a_directory(tmp_path: Path) -> None:
    """``-o /dev/stdout/`` wrote the snapshot to standard output, and ``/proc/self/fd/1/.`` said "No
    such file or directory": a descriptor of a file is no directory, as the kernel says (ENOTDIR)."""
    small = tmp_path / "small.json"
    save(sample(), str(small))
    out = tmp_path / "out"
    paths = ["/dev/stdout/", "/proc/self/fd/1/", "/dev/fd/1/", "/proc/self/fd/1/.", "/dev/fd/1/x"]
    with out.open("wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-c", _KERNEL_AND_SAVE, small, *paths],
            stdout=stdout, stderr=subprocess.PIPE, text=True, check=True, timeout=TIMEOUT,
        )  # fmt: skip
    lines = result.stderr.splitlines()
    assert lines == ["kernel: Not a directory", "save: Not a directory"] * len(paths)
    assert out.read_bytes() == b""


def test_a_process_directory_under_proc_is_the_directory_it_holds(tmp_path: Path) -> None:
    """``/proc/self/cwd/x.json`` is written in the working directory (the link's text is not walked),
    and ``/proc/self/cwd/`` is a directory, as the kernel says."""
    small = tmp_path / "small.json"
    save(sample(), str(small))
    paths = ["/proc/self/cwd/x.json", "/proc/self/cwd/"]
    (tmp_path / "x.json").write_bytes(b"old")
    result = subprocess.run(
        [sys.executable, "-c", _KERNEL_AND_SAVE, small, *paths],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, check=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.stderr.splitlines() == [
        "kernel: opened", "save: written", "kernel: Is a directory", "save: Is a directory"
    ]  # fmt: skip
    assert (tmp_path / "x.json").read_bytes() == dumps(sample())


def test_a_link_of_ours_or_roots_is_followed(sticky: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    ours = sticky / "ours.json"
    ours.symlink_to(target)
    save(sample(), str(ours))
    assert target.read_bytes() == dumps(sample())
    os.chown(sticky, NOBODY, NOBODY)  # even in a sticky directory nobody owns, a link of nobody's is not
    theirs = sticky / "theirs.json"
    theirs.symlink_to(target)
    os.lchown(theirs, NOBODY, NOBODY)
    with pytest.raises(WriteError, match="a symlink that uid 65534 owns"):
        save(sample(), str(theirs))


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="Is a directory"):
        save(sample(), str(tmp_path))


def test_an_unwritable_target_is_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"cannot write: No such file or directory"):
        save(sample(), str(tmp_path / "missing" / "snap.json"))


@pytest.mark.parametrize(
    "argv",
    [["show", "-a", "--format", "json"], ["compare"]],
)
def test_a_full_disk_under_standard_output_is_an_error(big: Path, argv: list[str]) -> None:
    """``> file`` on a full disk: the shell opened it, sockdiff writes a part, then ENOSPC."""
    if argv == ["compare"]:
        argv = ["compare", str(big), str(big.with_name("empty.json"))]
        save(dataclasses.replace(sample(), sockets=()), argv[-1])
    else:
        argv = [*argv, str(big)]
    command, env = sockdiff_command(*argv)
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items() if key != "PWD")
    result = small_disk(f'env -i {exports} {shlex.join(command)} > "$DISK/out"')
    assert result.returncode == 2, result
    assert result.stderr == "sockdiff: standard output: cannot write: No space left on device\n"


def test_a_full_disk_keeps_the_old_file(big: Path) -> None:
    """-o on a full disk: the temporary file fails, the old file stays whole, nothing is left behind."""
    small = big.with_name("small.json")
    save(sample(), str(small))
    code = "import sys, sockdiff; sockdiff.save(sockdiff.load(sys.argv[1]), sys.argv[2])"
    result = small_disk(
        f'cp {small} "$DISK/snap.json" && '
        f'{shlex.quote(sys.executable)} -c {shlex.quote(code)} {big} "$DISK/snap.json" 2>&1 | tail -1;'
        f'cmp {small} "$DISK/snap.json" && ls -A "$DISK"'
    )
    assert result.returncode == 0, result
    error, listing = result.stdout.splitlines()
    assert error.endswith("/snap.json: cannot write: No space left on device")
    assert listing == "snap.json"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["show", "-a"], 0),
        (["compare", "--fail-on", "any"], 1),
        (["compare", "--fail-on", "any"], 0),
        (["--help"], 0),
    ],
)
def test_a_closed_pipe_is_silent_and_never_a_false_difference(big: Path, argv: list[str], code: int) -> None:
    """``sockdiff show | head``: the reader went away; click would make it exit 1 ("differences").

    compare's exit code still says whether --fail-on counted differences: 1 only when it did.
    """
    if argv[0] == "compare":
        other = big.with_name("empty.json")
        save(dataclasses.replace(sample(), sockets=()), str(other))
        argv = [*argv, str(big), str(other if code else big)]
    elif argv[0] == "show":
        argv = [*argv, str(big)]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    try:
        result = run_with(argv, stdout=write_end)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (code, b"")


def shell(script: str) -> subprocess.CompletedProcess[str]:
    command, env = sockdiff_command()
    return subprocess.run(
        ["sh", "-c", script.replace("SOCKDIFF", shlex.join(command))],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        cwd="/",
    )


def test_closed_standard_output_is_one_line_exit_2(big: Path) -> None:
    result = shell(f"SOCKDIFF show -a {big} >&-")
    assert one_line_error(result) == "sockdiff: standard output is closed"


def test_closed_standard_output_never_lands_in_a_file(tmp_path: Path) -> None:
    """With descriptor 1 closed, the snapshot file opened next must not become standard output."""
    path = tmp_path / "snap.json"
    result = shell(f"SOCKDIFF snapshot --no-processes -o {path} >&-")
    assert result.returncode == 0, result.stderr
    assert load(str(path)).sockets is not None


def test_closed_standard_input_is_one_line_exit_2(big: Path) -> None:
    result = shell(f"SOCKDIFF compare - {big} <&-")
    assert one_line_error(result) == "sockdiff: <stdin>: cannot read: standard input is closed"


def test_closed_standard_error_is_no_crash(big: Path) -> None:
    result = shell(
        f"SOCKDIFF show -a {big} 2>&- >/dev/null; echo $?; SOCKDIFF show nothere.json 2>&-; echo $?"
    )
    assert result.stdout == "0\n2\n"
