"""Helpers for the hot paths that handle 100k records at a time."""

from __future__ import annotations

import gc
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from ._accel import speedups

__all__ = ["LOOKAHEAD", "gc_paused", "in_step"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects.

    Decoding 100k records allocates millions of tuples and dicts, and each
    allocation burst sets off collections that find nothing (records hold no
    cycles): pausing it halves the cost of loading a large snapshot.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_fast_in_step = None if speedups is None else speedups.in_step

T = TypeVar("T")
U = TypeVar("U")

# How far :func:`in_step` looks ahead on either side for the item it stands at.
LOOKAHEAD = 8


def in_step(
    theirs: Sequence[T], mine: Sequence[U], same: Callable[[T, U], object]
) -> tuple[list[int], list[int], list[int]]:
    """Pair two lists that hold mostly the same items in one order (two snapshots of
    one host list their sockets in the kernel's order): for each item of ``mine``, the
    place in ``theirs`` of the item it pairs with (-1: none), then the places in
    ``theirs`` and in ``mine`` left unpaired.

    Both are walked side by side, each item compared (``same``) with the other side's
    next few. Once more than ~3% stay unpaired (a long run added or gone: out of step),
    the walk stops and the rest of both is left unpaired. Each item pairs once at most;
    an item that could have paired may be left: the callers pair what is left otherwise.
    Compared by identity (``operator.is_``: watch's two reads sharing records) or by equality
    (``operator.eq``: two files' records as written), the walk is the accelerator's where it
    is built (by equality, an item is the same as itself there, as in a list's ``==``).
    """
    if (same is operator.is_ or same is operator.eq) and _fast_in_step is not None:
        by_identity = same is operator.is_
        walked: tuple[list[int], list[int], list[int]] | None = _fast_in_step(
            theirs, mine, LOOKAHEAD, by_identity
        )
        if walked is not None:
            return walked
    paired = [-1] * len(mine)
    left_theirs: list[int] = []
    left_mine: list[int] = []
    i, count = 0, len(theirs)
    budget = LOOKAHEAD * 8 + len(mine) // 32
    for j, item in enumerate(mine):
        if i < count and same(theirs[i], item):
            paired[j] = i
            i += 1
            continue
        ahead = next((k for k in range(i + 1, min(i + 1 + LOOKAHEAD, count)) if same(theirs[k], item)), None)
        if ahead is not None:  # theirs[i:ahead] are not in mine here
            left_theirs.extend(range(i, ahead))
            paired[j] = ahead
            i = ahead + 1
            continue
        left_mine.append(j)
        if len(left_mine) > budget:
            left_mine.extend(range(j + 1, len(mine)))
            break
        if i < count and not any(same(theirs[i], later) for later in mine[j + 1 : j + 1 + LOOKAHEAD]):
            left_theirs.append(i)  # nor theirs[i] near: step past both
            i += 1
    left_theirs.extend(range(i, count))
    return paired, left_theirs, left_mine
