"""The CLI on live namespaces: snapshot and show with both backends, as a user runs them."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from sockdiff import load, snapshot
from sockdiff.formats.notation import unix_name
from sockdiff.netns import entered
from tests.helpers.cli import created_mode, sockdiff
from tests.helpers.netns import run_in_netns
from tests.helpers.zoo import ZooClient


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_snapshot_of_a_namespace(zoo: ZooClient, tmp_path: Path, backend: str) -> None:
    assert zoo.netns is not None
    path = tmp_path / "zoo.json.gz"
    result = sockdiff("snapshot", "--backend", backend, "--netns", zoo.netns, "-o", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert stat.S_IMODE(path.stat().st_mode) == created_mode()
    taken = load(str(path))
    assert taken.sockets is not None
    assert taken.header.backend == backend and taken.header.netns == zoo.netns
    assert {s.inode for s in taken.sockets if s.inode} == {
        r["inode"] for r in zoo.sockets.values() if r["inode"]
    }
    # -o - writes the same document to stdout
    out = sockdiff(
        "snapshot", "--backend", backend, "--netns", zoo.netns, "--no-processes", "-o", "-", "proto tcp"
    )
    document = json.loads(out.stdout)
    assert {s["proto"] for s in document["sockets"]} == {"tcp"}
    assert all(s["processes"] == [] for s in document["sockets"])


def test_snapshot_into_the_store(zoo: ZooClient, tmp_path: Path) -> None:
    assert zoo.netns is not None
    result = sockdiff("snapshot", "--netns", zoo.netns, "--name", "zoo-1", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "zoo-1.json")
    listing = sockdiff("list", home=tmp_path).stdout.splitlines()
    stored = tmp_path / "zoo-1.json"
    assert [line.split() for line in listing] == [
        ["zoo-1", load(str(stored)).header.taken_at, str(stored.stat().st_size), str(stored)]
    ]
    shown = sockdiff("show", "zoo-1", "-l", "-t", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()[1:]]
    listeners = [r for r in zoo.sockets.values() if r["proto"] == "tcp" and r["state"] == "LISTEN"]
    assert {(row[0], row[1]) for row in rows} == {("tcp", "LISTEN")}
    assert sorted(int(row[4].rsplit(":", 1)[1]) for row in rows) == sorted(
        r["local"]["port"] for r in listeners
    )


def test_show_is_ss_like(zoo: ZooClient) -> None:
    assert zoo.netns is not None
    listener = zoo.socket("tcp4_listener")
    port = listener["local"]["port"]
    table = sockdiff("show", "--netns", zoo.netns, "-tlp").stdout.splitlines()
    assert table[0].split()[:5] == ["Netid", "State", "Recv-Q", "Send-Q", "Local"]
    row = next(line for line in table if f"127.0.0.1:{port} " in line)
    assert row.split()[:2] == ["tcp", "LISTEN"]
    for process in listener["processes"]:
        assert f'("{process["name"]}",pid={process["pid"]},fd={process["fd"]})' in row
        # filter keywords are case-insensitive, and a process filter reads owners without -p
        for expression in (f"pid {process['pid']}", f"PID {process['pid']}", f"Process {process['name']}"):
            chosen = sockdiff("show", "--netns", zoo.netns, "-tl", expression).stdout
            assert f"127.0.0.1:{port} " in chosen, expression
    # default: connected sockets only, as ss
    default = sockdiff("show", "--netns", zoo.netns, "-t").stdout
    assert "LISTEN " not in default and "ESTABLISHED" in default
    # -a with a filter, jsonl
    lines = sockdiff(
        "show", "--netns", zoo.netns, "-a", "--format", "jsonl", f"sport = :{port}"
    ).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all(r["local"]["port"] == port for r in records)
    assert {r["inode"] for r in records if r["inode"]} == {
        r["inode"]
        for r in zoo.sockets.values()
        if r["proto"] == "tcp" and r["local"].get("port") == port and r["inode"]
    }


def test_show_unix_names_with_spaces(zoo: ZooClient) -> None:
    assert zoo.netns is not None
    out = sockdiff("show", "--netns", zoo.netns, "-xl").stdout
    # Shown with each space as \x20, so a name is one column (README: A UNIX name is one column).
    assert unix_name(zoo.socket("unix_stream_listener")["local"]["path"]) in out
    assert unix_name(zoo.socket("unix_abstract_listener")["local"]["path"]) in out


def test_link_local_and_mapped_addresses_decode_alike(netns: str) -> None:
    """/proc's host-order words and netlink's network-order bytes give one text."""
    for command in (
        ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"],  # no dummy module here
        ["ip", "addr", "add", "fe80::1/64", "dev", "d0", "nodad"],
        ["ip", "link", "set", "d0", "up"],
        ["ip", "link", "set", "d1", "up"],
    ):
        run_in_netns(netns, command)
    with entered(netns):
        link_local = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        link_local.bind(("fe80::1", 5353, 0, socket.if_nametoindex("d0")))
        loopback = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        loopback.bind(("::1", 5354))
        mapped = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        mapped.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        mapped.bind(("::ffff:127.0.0.1", 5355))
    try:
        for backend in ("netlink", "proc"):
            taken = snapshot(backend=backend, netns=netns, processes=False)
            assert taken.sockets is not None
            addresses = {(s.local.address, s.local.port) for s in taken.sockets if s.proto == "udp"}
            assert addresses == {("fe80::1", 5353), ("::1", 5354), ("::ffff:127.0.0.1", 5355)}, backend
    finally:
        for sock in (link_local, loopback, mapped):
            sock.close()


def test_resolve_names(zoo: ZooClient) -> None:
    """-r resolves addresses (127.0.0.1 through /etc/hosts) as ss -r does; -n is the default."""
    assert zoo.netns is not None
    numeric = sockdiff("show", "--netns", zoo.netns, "-t").stdout
    resolved = sockdiff("show", "--netns", zoo.netns, "-t", "-r").stdout
    assert "127.0.0.1:" in numeric
    expected = socket.gethostbyaddr("127.0.0.1")[0]
    assert f"{expected}:" in resolved and "127.0.0.1:" not in resolved


def test_auto_falls_back_to_proc_with_one_warning(netns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where NETLINK_SOCK_DIAG cannot be opened, auto reads /proc and says so once.

    The failure is simulated at the one call that opens the socket: a kernel
    without sock_diag cannot be had on this machine.
    """
    from sockdiff.acquire import BackendFallback
    from sockdiff.backends.netlink import sockets as netlink
    from sockdiff.errors import BackendUnavailable

    def refuse() -> socket.socket:
        raise BackendUnavailable("cannot open a NETLINK_SOCK_DIAG socket: Protocol not supported")

    monkeypatch.setattr(netlink, "open_socket", refuse)
    with pytest.warns(BackendFallback, match="Protocol not supported; reading /proc/net instead") as caught:
        taken = snapshot(netns=netns, processes=False)
    assert len(caught) == 1
    assert taken.header.backend == "proc"
    assert set(taken.header.sources.values()) == {"proc", "proc (IPv4 main table only)"}
    with pytest.raises(BackendUnavailable):
        snapshot(backend="netlink", netns=netns, processes=False)


