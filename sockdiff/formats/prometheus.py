"""``prometheus``: Prometheus's text exposition format, for node_exporter's textfile collector.

What is true now, for alerts across a fleet: one ``sockdiff_listening`` series a
listening socket (listeners only, never connections: the series stay bounded),
``sockdiff_sockets`` counts by protocol and state, and from a comparison
``sockdiff_differences`` and one ``sockdiff_unexpected_listening`` (or
``sockdiff_missing_listening``) series a listener the baseline lacks (or had):
a new one, or a program that took or joined a port (and one that left it).
A listener is one series a program holding it (``process`` one name, never a
list: a name may hold any character), 1: sockets alike in every label
(SO_REUSEPORT twins) are one listener, so ``== 1`` and ``> 0`` both find each,
and a series' labels never carry a pid or an inode (the series stay bounded).
The address is as ss writes it: an IPv6 wildcard that takes IPv4 too is ``*``,
one that is IPv6-only (IPV6_V6ONLY) ``::``.
Every family has HELP and TYPE (all are gauges), even when it has no sample, so
an alert on its absence means what it says; no sample carries a timestamp (the
collector refuses them). OpenMetrics readers take this format too.

Label values are the names as sockdiff's text shows them (control characters and
bytes that are not UTF-8 as ``\\xNN``, :func:`~sockdiff.formats.notation.escape`),
then escaped as the exposition format requires: backslash, double quote and
newline. A name can break no line and forge no label or series.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from .._version import __version__
from ..errors import UsageError
from ..model import namespace_labels
from ..ssview import is_listening
from .base import DiffFormat, ListingFormat, ListingOptions, ReportOptions, Section
from .notation import escape, record_netns

if TYPE_CHECKING:
    from ..differ import Change, Diff, SectionDiff
    from ..model import Interface, Route, Socket
    from ..snapshots import Snapshot

__all__ = ["LISTENER_LABELS", "PrometheusFormat", "PrometheusListing", "label_value", "netns_label"]

# The labels of one listener, in sockdiff_listening and the unexpected and missing families.
LISTENER_LABELS = ("proto", "family", "address", "port", "process", "netns")

Labels = tuple[tuple[str, str], ...]


def label_value(text: str) -> str:
    r"""``text`` as a label value: shown as sockdiff's text shows names, escaped for the format.

    >>> print(label_value('a"b\\c\nd'))
    a\"b\\c\\nd
    """
    shown = escape(text, backslash=False, starts_line=False)  # a value is quoted, never a line's start
    return shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def netns_label(sock: Socket, labels: Mapping[int, str]) -> str:
    """The ``netns`` label of a socket: its namespace's label
    (:func:`~sockdiff.formats.notation.record_netns`), "" where it names none."""
    return record_netns(sock, labels) or ""


def _listener(sock: Socket, labels: Mapping[int, str]) -> list[Labels]:
    """A listening socket's series, one a program holding it (``process`` "" where none is
    known): the address as ss names it, the device it is bound to after ``%``."""
    if sock.proto == "unix":
        address, port = (sock.local.path if isinstance(sock.local.path, str) else ""), ""
    else:
        address = sock.local.address if isinstance(sock.local.address, str) else ""
        if sock.family == "inet6" and address == "::" and not sock.v6only:
            address = "*"  # takes IPv4 too, as ss writes it; [::] IPv6-only stays ::
        if sock.interface is not None:
            address = f"{address}%{sock.interface}"
        port = str(sock.local.port)
    netns = netns_label(sock, labels)
    return [
        tuple(zip(LISTENER_LABELS, (sock.proto, sock.family, address, port, program, netns), strict=True))
        for program in sorted({p.name for p in sock.processes} or {""})
    ]


def _sample(name: str, labels: Labels, value: int) -> str:
    inner = ",".join(f'{key}="{label_value(text)}"' for key, text in labels)
    return f"{name}{{{inner}}} {value}\n" if inner else f"{name} {value}\n"


def _family(name: str, help_text: str, samples: Iterable[tuple[Labels, int]]) -> Iterator[str]:
    """One metric family: HELP, TYPE (a gauge), then its samples in label order."""
    yield f"# HELP {name} {help_text}\n"
    yield f"# TYPE {name} gauge\n"
    for labels, value in sorted(samples):
        yield _sample(name, labels, value)


def _series(sockets: Sequence[Socket], labels: Mapping[int, str]) -> set[Labels]:
    """The listener series of ``sockets``: sockets alike in every label (SO_REUSEPORT twins) are one."""
    return {series for s in sockets if is_listening(s) for series in _listener(s, labels)}


def _listeners(name: str, help_text: str, found: set[Labels]) -> Iterator[str]:
    """Listeners one a series, each 1."""
    yield from _family(name, help_text, ((listener, 1) for listener in found))


def _came(
    changed: Sequence[Change[Socket]], labels: tuple[Mapping[int, str], Mapping[int, str]], side: str
) -> set[Labels]:
    """The series of each change's ``side`` (old or new) its other side lacks: a program that took
    a port or joined it (SO_REUSEPORT) is a listener the baseline lacks; one that left it, one it had."""
    found: set[Labels] = set()
    for change in changed:
        if not (change.old.processes and change.new.processes):
            continue  # owners unknown on one side: no program came or went
        old = _series([change.old], labels[0])
        new = _series([change.new], labels[1])
        found |= new - old if side == "new" else old - new
    return found


def _epoch(taken_at: str) -> int:
    moment = datetime.datetime.strptime(taken_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def _snapshot_families(snapshot: Snapshot) -> Iterator[str]:
    """A snapshot's listeners, its socket counts, when it was taken, and which sockdiff wrote this."""
    sockets = snapshot.sockets or ()
    labels = namespace_labels(snapshot.namespaces)
    yield from _listeners(
        "sockdiff_listening",
        "A socket waiting for peers (ss -l), by address, port and program.",
        _series(sockets, labels),
    )
    counts = Counter(
        (("proto", s.proto), ("state", s.state), ("netns", netns_label(s, labels))) for s in sockets
    )
    yield from _family("sockdiff_sockets", "Sockets by protocol and state.", counts.items())
    yield from _family(
        "sockdiff_snapshot_timestamp_seconds",
        "When the snapshot was taken, in seconds since the epoch.",
        [((), _epoch(snapshot.header.taken_at))],
    )
    yield from _family(
        "sockdiff_build_info", "The sockdiff that wrote this.", [((("version", __version__),), 1)]
    )


