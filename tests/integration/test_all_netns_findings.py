"""``--all-netns`` against what an adversary or an unlucky host does to it (issue 17's findings).

Each test makes its own namespaces (``ip netns``, or processes in cgroups named
as Docker names its own) and asserts about those only, by name or inode: other
tests create and delete namespaces while these run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from sockdiff import acquire
from sockdiff import namespaces as discovery
from sockdiff.differ import diff
from sockdiff.errors import BadFilter
from sockdiff.filter import compile_filter
from sockdiff.formats import Format, ReportOptions, report
from sockdiff.model import Namespace, namespace_labels, netns_of
from sockdiff.snapshots import Snapshot
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.held_netns import CGROUP_ROOT, Contained, inode_of, listen_in, remove_cgroups, stop
from tests.helpers.netns import PREFIX, private_netns, require_netns


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    require_netns()


def _text(old: Snapshot, new: Snapshot, *, only: str | None = None) -> list[str]:
    return report(diff(old, new, only=only), Format.TEXT, ReportOptions(fail_on=("any",))).splitlines()


def _lines_of(lines: list[str], label: str) -> list[str]:
    """The lines that name the namespace ``label``: its own, and its records'."""
    return [line for line in lines if f" netns {label} (" in line or f" [{label}] " in line]


def test_gone_namespace_keeps_its_own_label() -> None:
    # The kernel gives a freed namespace inode to the next namespace made: the new
    # side holds, under the gone namespace's inode, another namespace.
    with private_netns() as name:
        listener, port = listen_in(name)
        try:
            before = acquire.take(all_netns=True, sections=["sockets"], processes=False)
        finally:
            stop(listener)
    assert before.namespaces is not None
    mine = next(ns for ns in before.namespaces if name in ns.names)
    reused = msgspec.structs.replace(mine, names=(f"{name}-new",))
    after = dataclasses.replace(
        before, namespaces=tuple(reused if ns is mine else ns for ns in before.namespaces)
    )
    lines = _text(before, after)
    assert [line.split("  ")[0] for line in _lines_of(lines, name)] == [
        f"- netns {name} (net:[{mine.inode}])"
    ]
    assert [line.split("  ")[0] for line in _lines_of(lines, f"{name}-new")] == [
        f"+ netns {name}-new (net:[{mine.inode}])"
    ]
    assert f":{port} " not in "\n".join(lines)  # counted under the namespace lines


@pytest.fixture
def docker_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the runtime's configs are read from, for this test: ``tmp_path/docker``."""
    root = tmp_path / "docker"
    monkeypatch.setattr(discovery, "DOCKER_ROOT", str(root))
    return root


def _docker(ident: str, parent: str = "system.slice") -> Path:
    """Where Docker's systemd driver puts container ``ident`` (``parent``: elsewhere, a claim)."""
    return CGROUP_ROOT / parent / f"docker-{ident}.scope"


@pytest.fixture
def containers() -> Iterator[list[Contained]]:
    """Containers a test starts (:class:`Contained`), stopped and their cgroups removed after it."""
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        pytest.skip("cgroup v2 is not mounted")
    made: list[Contained] = []
    yield made
    for contained in made:
        contained.stop()
        remove_cgroups(contained.cgroup)


def _configure(root: Path, ident: str, name: str) -> None:
    folder = root / "containers" / ident
    folder.mkdir(parents=True)
    (folder / "config.v2.json").write_text(json.dumps({"ID": ident, "Name": f"/{name}"}))


