"""The store: private, names claimed atomically, names that cannot clash with sources."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
from pathlib import Path

import msgspec
import pytest

from sockdiff import StoreError, load, save
from sockdiff.cli import main
from sockdiff.store import entries, keep
from tests.helpers.cli import TIMEOUT, created_mode, sockdiff_command
from tests.helpers.made import sample

NOBODY = 65534


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty store (not created yet), and a working directory of its own."""
    store = tmp_path / "store"
    monkeypatch.setenv("SOCKDIFF_HOME", str(store))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_store_not_made_yet_is_an_empty_store(
    home: Path, capsys: pytest.CaptureFixture[str], slash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user's first list or compare, where the store's parent exists and it does not yet."""
    monkeypatch.setenv("SOCKDIFF_HOME", f"{home}{slash}")
    assert home.parent.is_dir() and not home.exists()
    assert run(capsys, "list") == (0, "", f"no stored snapshots in {home}\n")
    code, out, err = run(capsys, "compare")
    assert (code, out) == (2, "") and err.startswith(f"sockdiff: no stored snapshots in {home}:")


def test_the_store_is_private(home: Path) -> None:
    path = keep(sample())
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == created_mode()  # private: in a 0700 directory
    assert load(str(path)) == dataclasses.replace(sample(), origin=str(path))


@pytest.mark.parametrize(("mode", "owner"), [(0o777, 0), (0o770, 0), (0o700, NOBODY)])
def test_a_store_others_may_write_to_is_refused(home: Path, mode: int, owner: int) -> None:
    """A planted file would be taken for a baseline: refused for reading and for writing."""
    keep(sample(), "base")
    home.chmod(mode)
    os.chown(home, owner, owner)
    for attempt in (lambda: keep(sample(), "x"), entries):
        with pytest.raises(
            StoreError, match=r"snapshot store .*store (may be written by others|belongs to uid)"
        ):
            attempt()


def test_six_concurrent_snapshots_keep_six_files(home: Path, netns: str) -> None:
    """Names by time are claimed with link(2): six runs in one second print six paths."""
    command, env = sockdiff_command("snapshot", "--no-processes", "--netns", netns, home=home)
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(6)]
    printed = [run.communicate(timeout=TIMEOUT)[0].strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert len(set(printed)) == 6
    assert sorted(printed) == sorted(str(p) for p in home.iterdir())


def test_a_time_name_taken_gets_a_number(home: Path) -> None:
    first, second = keep(sample()), keep(sample())
    assert first.name == "2026-11-25T10-00-00Z.json"
    assert second.name == "2026-11-25T10-00-00Z.2.json"
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in home.iterdir()) == sorted([first.name, second.name])  # no temporary left


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("live", "'live' is a source word"),
        ("live:proc", "'live:proc' is a source word"),
        ("-", "'-' is a source word"),
        ("", "the snapshot name is empty"),
        ("x.json.gz", "a stored name has no suffix"),
        ("x.json", "a stored name has no suffix"),
        ("../x", "no '/': a name stays in the store"),
        ("a/b", "no '/'"),
        (".hidden", "starting with a letter or digit"),
        ("x" * 201, "at most 200 characters"),
        ("a\nb", "bad snapshot name 'a\\nb'"),
    ],
)
def test_names_that_would_clash_or_leave_the_store_are_refused(
    home: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    code, out, err = run(capsys, "snapshot", "--no-processes", "--name", name)
    assert (code, out) == (2, "")
    assert err.startswith("sockdiff: ") and reason in err and err.count("\n") == 1
    assert not home.exists()  # refused before anything was taken or created


def test_a_directory_is_never_a_snapshot(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--name tests`` works beside a tests/ directory; the directory itself is refused as a source."""
    Path("tests").mkdir()
    assert run(capsys, "snapshot", "--no-processes", "--name", "tests")[0] == 0
    code, out, err = run(capsys, "show", "tests", "-a", "--format", "json")
    assert (code, err) == (0, "")
    assert '"format":"sockdiff.snapshot"' in out
    code, out, err = run(capsys, "show", "tests/")
    assert (code, out) == (2, "")
    assert err == "sockdiff: tests/: a directory, not a snapshot (and no stored snapshot has that name)\n"


def test_a_file_shadows_a_stored_name_and_the_error_says_so(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPEC.md's order: a file first, then a stored name; an empty ./before says where the stored one is."""
    assert run(capsys, "snapshot", "--no-processes", "--name", "before")[0] == 0
    Path("before").touch()
    code, _, err = run(capsys, "compare", "before", "before")
    assert code == 2
    assert err == (
        "sockdiff: before: not a sockdiff snapshot: empty file (the file before shadows the stored"
        f" snapshot 'before': to read that, give {home / 'before.json'})\n"
    )
    save(sample(), "before")  # a good file is read, as the order says
    code, out, _ = run(capsys, "compare", "before", str(home / "before.json"), "--format", "json")
    assert code in (0, 1) and '"host":"web1"' in out


def test_a_store_through_a_planted_link_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SOCKDIFF_HOME=/tmp/x/sockdiff where another user made sockdiff a link to a directory of ours."""
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    precious = tmp_path / "etc"
    precious.mkdir(mode=0o700)
    (precious / "daemon.json").write_text('{"important": 1}')
    link = sticky / "sockdiff"
    link.symlink_to(precious)
    os.lchown(link, NOBODY, NOBODY)
    monkeypatch.setenv("SOCKDIFF_HOME", str(link))
    code, out, err = run(capsys, "snapshot", "--no-processes", "--name", "daemon")
    assert (code, out) == (2, "")
    assert err.startswith("sockdiff: the snapshot store: ") and "a symlink that uid 65534 owns" in err
    assert (precious / "daemon.json").read_text() == '{"important": 1}'


def test_filter_keywords_are_no_names_and_always_start_a_filter(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``show state listening`` is a filter, even beside a file named state; such a name is refused."""
    code, _, err = run(capsys, "snapshot", "--no-processes", "--name", "state")
    assert code == 2 and "'state' is a filter keyword" in err
    Path("state").write_text("not a snapshot")
    Path("not").write_text("not a snapshot")
    for words in (["state", "listening"], ["not", "sport", "=", ":7700"]):
        code, _, err = run(capsys, "show", "--no-header", *words)
        assert (code, err) == (0, ""), words


def test_an_unknown_live_backend_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "live:bogus")
    assert (code, out) == (2, "")
    assert err == "sockdiff: unknown live backend 'bogus' (sources: live, live:netlink, live:proc)\n"


def test_list_shows_when_each_was_taken_oldest_first(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """taken_at from each header (not the file time), sorted by it; a directory x.json is no snapshot."""
    later = keep(sample(), "later")
    old_header = msgspec.structs.replace(sample().header, taken_at="2020-01-02T03:04:05Z")
    earlier = keep(dataclasses.replace(sample(), header=old_header), "earlier")
    (home / "x.json").mkdir()
    (home / "ev\nil.json").write_bytes(b"{}")  # a name with a newline stays on its line, escaped
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["earlier", "2020-01-02T03:04:05Z", str(earlier.stat().st_size), str(earlier)],
        ["later", "2026-11-25T10:00:00Z", str(later.stat().st_size), str(later)],
        ["ev\\nil", "?", "2", str(home / "ev\\nil.json")],
    ]
