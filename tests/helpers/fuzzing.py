"""Damaging bytes for the parsers' property tests: ``damaged`` and the hypothesis strategy of its edits."""

from __future__ import annotations

from hypothesis import strategies as st


def damaged(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """``data`` with bytes flipped, cut or inserted at generated places."""
    buffer = bytearray(data)
    for kind, where, value in edits:
        if not buffer:
            break
        place = where % len(buffer)
        if kind == 0:
            buffer[place] ^= value or 1
        elif kind == 1:
            del buffer[place:]
        elif kind == 2:
            buffer.insert(place, value)
        else:
            del buffer[place]
    return bytes(buffer)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8
)
