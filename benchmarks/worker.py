"""The socket-holding worker: one process's share of the benchmark's sockets.

Started inside the benchmark's namespace as ``python -I worker.py INDEX`` (by
:class:`population.Population`), it opens its listeners and a few UDP and UNIX
sockets, says ``ready PID SOCKETS``, then serves one command a line on its
standard input and answers one line on its standard output:

- ``grow N``: hold N connection pairs (opening or closing some);
- ``churn CLOSE NEW``: close CLOSE pairs spread over those open, open NEW ones;
- answer ``ok PAIRS SOCKETS``, or ``error MESSAGE``.

It exits at end of input, and dies with the benchmark (``PR_SET_PDEATHSIG``). It
imports nothing but the standard library: ``-I`` leaves its directory off sys.path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import sys

#: Listeners a worker accepts on: four IPv4 addresses, one IPv6 (for the ~10% IPv6 share).
V4_LISTENERS = 4
#: Source addresses a worker's IPv4 clients bind to (spreads the ephemeral ports).
V4_SOURCES = 4
#: TCP listeners per worker: the accepting ones plus one idle wildcard listener.
LISTENERS_PER_WORKER = V4_LISTENERS + 2
#: Every tenth connection goes over IPv6.
IPV6_EVERY = 10
#: Linux constants the socket and ctypes modules do not all name on 3.11.
IP_BIND_ADDRESS_NO_PORT = 24
PR_SET_PDEATHSIG = 1


class Worker:
    """One process's share of the sockets: listeners, connection pairs, a few extras.

    Worker INDEX listens on 127.2.INDEX.{1..4}:8000+k and [::1]:7000+INDEX, plus an
    idle [::]:9000+INDEX; its clients bind to 127.1.INDEX.{1..4} (port 0, chosen at
    connect time) so no address pair runs short of ephemeral ports.
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.v4: list[tuple[socket.socket, tuple[str, int]]] = []
        self.sources = [f"127.1.{index}.{k + 1}" for k in range(V4_SOURCES)]
        self.conns: list[tuple[socket.socket, socket.socket]] = []
        self.extras: list[socket.socket] = []
        self.opened = 0
        for k in range(V4_LISTENERS):
            address = (f"127.2.{index}.{k + 1}", 8000 + k)
            self.v4.append((self._listener(socket.AF_INET, address), address))
        self.v6_address = ("::1", 7000 + index)
        self.v6 = self._listener(socket.AF_INET6, self.v6_address)
        self.extras.append(self._listener(socket.AF_INET6, ("::", 9000 + index)))
        self._open_extras()

    @staticmethod
    def _listener(family: int, address: tuple[str, int]) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(4096)
        return sock

    def _open_extras(self) -> None:
        """A few UDP and UNIX sockets, so that -u and -x have something to read."""
        udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp4.bind((f"127.3.{self.index}.1", 5000))
        udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        udp6.bind(("::1", 6000 + self.index))
        udp6.connect(("::1", 6000 + self.index))
        unix_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix_listener.bind(f"\0sockdiff-bench-{os.getpid()}-{self.index}")
        unix_listener.listen(16)
        unix_client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix_client.connect(unix_listener.getsockname())
        unix_server, _ = unix_listener.accept()
        self.extras += [
            udp4,
            udp6,
            unix_listener,
            unix_client,
            unix_server,
            *socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM),
        ]

    def sockets(self) -> int:
        return 2 * len(self.conns) + len(self.v4) + 1 + len(self.extras)

    def _connect(self) -> None:
        n = self.opened
        self.opened += 1
        if n % IPV6_EVERY == IPV6_EVERY - 1:
            listener, target = self.v6, self.v6_address
            client = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        else:
            listener, target = self.v4[n % V4_LISTENERS]
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            client.bind((self.sources[(n // V4_LISTENERS) % V4_SOURCES], 0))
        try:
            # On loopback the handshake completes inside connect(); the listener
            # then holds exactly this connection, so accept() returns its other end.
            client.connect(target)
            server, _ = listener.accept()
        except BaseException:
            client.close()
            raise
        self.conns.append((client, server))

    def _close(self, count: int) -> None:
        """Close ``count`` connections spread evenly over the ones open; the client
        closes first, so it is the client end that lingers in TIME_WAIT."""
        count = min(count, len(self.conns))
        if count == 0:
            return
        step = len(self.conns) / count
        doomed = {int(i * step) for i in range(count)}
        keep: list[tuple[socket.socket, socket.socket]] = []
        for i, pair in enumerate(self.conns):
            if i in doomed:
                pair[0].close()
                pair[1].close()
            else:
                keep.append(pair)
        self.conns = keep

    def handle(self, words: list[str]) -> str:
        match words:
            case ["grow", count]:
                target = int(count)
                if len(self.conns) > target:
                    self._close(len(self.conns) - target)
                while len(self.conns) < target:
                    self._connect()
            case ["churn", close, new]:
                self._close(int(close))
                for _ in range(int(new)):
                    self._connect()
            case _:
                return f"error unknown command {' '.join(words)!r}"
        return f"ok {len(self.conns)} {self.sockets()}"


def worker_main(index: int) -> int:
    """Serve commands from stdin until end of input; see Worker."""
    # A worker outlives nothing: if the benchmark dies, so does it (and at the
    # terminal's Ctrl-C it is the benchmark, not the worker, that cleans up).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(f"sdbench-w{index}")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def reply(text: str) -> None:
        os.write(1, (text.replace("\n", " ") + "\n").encode())

    try:
        worker = Worker(index)
    except Exception as err:
        reply(f"error worker {index} cannot start: {err!r}")
        return 1
    reply(f"ready {os.getpid()} {worker.sockets()}")
    while line := sys.stdin.buffer.readline():
        words = line.decode().split()
        if words == ["exit"]:
            break
        try:
            reply(worker.handle(words))
        except Exception as err:
            reply(f"error worker {index} ({len(worker.conns)} connections open): {err!r}")
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(int(sys.argv[1])))
