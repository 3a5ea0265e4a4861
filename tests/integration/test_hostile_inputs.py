"""Inputs that gave tracebacks, and configs another user may write (issue 14).

Each input is one line on stderr and exit 2 (or, where nothing is wrong with
what was asked, a warning and the result); the library raises SockdiffError.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import sockdiff as library
from sockdiff.config import load_defaults
from sockdiff.errors import BadConfig, BadSnapshot, NetnsError, SockdiffError, WriteError
from sockdiff.snapshots import loads
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.made import GOOD
from tests.helpers.unprivileged import NOBODY, as_nobody, readable_copy

DIGITS = "9" * 5000
TRUNCATED = b'{"format":"sockdiff.snapshot","version":2,"x":' + b"9" * 6000


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    with readable_copy() as path:
        yield path


@pytest.fixture
def files() -> Iterator[tuple[Path, Path]]:
    """Two snapshots anyone may read: in the second, a TCP listener has moved (one new, one closed)."""
    place = Path(tempfile.mkdtemp(prefix="sockdiff-inputs-"))
    place.chmod(0o755)
    a, b = place / "a.json", place / "b.json"
    a.write_bytes(GOOD)
    b.write_bytes(GOOD.replace(b'"port":80}', b'"port":81}', 1))
    for path in (a, b):
        path.chmod(0o644)
    try:
        yield a, b
    finally:
        shutil.rmtree(place)


def test_a_truncated_file_with_a_huge_number(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(TRUNCATED)
    for argv in (("show", str(path)), ("compare", str(path), str(path))):
        assert "truncated JSON" in one_line_error(sockdiff(*argv))
    with pytest.raises(BadSnapshot, match="truncated JSON"):
        loads(TRUNCATED, "<stdin>")


def test_a_truncated_file_on_stdin(tmp_path: Path) -> None:
    import subprocess

    from tests.helpers.cli import sockdiff_command

    command, env = sockdiff_command("show", "-")
    done = subprocess.run(command, input=TRUNCATED, capture_output=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stderr.count(b"\n") == 1 and b"truncated JSON" in done.stderr


def test_standard_input_is_one_side_only() -> None:
    """``compare - -`` would read stdin twice (the second time empty): refused before reading."""
    import subprocess

    from tests.helpers.cli import sockdiff_command

    command, env = sockdiff_command("compare", "-", "-")
    done = subprocess.run(command, input=GOOD, capture_output=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stderr.count(b"\n") == 1, done.stderr
    assert b"standard input can be read once" in done.stderr
    with pytest.raises(SockdiffError, match="standard input can be read once"):
        library.compare("-", "-")


def test_a_netns_holding_a_nul_compared_with_live(tmp_path: Path) -> None:
    path = tmp_path / "nul.json"
    path.write_bytes(GOOD.replace(b'"netns":null', b'"netns":"a\\u0000b"', 1))
    assert "at $.netns" in one_line_error(sockdiff("compare", str(path), "live"))


@pytest.mark.parametrize(
    "expression", [f"pid {DIGITS}", f"uid > {DIGITS}", f"sport = :{DIGITS}", f"src *:{DIGITS}"]
)
def test_numbers_of_thousands_of_digits(expression: str, files: tuple[Path, Path]) -> None:
    a, b = files
    assert one_line_error(sockdiff("show", str(a), expression)).startswith("sockdiff: bad filter: bad ")
    assert "bad filter" in one_line_error(sockdiff("compare", str(a), str(b), "--ignore", expression))
    config = a.parent / ".sockdiff.toml"
    config.write_text(f"ignore = [{json.dumps(expression)}]\n")
    assert "bad filter" in one_line_error(sockdiff("compare", str(a), str(b), cwd=a.parent))


def test_library_errors_are_sockdiff_errors(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for version in (b"1", b"2"):  # a value the schema refuses, then nesting past msgspec's depth
        data = b'{"format":"sockdiff.snapshot","version":' + version + b',"taken_at":5,"x":' + deep + b"}"
        with pytest.raises(BadSnapshot, match="nested too deeply"):
            loads(data, "deep.json")
    with pytest.raises(BadSnapshot):
        library.load(str(tmp_path / "a\0b"))
    snapshot = loads(GOOD, "good.json")
    with pytest.raises(WriteError):
        library.save(snapshot, str(tmp_path / "a\0b"))
    with pytest.raises(NetnsError):
        library.snapshot(netns="a\0b")
    with pytest.raises(SockdiffError):
        library.compare(snapshot, "live", netns="a\0b")
    with pytest.raises(BadSnapshot, match=r"at \$\.netns"):
        loads(GOOD.replace(b'"netns":null', b'"netns":"a\\u0000b"', 1), "nul.json")


def test_a_deleted_working_directory(tmp_path: Path, files: tuple[Path, Path]) -> None:
    a, b = files
    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    os.chdir(gone)
    try:
        gone.rmdir()
        assert load_defaults().warnings  # said, not raised
        done = sockdiff("compare", str(a), str(b), cwd=".")
    finally:
        os.chdir(here)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "sockdiff: warning: no project defaults read: the working directory" in done.stderr


def test_nobody_in_a_directory_it_cannot_read(copy: Path, files: tuple[Path, Path]) -> None:
    a, b = files
    closed = a.parent / "closed"
    closed.mkdir(mode=0o700)  # root's: nobody may not search it
    done = as_nobody(copy, ["-m", "sockdiff", "compare", str(a), str(b)], cwd=str(closed))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{closed}/.sockdiff.toml: skipped: cannot read it: Permission denied" in done.stderr


CONFIG = 'ignore = ["proto tcp"]\nfail_on = "closed"\n'


def test_a_config_another_user_owns_is_skipped(files: tuple[Path, Path]) -> None:
    """Root in a directory nobody owns: nobody's config changes nothing, and stderr says so."""
    a, b = files
    directory = a.parent / "theirs"
    directory.mkdir()
    config = directory / ".sockdiff.toml"
    config.write_text(CONFIG)
    for path in (directory, config):
        os.chown(path, NOBODY, NOBODY)
    done = sockdiff("compare", str(a), str(b), cwd=directory)
    assert done.returncode == 1, done.stderr  # the moved listener counts
    assert done.stderr.startswith(
        f"sockdiff: warning: {config}: skipped: it is owned by uid {NOBODY}, not by you (uid 0) or root"
    )
    # The same file made root's, but writable by every user: skipped too.
    os.chown(config, 0, 0)
    config.chmod(0o666)
    done = sockdiff("compare", str(a), str(b), cwd=directory)
    assert done.returncode == 1 and f"{config}: skipped: it is writable by every user" in done.stderr
    # A link nobody made to a config root trusts: skipped.
    config.unlink()
    trusted = a.parent / "trusted.toml"
    trusted.write_text(CONFIG)
    config.symlink_to(trusted)
    os.chown(config, NOBODY, NOBODY, follow_symlinks=False)
    assert "skipped: the link is owned by uid" in sockdiff("compare", str(a), str(b), cwd=directory).stderr


