"""A saved listing's numbers beyond what a snapshot holds are refused when read (issue 19):
``snapshot --from`` never writes a file its own loader refuses."""

from __future__ import annotations

import datetime

import pytest

from sockdiff.errors import BadSnapshot
from sockdiff.saved import read_listing
from sockdiff.snapshots import dumps, loads

WHEN = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
SS = (
    "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
    "tcp LISTEN {q} 128 127.0.0.1:80 0.0.0.0:*{e}\n"
)
NETSTAT = (
    "Active Internet connections (only servers)\n"
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State       User       Inode\n"
    "tcp        0 {q} 127.0.0.1:80            0.0.0.0:*               LISTEN      0          {i}\n"
)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (SS.format(q=2**32, e=""), "recv_q"),
        (SS.format(q=0, e=f" ino:{2**63} sk:1"), "inode"),
        (NETSTAT.format(q=2**32, i=1), "send_q"),
        (NETSTAT.format(q=0, i=2**63), "inode"),
    ],
)
def test_numbers_past_the_models_ranges_are_refused_naming_the_line(text: str, field: str) -> None:
    with pytest.raises(
        BadSnapshot, match=rf"^x.txt: line [23], column \d+: cannot read this line: {field} is out"
    ):
        read_listing(text, "x.txt", WHEN)


def test_numbers_at_the_models_limits_read_and_load_back() -> None:
    for text in (
        SS.format(q=2**32 - 1, e=f" ino:{2**63 - 1} sk:1"),
        NETSTAT.format(q=2**32 - 1, i=2**63 - 1),
    ):
        saved = read_listing(text, "x.txt", WHEN)
        assert loads(dumps(saved), "again").sockets == saved.sockets