def test_labels_are_unique_and_pair(docker_root: Path, containers: list[Contained]) -> None:
    low, high = sorted(secrets.token_hex(32) for _ in range(2))
    with private_netns() as name:
        # Two containers named as the ip netns one (two Docker daemons: one name each).
        for ident in (low, high):
            _configure(docker_root, ident, name)
            containers.append(Contained.start(_docker(ident), 0))
        listener, _ = listen_in(name)
        try:
            before = acquire.take(all_netns=True, sections=["sockets"], processes=False)
            # The first container restarts: a new namespace in the same cgroup.
            containers[0].stop()
            containers[0] = Contained.start(containers[0].cgroup, 0)
            after = acquire.take(all_netns=True, sections=["sockets"], processes=False)
        finally:
            stop(listener)
    for snapshot in (before, after):
        assert snapshot.namespaces is not None
        labels = namespace_labels(snapshot.namespaces)
        assert len(set(labels.values())) == len(labels)
        netns_inode = next(ns.inode for ns in snapshot.namespaces if name in ns.names)
        assert labels[netns_inode] == name
        named = [ns.inode for ns in snapshot.namespaces if ns.container and ns.container.name == name]
        assert {labels[inode] for inode in named} == {f"docker:{name}", f"docker:{high[:12]}"}
        # Each label names its one namespace in the filter (each holds a listener).
        for inode in (netns_inode, *named):
            test = compile_filter(f"netns {labels[inode]}", snapshot.namespaces)
            assert {netns_of(s) for s in snapshot.sockets or () if test(s)} == {inode}
    assert containers[0].inode in {ns.inode for ns in after.namespaces or ()}
    result = diff(before, after)
    assert result.namespaces is not None
    moved = [*result.namespaces.appeared, *result.namespaces.gone]
    assert not [ns for ns in moved if name in ns.names or (ns.container and ns.container.id in (low, high))]


def test_a_fifo_where_docker_keeps_its_config(docker_root: Path, containers: list[Contained]) -> None:
    ident = secrets.token_hex(32)
    linked = secrets.token_hex(32)
    for each in (ident, linked):
        (docker_root / "containers" / each).mkdir(parents=True)
    fifo = docker_root / "containers" / ident / "config.v2.json"
    os.mkfifo(fifo)
    target = docker_root / "elsewhere.json"
    target.write_text(json.dumps({"Name": "/linked"}))
    (docker_root / "containers" / linked / "config.v2.json").symlink_to(target)
    containers += [Contained.start(_docker(ident), 0), Contained.start(_docker(linked), 0)]
    taken: list[Snapshot] = []
    reader = threading.Thread(
        target=lambda: taken.append(acquire.take(all_netns=True, sections=["interfaces"])), daemon=True
    )
    reader.start()
    reader.join(120)  # a guard against a hang, not a measure: discovery takes well under a second
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets the blocked read go
        pytest.fail("discovery hung on a FIFO at config.v2.json's path")
    described = {ns.inode: ns for ns in taken[0].namespaces or ()}
    for contained, expected in zip(containers, (ident, linked), strict=True):
        container = described[contained.inode].container
        assert container is not None and container.id == expected
        assert container.name is None  # not a regular file: not read


def test_filter_takes_the_proc_form_and_refuses_an_unknown_label(tmp_path: Path) -> None:
    with private_netns() as name:
        listener, port = listen_in(name)
        try:
            inode = inode_of(f"/run/netns/{name}")
            shown = sockdiff("show", "--all-netns", "-t", "-l", "netns", f"net:[{inode}]", cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            assert [line.split()[0] for line in shown.stdout.splitlines()[1:]] == [name]
            # The snapshot's own filter: kept, and in the file.
            taken = sockdiff(
                "snapshot", "--all-netns", "-o", "-", "--sections", "sockets", f"netns net:[{inode}]"
            )
            assert taken.returncode == 0, taken.stderr
            records = [json.loads(line) for line in taken.stdout.splitlines()[1:] if '"proto"' in line]
            assert {(r["netns"], r["local"]["port"]) for r in records} == {(inode, port)}
            unknown = sockdiff("show", "--all-netns", "netns", f"{name}-nowhere", cwd=tmp_path)
            assert "names no namespace" in one_line_error(unknown)
            for gone in ("1", "net:[2]"):  # an inode no namespace of the snapshot has
                unknown = sockdiff("show", "--all-netns", "netns", gone, cwd=tmp_path)
                assert "names no namespace" in one_line_error(unknown)
        finally:
            stop(listener)


def test_netns_column_escapes_blanks(tmp_path: Path) -> None:
    with private_netns(PREFIX + "a b ") as name:
        listener, port = listen_in(name)
        try:
            shown = sockdiff("show", "--all-netns", "-t", "-l", cwd=tmp_path)
            interfaces = sockdiff("show", "--all-netns", "-i", cwd=tmp_path)
        finally:
            stop(listener)
    word = name.replace(" ", "\\x20")
    assert shown.returncode == 0 and interfaces.returncode == 0, shown.stderr + interfaces.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if f":{port} " in line]
    assert [row[:3] for row in rows if row[0] == word] == [[word, "tcp", "LISTEN"]]
    assert [row[:2] for row in map(str.split, interfaces.stdout.splitlines()) if row[0] == word] == [
        [word, "lo"]
    ]


