"""``sockdiff show`` beside ``ss``: the same sockets, written the same way.

One namespace holds the cases people read wrong: IPv4, IPv6-only and
dual-stack listeners on one port, listeners bound to devices (two on one port),
IPv4-mapped and IPv6 connections, UDP, raw and UNIX sockets. For each set of
flags, every row's Netid, State, Local and Peer text must be ss's.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockdiff.cli import main
from sockdiff.netns import entered
from tests.helpers.netns import run_in_netns
from tests.helpers.ss_oracle import table_texts

_SS_KINDS = "-tuwx"  # what sockdiff reads; ss would add netlink and packet sockets


def _listen(
    family: int, address: str, port: int, *, kind: int = socket.SOCK_STREAM, **options: object
) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if "v6only" in options:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(bool(options["v6only"])))
        if "device" in options:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, str(options["device"]).encode())
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(8)
    except BaseException:
        sock.close()
        raise
    return sock


def _open_zoo(directory: Path) -> list[socket.socket]:
    inet, inet6 = socket.AF_INET, socket.AF_INET6
    any4, only6, dual = (
        _listen(inet, "0.0.0.0", 7700),
        _listen(inet6, "::", 7700, v6only=True),
        _listen(inet6, "::", 7701, v6only=False),
    )
    loopback6 = _listen(inet6, "::1", 7703)
    held = [
        any4,
        only6,
        dual,
        loopback6,
        _listen(inet, "0.0.0.0", 7401, device="lo"),
        _listen(inet, "0.0.0.0", 7401, device="d0"),
        _listen(inet6, "::", 7402, v6only=True, device="lo"),
        _listen(inet, "0.0.0.0", 7700, kind=socket.SOCK_DGRAM),
        _listen(inet6, "::", 7700, kind=socket.SOCK_DGRAM, v6only=True),
        _listen(inet6, "::", 7701, kind=socket.SOCK_DGRAM, v6only=False),
        _listen(inet, "0.0.0.0", 7404, kind=socket.SOCK_DGRAM, device="lo"),
        socket.socket(inet, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        socket.socket(inet6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    ]
    connected = socket.socket(inet, socket.SOCK_DGRAM)
    connected.connect(("127.0.0.1", 7700))
    held.append(connected)
    # The dual-stack listener's connection is IPv4-mapped on its side: [::ffff:127.0.0.1].
    for listener, address in ((any4, "127.0.0.1"), (loopback6, "::1"), (dual, "127.0.0.1")):
        held.append(socket.create_connection((address, listener.getsockname()[1])))
        held.append(listener.accept()[0])
    path = str(directory / "a listener.sock")
    unix_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_listener.bind(path)
    unix_listener.listen(4)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind(b"\0sockdiff-ss-table")
    held += [unix_listener, client, unix_listener.accept()[0], abstract]
    held.append(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    held += socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return held


@pytest.fixture(scope="module")
def namespace(module_netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``module_netns`` with a second device (d0) and the sockets of this module."""
    run_in_netns(module_netns, ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    directory = tmp_path_factory.mktemp("ss-table")
    with entered(module_netns):
        held = _open_zoo(directory)
    try:
        yield module_netns
    finally:
        for sock in held:
            sock.close()


def show(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with warnings.catch_warnings():
        code = main(["show", *argv])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), (argv, err)
    return out


# Flags, and what ss leaves out of its table for them: the Netid column when it
# shows one kind of socket, the State column when one state (sockdiff never does).
FLAGS: list[tuple[list[str], str | None, str | None]] = [
    (["-t"], "tcp", None),
    (["-u"], "udp", "ESTAB"),  # ss's UDP view: its ESTAB sockets
    (["-x"], None, None),
    (["-l"], None, None),
    (["-a"], None, None),
    (["-tl"], "tcp", None),
    (["-ua"], "udp", None),
    (["-wa"], "raw", None),
    (["-xa"], None, None),
    (["-xl"], None, None),
    (["-4"], None, None),
    (["-6"], None, None),
    (["-4l"], None, None),
    (["-6a"], None, None),
    (["-t4"], "tcp", None),
    (["-u6a"], "udp", None),
    (["-x4"], None, None),  # UNIX and every IPv4 protocol, as ss merges them
    (["-tx"], None, None),
    # A state filter replaces the default view, -l and -a; side by side, state words add up.
    (["-t", "state", "listening"], "tcp", "LISTEN"),
    (["-l", "state", "established"], None, "ESTAB"),
    (["-t", "state", "established", "state", "listening"], "tcp", None),
    (["-a", "exclude", "listening"], None, None),
    (["-tl", "dev", "lo"], "tcp", None),
    (["-a", "dev", "!=", "lo"], None, None),
]


def _unix_spaces(local: str) -> str:
    """ss's ``NAME INODE`` with NAME's spaces as sockdiff writes them."""
    name, _, inode = local.rpartition(" ")
    return f"{name.replace(' ', chr(92) + 'x20')} {inode}"


@pytest.mark.parametrize(("flags", "netid", "state"), FLAGS, ids=[" ".join(f[0]) for f in FLAGS])
def test_table_is_ss(
    namespace: str, capsys: pytest.CaptureFixture[str], flags: list[str], netid: str | None, state: str | None
) -> None:
    # ss with no kind flag lists every kind it knows; sockdiff's kinds are asked for by name.
    options = [flag for flag in flags if flag.startswith("-")]
    kinds = [] if any(set(flag) & set("tuwx46") for flag in options) else [_SS_KINDS]
    flags = [*options, *kinds, *flags[len(options) :]]  # ss takes its options before the filter
    ss = run_in_netns(namespace, ["ss", "-Hn", *flags]).stdout
    mine = show(capsys, "--netns", namespace, "-H", *options, *flags[len(options) + len(kinds) :])
    # sockdiff writes a space in a UNIX name as \x20, where ss writes it as it is (README, Choices).
    expected = sorted(
        (kind, shown, _unix_spaces(local) if kind.startswith("u_") else local, peer)
        for kind, shown, local, peer in table_texts(ss, netid=netid, state=state)
    )
    assert expected, ss
    assert table_texts(mine) == expected, f"sockdiff:\n{mine}\nss:\n{ss}"
    assert len(mine.splitlines()) == len(expected)


def test_the_cases_people_misread(namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's examples, spelled out (the oracle above could share a blind spot with ss's parser)."""
    listeners = {(row[2], row[3]) for row in table_texts(show(capsys, "--netns", namespace, "-Htl"))}
    assert {
        ("0.0.0.0:7700", "0.0.0.0:*"),  # IPv4 any
        ("[::]:7700", "[::]:*"),  # IPv6 only
        ("*:7701", "*:*"),  # dual stack
        ("0.0.0.0%lo:7401", "0.0.0.0:*"),
        ("0.0.0.0%d0:7401", "0.0.0.0:*"),
        ("[::]%lo:7402", "[::]:*"),
        ("[::1]:7703", "[::]:*"),  # bound to an address: the kernel makes it IPv6 only
    } == listeners
    unix = table_texts(show(capsys, "--netns", namespace, "-Hxa"))
    assert all(peer.startswith("* ") for _, _, _, peer in unix)


def test_summary_counts_as_ss(namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    """ss -s's Transport table comes from the namespace's own counters: sockdiff's, from its records, match.

    (Its Total and TCP lines mix in host-wide counters: sockets allocated but
    never bound, ss's own netlink socket; sockdiff counts what it lists.)
    """
    ss = run_in_netns(namespace, ["ss", "-s"]).stdout.splitlines()
    mine = show(capsys, "--netns", namespace, "-s").splitlines()
    table = ss.index("Transport Total     IP        IPv6")
    assert mine[table : table + 5] == [line.rstrip() for line in ss[table : table + 5]]
    assert mine[table + 1 : table + 5] == [
        "RAW\t  2         1         1",
        "UDP\t  5         3         2",
        "TCP\t  13        6         7",
        "INET\t  20        10        10",
    ]
    assert mine[1] == "TCP:   13 (estab 6, closed 0, orphaned 0, timewait 0)"
    # -s alone is the summary; with a kind of socket, the table follows (as ss).
    # (The counts, not ss's figures: a netlink socket just closed is counted until the kernel frees it.)
    with_table = show(capsys, "--netns", namespace, "-s", "-x").splitlines()
    assert with_table[: table + 5] == mine[: table + 5]
    assert with_table[len(mine) :] and with_table[len(mine)].startswith("Netid")


def _proc_notation(text: str) -> str:
    """What /proc cannot show, taken out of ss's text: the device, and IPV6_V6ONLY ([::] is *)."""
    host, colon, port = text.rpartition(":")
    host = host.partition("%")[0]
    return f"{'*' if host == '[::]' else host}{colon}{port}"


def test_backend_proc_writes_what_it_cannot_know_as_ss_does_from_proc(
    namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """show --backend proc: no device, and :: as * (v6only unknown), as ss writes what it reads from /proc."""
    ss = table_texts(run_in_netns(namespace, ["ss", "-Hn", "-tuwl"]).stdout)
    mine = table_texts(show(capsys, "--netns", namespace, "-H", "-tuwl", "--backend", "proc"))
    assert mine == sorted((n, s, _proc_notation(local), _proc_notation(peer)) for n, s, local, peer in ss)
    assert ("tcp", "LISTEN", "*:7700", "*:*") in mine and (
        "tcp",
        "LISTEN",
        "0.0.0.0:7401",
        "0.0.0.0:*",
    ) in mine
    assert table_texts(
        show(capsys, "--netns", namespace, "-H", "-tl", "--backend", "netlink")
    ) == table_texts(show(capsys, "--netns", namespace, "-H", "-tl"))


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--backend", "bogus"], "unknown backend 'bogus'"),
        (["live:proc", "--backend", "netlink"], "--backend netlink contradicts the source live:proc"),
        (["-", "--backend", "proc"], "--backend reads the live system; - is a snapshot"),
        (["-s", "--format", "json"], "--summary is a table"),
    ],
)
def test_show_refuses_flags_that_do_not_fit(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    with warnings.catch_warnings():
        code = main(["show", *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "") and err.startswith("sockdiff: ") and said in err, err


_DETAILS = re.compile(r"(?:uid:(\d+) )?ino:(\d+)(?:.* v6only:([01]))?")


def test_extended_is_ss_e(namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    """-e: the inode and v6only ss -e shows, socket for socket (uid 0 is not written, as in ss)."""

    def details(output: str) -> set[tuple[str, str, str | None]]:
        found = set()
        for line in output.splitlines():
            words = line.split()
            match = _DETAILS.search(line)
            assert match is not None, line
            found.add((words[4], match[2], match[3]))
        return found

    ss = run_in_netns(namespace, ["ss", "-Hne", "-tuwl"]).stdout
    mine = show(capsys, "--netns", namespace, "-He", "-tuwl")
    inet = [line for line in ss.splitlines() if "ino:" in line]  # ss shows no details for raw read from /proc
    assert inet and details("\n".join(inet)) <= details(mine)
    assert "uid:" not in mine  # root's sockets
    assert any(line.endswith(" v6only:1") and "[::]:7700" in line for line in mine.splitlines())


def test_compare_says_which_listener_closed(netns: str) -> None:
    """The issue's case: only the IPv4 listener on 7700 closes; compare names it, and only it."""
    from sockdiff import diff, report, snapshot

    run_in_netns(netns, ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
    with entered(netns):
        any4 = _listen(socket.AF_INET, "0.0.0.0", 7700)
        others = [
            _listen(socket.AF_INET6, "::", 7700, v6only=True),
            _listen(socket.AF_INET6, "::", 7701, v6only=False),
            _listen(socket.AF_INET, "0.0.0.0", 7401, device="d0"),
        ]
        on_lo = _listen(socket.AF_INET, "0.0.0.0", 7401, device="lo")
    try:
        before = snapshot(netns=netns, processes=False)
        before_proc = snapshot(netns=netns, processes=False, backend="proc")
        assert report(diff(before_proc, before), "text").splitlines() == ["0 new, 0 closed, 0 changed"]
        lo_inode = os.fstat(on_lo.fileno()).st_ino
        any4.close()
        on_lo.close()
        after = snapshot(netns=netns, processes=False)
        assert report(diff(before, after), "text").splitlines() == [
            "- tcp LISTEN 0.0.0.0%lo:7401 0.0.0.0:*",
            "- tcp LISTEN 0.0.0.0:7700 0.0.0.0:*",
            "0 new, 2 closed, 0 changed",
        ]
        # From /proc, which cannot see devices: d0's pairs by its inode, and lo's is the one closed.
        from_proc = diff(before_proc, after)
        assert lo_inode in {s.inode for s in from_proc.closed}
        assert report(from_proc, "text").splitlines() == [
            "- tcp LISTEN 0.0.0.0:7401 0.0.0.0:*",
            "- tcp LISTEN 0.0.0.0:7700 0.0.0.0:*",
            "0 new, 2 closed, 0 changed",
        ]
    finally:
        for sock in (any4, on_lo, *others):
            sock.close()


def test_resolved_names_are_ss_r(namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    """-r: host names (/etc/hosts), service names, and a raw socket's protocol by name, as ss -r."""
    ss = table_texts(run_in_netns(namespace, ["ss", "-Hr", "-tuwa"]).stdout)
    mine = table_texts(show(capsys, "--netns", namespace, "-H", "-r", "-tuwa"))
    assert mine == ss
    assert any(local.endswith(":icmp") for _, _, local, _ in mine)
