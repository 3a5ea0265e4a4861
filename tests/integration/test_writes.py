"""How sockdiff writes files: resolved once against a swapping attacker, inputs never
written over, line reports added to a shared file and documents replaced."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockdiff import WriteError, save
from sockdiff.cli import main
from sockdiff.config import load_defaults
from sockdiff.output import write_file
from sockdiff.snapshots import dumps
from sockdiff.store import keep
from tests.helpers.cli import TIMEOUT, created_mode, one_line_error, sockdiff, sockdiff_command
from tests.helpers.made import sample
from tests.helpers.unprivileged import NOBODY

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


def _check_written(out: int, where: str, written: bool) -> None:
    """Nobody's ``out`` holds the one file written (then removed), and no temporary is left."""
    if where == "-o":
        assert os.listdir(out) == (["x.json"] if written else [])
        if written:
            os.unlink("x.json", dir_fd=out)
        return
    if not os.listdir(out):
        assert not written
        return  # refused before the store was first made
    assert os.listdir(out) == ["store"]
    store = os.open("store", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=out)
    try:
        stored = os.listdir(store)
        assert len(stored) == (1 if written else 0) and all(name.endswith("Z.json") for name in stored), (
            stored
        )
        for name in stored:
            os.unlink(name, dir_fd=store)
    finally:
        os.close(store)


