"""ss as an oracle: ``ss -tuwxanpe`` output parsed into SPEC.md's terms.

Independent of sockdiff's backends and of the zoo's own /proc reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.helpers.netns import run_in_netns

# ss's state names -> SPEC.md's.
_SS_INET_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "UNCONN": "CLOSE",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
}
_SS_UNIX_STATES = {"ESTAB": "CONNECTED", "LISTEN": "LISTENING", "UNCONN": "UNCONNECTED"}
_SS_UNIX_TYPES = {"u_str": "stream", "u_dgr": "dgram", "u_seq": "seqpacket"}
# Netid State Recv-Q Send-Q Local(path) Local(inode) Peer("*") Peer(inode) [extras];
# the path may hold spaces, so it is found from the right.
_UNIX_LINE = re.compile(
    r"^(?P<netid>u_\w+)\s+(?P<state>\S+)\s+(?P<recv_q>\d+)\s+(?P<send_q>\d+)\s+(?P<path>.*?)\s+(?P<inode>\d+)"
    r"\s+\S+\s+(?P<peer>\d+)(?:\s+(?P<extra>.*))?$"
)
_USER = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)')
_INODE = re.compile(r"\bino:(\d+)")
_V6ONLY = re.compile(r"\bv6only:([01])\b")


@dataclass(frozen=True)
class SsRow:
    """One socket as ``ss -tuwxanpe`` shows it, in SPEC.md's terms."""

    line: str
    proto: str
    family: str
    type: str
    state: str
    local: dict[str, Any]
    remote: dict[str, Any] | None
    inode: int | None  # None: ss does not say (raw sockets read from /proc)
    processes: frozenset[tuple[str, int, int]]
    recv_q: int
    send_q: int
    interface: str | None = None  # the device after the local address: 0.0.0.0%lo:80
    v6only: bool | None = None  # ss -e's v6only:N, where the kernel reports it


def _ss_endpoint(text: str) -> tuple[str, dict[str, Any]]:
    """``[::1]:80`` -> ("inet6", {"address": "::1", "port": 80}); ``*`` is ss's ``::``."""
    host, port = text.rsplit(":", 1)
    host = host.partition("%")[0]
    if host == "*":
        family, host = "inet6", "::"
    elif host.startswith("["):
        family, host = "inet6", host[1:-1]
    else:
        family = "inet"
    return family, {"address": host, "port": 0 if port == "*" else int(port)}


def _processes(extra: str) -> frozenset[tuple[str, int, int]]:
    return frozenset((name, int(pid), int(fd)) for name, pid, fd in _USER.findall(extra))


def parse_ss(output: str) -> list[SsRow]:
    """Parse ``ss -tuwxanpe`` output (header included)."""
    rows: list[SsRow] = []
    for line in output.splitlines()[1:]:
        if not line.strip():
            continue
        if line.startswith("u_"):
            match = _UNIX_LINE.match(line)
            assert match, f"cannot parse ss line {line!r}"
            path = match["path"]
            rows.append(
                SsRow(
                    line,
                    "unix",
                    "unix",
                    _SS_UNIX_TYPES[match["netid"]],
                    _SS_UNIX_STATES.get(match["state"], match["state"]),
                    {"path": None if path == "*" else path},
                    {"peer_inode": int(match["peer"])},
                    int(match["inode"]),
                    _processes(match["extra"] or ""),
                    int(match["recv_q"]),
                    int(match["send_q"]),
                )
            )
            continue
        fields = line.split(maxsplit=6)
        assert len(fields) >= 6, f"cannot parse ss line {line!r}"
        netid, state, recv_q, send_q, local_text, remote_text = fields[:6]
        extra = fields[6] if len(fields) > 6 else ""
        family, local = _ss_endpoint(local_text)
        _, remote = _ss_endpoint(remote_text)
        if remote["address"] == "::" and family == "inet":
            remote["address"] = "0.0.0.0"
        inode = _INODE.search(extra)
        v6only = _V6ONLY.search(extra)
        device = local_text.rsplit(":", 1)[0].partition("%")[2]
        rows.append(
            SsRow(
                line,
                netid,
                family,
                {"tcp": "stream", "udp": "dgram", "raw": "raw"}[netid],
                _SS_INET_STATES.get(state, state),
                local,
                remote,
                int(inode[1]) if inode else None,
                _processes(extra),
                int(recv_q),
                int(send_q),
                device or None,
                None if v6only is None else v6only[1] == "1",
            )
        )
    return rows