def test_a_config_that_applies_is_named(files: tuple[Path, Path]) -> None:
    a, b = files
    (a.parent / ".sockdiff.toml").write_text(CONFIG)
    done = sockdiff("compare", str(a), str(b), cwd=a.parent)
    assert done.returncode == 0, done.stderr  # tcp ignored
    assert f"sockdiff: note: ignore and fail_on from {a.parent}/.sockdiff.toml\n" in done.stderr
    done = sockdiff("compare", str(a), str(b), "--ignore", "", "--fail-on", "any", cwd=a.parent)
    assert done.returncode == 1 and "from" not in done.stderr, done.stderr  # the flags replaced both


def test_another_users_pyproject_without_settings_says_nothing(files: tuple[Path, Path]) -> None:
    a, b = files
    directory = a.parent / "project"
    directory.mkdir()
    pyproject = directory / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    os.chown(pyproject, NOBODY, NOBODY)
    done = sockdiff("compare", str(a), str(b), cwd=directory)
    assert done.returncode == 1 and "warning" not in done.stderr, done.stderr
    pyproject.write_text('[tool.sockdiff]\nignore = ["proto tcp"]\n')
    done = sockdiff("compare", str(a), str(b), cwd=directory)
    assert done.returncode == 1 and f"{pyproject}: skipped: it is owned by uid {NOBODY}" in done.stderr


def test_another_users_pyproject_is_never_parsed(files: tuple[Path, Path]) -> None:
    """Root's compare in nobody's project: nobody's pyproject.toml is looked at, never parsed,
    so one nested past any parser's depth changes nothing (it made root's compare fail) and
    one as big as the reader allows is not read whole; it is named when it may hold settings."""
    a, b = files
    directory = a.parent / "project"
    directory.mkdir()
    pyproject = directory / "pyproject.toml"
    deep = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"
    for text, named in (
        ('[project]\nname = "x"\n' + deep, False),
        ('[project]\ndependencies = ["sockdiff"]\n' + deep, False),
        ("[tool.sockdiff]\n" + deep, True),
        ('[tool]\nsockdiff = {ignore = ["proto tcp"]}\n' + deep, True),
        ('tool.sockdiff.ignore = ["proto tcp"]\n', True),
        ("# " + "x" * (2 << 20) + "\n", True),  # past what is looked at: taken to hold settings
    ):
        pyproject.write_text(text)
        os.chown(pyproject, NOBODY, NOBODY)
        done = sockdiff("compare", str(a), str(b), cwd=directory)
        assert done.returncode == 1, (text[:40], done.stderr)  # the moved listener counts
        assert (f"{pyproject}: skipped: it is owned by uid {NOBODY}" in done.stderr) is named, text[:40]
        assert done.stderr.count("\n") == named, done.stderr