def _out_directory(theirs: Path) -> int:
    """A descriptor of nobody's ``out`` directory, under whichever name it has this instant."""
    while True:
        for name in ("out", "lnk"):
            try:
                return os.open(theirs / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except (NotADirectoryError, OSError):
                continue


@pytest.mark.parametrize("where", ["-o", "store"])
def test_a_directory_swapped_for_a_link_never_redirects_the_write(
    shared_tmp: Path,
    netns: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """nobody loops renameat2(out, lnk, RENAME_EXCHANGE), lnk leading to root's directory, while
    root runs ``snapshot -o DIR/out/x.json`` (or ``snapshot`` with its store in DIR/out/store):
    each run writes into out or is one line, exit 2; root's directory never receives a file."""
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
            argv = ["snapshot", "--no-processes", "--netns", netns]
            if where == "-o":
                argv += ["-o", str(theirs / "out" / "x.json")]
            else:
                monkeypatch.setenv("SOCKDIFF_HOME", str(theirs / "out" / "store"))
            for _ in range(_RUNS):
                code = main(argv)
                _, err = capsys.readouterr()
                assert os.listdir(victim) == [], f"root's directory received {os.listdir(victim)}"
                assert code in outcomes, (code, err)
                outcomes[code] += 1
                if code != 0:
                    assert len(err.splitlines()) == 1 and err.startswith("sockdiff: "), err
                    assert "refusing to use" in err and "a symlink that uid 65534 owns" in err, err
                _check_written(out, where, code == 0)
        finally:
            os.close(out)
        assert swapper.poll() is None, swapper.communicate()  # it swapped all along
    finally:
        swapper.kill()
        swapper.communicate(timeout=TIMEOUT)
    # Both outcomes happened: the race was run, not missed.
    assert outcomes[0] and outcomes[2], outcomes


def test_a_config_behind_a_swapped_directory_is_never_applied(shared_tmp: Path) -> None:
    """Root's ``.sockdiff.toml`` links into nobody's ``out``, which nobody keeps exchanging with
    nobody's link to root's directory (holding a config root trusts): the link hop is nobody's, so
    the config is skipped whichever name is there as the walk passes, never applied in between."""
    victim = shared_tmp / "victim"
    victim.mkdir()
    (victim / "cfg.toml").write_text('ignore = ["proto tcp"]\n')
    theirs = shared_tmp / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    project = shared_tmp / "proj"
    project.mkdir()
    (project / ".sockdiff.toml").symlink_to(theirs / "out" / "cfg.toml")
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
        reasons: set[str] = set()
        for tries in range(_RUNS * 50):  # until both names were met, or a scheduler that never swapped
            defaults = load_defaults(project)
            assert defaults.ignore is None and defaults.origin is None, "nobody's hop led to root's config"
            (warning,) = defaults.warnings
            missing = "No such file" in warning
            reasons.add("link" if "the link" in warning else "missing" if missing else warning)
            if len(reasons) == 2 and tries >= _RUNS:
                break
        assert swapper.poll() is None, swapper.communicate()  # it swapped all along
    finally:
        swapper.kill()
        swapper.communicate(timeout=TIMEOUT)
    assert reasons == {"link", "missing"}, reasons  # both names were met: the race was run, not missed


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two snapshot files that differ: every socket of the first is closed in the second."""
    old, new = tmp_path / "a.json", tmp_path / "b.json"
    save(sample(), str(old))
    save(dataclasses.replace(sample(), sockets=()), str(new))
    return old, new


@pytest.mark.parametrize("spelling", ["same", "symlink", "dotted", "hardlink", "stdin"])
def test_a_report_never_lands_on_an_input(pair: tuple[Path, Path], tmp_path: Path, spelling: str) -> None:
    """``compare b.json a.json --report json=b.json`` would replace the baseline with a diff: it is one
    line, exit 2, before any report is written (the one asked first too), the input as it was."""
    old, new = pair
    target = str(old)
    if spelling == "symlink":
        (tmp_path / "link.json").symlink_to(old.name)
        target = str(tmp_path / "link.json")
    elif spelling == "dotted":
        (tmp_path / "sub").mkdir()
        target = f"{tmp_path}/sub/../{old.name}"
    elif spelling == "hardlink":
        os.link(old, tmp_path / "other-name.json")
        target = str(tmp_path / "other-name.json")
    before = old.read_bytes()
    first = tmp_path / "first.xml"
    argv = ["compare", "-" if spelling == "stdin" else str(old), str(new)]
    argv += ["--report", f"junit={first}", "--report", f"json={target}"]
    command, env = sockdiff_command(*argv)
    with old.open("rb") as stdin:
        result = subprocess.run(
            command, env=env, stdin=stdin, capture_output=True, text=True, timeout=TIMEOUT, cwd="/"
        )
    error = one_line_error(result)
    name = "standard input" if spelling == "stdin" else str(old)
    assert error == f"sockdiff: {target}: refusing to write over {name}, an input of this command"
    assert old.read_bytes() == before and not first.exists()


def test_a_stored_baseline_is_never_a_report(pair: tuple[Path, Path], tmp_path: Path) -> None:
    home = tmp_path / "store"
    result = sockdiff("snapshot", "--name", "base", home=home)
    assert result.returncode == 0, result.stderr
    stored = home / "base.json"
    before = stored.read_bytes()
    result = sockdiff("compare", "base", str(pair[1]), "--report", f"json={stored}", home=home)
    assert "refusing to write over" in one_line_error(result)
    assert stored.read_bytes() == before


def _shared_file(path: Path, text: str, mode: int) -> tuple[int, int]:
    path.write_text(text)
    path.chmod(mode)
    return path.stat().st_ino, mode


def test_a_line_report_adds_to_the_step_summary_and_a_log(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """The README's GitHub Actions step: the summary (0644, what earlier steps wrote) and a log keep
    their content, mode and inode, the report added after; the JUnit document is replaced."""
    old, new = pair
    summary, log, junit = tmp_path / "step_summary", tmp_path / "run.log", tmp_path / "sockdiff.xml"
    kept = {summary: _shared_file(summary, "## Tests\n\nall passed\n", 0o644)}
    kept[log] = _shared_file(log, "earlier line\n", 0o640)
    junit.write_text("<old/>")
    junit.chmod(0o604)
    junit_inode = junit.stat().st_ino
    expected = {
        summary: sockdiff("compare", str(old), str(new), "--format", "markdown").stdout,
        log: sockdiff("compare", str(old), str(new), "--format", "text").stdout,
    }
    command, env = sockdiff_command(
        "compare", str(old), str(new), "--fail-on", "any", "--format", "github",
        "--report", f"junit={junit}", "--report", 'markdown=' + str(summary), "--report", f"text={log}",
    )  # fmt: skip
    result = subprocess.run(
        command,
        env={**env, "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1, result.stderr  # differences counted
    for path, (inode, mode) in kept.items():
        status = path.stat()
        assert (status.st_ino, stat.S_IMODE(status.st_mode)) == (inode, mode)
    assert summary.read_text() == "## Tests\n\nall passed\n" + expected[summary]
    assert log.read_text() == "earlier line\n" + expected[log]
    assert junit.stat().st_ino != junit_inode and stat.S_IMODE(junit.stat().st_mode) == 0o604
    assert junit.read_text().startswith("<?xml")


def test_a_line_report_onto_no_file_creates_it_as_a_shell_would(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    summary = tmp_path / "new.md"
    result = sockdiff("compare", str(pair[0]), str(pair[1]), "--report", f"markdown={summary}")
    assert result.returncode == 1, result.stderr
    assert stat.S_IMODE(summary.stat().st_mode) == created_mode() and summary.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_replaced_report_keeps_its_mode_and_owner(pair: tuple[Path, Path], shared_tmp: Path) -> None:
    """node_exporter's textfile collector runs as another user: root's report replacing a 0644 file
    of theirs stays theirs and 0644 (it was made 0600 and root's: unreadable to the collector). A new
    file gets 0666 less the umask, as a shell's '>' makes it."""
    old, new = pair
    metrics = shared_tmp / "sockdiff.prom"
    metrics.write_text("# old\n")
    metrics.chmod(0o644)
    os.chown(metrics, NOBODY, NOBODY)
    fresh = shared_tmp / "fresh.prom"
    command, env = sockdiff_command(
        "compare", str(old), str(new), "--report", f"prometheus={metrics}", "--report", f"prometheus={fresh}"
    )
    result = subprocess.run(
        ["sh", "-c", 'umask 027; exec "$@"', "sh", *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    status = metrics.stat()
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (NOBODY, NOBODY, 0o644)
    assert metrics.read_text().startswith("# HELP ")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640 and fresh.stat().st_uid == 0


def _planted_in_sticky(shared_tmp: Path, name: str) -> Path:
    """A file of nobody's ("theirs\\n") in a sticky directory of root's, as /tmp is."""
    sticky = shared_tmp / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    planted = sticky / name
    planted.write_text("theirs\n")
    os.chown(planted, NOBODY, NOBODY)
    return planted


def test_replacing_is_refused_where_another_user_chose_the_file(
    pair: tuple[Path, Path], shared_tmp: Path
) -> None:
    """Another user's file in a sticky directory not theirs is theirs to keep (``protected_regular``):
    not replaced by one of root's, as appending to it is refused."""
    planted = _planted_in_sticky(shared_tmp, "report.json")
    result = sockdiff("compare", str(pair[0]), str(pair[1]), "--report", f"json={planted}")
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if "report.json" in line]
    assert line == f"sockdiff: {planted}: refusing to use {planted}, a file that uid {NOBODY} owns"
    assert planted.read_text() == "theirs\n" and planted.stat().st_uid == NOBODY


def test_appending_is_refused_where_another_user_chose_the_file(shared_tmp: Path) -> None:
    """A file of nobody's in a sticky directory (``protected_regular``), or a hard link nobody could
    have made to a file of root's in a directory of theirs: appending would write root's lines there."""
    planted = _planted_in_sticky(shared_tmp, "summary.md")
    with pytest.raises(WriteError, match=r"refusing to use .*summary.md, a file that uid 65534 owns"):
        write_file(str(planted), b"line\n", append=True)
    assert planted.read_text() == "theirs\n"
    precious = shared_tmp / "precious"
    precious.write_text("root's\n")
    theirs = shared_tmp / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    os.link(precious, theirs / "log")
    with pytest.raises(WriteError, match=r"refusing to append to .*/theirs/log: it has 2 links"):
        write_file(str(theirs / "log"), b"line\n", append=True)
    assert precious.read_text() == "root's\n"
    write_file(str(theirs / "log"), b"line\n")  # replacing it leaves root's file alone
    assert precious.read_text() == "root's\n" and (theirs / "log").read_bytes() == b"line\n"


# Run as nobody in nob, a directory of theirs holding root's store: make fake (theirs) holding
# base.json, then exchange store and fake as fast as it can.
_STORE_SWAPPER = r"""
import ctypes, os, shutil, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
os.chdir(sys.argv[1])
os.mkdir("fake", 0o700)
shutil.copyfile(sys.argv[2], "fake/base.json")
print("ready", flush=True)
while True:
    if libc.renameat2(AT_FDCWD, b"store", AT_FDCWD, b"fake", RENAME_EXCHANGE) != 0:
        sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
"""
# Runs against the store swapper: the store checked by name, then used by name, lost 8 in 100.
_STORE_RUNS = 100


@pytest.fixture
def store_swapped(shared_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """Root's store in nob, a directory nobody owns (SOCKDIFF_HOME=nob/store), holding ``base`` with
    no sockets, while nobody exchanges it with their own fake store whose base.json is ``sample()``:
    yields (nob, a file holding ``sample()``)."""
    nob = shared_tmp / "nob"
    nob.mkdir()
    store = nob / "store"
    store.mkdir(0o700)
    save(dataclasses.replace(sample(), sockets=()), str(store / "base.json"))
    os.chown(nob, NOBODY, NOBODY)
    planted = shared_tmp / "planted.json"
    save(sample(), str(planted))
    planted.chmod(0o644)
    monkeypatch.setenv("SOCKDIFF_HOME", str(store))
    python = os.path.realpath(sys.executable)  # the base interpreter: nobody cannot read the venv
    swapper = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-I", "-c",
         _STORE_SWAPPER, str(nob), str(planted)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert swapper.stdout is not None and swapper.stdout.readline() == "ready\n", swapper.stderr
        yield nob, planted
        assert swapper.poll() is None, swapper.communicate()  # it swapped all along
    finally:
        swapper.kill()
        swapper.communicate(timeout=TIMEOUT)


def _held_directory(nob: Path, owner: int) -> int:
    """A descriptor of whichever of nob's store and fake ``owner`` owns, by its name this instant."""
    while True:
        for name in ("store", "fake"):
            with contextlib.suppress(OSError):
                fd = os.open(nob / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                if os.fstat(fd).st_uid == owner:
                    return fd
                os.close(fd)


def test_a_store_exchanged_with_another_users_is_never_read(
    store_swapped: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``compare --fail-on new base NEW`` while nobody exchanges root's store with theirs: the store
    checked is the store listed and read, so each run finds the new listener (1) or refuses
    nobody's store (2); never nobody's planted base.json, which hid the listener (0)."""
    _, planted = store_swapped
    outcomes = {1: 0, 2: 0}
    for argv in (["compare", "--fail-on", "new", "base", str(planted)], ["list"]):
        for _ in range(_STORE_RUNS // 2):
            code = main(argv)
            out, err = capsys.readouterr()
            if argv[0] == "list":
                code = 2 if code else 1  # list: root's one snapshot, or nobody's store refused
                assert code == 2 or out.split()[0] == "base", out
            assert code in outcomes, (code, out, err)
            outcomes[code] += 1
            if code == 2:
                assert len(err.splitlines()) == 1 and "belongs to uid 65534" in err, err
    assert outcomes[1] and outcomes[2], outcomes  # the race was run, not missed


def test_a_store_exchanged_with_another_users_is_never_written(
    store_swapped: tuple[Path, Path], netns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``snapshot`` while nobody exchanges root's store with theirs: the snapshot lands in root's
    store or is refused in one line; nobody's directory never receives root's snapshot."""
    nob, _ = store_swapped
    theirs = _held_directory(nob, NOBODY)
    ours = _held_directory(nob, 0)
    outcomes = {0: 0, 2: 0}
    try:
        for _ in range(_STORE_RUNS):
            code = main(["snapshot", "--no-processes", "--netns", netns])
            _, err = capsys.readouterr()
            assert os.listdir(theirs) == ["base.json"], f"nobody's store received {os.listdir(theirs)}"
            assert code in outcomes, (code, err)
            outcomes[code] += 1
            if code == 2:
                assert len(err.splitlines()) == 1 and "belongs to uid 65534" in err, err
            written = sorted(os.listdir(ours))
            assert len(written) == (2 if code == 0 else 1), written
            for name in written:
                if name != "base.json":
                    os.unlink(name, dir_fd=ours)
    finally:
        os.close(theirs)
        os.close(ours)
    assert outcomes[0] and outcomes[2], outcomes


@pytest.mark.parametrize(
    "target",
    ["newdir/", "a.json/", "a.json/.", "a.json/x", "/dev/null/", ".", "sub/..", "lnk/"],
)
def test_a_path_is_resolved_as_the_kernel_resolves_it(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trailing ``/`` names a directory and ``.``/``..`` are walked, not dropped as text: ``-o
    newdir/`` made a file newdir, ``a.json/`` and ``a.json/.`` replaced a.json, ``/dev/null/`` was
    taken. Each is now the kernel's refusal, one line, exit 2, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    save(sample(), "a.json")
    (tmp_path / "lnk").symlink_to("a.json")
    before = sorted(p.name for p in tmp_path.iterdir())
    original = (tmp_path / "a.json").read_bytes()
    with pytest.raises(WriteError, match=rf"^{re.escape(target)}: cannot write: "):
        save(sample(), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and list((tmp_path / "sub").iterdir()) == []
    assert (tmp_path / "a.json").read_bytes() == original
    old = tmp_path / "sub" / "old.json"
    save(dataclasses.replace(sample(), sockets=()), str(old))
    assert main(["compare", str(old), "a.json", "--report", f"json={target}"]) == 2
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and err.startswith(f"sockdiff: {target}: cannot write: "), err
    assert (tmp_path / "a.json").read_bytes() == original


def test_dot_dot_after_a_link_is_the_parent_of_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lnk/../x.json`` with lnk -> sub/deeper is sub/x.json to the kernel (``..`` of where the
    link led), not ./x.json as a textual normalisation made it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to("sub/deeper")
    save(sample(), "lnk/../x.json")
    assert (tmp_path / "sub" / "x.json").is_file() and not (tmp_path / "x.json").exists()
    save(sample(), "sub/deeper/../../y.json")  # and .. of a plain directory is its parent, as ever
    assert (tmp_path / "y.json").is_file()


@pytest.mark.parametrize("target", ["closed pipe", "FIFO without a reader"])
def test_a_report_that_cannot_be_written_is_an_error_and_the_rest_is_written(
    pair: tuple[Path, Path], tmp_path: Path, target: str
) -> None:
    """A --report whose reader went away (a pipe closed, as ``| (exec 0<&-)``) or a FIFO no one reads
    made compare exit 0 with --fail-on counting differences, and dropped the report on standard
    output (the FIFO one blocked until a reader came). Now: one line naming it, the other outputs
    written whole, exit 2: never a pass."""
    old, new = pair
    expected = sockdiff("compare", str(new), str(old), "--format", "json")
    assert expected.returncode == 1 and expected.stdout
    read_end, write_end = os.pipe()
    os.close(read_end)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    report = "/dev/fd/3" if target == "closed pipe" else str(fifo)
    junit = tmp_path / "after.xml"
    command, env = sockdiff_command(
        "compare", str(new), str(old), "--fail-on", "new", "--format", "json",
        "--report", f"github={report}", "--report", f"junit={junit}",
    )  # fmt: skip
    try:
        with (tmp_path / "out.json").open("wb") as out:
            result = subprocess.run(
                command, env=env, stdout=out, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT,
                pass_fds=(write_end,), preexec_fn=lambda: os.dup2(write_end, 3),
            )  # fmt: skip
    finally:
        os.close(write_end)
    error = one_line_error(result)
    assert error.startswith(f"sockdiff: {report}: cannot write: "), error
    assert (tmp_path / "out.json").read_text() == expected.stdout
    assert junit.read_text().startswith("<?xml")


def test_a_full_disk_leaves_no_torn_report_in_a_shared_file(tmp_path: Path) -> None:
    """A text report appended to a log on a full disk stopped mid-line; the error was one line but
    the torn tail stayed in the log. Now the log goes back to what it held."""
    from tests.helpers.cli import small_disk

    big, empty = tmp_path / "big.json", tmp_path / "empty.json"
    sockets = sample().sockets
    assert sockets is not None
    save(dataclasses.replace(sample(), sockets=sockets * 40), str(big))
    save(dataclasses.replace(sample(), sockets=()), str(empty))
    command, env = sockdiff_command("compare", str(empty), str(big), "-f", "json", "--report", "text=$LOG")
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items() if key != "PWD")
    line = shlex.join(command).replace("'text=$LOG'", '"text=$LOG"')
    result = small_disk(
        f'LOG="$DISK/log" && printf "earlier line\\n" > "$LOG" &&'
        f' env -i LOG="$LOG" {exports} {line} > /dev/null; echo "rc=$?" && cat "$LOG"'
    )
    assert result.stdout == "rc=2\nearlier line\n", result
    assert result.stderr.count("\n") == 1 and "cannot write: No space left on device" in result.stderr


@pytest.mark.parametrize("kind", ["text", "markdown", "github"])
def test_an_appended_report_starts_on_a_line_of_its_own(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A log that does not end in a newline had the report glued to its last line (a markdown heading
    lost, ``::error`` not at a line's start)."""
    old, new = pair
    log = tmp_path / "log"
    log.write_text("no newline at the end")
    argv = ["compare", str(old), str(new), "--format", kind]
    assert main(argv) == 1
    expected = capsys.readouterr().out
    assert main([*argv, "--report", f"{kind}={log}"]) == 1
    assert log.read_text() == "no newline at the end\n" + expected
    assert main([*argv, "--report", f"{kind}={log}"]) == 1  # ends in a newline now: nothing added
    assert log.read_text() == "no newline at the end\n" + expected * 2


def test_another_users_fifo_is_refused_ours_is_written(shared_tmp: Path) -> None:
    """nobody made a FIFO at the -o target in their own directory (not sticky) and read root's 0600
    snapshot. Another user's FIFO is refused in one line; one named through a descriptor of ours
    (the user opened it: ``> fifo``, then ``-o /dev/stdout``) is the user's choice."""
    theirs = shared_tmp / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    fifo = theirs / "snap.json"
    os.mkfifo(fifo)
    os.chown(fifo, NOBODY, NOBODY)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(WriteError, match=r"snap.json: refusing to use .*, a FIFO that uid 65534 owns"):
            save(sample(), str(fifo))
        assert os.read(reader, 1 << 16) == b""
        writer = os.open(fifo, os.O_WRONLY)
        try:
            save(sample(), f"/dev/fd/{writer}")
        finally:
            os.close(writer)
        assert os.read(reader, 1 << 16) == dumps(sample())
    finally:
        os.close(reader)


def test_parents_of_the_store_are_made_0755_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKDIFF_HOME", str(tmp_path / "a" / "b" / "store"))
    umask = os.umask(0)
    try:
        keep(sample(), "x")
    finally:
        os.umask(umask)
    modes = [stat.S_IMODE((tmp_path / p).stat().st_mode) for p in ("a", "a/b", "a/b/store")]
    assert modes == [0o755, 0o755, 0o700]


def test_standard_output_onto_an_input_is_refused(pair: tuple[Path, Path]) -> None:
    """``compare a.json b.json >> a.json`` appended the report to the baseline."""
    old, new = pair
    before = old.read_bytes()
    command, env = sockdiff_command("compare", str(old), str(new))
    with old.open("ab") as out:
        result = subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT
        )
    assert "an input of this command" in one_line_error(result)
    assert old.read_bytes() == before


@pytest.mark.parametrize(
    ("reports", "redirected"),
    [
        (["json=out"], True),  # > out: the report replaced the inode standard output wrote to
        (["text=out"], True),  # the appended text report, overwritten by standard output at offset 0
        (["json=/dev/stdout"], False),  # two JSON documents on one stream
        (["json=/proc/self/fd/1"], True),
        (["json=/dev/fd/1"], False),
        (["json=-", "json=-"], False),
        (["json=link"], True),  # the same file through a link
    ],
)
def test_a_report_onto_standard_output_is_refused(
    pair: tuple[Path, Path], tmp_path: Path, reports: list[str], redirected: bool
) -> None:
    """``compare a b --report json=out.json > out.json``: one of the two outputs was lost or mixed
    with the other. Standard output is --format's; a report naming it is refused before either is written."""
    tmp_path = tmp_path / "here"
    tmp_path.mkdir()
    out = tmp_path / "out"
    out.write_bytes(b"before\n")
    (tmp_path / "link").symlink_to("out")
    argv = [str(pair[0]), str(pair[1]), "-f", "markdown"]
    for report in reports:
        argv += ["--report", report]
    command, env = sockdiff_command("compare", *argv)
    with out.open("wb") if redirected else contextlib.nullcontext(subprocess.PIPE) as stdout:
        result = subprocess.run(
            command, env=env, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT
        )
    assert "is standard output" in one_line_error(result)
    assert not result.stdout and out.read_bytes() == (b"" if redirected else b"before\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "out"]


@pytest.mark.parametrize("second", ["./{}", "link", "{}"])
def test_one_file_named_twice_by_report_is_refused(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: str
) -> None:
    """``--report json=x.json --report junit=./x.json``: refused, where the second would replace the first."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to("x.json")
    result = sockdiff(
        "compare", str(pair[0]), str(pair[1]), "--report", "json=x.json",
        "--report", f"junit={second.format('x.json')}", cwd=tmp_path,
    )  # fmt: skip
    assert "--report names one file twice" in one_line_error(result)
    assert not (tmp_path / "x.json").exists()


def test_a_store_that_cannot_be_made_is_said_before_the_snapshot_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SOCKDIFF_HOME", str(tmp_path / "file" / "store"))
    taken: list[object] = []
    monkeypatch.setattr("sockdiff.acquire.take", lambda **kw: taken.append(kw))
    assert main(["snapshot"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "snapshot store" in err, err
    assert taken == []


def test_a_fifo_whose_reader_goes_away_is_an_error_not_a_success(tmp_path: Path) -> None:
    """``-o fifo`` whose reader left mid-way ended as ``| head`` does, exit 0: a snapshot that was
    never delivered looked taken. The reader holds a one-page pipe, reads a byte and leaves."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    fcntl.fcntl(reader, fcntl.F_SETPIPE_SZ, 4096)
    os.set_blocking(reader, True)
    held = os.open(fifo, os.O_WRONLY)  # a writer all along: the reader's read waits for bytes, not EOF
    sockets = sample().sockets
    assert sockets is not None
    big = dataclasses.replace(sample(), sockets=sockets * 40)  # 40 KiB: ten times the pipe

    def leave() -> None:
        os.read(reader, 1)  # the writer is writing: it stays blocked on the full pipe
        os.close(reader)

    leaving = threading.Thread(target=leave)
    leaving.start()
    try:
        with pytest.raises(WriteError, match=r"fifo: cannot write: no process is reading it any more"):
            save(big, str(fifo))
    finally:
        leaving.join(TIMEOUT)
        os.close(held)
