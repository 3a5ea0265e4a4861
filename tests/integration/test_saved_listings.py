"""Saved ss and netstat listings read back as snapshots (sockdiff.saved), against the live system.

The zoo's sockets in a private namespace are listed by the real ``ss`` and
``netstat`` with the flag combinations people save, read back, and compared
with a live netlink snapshot of the same namespace: no socket new, closed or
changed beyond what the text cannot hold. Hand-written listings of older
formats live in fixtures/saved/.
"""

from __future__ import annotations

import datetime
import subprocess
import warnings
from pathlib import Path

import pytest

from sockdiff import Snapshot, diff, snapshot
from sockdiff.differ import same_process_name
from sockdiff.errors import BadSnapshot
from sockdiff.formats.notation import interface_line, route_line
from sockdiff.saved import SavedListingNote, detect, read_listing
from tests.helpers.cli import one_line_error, sockdiff, sockdiff_command
from tests.helpers.netns import run_in_netns
from tests.helpers.zoo import ZooClient

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "saved"
WHEN = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)

SS_FLAGS = ("-tuwxanpe", "-tuwxap", "-tuwxanpeoO", "-tanp", "-tlnH", "-uan", "-xanp", "-tuwxanpmi", "-lnpe")
NETSTAT_FLAGS = ("-tuwxanpe", "-tuwxape", "-tuwxanpeoW", "-tuwxnp", "-lnp", "-tanp", "-xap")


def _read(text: str, tool: str) -> Snapshot:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SavedListingNote)
        return read_listing(text, f"{tool}.txt", WHEN)


def test_listings_of_the_zoo_match_the_live_system(zoo: ZooClient, netns: str) -> None:
    for tool, flag_sets in (("ss", SS_FLAGS), ("netstat", NETSTAT_FLAGS)):
        for flags in flag_sets:
            text = run_in_netns(netns, [tool, flags]).stdout
            assert detect(text) == tool, (tool, flags)
            saved = _read(text, tool)
            live = snapshot(backend="netlink", netns=netns)
            found = diff(saved, live)
            # (netstat -x cuts a UNIX path at its first blank: paired by inode, no change.)
            assert (found.opened, found.closed, found.changed) == ((), (), ()), (tool, flags, text)
            assert saved.sockets, (tool, flags)
            assert saved.header.backend == f"{tool}-text"


def test_scope_is_what_the_listing_covered(zoo: ZooClient, netns: str) -> None:
    listening = _read(run_in_netns(netns, ["ss", "-tln"]).stdout, "ss")
    assert listening.header.scope.protos == ("tcp",)
    assert listening.header.scope.filter == "state listening state close"
    servers = _read(run_in_netns(netns, ["netstat", "-tuln"]).stdout, "netstat")
    assert servers.header.scope.filter == "state listening or not proto unix and state close"
    assert set(servers.header.scope.protos) == {"tcp", "udp"}
    connected = _read(run_in_netns(netns, ["netstat", "-tn"]).stdout, "netstat")
    assert connected.header.scope.filter == "state connected"
    # Without -p no owner is known: nothing to compare, and no change.
    assert all(not s.processes for s in connected.sockets or ())


def test_resolved_names_read_back_to_numbers(zoo: ZooClient, netns: str) -> None:
    text = run_in_netns(netns, ["netstat", "-tuwa"]).stdout
    assert "localhost" in text
    saved = _read(text, "netstat")
    found = diff(saved, snapshot(backend="netlink", netns=netns))
    assert (found.opened, found.closed, found.changed) == ((), (), ())


@pytest.mark.parametrize("sample", sorted(p.name for p in FIXTURES.glob("*.txt")))
def test_older_formats(sample: str) -> None:
    text = (FIXTURES / sample).read_text()
    expected = (FIXTURES / sample).with_suffix(".expect").read_text().split("\n")
    tool = detect(text)
    assert tool is not None
    saved = _read(text, tool)
    lines = [
        f"{s.proto} {s.family} {s.state} {s.local.address if s.proto != 'unix' else s.local.path}"
        f"{':' + str(s.local.port) if s.proto != 'unix' else ''} inode={s.inode}"
        f" {','.join(f'{p.pid}/{p.name}' for p in s.processes)}".rstrip()
        for s in saved.sockets or ()
    ]
    lines += [interface_line(i) for i in saved.interfaces or ()] + [route_line(r) for r in saved.routes or ()]
    assert lines == [line for line in expected if line]