def test_ones_own_config_nested_too_deeply_is_named(tmp_path: Path) -> None:
    snapshot = tmp_path / "a.json"
    snapshot.write_bytes(GOOD)
    for name, text in (
        (".sockdiff.toml", "ignore = " + "[" * 5000),
        ("pyproject.toml", "[tool]\nx = " + "{a=" * 5000),
    ):
        config = tmp_path / name
        config.write_text(text)
        with pytest.raises(BadConfig, match=rf"^{config}: not valid TOML \(nested too deeply\)"):
            load_defaults(tmp_path)
        assert str(config) in one_line_error(sockdiff("compare", str(snapshot), str(snapshot), cwd=tmp_path))
        config.unlink()


def test_a_config_through_a_symlink_is_judged_by_who_made_the_link(files: tuple[Path, Path]) -> None:
    """A link's mode is always 0777: root's link to root's config applies, whatever the mode says;
    the file is judged by what was opened (another's file through root's link is skipped)."""
    a, b = files
    target = a.parent / "shared.toml"
    target.write_text(CONFIG)
    link = a.parent / ".sockdiff.toml"
    link.symlink_to(target)
    done = sockdiff("compare", str(a), str(b), cwd=a.parent)
    assert done.returncode == 0 and f"note: ignore and fail_on from {link}" in done.stderr, done.stderr
    assert "skipped" not in done.stderr
    os.chown(target, NOBODY, NOBODY)
    done = sockdiff("compare", str(a), str(b), cwd=a.parent)
    assert done.returncode == 1 and f"{link}: skipped: it is owned by uid {NOBODY}" in done.stderr
    # In a sticky directory anyone may write (as /tmp), a link another user made is skipped.
    os.chown(target, 0, 0)
    sticky = a.parent / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    theirs = sticky / ".sockdiff.toml"
    theirs.symlink_to(target)
    os.chown(theirs, NOBODY, NOBODY, follow_symlinks=False)
    done = sockdiff("compare", str(a), str(b), cwd=sticky)
    assert done.returncode == 1 and f"{theirs}: skipped: the link is owned by uid {NOBODY}" in done.stderr


@pytest.mark.parametrize("through", ["second link", "directory link"])
def test_a_config_reached_through_another_users_link_anywhere_on_the_way_is_skipped(
    files: tuple[Path, Path], through: str
) -> None:
    """Root's ``.sockdiff.toml`` -> nobody's link -> root's config: only the first link was judged, and
    root's ignore applied through nobody's hop (which nobody may point anywhere). Every hop is judged."""
    a, b = files
    target = a.parent / "root-cfg.toml"
    target.write_text(CONFIG)
    theirs = a.parent / "nbd"
    theirs.mkdir()
    project = a.parent / "proj"
    project.mkdir()
    config = project / ".sockdiff.toml"
    if through == "second link":
        hop = theirs / "hop"
        hop.symlink_to(target)
        config.symlink_to(hop)
    else:  # root's link into a directory through nobody's link to root's directory
        hop = theirs / "dir"
        hop.symlink_to(a.parent)
        config.symlink_to(hop / target.name)
    os.chown(theirs, NOBODY, NOBODY)
    os.chown(hop, NOBODY, NOBODY, follow_symlinks=False)
    done = sockdiff("compare", str(a), str(b), cwd=project)
    assert done.returncode == 1, done.stderr  # root-cfg.toml's ignore does not apply
    assert f"{config}: skipped: the link ({hop}) is owned by uid {NOBODY}" in done.stderr, done.stderr
    os.chown(hop, 0, 0, follow_symlinks=False)  # the same chain, every link root's: it applies
    done = sockdiff("compare", str(a), str(b), cwd=project)
    assert done.returncode == 0 and f"note: ignore and fail_on from {config}" in done.stderr, done.stderr


def test_a_malformed_config_of_ones_own_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / ".sockdiff.toml").write_text("ignore = [\n")
    with pytest.raises(BadConfig, match="not valid TOML"):
        load_defaults(tmp_path)


@pytest.mark.parametrize("table", [DIGITS, "²", "0", "4294967296", "-1"])
def test_a_routing_table_out_of_range_is_one_line(table: str) -> None:
    assert "unknown routing table" in one_line_error(sockdiff("show", "--route", "--table", table))


@pytest.mark.parametrize("expression", ["process nginx", "not pid 1", "sport = :22 or process x"])
def test_a_process_filter_without_processes_is_refused(expression: str) -> None:
    """Without owners every socket would fail the filter: an empty snapshot that looks taken."""
    message = one_line_error(sockdiff("snapshot", "--no-processes", "-o", "-", expression))
    assert "reads the owning processes, which are left out" in message
    with pytest.raises(SockdiffError, match="reads the owning processes, which are left out"):
        library.snapshot(processes=False, where=expression)
