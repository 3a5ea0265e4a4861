"""Every network namespace on the host, found by what holds it, and described.

A namespace lives while something holds it: a process living in it
(``/proc/PID/ns/net``, and each thread's, ``/proc/PID/task/TID/ns/net``, since
a thread may ``setns`` alone), a mount of its nsfs file (``ip netns`` under
/run/netns, Docker's /var/run/docker/netns), or an open descriptor
(``/proc/PID/fd/N`` -> ``net:[INODE]``). :func:`discover` finds each once, by
inode, the host's included, with a way to read it: a pid inside (the proc
backend reads /proc/PID/net, no ``setns``) and a path that opens it.

The container comes from the cgroup path of the processes inside, with the
patterns the runtimes write (:func:`container_of_cgroup`), and its name from
what the runtime keeps on disk (:func:`docker_name`). Both parsers are pure
and take untrusted text: a process chooses its cgroup's name, a container its
config; neither can make them raise or forge a field.
"""

from __future__ import annotations

import json
import os
import re
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from .model import Container, Namespace, name_text

__all__ = [
    "DOCKER_ROOT",
    "MAX_PIDS",
    "Found",
    "NamespacesHidden",
    "container_of_cgroup",
    "discover",
    "docker_name",
    "held_open",
    "mount_points",
    "netns_names",
    "read_small",
]

# A namespace lists at most this many of the processes inside.
MAX_PIDS = 8
# Where Docker keeps its containers' configs (containers/<id>/config.v2.json).
DOCKER_ROOT = "/var/lib/docker"
# The most read of a cgroup file or a runtime's config: what it holds that we read
# comes first, and a larger file is not one the runtime wrote.
MAX_CGROUP_BYTES = 65536
MAX_CONFIG_BYTES = 1 << 20

_HEX64 = r"[0-9a-f]{64}"
# Where each runtime puts its containers' cgroups, as the path of the parents above
# the container's own ("" at the top). Only root makes cgroups there, and the runtime
# its containers: a user's delegated subtree (user.slice/.../user@UID.service, a
# service with Delegate=yes) may hold a cgroup of any name, so an identity found
# anywhere else is a claim, not a container, and is not believed.
_SYSTEM = r"system\.slice"
_MACHINE = r"machine\.slice"
_PODMAN = rf"{_MACHINE}(?:/machine-libpod_pod_{_HEX64}\.slice)?"
_KUBEPODS = r"kubepods(?:-[A-Za-z0-9_]+)*\.slice(?:/kubepods(?:-[A-Za-z0-9_]+)*\.slice){0,2}"
_KUBEPODS_FS = r"kubepods(?:/(?:besteffort|burstable))?/pod[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
# Each runtime's cgroup leaf (systemd driver first, cgroupfs driver after), as
# it names the container, and the parents it is believed under; the first that
# matches the path's deepest part wins.
_SCOPES: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (runtime, re.compile(leaf), re.compile(parents))
    for runtime, leaf, parents in (
        ("docker", rf"docker-({_HEX64})\.scope", rf"{_SYSTEM}|{_KUBEPODS}"),
        ("containerd", rf"cri-containerd-({_HEX64})\.scope", _KUBEPODS),
        ("crio", rf"crio-({_HEX64})\.scope", _KUBEPODS),
        ("podman", rf"libpod-({_HEX64})\.scope", _PODMAN),
        # systemd escapes a machine's name in its unit's (\x2d): at most 128, doubled in notation.
        ("nspawn", r"machine-([A-Za-z0-9_.\\-]{1,128})\.scope", _MACHINE),
        ("lxc", r"lxc\.payload\.([A-Za-z0-9_.\-]{1,200})", ""),
        # The cgroupfs driver: /docker/<id>, /kubepods/.../<id>.
        ("docker", rf"({_HEX64})", rf"docker|{_KUBEPODS_FS}"),
    )
)
# kubepods-besteffort-pod<uid>.slice (systemd: '_' for the UID's '-'), or /kubepods/besteffort/pod<uid>.
_POD = re.compile(
    r"(?:^|[-/])pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$"
)