def test_host_names_are_kept_and_counted() -> None:
    text = (
        "Active Internet connections (w/o servers)\n"
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State\n"
        "tcp        0      0 web1.example:ssh        db.example:51234        ESTABLISHED\n"
        "tcp        0      0 web1.example:https      db.example:51236        ESTABLISHED\n"
    )
    with pytest.warns(SavedListingNote, match="2 addresses were saved as host names; take `-n` next time"):
        saved = read_listing(text, "a.txt", WHEN)
    assert saved.sockets is not None
    assert [(s.local.address, s.local.port) for s in saved.sockets] == [
        ("web1.example", 22),
        ("web1.example", 443),
    ]
    again = diff(saved, saved)
    assert (again.opened, again.closed, again.changed) == ((), (), ())


def test_unreadable_line_names_file_line_and_column() -> None:
    text = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB 0 0 1.2.3.4:22 5.6.7.8:x?y\n"
    with pytest.raises(
        BadSnapshot, match=r"^b.txt: line 2, column 22: cannot read this line: 'x\?y' is neither"
    ):
        read_listing(text, "b.txt", WHEN)
    with pytest.warns(SavedListingNote, match="1 unreadable line"):
        assert read_listing(text, "b.txt", WHEN, lenient=True).sockets == ()


def test_cut_process_names_match_their_whole() -> None:
    assert same_process_name(1234, "systemd-resolve", "systemd-resolved")  # comm, 15
    assert same_process_name(1234, "containerd-shi", "containerd-shim-runc-v2")  # netstat, 19 with "1234/"
    assert not same_process_name(1234, "container", "containerd")


def test_cli_sources(tmp_path: Path, zoo: ZooClient, netns: str) -> None:
    saved = tmp_path / "before.txt"
    saved.write_text(run_in_netns(netns, ["ss", "-tanp"]).stdout)
    home = tmp_path / "home"
    result = sockdiff("compare", str(saved), "--netns", netns, cwd=tmp_path, home=home)
    assert (result.returncode, result.stdout.splitlines()[-1]) == (0, "0 new, 0 closed, 0 changed"), (
        result.stderr
    )
    out = tmp_path / "saved.json"
    converted = sockdiff("snapshot", "--from", f"ss:{saved}", "-o", str(out), cwd=tmp_path, home=home)
    assert converted.returncode == 0, converted.stderr
    same = sockdiff("compare", str(saved), str(out), cwd=tmp_path, home=home)
    assert (same.returncode, same.stdout.strip()) == (0, "0 new, 0 closed, 0 changed"), same.stderr
    argv, env = sockdiff_command("show", "-", "-l", "--input-format", "ss", home=home)
    piped = subprocess.run(
        argv, env=env, cwd=tmp_path, input=saved.read_text(), capture_output=True, text=True
    )
    assert piped.returncode == 0 and "LISTEN" in piped.stdout, piped.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("Active Internet connections (w/o servers)\ntcp 0 0 1.2.3.4:22 5.6.7.8:9 NOSTATE\n")
    refused = sockdiff("show", str(bad), cwd=tmp_path, home=home)
    assert refused.returncode == 2
    assert one_line_error(refused).startswith(f"sockdiff: {bad}: line 2, column ")


def test_a_restarted_daemon_is_one_change_not_a_new_socket() -> None:
    """The Wazuh case: netstat -tulpn before and after sshd restarted under a new PID."""
    title = (
        "Active Internet connections (only servers)\n"
        "Proto Recv-Q Send-Q Local Address Foreign Address State PID/Program name\n"
    )
    before = read_listing(title + "tcp 0 0 0.0.0.0:22 0.0.0.0:* LISTEN 612/sshd\n", "monday.txt", WHEN)
    after = read_listing(title + "tcp 0 0 0.0.0.0:22 0.0.0.0:* LISTEN 1702/sshd\n", "tuesday.txt", WHEN)
    found = diff(before, after)
    assert (found.opened, found.closed) == ((), ())
    assert [change.fields for change in found.changed] == [("processes",)]
    quiet = diff(before, after, fields="state")
    assert (quiet.opened, quiet.closed, quiet.changed) == ((), (), ())


def test_lenient_skips_and_counts_on_stderr(tmp_path: Path) -> None:
    listing = tmp_path / "saved.txt"
    listing.write_text(
        "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
        "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n"
        "tcp LISTEN zero 128 0.0.0.0:23 0.0.0.0:*\n"
    )
    strict = sockdiff("show", str(listing), "-l", cwd=tmp_path, home=tmp_path)
    assert (
        one_line_error(strict)
        == f"sockdiff: {listing}: line 3, column 12: cannot read this line: Recv-Q and Send-Q are not numbers"
    )
    lenient = sockdiff("show", str(listing), "-l", "--lenient", cwd=tmp_path, home=tmp_path)
    assert lenient.returncode == 0 and ":22 " in lenient.stdout and ":23 " not in lenient.stdout
    assert lenient.stderr == f"sockdiff: warning: {listing}: 1 unreadable line(s) skipped (--lenient)\n"
