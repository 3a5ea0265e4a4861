"""Saved ``netstat -i`` and ``netstat -r`` tables read back as interfaces and routes (sockdiff.saved.tables).

The link zoo's interfaces and routes (tests/helpers/linkzoo.py: veth, tun, an
awkward name, blackhole, unreachable, throw, multipath and other-table routes)
are listed by the real ``netstat``, read back, and compared with a live netlink
snapshot of the same namespace: nothing added, removed or changed. ``show``
prints them back as netstat did; what changes after saving is reported.
"""

from __future__ import annotations

import datetime
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockdiff import Snapshot, diff, snapshot
from sockdiff.formats.notation import escape
from sockdiff.saved import SavedListingNote, read_listing
from sockdiff.snapshots import dumps, loads
from tests.helpers.cli import sockdiff
from tests.helpers.linkzoo import ODD_NAME, ODD_NAME_TEXT, build_network
from tests.helpers.netns import netns_exec_argv, private_netns

WHEN = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
# Not -r or -6r: resolving names may wait on DNS here (their forms: tests/unit/test_saved_tables.py).
FLAGS = ("-i", "-ia", "-rn", "-rne", "-rnee", "-6rn")


@pytest.fixture(scope="module")
def network(module_netns: str) -> Iterator[str]:
    with private_netns() as peer:
        build_network(module_netns, peer)
        yield module_netns


def netstat(netns: str, *argv: str) -> str:
    """netstat's output as sockdiff reads a file: bytes that are not UTF-8 kept (surrogateescape)."""
    done = subprocess.run(
        netns_exec_argv(netns, ["netstat", *argv]), capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode("utf-8", "surrogateescape")


def read(text: str) -> Snapshot:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SavedListingNote)
        return read_listing(text, "saved.txt", WHEN)


def test_tables_match_the_live_system(network: str) -> None:
    texts = {flags: netstat(network, flags) for flags in FLAGS}
    texts["-rn -6rn -ia"] = texts["-rn"] + texts["-6rn"] + texts["-ia"]
    for flags, text in texts.items():
        saved = read(text)
        assert saved.sockets is None, flags
        live = snapshot(backend="netlink", netns=network, sections=["interfaces", "routes"])
        found = diff(saved, live)
        for name in ("interfaces", "routes"):
            section = getattr(found, name)
            if getattr(saved, name) is None:
                assert section is None, (flags, name)
                continue
            assert section is not None
            assert (section.added, section.removed, section.changed) == ((), (), ()), (flags, name)
        assert loads(dumps(saved), "again") == saved, flags
    every = read(texts["-ia"])
    assert every.interfaces is not None and ODD_NAME_TEXT in {i.name for i in every.interfaces}
    assert every.header.sources == {"interfaces": "netstat-text"}
    assert read(texts["-i"]).header.sources == {"interfaces": "netstat-text (up only)"}
    rn, rne, rnee = (read(texts[flags]).routes or () for flags in ("-rn", "-rne", "-rnee"))
    assert {r.metric for r in rn} == {None} and {r.mss for r in rne} == {None}
    assert 50 in {r.metric for r in rne} and 1440 in {r.mss for r in rnee}
    tables = {r.table for r in read(texts["-6rn"]).routes or ()}
    assert tables == {0, 254, 255}  # tables 100 and 200 unnumbered, as /proc's


def test_show_prints_them_back_as_netstat_did(network: str, tmp_path: Path) -> None:
    for flags, argv in (("-ia", ("-i", "-a")), ("-i", ("-i",)), ("-rn", ("--route", "-4"))):
        text = netstat(network, flags)
        path = tmp_path / "saved.txt"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        shown = sockdiff("show", str(path), *argv)
        assert shown.returncode == 0 and shown.stderr == "", shown.stderr
        # The awkward name is printed escaped, as every name sockdiff prints.
        # (10 characters where netstat wrote 4 bytes: the padding after it is 6 shorter).
        raw = ODD_NAME.decode("utf-8", "surrogateescape")
        expected = text.replace(raw + " " * 6, escape(ODD_NAME_TEXT, backslash=False))
        assert shown.stdout == expected, flags
    text = netstat(network, "-6rn")
    path.write_text(text)
    shown = sockdiff("show", str(path), "--route", "-6")
    assert shown.returncode == 0, shown.stderr

    def without_ref(listing: str) -> list[list[str]]:
        return [words[:4] + words[5:] for words in (line.split() for line in listing.splitlines())]

    assert without_ref(shown.stdout) == without_ref(text)  # Ref, a count no record keeps, is "-"


def test_what_changed_since_saving_is_reported(netns: str) -> None:
    subprocess.run(
        netns_exec_argv(netns, ["ip", "-batch", "-"]),
        input="link add v0 type veth peer name v1\nlink set v0 up\nlink set v1 up\n"
        "addr add 10.9.0.1/24 dev v0\nroute add 10.20.0.0/16 via 10.9.0.2\n"
        "route add 10.21.0.0/16 via 10.9.0.2 metric 7\n",
        text=True,
        check=True,
    )
    saved = {flags: read(netstat(netns, flags)) for flags in ("-i", "-rn", "-rne")}
    subprocess.run(
        netns_exec_argv(netns, ["ip", "-batch", "-"]),
        input="link set v1 down\nlink set v0 mtu 1400\nroute del 10.20.0.0/16\n"
        "route add 10.22.0.0/16 via 10.9.0.2\nroute change 10.21.0.0/16 via 10.9.0.3 metric 7\n",
        text=True,
        check=True,
    )
    live = snapshot(backend="netlink", netns=netns, sections=["interfaces", "routes"])
    interfaces = diff(saved["-i"], live).interfaces
    assert interfaces is not None and (interfaces.added, interfaces.removed) == ((), ())
    # v0 lost its carrier with v1 (netstat's R): a change of flags too.
    assert {(c.new.name, c.fields) for c in interfaces.changed} == {
        ("v0", ("flags", "mtu")),
        ("v1", ("flags",)),
    }
    for flags in ("-rn", "-rne"):
        routes = diff(saved[flags], live).routes
        assert routes is not None
        assert [r.destination for r in routes.added] == ["10.22.0.0/16"], flags
        assert [r.destination for r in routes.removed] == ["10.20.0.0/16"], flags
        assert [(c.new.destination, c.fields) for c in routes.changed] == [("10.21.0.0/16", ("gateway",))]
