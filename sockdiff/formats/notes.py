"""The notes compare writes on stderr: what it narrowed to, and what it could not compare."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import RT_TABLE_LOCAL, RT_TABLE_MAIN
from .notation import escape

if TYPE_CHECKING:
    from ..differ import Diff
    from ..snapshots import Scope

__all__ = ["ROLE_NOTE", "route_tables_note", "scope_note", "sections_note"]

# What a role comparison (compare --role) compared, and what it left out.
ROLE_NOTE = (
    "compared as a role: listeners only (interfaces, routes, connections, UNIX sockets"
    " and UDP sockets on ephemeral ports not compared)"
)


def scope_note(scope: Scope) -> str:
    """What a comparison narrowed to: ``compared only tcp sockets matching 'sport = :80' ...``."""
    what = "/".join(scope.protos) if scope.protos else "no"
    matching = f" matching {scope.filter!r}" if scope.filter is not None else ""
    return escape(f"compared only {what} sockets{matching}: what both sides cover")


def sections_note(result: Diff) -> str | None:
    """The sections one side took and the other did not, so not compared (None: there are none).

    ``not compared: sockets (i.json was taken with --sections), interfaces (s.json was taken ...)``.
    """
    skipped = []
    for name in ("sockets", "interfaces", "routes"):
        before, after = getattr(result.old, name), getattr(result.new, name)
        if (before is None) != (after is None):
            lacking = result.old if before is None else result.new
            skipped.append(f"{name} ({lacking.origin} has none: {lacking.why_not_taken()})")
    return escape("not compared: " + ", ".join(skipped)) if skipped else None


_TABLE_NAMES = {RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local"}


def route_tables_note(result: Diff) -> str | None:
    """The routing tables compare left out because a side read from /proc cannot see or number them.

    ``routes compared in IPv4's main table and IPv6's main and local tables only: ...``
    (None: every table either side holds was compared).
    """
    from ..coverage import route_coverage
    from ..differ import common_route_tables

    if result.routes is None:
        return None
    common = common_route_tables(result.old, result.new)
    sides = [(snap, route_coverage(snap.header.sources)) for snap in (result.old, result.new)]
    parts = []
    none = []
    for family, label in (("inet", "IPv4"), ("inet6", "IPv6")):
        tables = common[family]
        if tables is None or all(held.tables(family) == tables for _, held in sides):
            continue
        names = [_TABLE_NAMES[t] for t in sorted(tables) if t in _TABLE_NAMES]
        if not names:
            none.append(label)  # a saved netstat -r lists one family
            continue
        parts.append(f"{label}'s {' and '.join(names)} table{'s' if len(names) > 1 else ''}")
    if not parts:
        return escape(f"routes not compared: a side lists no {' or '.join(none)} routes") if none else None
    reasons = []
    for snap, held in sides:
        if held.inet is None:
            continue
        if held.source.startswith("netstat-text"):
            reasons.append(f"{snap.origin}'s come from a saved netstat listing: {held.source}")
        elif held.older:
            reasons.append(f"{snap.origin}'s come from /proc, main tables only (an older file)")
        else:
            reasons.append(
                f"{snap.origin}'s come from /proc, which shows IPv4's main table only"
                " and numbers no IPv6 table but main and local"
            )
    unlisted = f" (no {' or '.join(none)} route is listed on a side)" if none else ""
    return escape(f"routes compared in {' and '.join(parts)} only{unlisted}: {'; '.join(reasons)}")