def ss_rows(namespace: str) -> list[SsRow]:
    """What ss sees in ``namespace``."""
    return parse_ss(run_in_netns(namespace, ["ss", "-tuwxanpe"]).stdout)


def find_rows(rows: list[SsRow], record: dict[str, Any]) -> list[SsRow]:
    """The ss rows that can be ``record``: same inode, else (raw, TIME_WAIT...) same addresses."""
    same_proto = [row for row in rows if row.proto == record["proto"]]
    by_inode = [row for row in same_proto if record["inode"] and row.inode == record["inode"]]
    if by_inode:
        return by_inode
    return [
        row
        for row in same_proto
        if row.inode in (None, record["inode"])
        and row.family == record["family"]
        and row.local == record["local"]
        and row.remote == record["remote"]
    ]


# [Netid] [State] Recv-Q Send-Q, then the Local and Peer texts: "ADDR:PORT" for
# inet, "PATH INODE" and "* INODE" for UNIX (a path may hold spaces). ss leaves
# the Netid column out when it shows one kind of socket, State when one state.
_TABLE_ROW = re.compile(
    r"^(?:(?P<netid>[a-z]\w*)\s+)?(?:(?P<state>[A-Z][A-Z0-9_-]*)\s+)?(?:\d+|-)\s+(?:\d+|-)\s+(?P<rest>.*)$"
)
_TABLE_INET = re.compile(r"^(?P<local>\S+)\s+(?P<peer>\S+)")
_TABLE_UNIX = re.compile(r"^(?P<path>.*?)\s+(?P<inode>\d+)\s+\*\s+(?P<peer>\d+|-)(?:\s|$)")
_TABLE_NETIDS = frozenset({"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq"})


def table_texts(
    output: str, netid: str | None = None, state: str | None = None
) -> list[tuple[str, str, str, str]]:
    """(netid, state, local, peer) of each TCP, UDP, raw and UNIX row of an ss-like table.

    The same reading serves ``ss -H`` and ``sockdiff show -H``: ss's state names
    become the record's (``ESTAB`` -> ``ESTABLISHED``); other kinds of socket
    that ss lists (netlink, packet) are left out. ``netid``: the kind of every
    row of a table that has no Netid column (ss showing one kind); ``state``
    likewise, for a table without a State column.
    """
    rows = []
    for line in output.splitlines():
        row = _TABLE_ROW.match(line)
        assert row is not None, f"cannot read table line {line!r}"
        kind = row["netid"] or netid
        shown = row["state"] or state
        assert kind is not None and shown is not None, f"no Netid or State in {line!r}"
        if kind not in _TABLE_NETIDS:
            continue
        if kind.startswith("u_"):
            unix = _TABLE_UNIX.match(row["rest"])
            assert unix is not None, f"cannot read table line {line!r}"
            shown = _SS_UNIX_STATES.get(shown, shown)
            rows.append((kind, shown, f"{unix['path']} {unix['inode']}", f"* {unix['peer']}"))
        else:
            inet = _TABLE_INET.match(row["rest"])
            assert inet is not None, f"cannot read table line {line!r}"
            shown = _SS_INET_STATES.get(shown, shown)
            rows.append((kind, shown, inet["local"], inet["peer"]))
    return sorted(rows)
