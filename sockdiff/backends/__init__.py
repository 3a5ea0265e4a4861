"""The backends, chosen in one place, with one fallback policy and one ``sources`` record.

Each backend is a set of section readers: sockets (per protocol), interfaces and
routes. :func:`read` is the only place that picks a reader:

- ``netlink`` reads sockets through sock_diag; a protocol the kernel has no
  sock_diag handler for (raw sockets on many kernels) is read from /proc, as ss
  does. ``proc`` reads /proc/net.
- ``auto`` is netlink, and falls back to proc once, with one
  :class:`BackendFallback` warning, when netlink is not available.
- ``sources`` says where each protocol and section came from, e.g.
  ``{"tcp": "netlink", "raw": "proc", "interfaces": "netlink", "routes": "netlink"}``;
  routes read from /proc say ``"proc (IPv4 main table only)"``: /proc/net/route
  shows no other (/proc/net/ipv6_route shows every IPv6 table). Each route
  reader names its :class:`~sockdiff.coverage.RouteCoverage`, whose word that is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..coverage import EVERY_TABLE, PROC_ROUTES, SECTIONS, BackendName
from ..errors import BackendUnavailable, UsageError
from ..model import Interface, Process, Route, Socket

__all__ = [
    "BACKENDS",
    "BackendFallback",
    "Reading",
    "check_backend",
    "read",
    "sections_of",
]

BACKENDS = ("auto", "netlink", "proc")

Owners = Mapping[int, tuple[Process, ...]]


class BackendFallback(UserWarning):
    """The auto backend fell back from netlink to /proc."""


@dataclass(slots=True)
class Reading:
    """What :func:`read` found: each section taken (None: not asked for) and its sources."""

    backend: BackendName
    sources: dict[str, str] = field(default_factory=dict)
    sockets: list[Socket] | None = None
    interfaces: list[Interface] | None = None
    routes: list[Route] | None = None


def _netlink_sockets(
    protos: Sequence[str], owners: Owners, net_dir: str, sources: dict[str, str]
) -> list[Socket]:
    from .netlink import sockets as sock_diag

    sockets: list[Socket] = []
    with sock_diag.dump_socket() as sock:
        for proto in protos:
            try:
                sockets += sock_diag.read_protocol(sock, proto, owners)
                sources[proto] = "netlink"
            except sock_diag.NoHandler:
                # As ss does: a protocol sock_diag cannot dump is read from /proc
                # (imported only then: most netlink snapshots never need it).
                from .proc import sockets as proc_sockets

                sockets += proc_sockets.read_protocol(proto, owners, net_dir)
                sources[proto] = "proc"
    return sockets


def _proc_sockets(
    protos: Sequence[str], owners: Owners, net_dir: str, sources: dict[str, str]
) -> list[Socket]:
    from .proc import sockets as proc_sockets

    sockets: list[Socket] = []
    for proto in protos:
        sockets += proc_sockets.read_protocol(proto, owners, net_dir)
        sources[proto] = "proc"
    return sockets


SocketReader = Callable[[Sequence[str], Owners, str, dict[str, str]], list[Socket]]
# A section reader takes the /proc net directory of the namespace being read.
SectionReader = Callable[[str], list[Any]]

_SOCKET_READERS: dict[str, SocketReader] = {"netlink": _netlink_sockets, "proc": _proc_sockets}


def _netlink_interfaces(net_dir: str) -> list[Interface]:
    from .netlink import links

    return links.read_interfaces()


def _netlink_routes(net_dir: str) -> list[Route]:
    from .netlink import routes

    return routes.read_routes()


def _proc_interfaces(net_dir: str) -> list[Interface]:
    from .proc import links

    return links.read_interfaces(net_dir)


def _proc_routes(net_dir: str) -> list[Route]:
    from .proc import routes

    return routes.read_routes(net_dir)


# (backend, section) -> the reader and what ``sources`` calls it. rtnetlink
# reads the calling thread's namespace as /proc/thread-self/net does.
_SECTION_READERS: dict[tuple[str, str], tuple[SectionReader, str]] = {
    ("netlink", "interfaces"): (_netlink_interfaces, "netlink"),
    ("netlink", "routes"): (_netlink_routes, EVERY_TABLE.source),
    ("proc", "interfaces"): (_proc_interfaces, "proc"),
    ("proc", "routes"): (_proc_routes, PROC_ROUTES.source),
}


def sections_of(backend: str) -> tuple[str, ...]:
    """The sections ``backend`` can read, in file order."""
    used = "proc" if backend == "proc" else "netlink"
    return tuple(s for s in SECTIONS if s == "sockets" or (used, s) in _SECTION_READERS)


def check_backend(backend: str, sections: Sequence[str] = ("sockets",)) -> None:
    """Refuse an unknown backend or section before anything is read."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    readable = sections_of(backend)
    for section in sections:
        if section not in SECTIONS:
            raise UsageError(f"unknown section {section!r} (choose from {', '.join(SECTIONS)})")
        if section not in readable:
            raise UsageError(f"the {backend} backend cannot read {section}")


def _read_section(
    used: str, section: str, protos: Sequence[str], owners: Owners, net_dir: str, found: Reading
) -> None:
    if section == "sockets":
        found.sockets = _SOCKET_READERS[used](protos, owners, net_dir, found.sources)
        return
    reader, source = _SECTION_READERS[used, section]
    records = reader(net_dir)
    found.sources[section] = source
    if section == "interfaces":
        found.interfaces = records
    else:
        found.routes = records


def read(
    backend: str,
    sections: Sequence[str],
    protos: Sequence[str],
    owners: Owners,
    net_dir: str,
) -> Reading:
    """Read ``sections`` (sockets of ``protos`` only) in the calling thread's namespace.

    With ``auto``, the first section netlink cannot read switches this and every
    later section to /proc, with one :class:`BackendFallback` warning; what was
    already read stays, and ``sources`` says which came from where.
    """
    check_backend(backend, sections)
    found = Reading("proc" if backend == "proc" else "netlink")
    for section in SECTIONS:
        if section not in sections:
            continue
        try:
            _read_section(found.backend, section, protos, owners, net_dir, found)
        except BackendUnavailable as err:
            if backend != "auto" or found.backend == "proc" or section not in sections_of("proc"):
                raise
            warnings.warn(f"{err}; reading /proc/net instead", BackendFallback, stacklevel=3)
            found.backend = "proc"
            _read_section("proc", section, protos, owners, net_dir, found)
    return found
