"""A date line above a saved listing (``date; ss -tanp > saved.txt``) is when it was taken,
and a UTF-8 byte order mark before a listing is read past (issue 19)."""

from __future__ import annotations

import datetime

import pytest

from sockdiff.errors import BadSnapshot
from sockdiff.saved import detect, read_listing

MTIME = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
LISTING = (
    "State  Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
    "LISTEN 0      128        127.0.0.1:8080      0.0.0.0:*\n"
)


@pytest.mark.parametrize(
    ("line", "taken_at"),
    [
        ("Fri Dec  4 22:27:00 UTC 2026", "2026-12-04T22:27:00Z"),
        ("Fri, 04 Dec 2026 23:27:00 +0100", "2026-12-04T22:27:00Z"),
        ("2026-12-04T22:27:00+00:00", "2026-12-04T22:27:00Z"),
        ("Fri Dec  4 23:27:00 CET 2026", None),  # a zone by name: no offset, so no date
    ],
)
def test_a_date_line_on_top_is_when_the_listing_was_taken(line: str, taken_at: str | None) -> None:
    text = f"{line}\n{LISTING}"
    if taken_at is None:
        assert detect(text) is None
        return
    assert detect(text) == "ss"
    saved = read_listing(text, "x.txt", MTIME)
    assert saved.header.taken_at == taken_at
    assert [s.local.port for s in saved.sockets or ()] == [8080]


def test_a_byte_order_mark_is_read_past_and_line_numbers_stay() -> None:
    text = "\ufeff" + LISTING
    assert detect(text) == "ss"
    assert read_listing(text, "x.txt", MTIME).header.taken_at == "2026-12-01T10:00:00Z"
    with pytest.raises(BadSnapshot, match=r"^x\.txt: line 4, column"):  # the date line counted
        read_listing("\ufeffFri Dec  4 22:27:00 UTC 2026\n" + LISTING + "LISTEN x\n", "x.txt", MTIME)
