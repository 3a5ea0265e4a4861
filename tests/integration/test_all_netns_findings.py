"""``--all-netns`` against what an adversary or an unlucky host does to it (issue 17's findings).

Each test makes its own namespaces (``ip netns``, or processes in cgroups named
as Docker names its own) and asserts about those only, by name or inode: other
tests create and delete namespaces while these run.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockdiff import acquire
from sockdiff import namespaces as discovery
from sockdiff.snapshots import Snapshot
from tests.helpers.cli import sockdiff
from tests.helpers.held_netns import CGROUP_ROOT, Contained, listen_in, remove_cgroups, stop
from tests.helpers.netns import PREFIX, private_netns, require_netns


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    require_netns()


@pytest.fixture
def docker_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the runtime's configs are read from, for this test: ``tmp_path/docker``."""
    root = tmp_path / "docker"
    monkeypatch.setattr(discovery, "DOCKER_ROOT", str(root))
    return root


def _docker(tag: str, ident: str) -> Path:
    return CGROUP_ROOT / f"sockdiff-test-{tag}.slice" / f"docker-{ident}.scope"


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
    tag = secrets.token_hex(4)
    containers += [Contained.start(_docker(tag, ident), 0), Contained.start(_docker(tag, linked), 0)]
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
