"""_perf.in_step: two lists walked in step, each item paired once at most with one it is the same as."""

from __future__ import annotations

import operator
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff._perf import in_step


def _check(theirs: list[int], mine: list[int]) -> tuple[list[int], list[int], list[int]]:
    paired, left_theirs, left_mine = in_step(theirs, mine, operator.eq)
    assert len(paired) == len(mine)
    assert all(theirs[i] == mine[j] for j, i in enumerate(paired) if i >= 0)
    used = [i for i in paired if i >= 0]
    # Every place of theirs is paired once or left, never both; mine's unpaired are listed.
    assert sorted(used + left_theirs) == list(range(len(theirs)))
    assert left_mine == [j for j, i in enumerate(paired) if i < 0]
    return paired, left_theirs, left_mine


@settings(max_examples=200, deadline=None)
@given(
    theirs=st.lists(st.integers(0, 30), max_size=120),
    edits=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 200), st.integers(0, 30)), max_size=40),
)
def test_pairs_only_the_same_and_each_once(theirs: list[int], edits: list[tuple[int, int, int]]) -> None:
    """Any two lists (repeats included): what is paired is the same, each place once."""
    mine = list(theirs)
    for kind, place, value in edits:
        if kind == 0 and mine:
            del mine[place % len(mine)]
        elif kind == 1:
            mine.insert(place % (len(mine) + 1), value)
        elif mine:
            mine[place % len(mine)] = value
    _check(theirs, mine)


def test_a_list_that_lost_and_gained_a_few_pairs_all_the_rest() -> None:
    """Two snapshots a little apart: everything on both sides pairs, in step."""
    rng = random.Random(7)
    theirs = list(range(10_000))
    mine = [n for n in theirs if rng.random() > 0.01]
    for extra in range(-1, -51, -1):
        mine.insert(rng.randrange(len(mine) + 1), extra)
    _, left_theirs, left_mine = _check(theirs, mine)
    assert sorted(left_theirs) == sorted(set(theirs) - set(mine))
    assert [mine[j] for j in left_mine] == sorted(range(-1, -51, -1), key=mine.index)


def test_out_of_step_it_stops_and_leaves_the_rest() -> None:
    """A long run added at the front: the walk gives up, leaving the rest to the caller."""
    theirs = list(range(1000))
    mine = list(range(5000, 6000)) + theirs
    _, left_theirs, left_mine = _check(theirs, mine)
    assert left_mine and left_theirs