def container_of_cgroup(text: str) -> Container | None:
    """The container a ``/proc/PID/cgroup`` file places its process in, None when none.

    cgroup v2 writes one line ``0::PATH``; v1 one per hierarchy (the first
    that names a container is taken).

    >>> container_of_cgroup("0::/system.slice/docker-" + "3f" * 32 + ".scope\\n").runtime
    'docker'
    >>> c = container_of_cgroup("0::/kubepods.slice/kubepods-pod1b2c3d4e_0000_1111_2222_333344445555.slice/"
    ...                         "cri-containerd-" + "ab" * 32 + ".scope")
    >>> c.runtime, c.pod
    ('containerd', '1b2c3d4e-0000-1111-2222-333344445555')
    >>> container_of_cgroup("0::/user.slice/user-0.slice/session-1.scope") is None
    True
    >>> escaped = "a" + chr(92) + "x20b"  # systemd's escape of "a b" in a unit's name
    >>> container_of_cgroup(f"0::/machine.slice/machine-{escaped}.scope").id == "a" + 2 * chr(92) + "x20b"
    True
    >>> user = "0::/user.slice/user-1000.slice/user@1000.service/"
    >>> container_of_cgroup(user + "docker-" + "3f" * 32 + ".scope") is None  # a user's claim
    True
    >>> outer = "0::/system.slice/docker-" + "3f" * 32 + ".scope/"
    >>> container_of_cgroup(outer + "docker-" + "ab" * 32 + ".scope").id[:4]  # nested: the outer one
    '3f3f'
    """
    for line in text.split("\n"):  # only "\n" ends a line: a cgroup's name may hold "\r"
        path = line.split(":", 2)[-1]
        parts = [part for part in path.split("/") if part]
        for depth in range(len(parts) - 1, -1, -1):
            for runtime, pattern, parents in _SCOPES:
                found = pattern.fullmatch(parts[depth])
                if found is None or parents.fullmatch("/".join(parts[:depth])) is None:
                    continue  # not this runtime's, or not where it puts its containers
                ident = name_text(found.group(1))  # in notation, as ip netns names: '\\' doubled
                pod = None
                for outer in parts[:depth]:
                    kube = _POD.search(outer)
                    if kube is not None:
                        pod = kube.group(1).replace("_", "-")
                # The cgroupfs driver under kubepods names a bare id: a CRI's container.
                kind = "containerd" if runtime == "docker" and pod is not None else runtime
                return Container(kind, ident, None, pod)  # type: ignore[arg-type]
    return None


def docker_name(config: bytes) -> str | None:
    """The container's name from Docker's ``config.v2.json`` ("Name", without its
    leading "/"), None when the file holds none we can trust.

    >>> docker_name(b'{"ID": "x", "Name": "/web"}')
    'web'
    >>> docker_name(b'{"Name": 5}') is None, docker_name(b"not json") is None
    (True, True)
    """
    try:
        document = json.loads(config)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    name = document.get("Name")
    if not isinstance(name, str):
        return None
    name = name.lstrip("/")
    # Docker's names: [a-zA-Z0-9][a-zA-Z0-9_.-]+; anything else is not one it wrote.
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}", name) else None


