"""The harness checks itself: does ``ss`` see exactly the zoo the manifest describes?

``ss -tuwxanpe`` runs inside the zoo's namespace; its output is parsed here
(independently of the zoo's own /proc reading and of sockdiff) and every
manifest socket must appear with the same state, addresses, inode, peer and
owning processes -- and nothing else may appear.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import netns as netns_helpers
from tests.helpers.netns import private_netns
from tests.helpers.ss_oracle import find_rows, parse_ss, ss_rows
from tests.helpers.zoo import ZOO_NAMES, ZooClient, start_zoo


def check_against_ss(client: ZooClient) -> None:
    """Every manifest socket is in ss as described, and ss shows nothing else."""
    assert client.netns is not None
    rows = ss_rows(client.netns)
    problems: list[str] = []
    seen: set[str] = set()
    for name, record in client.sockets.items():
        found = find_rows(rows, record)
        if len(found) != 1:
            problems.append(f"{name}: {len(found)} ss rows match {record}: {[row.line for row in found]}")
            continue
        row = found[0]
        seen.add(row.line)
        expected = {
            "family": record["family"],
            "type": record["type"],
            "state": record["state"],
            "local": record["local"],
            "remote": record["remote"],
            "processes": frozenset((p["name"], p["pid"], p["fd"]) for p in record["processes"]),
        }
        actual = {
            "family": row.family,
            "type": row.type,
            "state": row.state,
            "local": row.local,
            "remote": row.remote,
            "processes": row.processes,
        }
        for key, value in expected.items():
            if actual[key] != value:
                problems.append(f"{name}: {key} is {actual[key]!r} in ss, {value!r} in the manifest")
        if sorted(record["pids"]) != sorted(pid for _, pid, _ in row.processes):
            problems.append(f"{name}: pids {record['pids']} vs ss {row.line}")
    strays = [row.line for row in rows if row.line not in seen]
    if strays:
        problems.append(f"ss shows sockets the manifest does not: {strays}")
    assert not problems, "\n".join(problems)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --------------------------------------------------------------------------


def test_zoo_matches_ss(zoo: ZooClient) -> None:
    """The fresh zoo, as ss sees it."""
    assert tuple(zoo.sockets) == ZOO_NAMES
    assert zoo.pid == zoo.process.pid  # `ip netns exec` execs, it does not fork
    sockets = zoo.sockets
    child = zoo.child_pid
    assert sockets["tcp4_listener"]["pids"] == sorted([zoo.pid, child])
    assert sockets["reuseport_b"]["pids"] == [child]
    assert sockets["reuseport_a"]["local"] == sockets["reuseport_b"]["local"]
    assert sockets["unix_seqpacket_listener"]["pids"] == [child]
    assert sockets["dualstack_server"]["local"]["address"] == "::ffff:127.0.0.1"
    assert sockets["dualstack_server"]["remote"]["address"] == "::ffff:127.0.0.1"
    assert sockets["tcp_timewait"]["inode"] == 0 and sockets["tcp_timewait"]["pids"] == []
    assert sockets["unix_stream_listener"]["local"]["path"].endswith("/zoo listener.sock")
    assert sockets["unix_stream_server"]["local"] == sockets["unix_stream_listener"]["local"]
    assert sockets["unix_abstract_listener"]["local"]["path"] == f"@sockdiff-zoo-{zoo.pid}"
    assert sockets["unix_dgram_unnamed"]["local"] == {"path": None}
    assert sockets["socketpair_a"]["remote"] == {"peer_inode": sockets["socketpair_b"]["inode"]}
    expected_states = {
        "tcp_timewait": "TIME_WAIT",
        "tcp_finwait2": "FIN_WAIT2",
        "tcp_closewait": "CLOSE_WAIT",
        "udp4_bound": "CLOSE",
        "udp6_connected": "ESTABLISHED",
        "raw_icmp6": "CLOSE",
        "unix_dgram_bound": "UNCONNECTED",
        "unix_stream_client": "CONNECTED",
        "unix_seqpacket_listener": "LISTENING",
    }
    assert {name: sockets[name]["state"] for name in expected_states} == expected_states
    check_against_ss(zoo)


def test_commands_match_ss(zoo: ZooClient) -> None:
    """Each command's effect is what the zoo says, as ss sees it."""
    before = zoo.sockets

    answer = zoo.check(
        {"cmd": "listen", "name": "extra_tcp6", "proto": "tcp", "family": "inet6", "address": "::1"}
    )
    assert answer["record"]["state"] == "LISTEN" and answer["record"]["pids"] == [zoo.pid]
    answer = zoo.check(
        {
            "cmd": "listen",
            "name": "extra_seq",
            "proto": "unix",
            "type": "seqpacket",
            "path": "extra.sock",
            "holder": "new_child",
        }
    )
    assert answer["record"]["local"]["path"] == f"{zoo.dir}/extra.sock"
    (holder,) = answer["record"]["pids"]  # one new child, neither the parent nor the first child
    assert holder in zoo.refresh()["children"] and holder not in (zoo.pid, zoo.child_pid)
    check_against_ss(zoo)

    answer = zoo.check({"cmd": "half_close", "name": "tcp6_client"})
    assert answer["states"] == {"tcp6_client": "FIN_WAIT2", "tcp6_server": "CLOSE_WAIT"}
    assert answer["record"]["inode"] == 0 and answer["record"]["pids"] == []
    check_against_ss(zoo)

    answer = zoo.check({"cmd": "listen", "name": "extra_udp4", "proto": "udp", "holder": "child"})
    assert answer["record"]["state"] == "CLOSE" and answer["record"]["pids"] == [zoo.child_pid]
    check_against_ss(zoo)

    for name in ("reuseport_a", "tcp4_listener", "unix_abstract_listener", "unix_stream_listener"):
        answer = zoo.check({"cmd": "restart_in_child", "name": name})
        record = answer["record"]
        assert record["local"] == before[name]["local"]
        assert record["pids"] == [answer["pid"]] and answer["pid"] not in (zoo.pid, zoo.child_pid)
        assert record["inode"] != before[name]["inode"]
        check_against_ss(zoo)
    assert zoo.sockets["reuseport_b"] == before["reuseport_b"]

    answer = zoo.check({"cmd": "close", "name": "tcp4_client"})
    assert answer["record"]["state"] == "FIN_WAIT2" and answer["record"]["inode"] == 0
    assert answer["changed"]["tcp4_server"]["state"] == "CLOSE_WAIT"
    check_against_ss(zoo)

    answer = zoo.check({"cmd": "close", "name": "tcp_closewait"})
    assert answer["record"] is None and "tcp_closewait" not in zoo.sockets
    assert zoo.sockets["tcp_finwait2"]["state"] == "TIME_WAIT" and zoo.sockets["tcp_finwait2"]["inode"] == 0
    check_against_ss(zoo)

    for name in ("udp4_bound", "unix_stream_client", "reuseport_b", "socketpair_a", "raw_icmp"):
        answer = zoo.check({"cmd": "close", "name": name})
        assert answer["record"] is None and name not in zoo.sockets
        check_against_ss(zoo)

    for bad in (
        {"cmd": "close", "name": "no_such_socket"},
        {"cmd": "fly"},
        {"cmd": "half_close", "name": "udp6_bound"},
    ):
        answer = zoo.command(bad)
        assert answer["ok"] is False and answer["error"]
    check_against_ss(zoo)