def _section_counts(
    section: str, found: SectionDiff[Interface] | SectionDiff[Route] | None
) -> list[tuple[Labels, int]]:
    if found is None:
        return []
    return [((("section", section), ("kind", kind)), count) for kind, count in found.summary.items()]


class PrometheusFormat(DiffFormat):
    """A comparison: the new side's listeners and counts, and what differs from the old side."""

    def render(self, result: Diff, options: ReportOptions) -> str:
        del options  # every difference is a sample; alert rules choose what counts
        lines = list(_snapshot_families(result.new))
        differences: list[tuple[Labels, int]] = []
        if result.scope is not None:  # both sides took sockets
            differences += [
                ((("section", "sockets"), ("kind", kind)), count) for kind, count in result.summary.items()
            ]
        differences += _section_counts("interfaces", result.interfaces)
        differences += _section_counts("routes", result.routes)
        lines += _family(
            "sockdiff_differences", "Differences from the baseline, by section and kind.", differences
        )
        old_labels = namespace_labels(result.old.namespaces)
        new_labels = namespace_labels(result.new.namespaces)
        both = (old_labels, new_labels)
        lines += _listeners(
            "sockdiff_unexpected_listening",
            "A listener the baseline does not have.",
            _series(result.opened, new_labels) | _came(result.changed, both, "new"),
        )
        lines += _listeners(
            "sockdiff_missing_listening",
            "A listener the baseline had, gone.",
            _series(result.closed, old_labels) | _came(result.changed, both, "old"),
        )
        return "".join(lines)


class PrometheusListing(ListingFormat):
    """show: the listeners and counts of the sockets chosen."""

    def write(self, out: TextIO, listing: Snapshot, section: Section, options: ListingOptions) -> None:
        del options  # one layout
        if section != "sockets":
            raise UsageError(f"--format prometheus lists sockets, not {section}")
        out.write("".join(_snapshot_families(listing)))
