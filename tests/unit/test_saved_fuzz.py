"""Property-based tests of the saved-listing readers (sockdiff.saved), with test_fuzz.py's profiles.

Generated ss and netstat rows read back exactly (the values written are the
values read); the same listings damaged read as records that pass the
snapshot reader's checks, or raise ``BadSnapshot`` naming line and column; never
anything else. ``SOCKDIFF_FUZZ=thorough`` runs 10,000 examples a property.
"""

from __future__ import annotations

import datetime
import ipaddress
import warnings
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sockdiff import BadSnapshot
from sockdiff.saved import SavedListingNote, read_listing
from sockdiff.snapshots import dumps, loads
from tests.helpers.fuzzing import EDITS, damaged

WHEN = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
PORT = st.integers(0, 65535)
V4 = st.ip_addresses(v=4).map(str)
V6 = st.ip_addresses(v=6).map(str)
SS_STATES = {"ESTAB": "ESTABLISHED", "LISTEN": "LISTEN", "TIME-WAIT": "TIME_WAIT", "SYN-SENT": "SYN_SENT"}
# Any process name but one holding what ends an entry ("," after ")" or the list's close).
NAME = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1, max_size=15).filter(
    lambda name: '",pid=' not in name and "\\" not in name
)
OWNER = st.tuples(NAME, st.integers(1, 4_194_304), st.integers(0, 2**31 - 1))
SS_ROW = st.tuples(
    st.sampled_from(sorted(SS_STATES)),
    V4 | V6,
    PORT,
    V4 | V6,
    PORT,
    st.lists(OWNER, max_size=3),
    st.integers(1, 2**40),
)


def _read(text: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SavedListingNote)
        return read_listing(text, "fuzz.txt", WHEN)


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _mapped(address: str, family: str) -> str:
    """An IPv4 address in an IPv6 socket's row is the mapped address."""
    return address if ":" in address or family == "inet" else f"::ffff:{address}"


def _family(local: str, peer: str) -> str:
    return "inet6" if ":" in local or ":" in peer else "inet"


@given(st.lists(SS_ROW, min_size=1, max_size=6, unique_by=lambda row: row[-1]))  # a socket listed once
def test_ss_rows_read_back_exactly(rows: list[Any]) -> None:
    lines = ["Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process"]
    for state, local, lport, peer, pport, owners, inode in rows:
        users = ",".join(f'("{name}",pid={pid},fd={fd})' for name, pid, fd in owners)
        lines.append(
            f"tcp {state} 0 0 {_host(local)}:{lport} {_host(peer)}:{pport}"
            + (f" users:({users})" if users else "")
            + f" ino:{inode} sk:1 <->"
        )
    snap = _read("\n".join(lines) + "\n")
    assert snap.sockets is not None and len(snap.sockets) == len(rows)
    for sock, (state, local, lport, peer, pport, owners, inode) in zip(snap.sockets, rows, strict=True):
        family = _family(local, peer)
        assert sock.state == SS_STATES[state]
        assert ipaddress.ip_address(sock.local.address) == ipaddress.ip_address(_mapped(local, family))
        assert (sock.local.port, sock.remote.port if sock.remote else None) == (lport, pport)
        assert ipaddress.ip_address(sock.remote.address if sock.remote else "") == ipaddress.ip_address(
            _mapped(peer, family)
        )
        assert sock.inode == inode
        assert {(p.name, p.pid, p.fd) for p in sock.processes} == set(owners)
    assert loads(dumps(snap), "again").sockets == snap.sockets


NETSTAT_ROW = st.tuples(
    st.sampled_from(["tcp", "tcp6", "udp", "udp6"]), V4, PORT, V4, PORT, st.integers(0, 2**31)
)


@given(st.lists(NETSTAT_ROW, min_size=1, max_size=4), EDITS)
def test_damaged_listings_read_or_fail_with_a_place(
    rows: list[Any], edits: list[tuple[int, int, int]]
) -> None:
    lines = [
        "Active Internet connections (servers and established)",
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State       User       Inode",
    ]
    for proto, local, lport, peer, pport, inode in rows:
        state = "ESTABLISHED" if proto.startswith("tcp") else ""
        lines.append(f"{proto:5} 0 0 {local}:{lport} {peer}:{pport} {state:11} 0 {inode}")
    ss_text = (
        f"Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\ntcp ESTAB 0 0 {rows[0][1]}:1 *:*\n"
    )
    for text in ("\n".join(lines) + "\n", ss_text):
        data = damaged(text.encode(), edits)
        try:
            snap = _read(data.decode("utf-8", "surrogateescape"))
        except BadSnapshot as err:
            assert any(said in str(err) for said in (": line ", "neither a sockdiff snapshot", "has no row"))
            continue
        # Whatever was read is a snapshot the file reader takes back.
        assert loads(dumps(snap), "again").sockets == snap.sockets


SAMPLES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "saved").glob("*.txt"))


@given(st.sampled_from(SAMPLES), EDITS)
def test_damaged_samples_read_or_fail_with_a_place(sample: Path, edits: list[tuple[int, int, int]]) -> None:
    data = damaged(sample.read_bytes(), edits)
    try:
        snap = _read(data.decode("utf-8", "surrogateescape"))
    except BadSnapshot as err:
        assert any(said in str(err) for said in (": line ", "neither a sockdiff snapshot", "has no row"))
        return
    assert loads(dumps(snap), "again").sockets == snap.sockets


@given(st.text(max_size=300), st.sampled_from(["ss", "netstat"]), st.booleans())
def test_any_text_reads_or_fails_in_sockdiffs_words(text: str, tool: str, lenient: bool) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SavedListingNote)
            snap = read_listing(text, "any.txt", WHEN, tool, lenient)
    except BadSnapshot as err:
        assert str(err).startswith("any.txt: line ")
        return
    assert loads(dumps(snap), "again").sockets == snap.sockets
