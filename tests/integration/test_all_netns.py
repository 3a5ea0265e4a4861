"""Every namespace in one snapshot (``--all-netns``), against real namespaces.

Five namespaces of our own, each with a TCP listener on 0.0.0.0:PORT: two
``ip netns`` ones, two held by processes placed in cgroups named as Docker and
Kubernetes/containerd name them, one held only by a descriptor of a process
that lives in the host's namespace. Other tests create and delete namespaces
while these run: every assertion is about ours, by inode or name, never a total.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff import acquire
from sockdiff.differ import diff
from sockdiff.errors import BadSnapshot
from sockdiff.model import Container, Namespace, namespace_label, netns_of
from sockdiff.namespaces import container_of_cgroup, docker_name, mount_points
from sockdiff.snapshots import Snapshot, dumps, loads
from tests.helpers.cli import sockdiff
from tests.helpers.held_netns import CGROUP_ROOT, HOLDER, LISTENER, Contained, remove_cgroups
from tests.helpers.held_netns import inode_of as _inode
from tests.helpers.held_netns import start as _start
from tests.helpers.held_netns import stop as _stop
from tests.helpers.netns import private_netns, require_netns


@dataclass
class Host:
    names: dict[str, int]  # ip netns name -> inode
    docker: Contained
    docker_id: str
    kube: Contained
    kube_id: str
    pod: str
    held: int  # the inode of the namespace held by a descriptor only
    ports: dict[int, int]  # inode -> the listener's port


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    require_netns()
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        pytest.skip("cgroup v2 is not mounted")
    tag = secrets.token_hex(4)
    docker_id = secrets.token_hex(32)
    kube_id = secrets.token_hex(32)
    pod = str(uuid.uuid4())
    docker_cgroup = CGROUP_ROOT / "system.slice" / f"docker-{docker_id}.scope"
    kube_cgroup = (
        CGROUP_ROOT
        / f"kubepods-{tag}.slice"
        / f"kubepods-besteffort-pod{pod.replace('-', '_')}.slice"
        / f"cri-containerd-{kube_id}.scope"
    )
    base = 47000 + os.getpid() % 1000 * 10
    procs: list[subprocess.Popen[str]] = []
    with private_netns() as blue, private_netns() as red:
        names = {blue: _inode(f"/run/netns/{blue}"), red: _inode(f"/run/netns/{red}")}
        docker = kube = None
        try:
            ports: dict[int, int] = {}
            for offset, name in enumerate((blue, red)):
                argv = ["ip", "netns", "exec", name, sys.executable, "-c", LISTENER, str(base + offset)]
                procs.append(_start(argv)[0])
                ports[names[name]] = base + offset
            docker = Contained.start(docker_cgroup, base + 2)
            kube = Contained.start(kube_cgroup, base + 3)
            ports[docker.inode] = base + 2
            ports[kube.inode] = base + 3
            holder, line = _start([sys.executable, "-c", HOLDER, str(base + 4)])
            procs.append(holder)
            held = int(line.split()[1])
            ports[held] = base + 4
            made = Host(names, docker, docker_id, kube, kube_id, pod, held, ports)
            yield made
            docker = made.docker  # restarted by a test
        finally:
            for proc in procs:
                _stop(proc)
            for contained in (docker, kube):
                if contained is not None:
                    contained.stop()
            remove_cgroups(docker_cgroup)
            remove_cgroups(kube_cgroup)


def _listeners(snapshot: Snapshot, host: Host) -> set[tuple[int, int]]:
    """(namespace inode, port) of our listeners the snapshot holds."""
    assert snapshot.sockets is not None
    found: set[tuple[int, int]] = set()
    for s in snapshot.sockets:
        inode, port = netns_of(s), s.local.port
        ours = inode is not None and isinstance(port, int) and host.ports.get(inode) == port
        if s.proto == "tcp" and s.state == "LISTEN" and ours:
            found.add((inode, port))  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("backend", ["netlink", "proc"])
def test_every_namespace_read_and_described(host: Host, backend: str) -> None:
    snapshot = acquire.take(backend=backend, all_netns=True)
    assert snapshot.namespaces is not None
    described = {ns.inode: ns for ns in snapshot.namespaces}
    assert len(described) == len(snapshot.namespaces)  # each once
    assert _inode("/proc/thread-self/ns/net") == snapshot.namespaces[0].inode  # ours, first
    for name, inode in host.names.items():
        assert name in described[inode].names
        assert described[inode].container is None
    assert described[host.docker.inode].container == Container("docker", host.docker_id, None, None)
    assert described[host.docker.inode].pids == (host.docker.proc.pid,)
    assert described[host.kube.inode].container == Container("containerd", host.kube_id, None, host.pod)
    assert described[host.held].pids == () and described[host.held].names == ()
    # A listener in each of ours, in its own namespace and no other.
    assert _listeners(snapshot, host) == set(host.ports.items())
    # Every record carries a namespace listed; the file keeps it all.
    assert snapshot.interfaces is not None
    assert {netns_of(i) for i in snapshot.interfaces if i.name == "lo"} >= set(host.ports)
    assert loads(dumps(snapshot), "all") == snapshot


def test_backends_agree(host: Host) -> None:
    netlink = acquire.take(backend="netlink", all_netns=True, sections=["sockets"])
    proc = acquire.take(backend="proc", all_netns=True, sections=["sockets"])

    def ours(snapshot: Snapshot) -> set[tuple[object, ...]]:
        assert snapshot.sockets is not None
        return {
            (netns_of(s), s.proto, s.state, s.local, s.inode)
            for s in snapshot.sockets
            if netns_of(s) in host.ports and s.proto in ("tcp", "udp")
        }

    assert ours(netlink) == ours(proc)
    assert ours(netlink)


def test_restarted_container_pairs_by_label(host: Host) -> None:
    before = acquire.take(all_netns=True, sections=["sockets", "interfaces"])
    port = host.ports.pop(host.docker.inode)
    host.docker.stop()
    host.docker = Contained.start(host.docker.cgroup, port)
    host.ports[host.docker.inode] = port
    after = acquire.take(all_netns=True, sections=["sockets", "interfaces"])
    assert after.namespaces is not None
    assert host.docker.inode in {ns.inode for ns in after.namespaces}
    result = diff(before, after, fields=["state"])
    ours = {host.docker.inode}
    assert not [s for s in (*result.opened, *result.closed) if netns_of(s) in ours]
    assert result.interfaces is not None
    assert not [i for i in (*result.interfaces.added, *result.interfaces.removed) if netns_of(i) in ours]
    assert result.namespaces is not None
    container = Container("docker", host.docker_id, None, None)
    assert container not in {ns.container for ns in (*result.namespaces.appeared, *result.namespaces.gone)}


def test_one_namespace_snapshot_carries_no_netns() -> None:
    snapshot = acquire.take(sections=["interfaces"])
    assert snapshot.namespaces is None
    assert snapshot.interfaces is not None
    assert all(netns_of(i) is None for i in snapshot.interfaces)
    assert b'"netns"' not in dumps(snapshot).split(b"\n", 1)[1]
    assert b'"namespaces"' not in dumps(snapshot)


def test_netns_must_be_listed() -> None:
    snapshot = acquire.take(sections=["interfaces"], all_netns=True)
    assert snapshot.namespaces is not None
    extra = b'"namespaces":[\n{"inode":1,"names":[],"pids":[],"container":null},'
    text = dumps(snapshot).replace(b'"namespaces":[', extra, 1)
    assert loads(text, "x").namespaces is not None
    inode = snapshot.namespaces[0].inode
    text = dumps(snapshot).replace(b'"netns":%d' % inode, b'"netns":9', 1)
    with pytest.raises(BadSnapshot, match="no namespace listed"):
        loads(text, "x")


# Pure: the cgroup paths and configs each runtime writes, and what they describe.
HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        (f"0::/system.slice/docker-{HEX}.scope", Container("docker", HEX, None, None)),
        (f"0::/docker/{HEX}", Container("docker", HEX, None, None)),
        (
            f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555"
            f".slice/cri-containerd-{HEX}.scope",
            Container("containerd", HEX, None, "1b2c3d4e-0000-1111-2222-333344445555"),
        ),
        (
            f"0::/kubepods/besteffort/pod1b2c3d4e-0000-1111-2222-333344445555/{HEX}",
            Container("containerd", HEX, None, "1b2c3d4e-0000-1111-2222-333344445555"),
        ),
        (f"0::/kubepods.slice/crio-{HEX}.scope", Container("crio", HEX, None, None)),
        (f"0::/machine.slice/libpod-{HEX}.scope/container", Container("podman", HEX, None, None)),
        ("0::/machine.slice/machine-web1.scope/payload", Container("nspawn", "web1", None, None)),
        ("0::/lxc.payload.db/init.scope", Container("lxc", "db", None, None)),
        ("12:pids:/\n0::/user.slice/user-0.slice/session-4.scope\n", None),
        (f"0::/system.slice/docker-{HEX[:63]}.scope", None),
    ],
)
def test_container_of_cgroup(cgroup: str, expected: Container | None) -> None:
    assert container_of_cgroup(cgroup) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_container_of_cgroup_takes_any_text(text: str) -> None:
    container = container_of_cgroup(text)
    if container is not None:
        assert "/" not in container.id and "\n" not in container.id and container.id in text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.builds(lambda n: b'{"Name": %s}' % n.encode(), st.text(max_size=40)))
def test_docker_name_takes_any_bytes(data: bytes) -> None:
    name = docker_name(data)
    assert name is None or (name and "/" not in name and "\n" not in name and len(name) <= 255)


def test_docker_name_and_mounts() -> None:
    assert docker_name(b'{"Name": "/web.1"}') == "web.1"
    assert docker_name(b'{"Name": "/\\u001b[31mx"}') is None
    line = (
        "611 29 0:4 net:[42] /run/netns/a\\040b rw - nsfs nsfs rw\n612 29 0:4 mnt:[43] /x rw - nsfs nsfs rw"
    )
    assert list(mount_points(line)) == [(42, "/run/netns/a b")]


def test_labels() -> None:
    docker = Container("docker", HEX, None, None)
    assert namespace_label(Namespace(5, ("blue",), (), docker)) == "blue"
    assert namespace_label(Namespace(5, (), (), Container("docker", HEX, "web", None))) == "web"
    assert namespace_label(Namespace(5, (), (), docker)) == f"docker:{HEX[:12]}"
    assert namespace_label(Namespace(5, (), (), None)) == "net:[5]"


def test_cli_show_and_compare_name_namespaces(host: Host, tmp_path: Path) -> None:
    blue = next(iter(host.names))
    port = host.ports[host.names[blue]]
    shown = sockdiff("show", "--all-netns", "-t", "-l", "netns", blue, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("Netns ")
    assert [line.split()[0] for line in lines[1:]] == [blue]
    assert f":{port}" in lines[1]
    by_id = sockdiff("show", "--all-netns", "-t", "-l", "netns", host.kube_id[:8], cwd=tmp_path)
    assert [line.split()[0] for line in by_id.stdout.splitlines()[1:]] == [f"containerd:{host.kube_id[:12]}"]
    before = tmp_path / "before.json"
    taken = sockdiff("snapshot", "--all-netns", "--sections", "sockets", "-o", str(before), cwd=tmp_path)
    assert taken.returncode == 0, taken.stderr
    with private_netns() as fresh:
        fresh_inode = _inode(f"/run/netns/{fresh}")
        listener, _ = _start(["ip", "netns", "exec", fresh, sys.executable, "-c", LISTENER, str(port)])
        try:
            result = sockdiff("compare", str(before), "live", "--fail-on", "listening", cwd=tmp_path)
        finally:
            _stop(listener)
    assert result.returncode == 1, result.stderr
    appeared = [line for line in result.stdout.splitlines() if line.startswith(f"+ netns {fresh} ")]
    assert appeared == [f"+ netns {fresh} (net:[{fresh_inode}])  1 socket  [counted]"]
    assert not [line for line in result.stdout.splitlines() if f":{port} " in line and line.startswith("+ [")]