def test_a_namespace_that_appears_is_one_line(tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    taken = sockdiff("snapshot", "--all-netns", "--no-processes", "-o", str(before), cwd=tmp_path)
    assert taken.returncode == 0, taken.stderr
    with private_netns() as name:
        listener, _ = listen_in(name)
        try:
            result = sockdiff("compare", str(before), "live", "--fail-on", "listening", cwd=tmp_path)
        finally:
            stop(listener)
    assert result.returncode == 1, result.stderr
    lines = _lines_of(result.stdout.splitlines(), name)
    assert len(lines) == 1, lines
    assert re.fullmatch(
        rf"\+ netns {name} \(net:\[[0-9]+\]\)  1 socket, 1 interface, [0-9]+ routes?  \[counted\]", lines[0]
    )


def test_loose_pairing_stays_in_its_namespace() -> None:
    # A listener read from /proc (no device) in one namespace; then gone, and one
    # on the same port bound to lo (netlink knows the device) in another.
    with private_netns() as first, private_netns() as second:
        listener, port = listen_in(first)
        try:
            before = acquire.take(backend="proc", all_netns=True, sections=["sockets"], processes=False)
        finally:
            stop(listener)
        listener, _ = listen_in(second, port, "lo")
        try:
            after = acquire.take(backend="netlink", all_netns=True, sections=["sockets"], processes=False)
        finally:
            stop(listener)
    lines = _text(before, after)
    assert [line for line in _lines_of(lines, first) if f":{port} " in line] == [
        f"- [{first}] tcp LISTEN 0.0.0.0:{port} 0.0.0.0:*"
    ]
    assert [line for line in _lines_of(lines, second) if f":{port} " in line] == [
        f"+ [{second}] tcp LISTEN 0.0.0.0%lo:{port} 0.0.0.0:*"
    ]


def test_compare_only_and_ignore_take_labels(tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    with private_netns() as first, private_netns() as second:
        taken = sockdiff("snapshot", "--all-netns", "--sections", "sockets", "-o", str(before), cwd=tmp_path)
        assert taken.returncode == 0, taken.stderr
        listeners = [listen_in(first), listen_in(second)]
        inode = inode_of(f"/run/netns/{first}")
        try:
            runs = {
                what: sockdiff(
                    "compare", str(before), "live", "--fail-on", "listening", option, text, cwd=tmp_path
                )
                for what, option, text in (
                    ("only", "--only", f"netns {first}"),
                    ("only inode", "--only", f"netns net:[{inode}]"),
                    ("ignore", "--ignore", f"netns {first}"),
                    ("unknown", "--only", f"netns {first}-nowhere"),
                )
            }
        finally:
            for listener, _ in listeners:
                stop(listener)
    for what in ("only", "only inode"):
        assert runs[what].returncode == 1, runs[what].stderr
        assert _lines_of(runs[what].stdout.splitlines(), first)
        assert not _lines_of(runs[what].stdout.splitlines(), second)
    assert not _lines_of(runs["ignore"].stdout.splitlines(), first)
    assert _lines_of(runs["ignore"].stdout.splitlines(), second)
    assert "names no namespace" in one_line_error(runs["unknown"])
    with pytest.raises(BadFilter, match="names no namespace"):
        compile_filter("netns nowhere", (Namespace(1, ("here",), (), None),))


def test_summary_counts_every_namespace(tmp_path: Path) -> None:
    with private_netns() as name:
        listener, _ = listen_in(name)
        try:
            shown = sockdiff("show", "-s", "--all-netns", cwd=tmp_path)
        finally:
            stop(listener)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith("Netns ") for line in lines)
    assert [line.split() for line in lines if line.split()[:1] == [name]] == [[name, "1", "1", "0", "0", "0"]]
    assert not [line for line in lines if line.startswith("ss -s says")]  # one namespace's figures


def test_a_process_that_left_is_not_the_way_in() -> None:
    # Found with a visitor first (a reader that entered on its main thread, gone
    # home since: here, ourselves): the namespace is opened through one still inside.
    with private_netns() as name:
        listener, _ = listen_in(name)
        try:
            inode = inode_of(f"/run/netns/{name}")
            visitor = os.getpid()
            found = discovery.Found(inode, f"/proc/{visitor}/ns/net", [visitor, listener.pid])
            assert found.opener() == f"/proc/{listener.pid}/ns/net"
            assert found.describe().pids == (listener.pid,)
            stop(listener)
            assert discovery.Found(inode, f"/proc/{visitor}/ns/net", [visitor]).opener() is None
        finally:
            stop(listener)


def test_a_namespace_mounted_at_a_name_with_a_carriage_return_is_found() -> None:
    """The kernel escapes "\\n" in /proc/self/mountinfo but not "\\r" (nor "\\v", "\\f"...): a
    mount point holding one must not split its line (the namespace was left out). Each
    of the others str.splitlines() ends a line at too."""
    name = f"{PREFIX}{os.getpid()}-cr\r\v\f\x1c\x1d\x1e\x85\u2028\u2029##[x]"
    path = f"/run/netns/{name}"
    Path(path).touch()
    try:
        subprocess.run(["unshare", f"--net={path}", "true"], check=True, timeout=30)
        inode = os.stat(path).st_ino
        taken = acquire.take(all_netns=True, processes=False, sections=["interfaces"])
        (found,) = [n for n in taken.namespaces or () if n.inode == inode]
        assert found.names == (name,)
    finally:
        subprocess.run(["umount", path], check=False, timeout=30)
        os.unlink(path)


def test_a_container_identity_only_where_its_runtime_puts_it(
    docker_root: Path, containers: list[Contained]
) -> None:
    """A Docker cgroup name under a user's delegated subtree, or under a parent Docker does
    not use, is a claim anyone allowed to make cgroups there can make: not the container."""
    ident = secrets.token_hex(32)
    _configure(docker_root, ident, f"web-{ident[:8]}")
    user = "user.slice/user-1000.slice/user@1000.service/app.slice"
    containers.append(Contained.start(_docker(ident), 0))  # the container, where Docker puts it
    for parent in (user, f"sockdiff-test-{ident[:8]}.slice", "system.slice/delegated.service"):
        containers.append(Contained.start(_docker(ident, parent), 0))
    taken = acquire.take(all_netns=True, sections=["interfaces"], processes=False)
    described = {ns.inode: ns for ns in taken.namespaces or ()}
    real, *claims = (described[contained.inode] for contained in containers)
    assert real.container is not None and real.container.name == f"web-{ident[:8]}"
    assert [claim.container for claim in claims] == [None, None, None]
    assert namespace_labels(taken.namespaces)[real.inode] == f"web-{ident[:8]}"


def test_two_namespaces_claiming_one_container_pair_by_neither(
    docker_root: Path, containers: list[Contained]
) -> None:
    """Two namespaces in one container's cgroup (one made inside it, or a process put there):
    neither is believed to be the container's, so neither pairs by it with the other side."""
    ident = secrets.token_hex(32)
    _configure(docker_root, ident, f"web-{ident[:8]}")
    containers.append(Contained.start(_docker(ident), 0))
    before = acquire.take(all_netns=True, sections=["sockets"], processes=False)
    containers.append(Contained.start(_docker(ident), 0))  # a second claim of the same container
    after = acquire.take(all_netns=True, sections=["sockets"], processes=False)
    assert after.namespaces is not None
    labels = namespace_labels(after.namespaces)
    inodes = [contained.inode for contained in containers]
    assert [labels[inode] for inode in inodes] == [f"web-{ident[:8]}@net:[{inode}]" for inode in inodes]
    # Neither of the two takes the container's records (the first's, alone before).
    moved = diff(before, after).namespaces
    assert moved is not None
    assert {ns.inode for ns in moved.gone} >= {inodes[0]}
    assert {ns.inode for ns in moved.appeared} >= set(inodes)