def _unescape_mount(text: str) -> str:
    r"""A mountinfo path: space, tab, newline and backslash are written ``\NNN`` in octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mount_points(mountinfo: str) -> Iterator[tuple[int, str]]:
    """(inode, mount point) of each nsfs mount of a network namespace in ``mountinfo``.

    Field 4 is the root within the filesystem (``net:[INODE]`` for nsfs),
    field 5 the mount point; the filesystem type follows the " - ".

    >>> list(mount_points("611 29 0:4 net:[4026532241] /run/netns/blue rw - nsfs nsfs rw\\n"))
    [(4026532241, '/run/netns/blue')]
    """
    # Only "\n" ends a line: the kernel escapes it in a mount point, but not "\r", "\v",
    # "\f" or the others str.splitlines() would split a line at.
    for line in mountinfo.split("\n"):
        fields, sep, tail = line.partition(" - ")
        parts = fields.split(" ")
        if not sep or len(parts) < 5 or not tail.startswith("nsfs "):
            continue
        found = re.fullmatch(r"net:\[([0-9]{1,19})\]", parts[3])
        if found is not None:
            yield int(found.group(1)), _unescape_mount(parts[4])


def _mounts(proc_root: str) -> list[tuple[int, str]]:
    """(inode, mount point) of each network namespace mounted where this process sees it."""
    try:
        with open(f"{proc_root}/self/mountinfo", "rb") as file:
            return list(mount_points(file.read().decode("utf-8", "surrogateescape")))
    except OSError:
        return []


def _ip_netns_name(point: str, netns_dir: str) -> str | None:
    """The ``ip netns`` name of a namespace mounted at ``point``, None when it is not under ``netns_dir``."""
    directory, _, name = point.rpartition("/")
    # In the records' notation (name_text): a name is any bytes but '/' and NUL.
    return name_text(name) if directory == netns_dir.rstrip("/") and name else None


def netns_names(proc_root: str = "/proc", netns_dir: str = "/run/netns") -> dict[int, list[str]]:
    """Inode -> the ``ip netns`` names of each namespace mounted under ``netns_dir``."""
    names: dict[int, list[str]] = {}
    for inode, point in _mounts(proc_root):
        name = _ip_netns_name(point, netns_dir)
        if name is not None:
            names.setdefault(inode, []).append(name)
    return names


def read_small(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of the regular file at ``path``; None when it is not one
    (a FIFO, a device, a directory, a symbolic link) or cannot be read.

    Opened without blocking and without following a last symbolic link, and
    checked on the open descriptor: a FIFO someone put where a runtime keeps a
    file would otherwise hang discovery, and a device or a link would read
    what no runtime wrote.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        left = limit
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(slots=True)
class Found:
    """A namespace found: its inode, what opens it, who lives in it, its names."""

    inode: int
    path: str  # a file that opens it: /proc/PID/ns/net, a mount point, /proc/PID/fd/N
    pids: list[int] = field(default_factory=list)  # processes whose main thread lives in it
    names: list[str] = field(default_factory=list)

    def still(self, path: str) -> bool:
        """Whether ``path`` opens this namespace still: a process found inside may
        have left it since (``setns``, or a reader visiting it, as ``ip netns exec``
        and older sockdiffs do on their main thread), or exited."""
        try:
            return os.stat(path).st_ino == self.inode
        except OSError:
            return False

    def opener(self, proc_root: str = "/proc") -> str | None:
        """A path that opens this namespace now (its own, then each process's inside),
        None when none does: gone since it was found."""
        for path in (self.path, *(f"{proc_root}/{pid}/ns/net" for pid in self.pids)):
            if self.still(path):
                return path
        return None

    def describe(self, proc_root: str = "/proc", docker_root: str | None = None) -> Namespace:
        """The snapshot's record of this namespace (``docker_root``: :data:`DOCKER_ROOT`).

        Its processes are those still inside (one that only visited it, or
        exited, is left out), the lowest :data:`MAX_PIDS`.
        """
        pids: list[int] = []
        for pid in sorted(self.pids):
            if len(pids) == MAX_PIDS:
                break
            if self.still(f"{proc_root}/{pid}/ns/net"):
                pids.append(pid)
        container = None
        for pid in pids:
            text = read_small(f"{proc_root}/{pid}/cgroup", MAX_CGROUP_BYTES)
            if text is None:
                continue  # gone since: another process inside may say
            container = container_of_cgroup(text.decode("utf-8", "replace"))
            if container is not None:
                break
        if container is not None and container.runtime == "docker":
            root = DOCKER_ROOT if docker_root is None else docker_root
            # None: not root, not this runtime's layout, gone, or not a file it wrote.
            config = read_small(f"{root}/containers/{container.id}/config.v2.json", MAX_CONFIG_BYTES)
            name = None if config is None else docker_name(config)
            if name is not None:
                container = Container(container.runtime, container.id, name, container.pod)
        return Namespace(self.inode, tuple(sorted(self.names)), tuple(pids), container)


class NamespacesHidden(UserWarning):
    """Not root: some namespaces cannot be seen (other users' processes) or entered (setns needs
    CAP_SYS_ADMIN), and --all-netns reads without them."""


def _hidden(path: str) -> bool:
    """Whether the namespace link at ``path`` is there but not ours to read (another user's process)."""
    try:
        os.readlink(path)
    except PermissionError:
        return True
    except OSError:
        pass
    return False


def _netns_inode(path: str) -> int | None:
    """The inode of the namespace link at ``path`` (``net:[N]``), None when gone or not one."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    if target.startswith("net:[") and target.endswith("]"):
        try:
            return int(target[5:-1])
        except ValueError:
            return None
    return None


def held_open(proc_root: str = "/proc") -> dict[int, str]:
    """Each network namespace some process holds a descriptor of: inode -> that descriptor's path."""
    held: dict[int, str] = {}
    for pid in os.listdir(proc_root):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"{proc_root}/{pid}/fd")
        except OSError:
            continue  # exited, or not ours to read
        for fd in fds:
            inode = _netns_inode(f"{proc_root}/{pid}/fd/{fd}")
            if inode is not None:
                held.setdefault(inode, f"{proc_root}/{pid}/fd/{fd}")
    return held


def discover(
    proc_root: str = "/proc", held: dict[int, str] | None = None, netns_dir: str = "/run/netns"
) -> list[Found]:
    """Every network namespace of the host, each once, ours first, then by inode.

    ``held``: the namespaces held by descriptors, as :func:`held_open` (or a scan
    of owners, :func:`sockdiff.processes.scan_owners`) finds them; None: look here.
    Processes and threads exiting while we look are skipped: what they held is
    either held by something else too, or gone.
    """
    found: dict[int, Found] = {}
    own = _netns_inode(f"{proc_root}/thread-self/ns/net")
    if own is not None:
        found[own] = Found(own, f"{proc_root}/thread-self/ns/net")
    try:
        pids = [int(name) for name in os.listdir(proc_root) if name.isdigit()]
    except OSError:
        pids = []
    hidden = False
    root = os.geteuid() == 0  # root reads every process's link: a failure is a process gone
    for pid in pids:
        inode = _netns_inode(f"{proc_root}/{pid}/ns/net")
        if inode is None:
            hidden = hidden or (not root and _hidden(f"{proc_root}/{pid}/ns/net"))
            continue
        entry = found.setdefault(inode, Found(inode, f"{proc_root}/{pid}/ns/net"))
        entry.pids.append(pid)
        try:
            tids = os.listdir(f"{proc_root}/{pid}/task")
        except OSError:
            tids = []
        if len(tids) > 1:
            for tid in tids:
                thread = _netns_inode(f"{proc_root}/{pid}/task/{tid}/ns/net")
                if thread is not None and thread not in found:
                    found[thread] = Found(thread, f"{proc_root}/{pid}/task/{tid}/ns/net")
    for inode, point in _mounts(proc_root):
        entry = found.setdefault(inode, Found(inode, point))
        name = _ip_netns_name(point, netns_dir)
        if name is not None and name not in entry.names:
            entry.names.append(name)
    for inode, path in (held_open(proc_root) if held is None else held).items():
        if inode not in found:
            found[inode] = Found(inode, path)
    if not root and (hidden or len(found) > 1):
        warnings.warn(
            "not root: --all-netns reads only the namespaces this user may see and enter"
            " (run as root to read them all)",
            NamespacesHidden,
            stacklevel=2,
        )
    return sorted(found.values(), key=lambda entry: (entry.inode != own, entry.inode))
