"""Comparing sources: a file or stored snapshot against live, live against live (watch: .watching)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from . import store
from .differ import DEFAULT_FIELDS, NETSTAT_TEXT, Diff, Filters, as_fields, diff, persistent, split_changes
from .errors import UsageError
from .model import from_name_text
from .processes import holder
from .roles import ROLE_FIELDS, role_view
from .snapshots import Snapshot
from .sources import LIVE, PLAIN_TEXT, TextOptions, open_source

__all__ = ["compare"]


def compare(
    old: str | os.PathLike[str] | bytes | Snapshot | None = None,
    new: str | os.PathLike[str] | bytes | Snapshot | None = None,
    *,
    netns: str | None = None,
    all_netns: bool = False,
    fields: str | Sequence[str] = DEFAULT_FIELDS,
    ignore: Filters = None,
    only: Filters = None,
    role: bool = False,
    text_options: TextOptions = PLAIN_TEXT,
) -> Diff:
    """Compare two sources (or snapshots); OLD defaults to the newest stored snapshot, NEW to live.

    Only what both sides covered is compared (see :func:`sockdiff.differ.diff`). A
    live side facing a snapshot is read within that snapshot's scope and sections,
    and in its network namespace unless ``netns`` names another (every namespace
    when the snapshot holds every one, or with ``all_netns``).

    Each side is a :class:`Snapshot` or a source: a file, ``-``, a stored name,
    ``live`` or ``live:BACKEND`` (a path may be :class:`os.PathLike` or bytes,
    as :func:`open` takes it; anything else raises
    :class:`~sockdiff.errors.UsageError`). Two live sources are not read at the same
    instant, so on a busy host they differ by what happened in between. When
    live meets live the pair is read twice and only differences seen both times
    are reported (the way unhide-tcp re-probes before it reports); the result
    says so. ``ignore`` and ``only`` take what :func:`~sockdiff.differ.diff` takes;
    ``text_options``, how a saved ss or netstat listing is read.

    ``role``: compare what each side exposes as a role (:func:`~sockdiff.roles.role_view`
    on both: listeners by protocol, address class, port and program names), so
    one golden snapshot checks every host of a role; ``fields`` are then the role's.
    Interfaces and routes are then not compared; the result's ``old`` and ``new``
    are the sides whole (a report's counts and listings describe the host).
    """
    # With no old side: the newest stored snapshot, listed and read in the store held once.
    old = _source(old, "old") if old is not None else store.newest_snapshot()
    new = _source(new, "new") if new is not None else "live"
    fields = ROLE_FIELDS if role else as_fields(fields)
    if all_netns and netns is not None:
        from .acquire import check_namespaces  # the one wording; acquire is not loaded otherwise

        check_namespaces(netns, all_netns)
    if old == "-" and new == "-":
        raise UsageError("standard input can be read once: give '-' for one side only")

    def read(source: str | Snapshot, facing: Snapshot | None) -> Snapshot:
        if isinstance(source, Snapshot):
            return source
        if facing is None:
            return open_source(source, netns=netns, text_options=text_options, all_netns=all_netns)
        if not _is_live(source):
            # sharing its unchanged records
            return open_source(source, netns=netns, like=facing, text_options=text_options)
        if all_netns or facing.namespaces is not None:
            return open_source(source, like=facing, all_netns=True)
        recorded = facing.header.netns  # in the records' notation
        named = from_name_text(recorded) if netns is None and recorded is not None else netns
        return open_source(source, netns=named, like=facing)

    def once() -> Diff:
        # A file is read first, so that a live side can be read as it was.
        if _is_live(old):
            after = read(new, None)
            before = read(old, None if _is_live(new) else after)
        else:
            before = read(old, None)
            after = read(new, before)
        if not role:
            commands = _commands(before, after) if _is_live(old) or _is_live(new) else None
            return diff(before, after, fields=fields, ignore=ignore, only=only, commands=commands)
        # Only the comparison is role-shaped: the sides stay whole, for counts and facts.
        found = diff(role_view(before), role_view(after), fields=fields, ignore=ignore, only=only)
        found = split_changes(found)  # another program on a port: one listener gone, one new
        return dataclasses.replace(found, old=before, new=after, role=True)

    first = once()
    if not (_is_live(old) and _is_live(new)):
        return first
    if not (first.opened or first.closed or first.changed or first.interfaces or first.routes):
        return dataclasses.replace(first, persistent_only=True)  # nothing to confirm
    return persistent(first, once())


def _commands(*sides: Snapshot) -> dict[int, str] | None:
    """argv[0] of the live processes a saved netstat listing names as owners (netstat -p
    named them by it), for :func:`~sockdiff.differ.diff`; None when no side is one."""
    saved = [side for side in sides if side.header.backend == NETSTAT_TEXT]
    if not saved:
        return None
    found = {}
    for pid in {owner.pid for side in saved for sock in side.sockets or () for owner in sock.processes}:
        running = holder(pid)
        if running is not None and running.command:
            found[pid] = running.command[0]
    return found


def _source(value: object, what: str) -> str | Snapshot:
    """A side of a comparison as a snapshot or a source's text (a path as open() takes it)."""
    if isinstance(value, Snapshot):
        return value
    if isinstance(value, str | bytes | os.PathLike):
        path = os.fspath(value)
        return path if isinstance(path, str) else os.fsdecode(path)
    raise UsageError(f"{what}: expected a Snapshot, a source or a path, not {type(value).__name__}")


def _is_live(source: str | Snapshot) -> bool:
    return isinstance(source, str) and source in LIVE
