"""watch's polls take the last poll's records again where a socket's messages are as they
were (sockets.Reuse): a socket that changes while its cookie stays is still reported, on
the compiled path and the pure-Python one alike.

The program below runs in a private namespace: 300 connections (several datagrams of a
dump, the changes inside runs taken whole), a baseline, then between polls a connection
closed by its client (the server's end ESTABLISHED -> CLOSE_WAIT, the client's
ESTABLISHED -> FIN_WAIT2: the same sockets, the same cookies), a listener closed and one
opened on its port, and a listener opened anew (its owner found from the inodes that
came, not from every socket's).
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.helpers.netns import run_in_netns

PROGRAM = """
import json, os, socket, time
from sockdiff.watching import watch

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(512)
pairs = []
for _ in range(300):
    client = socket.create_connection(listener.getsockname())
    pairs.append((client, listener.accept()[0]))
reopened = socket.socket()
reopened.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
reopened.bind(("127.0.0.1", 0))
reopened.listen()
port = reopened.getsockname()[1]

polls = iter(watch(0.01, None, protos=("tcp",), events=False, sections=("sockets",)))
next(polls)  # the baseline
next(polls)  # a poll that takes the baseline's records again
client, server = pairs[150]
client_port = client.getsockname()[1]
client.close()  # the server's end: CLOSE_WAIT; the client's: FIN_WAIT2


def state(port):  # the state /proc/net/tcp gives the socket bound to local port
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if int(fields[1].split(":")[1], 16) == port:
                return fields[3]


for _ in range(500):  # the server's ACK of the FIN may come a moment later
    if state(client_port) == "05":
        break
    time.sleep(0.01)
reopened.close()
reopened = socket.socket()
reopened.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
reopened.bind(("127.0.0.1", port))
reopened.listen()
fresh = socket.socket()
fresh.bind(("127.0.0.1", 0))
fresh.listen()
report = next(polls)


def line(sock):
    return [sock.state, sock.local.port, sock.remote.port, [p.pid for p in sock.processes]]


print(json.dumps({
    "pid": os.getpid(),
    "server": server.getsockname()[1], "client": client_port,
    "port": port, "fresh": fresh.getsockname()[1],
    "changed": sorted([line(c.old), line(c.new)] for c in report.diff.changed),
    "opened": sorted(line(s) for s in report.diff.opened),
    "closed": sorted(line(s) for s in report.diff.closed),
}))
"""


@pytest.mark.parametrize("pure", ["", "1"], ids=["compiled", "pure"])
def test_a_socket_changed_under_the_same_cookie_is_reported(netns: str, pure: str) -> None:
    argv = ["env", f"SOCKDIFF_PURE={pure}", sys.executable, "-c", PROGRAM]
    seen = json.loads(run_in_netns(netns, argv, timeout=60).stdout)
    pid, server, client = seen["pid"], seen["server"], seen["client"]
    changes = {(old[1], old[2]): (old[0], new[0]) for old, new in seen["changed"]}
    assert changes[(server, client)] == ("ESTABLISHED", "CLOSE_WAIT"), seen
    assert changes[(client, server)] == ("ESTABLISHED", "FIN_WAIT2"), seen
    # The listener closed and opened again on its port: a new socket (a new inode) in its
    # place, a change; the listener opened anew is new, its owner found.
    assert changes[(seen["port"], 0)] == ("LISTEN", "LISTEN"), seen
    assert len(changes) == len(seen["changed"]) == 3, seen
    assert seen["opened"] == [["LISTEN", seen["fresh"], 0, [pid]]], seen
    assert seen["closed"] == [], seen