def test_cli_fallback_warning_is_one_line(
    netns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's side of the fallback: one ``sockdiff: warning:`` line, exit 0; netlink alone: exit 2."""
    from sockdiff.backends.netlink import sockets as netlink
    from sockdiff.cli import main
    from sockdiff.errors import BackendUnavailable

    def refuse() -> socket.socket:
        raise BackendUnavailable("cannot open a NETLINK_SOCK_DIAG socket: Protocol not supported")

    monkeypatch.setattr(netlink, "open_socket", refuse)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main replaces it
    path = tmp_path / "snap.json"
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as outside pytest, which makes warnings errors
        code = main(["snapshot", "--netns", netns, "--no-processes", "-o", str(path)])
        assert (code, capsys.readouterr().err) == (
            0,
            "sockdiff: warning: cannot open a NETLINK_SOCK_DIAG socket: Protocol not supported;"
            " reading /proc/net instead\n",
        )
        assert load(str(path)).header.backend == "proc"
        code = main(["snapshot", "--backend", "netlink", "--netns", netns, "-o", str(path)])
        assert (code, capsys.readouterr().err) == (
            2,
            "sockdiff: cannot open a NETLINK_SOCK_DIAG socket: Protocol not supported\n",
        )


@pytest.mark.parametrize(("flag", "proto"), [("-u", "udp"), ("-w", "raw"), ("-t", "tcp"), ("-x", "unix")])
def test_show_protocol_flags_with_json(zoo: ZooClient, flag: str, proto: str) -> None:
    """``show -a -u`` and friends narrow to one protocol; ``--format json`` is a snapshot document."""
    assert zoo.netns is not None
    result = sockdiff("show", "--netns", zoo.netns, "-a", flag, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["format"] == "sockdiff.snapshot" and document["netns"] == zoo.netns
    got = sorted((s["inode"], s["state"]) for s in document["sockets"] if s["inode"])
    want = sorted(
        (r["inode"], r["state"]) for r in zoo.sockets.values() if r["proto"] == proto and r["inode"]
    )
    assert got and got == want
    assert {s["proto"] for s in document["sockets"]} == {proto}
    table = sockdiff("show", "--netns", zoo.netns, "-a", flag).stdout.splitlines()[1:]
    assert len(table) == len(document["sockets"])


def test_store_follows_xdg_state_home(tmp_path: Path) -> None:
    """Without $SOCKDIFF_HOME: $XDG_STATE_HOME/sockdiff, else ~/.local/state/sockdiff."""
    base = {k: v for k, v in os.environ.items() if k not in ("SOCKDIFF_HOME", "XDG_STATE_HOME")}
    argv = [
        sys.executable,
        "-m",
        "sockdiff",
        "snapshot",
        "--backend",
        "proc",
        "--no-processes",
        "--name",
        "n1",
    ]
    for env, where in (
        ({"XDG_STATE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "sockdiff" / "n1.json"),
        ({"HOME": str(tmp_path / "home")}, tmp_path / "home" / ".local" / "state" / "sockdiff" / "n1.json"),
    ):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**base, **env})
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{where}\n"
        assert load(str(where)).header.backend == "proc"
