"""Comparing sources: a file or stored snapshot against live, live against live, watching."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence

from . import store
from .differ import DEFAULT_FIELDS, Diff, diff, persistent
from .model import PROTOS, Socket
from .snapshots import take
from .sources import LIVE, open_source

__all__ = ["compare", "watch"]


def compare(
    old: str | None = None,
    new: str | None = None,
    *,
    netns: str | None = None,
    fields: Sequence[str] = DEFAULT_FIELDS,
    ignore: Callable[[Socket], bool] | None = None,
    only: Callable[[Socket], bool] | None = None,
) -> Diff:
    """Compare two sources; OLD defaults to the newest stored snapshot, NEW to live.

    Two live sources are not read at the same instant, so on a busy host they
    differ by what happened in between. When live meets live the pair is read
    twice and only differences seen both times are reported (the way
    unhide-tcp re-probes before it reports); the result says so.
    """
    old = old or str(store.newest().path)
    new = new or "live"

    def once() -> Diff:
        before = open_source(old, netns=netns)
        after = open_source(new, netns=netns)
        return diff(before, after, fields=fields, ignore=ignore, only=only)

    first = once()
    if old not in LIVE or new not in LIVE:
        return first
    if not (first.opened or first.closed or first.changed):
        return dataclasses.replace(first, persistent_only=True)  # nothing to confirm
    return persistent(first, once())


def watch(
    interval: float = 1.0,
    count: int | None = None,
    *,
    backend: str = "auto",
    netns: str | None = None,
    protos: Sequence[str] = PROTOS,
    where: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Diff]:
    """Like ``netstat -c``: read every ``interval`` seconds and yield what changed.

    ``count`` bounds the number of comparisons (None: until interrupted);
    ``where`` is a filter expression.
    """
    previous = take(backend=backend, netns=netns, protos=protos, where=where)
    done = 0
    while count is None or done < count:
        sleep(interval)
        current = take(backend=backend, netns=netns, protos=protos, where=where)
        yield diff(previous, current)
        previous = current
        done += 1