@pytest.mark.netns
def test_nothing_left_behind() -> None:
    """After the zoo and its namespace: no process, no namespace, no socket file."""
    with private_netns() as name, start_zoo(name) as client:
        client.check({"cmd": "restart_in_child", "name": "reuseport_a"})
        pids = [client.pid, *client.manifest["children"]]
        directory = client.dir
        assert len(pids) == 3 and all(_alive(pid) for pid in pids)
        assert sorted(netns_helpers.netns_pids(name)) == sorted(pids)
    assert not any(_alive(pid) for pid in pids)
    assert name not in netns_helpers.our_netns()
    assert not directory.exists()


def test_eof_on_stdin_stops_the_zoo(netns: str) -> None:
    """Closing the zoo's stdin is an ``exit``: it stops its children and leaves no TIME_WAIT."""
    with start_zoo(netns) as client:
        children = client.manifest["children"]
        assert client.process.stdin is not None
        client.process.stdin.close()
        assert client.process.wait(10) == 0
        assert not any(_alive(pid) for pid in children)
        timewait = client.socket("tcp_timewait")
    # Connections are reset on exit: only the kernel's own TIME_WAIT outlives the zoo.
    rows = [(row.state, row.local, row.remote) for row in ss_rows(netns)]
    assert rows == [("TIME_WAIT", timewait["local"], timewait["remote"])]


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_require_netns_fails_on_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    """Without namespaces, require_netns skips -- but fails when CI=true."""
    monkeypatch.setattr(netns_helpers, "netns_unavailable_reason", lambda: "no namespaces here")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no namespaces here"):
        netns_helpers.require_netns()


def test_ss_parser_handles_spaces_and_wildcards() -> None:
    """The parser itself, on lines like the ones ss prints."""
    out = "\n".join(
        [
            "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process",
            'u_str LISTEN 0 16 /tmp/x/zoo listener.sock 7023 * 0 users:(("python",pid=3,fd=24)) <-> peers:',
            'tcp LISTEN 0 16 *:38127 *:* users:(("python",pid=3,fd=12),("python",pid=4,fd=12)) ino:7008',
            'raw UNCONN 0 0 [::1]:58 *:* users:(("python",pid=3,fd=23))',
            "tcp TIME-WAIT 0 0 127.0.0.1:52806 127.0.0.1:36987 timer:(timewait,58sec,0) ino:0 sk:16",
        ]
    )
    unix, dual, raw6, timewait = parse_ss(out)
    assert (
        unix.local == {"path": "/tmp/x/zoo listener.sock"}
        and unix.inode == 7023
        and unix.state == "LISTENING"
    )
    assert dual.family == "inet6" and dual.local == {"address": "::", "port": 38127}
    assert dual.processes == {("python", 3, 12), ("python", 4, 12)}
    assert raw6.inode is None and raw6.remote == {"address": "::", "port": 0} and raw6.local["port"] == 58
    assert timewait.state == "TIME_WAIT" and timewait.inode == 0
