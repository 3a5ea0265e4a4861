#!/usr/bin/env python3
"""sockdiff's performance judge: sockdiff against ss and netstat at ~100k TCP sockets.

Run as root (it makes a private network namespace)::

    python benchmarks/bench.py [--sockets 100000] [--runs 5] [--sizes 10000,100000]
                               [--sockdiff PATH] [--json PATH]

It fills a private network namespace with real loopback TCP connections held by a
few worker processes, times each sockdiff command against the tool it stands in
for (runs alternate, A B A B ..., and the medians are quoted), times
``sockdiff compare`` of two snapshots, and checks that the cost grows linearly by
measuring at every size of ``--sizes`` as the sockets are opened. The report is
one markdown table of goals, a growth table and the machine it ran on; ``--json``
writes the same as JSON.

Exit status: 0 every goal met, 1 some goal missed, 2 the benchmark could not run,
130 interrupted. The namespace and every process started in it are removed on
the way out, whatever happens.

The same file is the worker (``bench.py --worker INDEX``, started inside the
namespace): it opens sockets when told to over its standard input, answers one
line on its standard output per command, and exits at end of input.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

#: Every namespace made here is named PREFIX + our pid.
PREFIX = "sockdiff-bench-"
#: Sockets one worker may hold, well under the 20,000-descriptor limit per process.
SOCKETS_PER_WORKER = 18_000
#: Descriptors a worker keeps for itself besides the sockets it is asked for.
FD_MARGIN = 200
#: Listeners a worker accepts on: four IPv4 addresses, one IPv6 (for the ~10% IPv6 share).
V4_LISTENERS = 4
#: Source addresses a worker's IPv4 clients bind to (spreads the ephemeral ports).
V4_SOURCES = 4
#: TCP listeners per worker: the accepting ones plus one idle wildcard listener.
LISTENERS_PER_WORKER = V4_LISTENERS + 2
#: Every tenth connection goes over IPv6.
IPV6_EVERY = 10
#: The share of connections closed, and opened, between the two snapshots compare reads.
CHURN_CLOSE = 0.01
CHURN_OPEN = 0.005
#: The per-socket cost may grow this much from the smallest to the largest size and still
#: count as linear (startup cost excluded; see growth()).
LINEAR_TOLERANCE = 1.3
COMPARE_WALL_GOAL = 1.5
COMPARE_RSS_GOAL_MB = 400.0
#: Seconds to wait for a worker to start, open its share, or exit.
WORKER_TIMEOUT = 300.0
IP_TIMEOUT = 30.0
#: Linux constants the socket and ctypes modules do not all name on 3.11.
IP_BIND_ADDRESS_NO_PORT = 24
PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived (SIGINT raises KeyboardInterrupt)."""


def log(message: str) -> None:
    """Progress, on stderr, so that stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- worker


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


# ---------------------------------------------------------------- running commands


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One timed run of a command: wall seconds, the child's peak RSS, how it ended."""

    wall: float
    maxrss_kb: int
    returncode: int
    stderr: str


def find_gnu_time() -> str | None:
    """GNU time's path if it is there and reports a peak RSS (``-f %M``), else None."""
    path = shutil.which("time") or "/usr/bin/time"
    if not os.access(path, os.X_OK):
        return None
    with tempfile.NamedTemporaryFile("r") as out:
        try:
            done = subprocess.run([path, "-f", "%M", "-o", out.name, "true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = out.read().split()
    return path if done.returncode == 0 and lines and lines[-1].isdigit() else None


def run_timed(
    argv: Sequence[str],
    timeout: float,
    stdout: int | None = None,
    gnu_time: str | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``argv`` with stdout to /dev/null (or ``stdout``), time it, and read its peak RSS.

    A child's ru_maxrss starts at its parent's RSS: vfork/fork and exec carry the
    parent's high-water mark over (ours is tens of MB). So the command is started
    through GNU time (``gnu_time``), a ~1 MB process, and its ``%M`` is the peak RSS;
    without it, wait4's ru_maxrss is used and is never below our own RSS.
    ``ip netns exec`` execs the command in its own process, so the process measured
    is the command itself. The run is a process group of its own, killed whole on a
    timeout or an interruption.
    """
    with tempfile.TemporaryFile() as err_file, tempfile.NamedTemporaryFile("r") as rss_file:
        full = [gnu_time, "-f", "%M", "-o", rss_file.name, *argv] if gnu_time else list(argv)
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if stdout is None else stdout,
                stderr=err_file,
                start_new_session=True,
                env=env,
            )
        except OSError as err:
            raise BenchError(f"cannot run {argv[0]}: {err}") from err
        pidfd = os.pidfd_open(proc.pid)
        timed_out = False
        try:
            try:
                ready, _, _ = select.select([pidfd], [], [], timeout)
                if not ready:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                proc.returncode = -signal.SIGKILL
                raise
        finally:
            os.close(pidfd)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        stderr = err_file.read().decode(errors="replace")
        maxrss_kb = usage.ru_maxrss
        if gnu_time:
            # GNU time writes "Command exited with non-zero status N" first when there is one.
            words = rss_file.read().split()
            maxrss_kb = int(words[-1]) if words and words[-1].isdigit() else 0
    if timed_out:
        stderr = f"timed out after {timeout:g} s; " + stderr
    return Run(wall, maxrss_kb, proc.returncode, stderr.strip())


def run_checked(argv: Sequence[str], timeout: float = IP_TIMEOUT) -> str:
    """Run a setup command and return its stdout; BenchError with its stderr if it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"{' '.join(argv)}: {err}") from err
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


# -------------------------------------------------------------- namespace, workers


def list_netns() -> list[str]:
    out = run_checked(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(name: str) -> list[int]:
    try:
        out = run_checked(["ip", "netns", "pids", name])
    except BenchError:
        return []
    return [int(word) for word in out.split() if word.isdigit()]


class WorkerHandle:
    """The benchmark's end of one worker: its process and a line protocol over pipes."""

    def __init__(self, proc: subprocess.Popen[bytes], index: int) -> None:
        self.proc = proc
        self.index = index
        self.buffer = b""
        self.sockets = 0
        self.conns = 0

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError as err:
            raise BenchError(f"worker {self.index} died ({self._status()})") from err

    def _status(self) -> str:
        code = self.proc.poll()
        return "still running" if code is None else f"exit status {code}"

    def read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"worker {self.index} did not answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise BenchError(f"worker {self.index} died ({self._status()})")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        text = line.decode(errors="replace")
        if text.startswith("error"):
            raise BenchError(text.removeprefix("error").strip())
        return text

    def take_counts(self, line: str) -> None:
        _ok, conns, sockets = line.split()
        self.conns, self.sockets = int(conns), int(sockets)


class Namespace:
    """A private network namespace full of workers; close() leaves nothing behind."""

    def __init__(self, sockets_per_worker: int) -> None:
        self.name = f"{PREFIX}{os.getpid()}"
        self.sockets_per_worker = sockets_per_worker
        self.workers: list[WorkerHandle] = []
        self.created = False

    def create(self) -> None:
        if self.name in list_netns():
            raise BenchError(f"namespace {self.name} already exists")
        run_checked(["ip", "netns", "add", self.name])
        self.created = True
        run_checked(["ip", "-n", self.name, "link", "set", "lo", "up"])
        for setting in (
            "net.ipv4.ip_local_port_range=1024 65535",
            "net.core.somaxconn=65535",
            "net.ipv4.tcp_max_syn_backlog=65535",
        ):
            run_checked(self.exec_argv(["sysctl", "-q", "-w", setting]))

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def start_workers(self, count: int) -> None:
        for index in range(count):
            proc = subprocess.Popen(
                self.exec_argv([sys.executable, "-I", str(Path(__file__).resolve()), "--worker", str(index)]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # the terminal's Ctrl-C is ours to handle, not theirs
            )
            self.workers.append(WorkerHandle(proc, index))
        for worker in self.workers:
            ready = worker.read_line(WORKER_TIMEOUT).split()
            worker.sockets = int(ready[2])

    def listeners(self) -> int:
        return LISTENERS_PER_WORKER * len(self.workers)

    def _everyone(self, commands: list[str]) -> None:
        for worker, command in zip(self.workers, commands, strict=True):
            worker.send(command)
        for worker in self.workers:
            worker.take_counts(worker.read_line(WORKER_TIMEOUT))

    def grow(self, tcp_sockets: int) -> None:
        """Hold ``tcp_sockets`` TCP sockets in all: the listeners plus connection pairs."""
        conns = max(0, (tcp_sockets - self.listeners()) // 2)
        share, extra = divmod(conns, len(self.workers))
        self._everyone([f"grow {share + (i < extra)}" for i in range(len(self.workers))])

    def churn(self, close_share: float, open_share: float) -> tuple[int, int]:
        """Close and open a share of each worker's connections; the totals."""
        closes = [round(w.conns * close_share) for w in self.workers]
        opens = [round(w.conns * open_share) for w in self.workers]
        self._everyone([f"churn {c} {o}" for c, o in zip(closes, opens, strict=True)])
        return sum(closes), sum(opens)

    def census(self) -> dict[str, Any]:
        """What ``ss`` sees in the namespace: sockets by kind, TCP sockets by state."""
        out = run_checked(self.exec_argv(["ss", "-tuwxanH"]), timeout=300)
        kinds: Counter[str] = Counter()
        tcp_states: Counter[str] = Counter()
        for line in out.splitlines():
            words = line.split(maxsplit=2)
            if len(words) < 2:
                continue
            kinds[words[0]] += 1
            if words[0] == "tcp":
                tcp_states[words[1]] += 1
        return {
            "tcp": kinds["tcp"],
            "all": sum(kinds.values()),
            "kinds": dict(kinds),
            "tcp_states": dict(tcp_states.most_common()),
        }

    def close(self) -> None:
        """Stop the workers (end of input, then SIGKILL), kill anything else in the
        namespace, delete it. Each step runs even when an earlier one fails."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                assert worker.proc.stdin is not None
                worker.proc.stdin.close()
        deadline = time.monotonic() + 10
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(timeout=10)
            if worker.proc.stdout is not None:
                worker.proc.stdout.close()
        self.workers = []
        if not self.created:
            return
        deadline = time.monotonic() + 10
        while (pids := netns_pids(self.name)) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        if pids:
            log(f"warning: processes {pids} in {self.name} would not die")
        try:
            run_checked(["ip", "netns", "delete", self.name])
        except BenchError as err:
            log(f"warning: {err}")
        try:
            left = self.name in list_netns()
        except BenchError as err:
            log(f"warning: {err}")
            left = True
        if left:
            log(f"warning: namespace {self.name} may still be there: ip netns delete {self.name}")
        else:
            self.created = False


# ------------------------------------------------------------------- measurement


@dataclasses.dataclass(frozen=True, slots=True)
class Pair:
    """A sockdiff snapshot command and the tool it is held against."""

    key: str
    sockdiff: tuple[str, ...]
    reference: tuple[str, ...]
    goal: float
    processes: bool  # scans /proc/PID/fd, whose cost grows with the workers' descriptors
    slow: bool = False  # netstat -p: may use fewer runs


def pairs() -> list[Pair]:
    snap = ("snapshot", "--backend")
    return [
        Pair("netlink", (*snap, "netlink", "--no-processes", "-o", "-"), ("ss", "-tuwxan"), 1.5, False),
        Pair("netlink -p", (*snap, "netlink", "-o", "-"), ("ss", "-tuwxanp"), 0.5, True),
        Pair("proc", (*snap, "proc", "--no-processes", "-o", "-"), ("netstat", "-tuwxan"), 1.5, False),
        Pair("proc -p", (*snap, "proc", "-o", "-"), ("netstat", "-tuwxanp"), 0.5, True, slow=True),
    ]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclasses.dataclass(slots=True)
class Series:
    """The runs of one command at one size."""

    command: str
    walls: list[float] = dataclasses.field(default_factory=list)
    rss_kb: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None

    def add(self, run: Run, ok_codes: tuple[int, ...] = (0,)) -> bool:
        if run.returncode not in ok_codes:
            tail = run.stderr.splitlines()[-3:] if run.stderr else []
            self.error = f"exit status {run.returncode}: {' | '.join(tail) or 'no message'}"
            return False
        self.walls.append(run.wall)
        self.rss_kb.append(run.maxrss_kb)
        return True

    @property
    def wall(self) -> float | None:
        return None if self.error else median(self.walls)

    @property
    def rss_mb(self) -> float | None:
        return None if self.error or not self.rss_kb else statistics.median(self.rss_kb) / 1024

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "median_s": self.wall,
            "median_maxrss_mb": self.rss_mb,
            "walls_s": self.walls,
            "maxrss_kb": self.rss_kb,
            "error": self.error,
        }


@dataclasses.dataclass(slots=True)
class Stage:
    """Everything measured at one size."""

    target: int
    census: dict[str, Any]
    series: dict[str, tuple[Series, Series]] = dataclasses.field(default_factory=dict)
    compare: Series | None = None
    # The same sockdiff command for UNIX sockets only, run in turn with the others:
    # its start-up cost at this moment (see growth()).
    baselines: dict[str, Series] = dataclasses.field(default_factory=dict)
    diff_summary: dict[str, int] | None = None

    @property
    def tcp(self) -> int:
        return int(self.census["tcp"])


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sockdiff: str = args.sockdiff
        self.ns = Namespace(args.sockets_per_worker)
        self.tmp = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.stages: list[Stage] = []
        self.gnu_time = find_gnu_time()
        # Time sockdiff the way an installed copy runs: from compiled bytecode. Where
        # PYTHONDONTWRITEBYTECODE is set and the package has no __pycache__ (an editable
        # install), every run would compile sockdiff's modules afresh. The bytecode goes
        # to our temporary directory, not beside the sources; the warm-up run writes it.
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPYCACHEPREFIX"] = str(self.tmp / "pycache")
        self.launch_overhead: float | None = None

    def close(self) -> None:
        try:
            self.ns.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def in_ns(self, argv: Sequence[str]) -> list[str]:
        return self.ns.exec_argv(argv)

    def sockdiff_argv(self, args: Sequence[str]) -> list[str]:
        return [self.sockdiff, *args]

    def timed(self, argv: Sequence[str], stdout: int | None = None) -> Run:
        return run_timed(argv, self.args.timeout, stdout=stdout, gnu_time=self.gnu_time, env=self.env)

    def run(self) -> None:
        sizes: list[int] = self.args.sizes
        self.ns.create()
        if not self.gnu_time:
            log("warning: no GNU time; peak RSS is wait4's, never below this script's own RSS")
        true = self.in_ns(["true"])
        self.launch_overhead = statistics.median(self.timed(true).wall for _ in range(20))
        log(f"launching a command costs {self.launch_overhead * 1000:.1f} ms (`ip netns exec NS true`)")
        log(f"namespace {self.ns.name}; measuring at 0 (startup cost), then {', '.join(map(str, sizes))}")
        self.stages.append(self.measure(0))
        workers = math.ceil(max(sizes) / self.ns.sockets_per_worker)
        log(f"starting {workers} workers ({self.ns.sockets_per_worker} sockets at most each)")
        self.ns.start_workers(workers)
        for size in sizes:
            start = time.perf_counter()
            self.ns.grow(size)
            log(f"opened sockets up to {size} in {time.perf_counter() - start:.1f} s")
            self.stages.append(self.measure(size))

    def measure(self, size: int) -> Stage:
        census = self.ns.census()
        log(
            f"namespace holds {census['tcp']} TCP sockets {census['tcp_states']}; all kinds {census['kinds']}"
        )
        if size and not size - 2 <= census["tcp"] <= size * 1.05 + 100:
            raise BenchError(f"asked for {size} TCP sockets, ss counts {census['tcp']}")
        stage = Stage(size, census)
        # Below the goal table's size the runs are cheap, and the growth check, which
        # subtracts the start-up time, needs their medians to be tight.
        big = size >= self.args.sockets
        runs: int = self.args.runs if big else self.args.small_runs
        for pair in pairs():
            n = self.args.slow_runs if pair.slow and big else runs
            argv = self.sockdiff_argv(pair.sockdiff)
            sa = Series("sockdiff " + " ".join(pair.sockdiff))
            sb = Series(" ".join(pair.reference))
            commands = [(self.in_ns(argv), sa), (self.in_ns(pair.reference), sb)]
            if size and not pair.processes:
                # The start-up baseline: the same command for UNIX sockets only (a
                # handful here). An empty namespace would not do for the proc
                # backend: /proc/net/tcp walks the kernel's one TCP hash table, every
                # namespace's sockets included.
                stage.baselines[pair.key] = Series(f"{sa.command} -x (start-up baseline)")
                commands.append((self.in_ns([*argv, "-x"]), stage.baselines[pair.key]))
            self.alternate(commands, n)
            stage.series[pair.key] = sa, sb
        self.measure_compare(stage, runs)
        return stage

    def alternate(self, commands: Sequence[tuple[list[str], Series]], runs: int, ok: int = 0) -> None:
        """Time the commands in turns, A B A B ..., after untimed warm-up runs; a
        command exiting with more than ``ok`` is an error and is run no more."""
        ok_codes = tuple(range(ok + 1))
        for i in range(self.args.warmup + runs):
            for argv, series in commands:
                if series.error:
                    continue
                run = self.timed(argv)
                if i >= self.args.warmup or run.returncode not in ok_codes:
                    series.add(run, ok_codes)  # a failed warm-up run records the error
        for _, series in commands:
            log(f"  {self._fmt(series)} {series.command}")

    @staticmethod
    def _fmt(series: Series) -> str:
        if series.error:
            return f"ERROR ({series.error})"
        return f"{series.wall:8.3f} s {series.rss_mb:7.1f} MB"

    def measure_compare(self, stage: Stage, runs: int) -> None:
        """Two snapshots a little apart, then ``sockdiff compare A B --format json``."""
        old, new = self.tmp / f"old-{stage.target}.json", self.tmp / f"new-{stage.target}.json"
        snap = ["snapshot", "--backend", "netlink", "-o"]
        for path, label in ((old, "A"), (new, "B")):
            if label == "B" and self.ns.workers:
                closed, opened = self.ns.churn(CHURN_CLOSE, CHURN_OPEN)
                log(f"  between snapshots: closed {closed} connections, opened {opened}")
            run = self.timed(self.in_ns(self.sockdiff_argv([*snap, str(path)])))
            if run.returncode != 0:
                stage.compare = Series("compare", error=f"snapshot {label} failed: {run.stderr[-300:]}")
                return
        argv = self.sockdiff_argv(["compare", str(old), str(new), "--format", "json"])
        series = Series(f"sockdiff compare A B --format json ({stage.tcp} sockets)")
        out_path = self.tmp / "diff.json"
        with open(out_path, "wb") as out:  # the warm-up run's output is kept, for its summary
            run = self.timed(argv, stdout=out.fileno())
        if run.returncode not in (0, 1):
            series.add(run, ok_codes=(0, 1))
        else:
            with contextlib.suppress(ValueError, KeyError, OSError):
                stage.diff_summary = json.loads(out_path.read_bytes())["summary"]
        commands = [(argv, series)]
        if stage.target:
            empty = [str(self.tmp / "old-0.json"), str(self.tmp / "new-0.json")]
            stage.baselines["compare"] = Series("sockdiff compare of the empty snapshots")
            commands.append(
                (self.sockdiff_argv(["compare", *empty, "--format", "json"]), stage.baselines["compare"])
            )
        self.alternate(commands, runs, ok=1)
        stage.compare = series
        log(f"  compare's diff: {stage.diff_summary}")


# ------------------------------------------------------------------------ report


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def secs(value: float | None) -> str:
    return "error" if value is None else f"{value:.3f} s"


def verdict(ok: bool | None) -> str:
    return "error" if ok is None else ("PASS" if ok else "FAIL")


def growth_verdict(ok: bool | None) -> str:
    return "n/a (no cost above start-up at the smallest size)" if ok is None else verdict(ok)


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def growth(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """Per-socket cost of every command at every size, and how it grows.

    ``raw``: seconds per socket at the largest size over the same at the smallest.
    ``net``: the same after subtracting the start-up cost (interpreter, imports),
    which would otherwise make any command with a fixed start-up look sublinear.
    ``net`` is the one judged. At 10k sockets the cost above start-up is a few tens
    of milliseconds, so the start-up is measured in turn with the runs it is taken
    from: the same command with -x, reading only the namespace's few UNIX sockets
    (``Stage.baselines``), or compare of two empty snapshots. The -p variants cannot
    be measured that way (their scan of /proc/PID/fd would see the workers'
    descriptors), nor can the references: theirs is the cost measured before any
    socket was opened (stage 0).
    """
    base = stages[0]
    sized = [s for s in stages[1:] if s.tcp > 0]
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, int]] = [(k, i) for k in base.series for i in (0, 1)]
    for key, side in [*keys, ("compare", 0)]:

        def pick(stage: Stage, key: str = key, side: int = side) -> Series | None:
            return stage.compare if key == "compare" else stage.series[key][side]

        series0 = pick(base)
        assert series0 is not None
        t0 = series0.wall
        row: dict[str, Any] = {
            "command": series0.command.split(" (")[0],
            "sockdiff": side == 0,
            "startup_s": t0,
            "sizes": [],
        }
        for stage in sized:
            series = pick(stage)
            t = series.wall if series else None
            baseline = stage.baselines.get(key) if side == 0 else None
            start = baseline.wall if baseline else t0
            row["sizes"].append(
                {
                    "target": stage.target,
                    "tcp_sockets": stage.tcp,
                    "median_s": t,
                    "startup_s": start,
                    "startup_from": baseline.command if baseline else "before any socket was opened",
                    "ms_per_1k": None if t is None else t / stage.tcp * 1e6,
                    "net_ms_per_1k": None if t is None or start is None else (t - start) / stage.tcp * 1e6,
                    "maxrss_mb": series.rss_mb if series else None,
                }
            )
        first, last = (row["sizes"][0], row["sizes"][-1]) if len(row["sizes"]) >= 2 else (None, None)
        row["raw_ratio"] = row["net_ratio"] = row["linear"] = None
        if first and last and first["median_s"] is not None and last["median_s"] is not None:
            row["raw_ratio"] = last["ms_per_1k"] / first["ms_per_1k"]
            if first["net_ms_per_1k"] and first["net_ms_per_1k"] > 0:
                row["net_ratio"] = last["net_ms_per_1k"] / first["net_ms_per_1k"]
                row["linear"] = row["net_ratio"] <= LINEAR_TOLERANCE
        rows.append(row)
    return rows


def cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its
    reaped children) so far: the difference over a run is what others used."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    return busy, ours


def source_fingerprint(sockdiff: str) -> str:
    """Where the timed sockdiff's package is and a hash of its .py files, to tell
    whether the code changed while the benchmark ran (not just which commit)."""
    try:
        with open(sockdiff, "rb") as script:
            first = script.readline()
        python = first[2:].decode().split()[0] if first.startswith(b"#!") else sys.executable
        where = subprocess.run(
            [python, "-c", "import os, sockdiff; print(os.path.dirname(sockdiff.__file__))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        digest = hashlib.sha256()
        for path in sorted(Path(where).rglob("*.py")):
            digest.update(str(path.relative_to(where)).encode() + b"\0" + path.read_bytes() + b"\0")
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return "unknown"
    return f"{where} sha256:{digest.hexdigest()[:12]}"


def environment(sockdiff: str) -> dict[str, Any]:
    def first_line(argv: Sequence[str]) -> str:
        try:
            out = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"

    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    repo = Path(__file__).resolve().parent.parent
    commit = first_line(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown"
        )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sockdiff": first_line([sockdiff, "--version"]),
        "sockdiff_path": sockdiff,
        "git": commit,
        "ss": first_line(["ss", "-V"]),
        "netstat": first_line(["netstat", "-V"]),
    }


def report(bench: Bench, env: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """The markdown report, the same as JSON, and whether every goal was met."""
    args = bench.args
    main = next(s for s in bench.stages if s.target == args.sockets)
    overhead = bench.launch_overhead
    env = {
        **env,
        "launch overhead": "unknown"
        if overhead is None
        else f"{overhead * 1000:.1f} ms (in every wall time)",
        "peak RSS from": "GNU time %M" if bench.gnu_time else "wait4 ru_maxrss (floor: the bench's own RSS)",
    }
    rows: list[list[str]] = []
    results: list[dict[str, Any]] = []
    all_ok = True
    for pair in pairs():
        sa, sb = main.series[pair.key]
        ta, tb = sa.wall, sb.wall
        ratio = None if ta is None or tb is None else ta / tb
        per_run = [a / b for a, b in zip(sa.walls, sb.walls, strict=False)]
        ok = None if ratio is None else ratio <= pair.goal
        all_ok = all_ok and bool(ok)
        what = f"`{sa.command}` / `{sb.command}`"
        rows.append(
            [
                what,
                secs(ta),
                secs(tb),
                "error" if ratio is None else f"{ratio:.3f}",
                f"<= {pair.goal}",
                verdict(ok),
            ]
        )
        results.append(
            {
                "what": what,
                "sockdiff": sa.to_json(),
                "reference": sb.to_json(),
                "ratio_of_medians": ratio,
                "median_of_run_ratios": median(per_run),
                "goal": pair.goal,
                "pass": ok,
            }
        )
    cmp = main.compare
    assert cmp is not None
    cw, crss = cmp.wall, cmp.rss_mb
    ok = None if cw is None or crss is None else cw <= COMPARE_WALL_GOAL and crss <= COMPARE_RSS_GOAL_MB
    all_ok = all_ok and bool(ok)
    what = f"`sockdiff compare A B --format json` of two {size_label(args.sockets)} snapshots"
    rows.append(
        [
            what,
            "error" if cw is None else f"{cw:.3f} s, {crss:.0f} MB peak RSS",
            "—",
            "—",
            f"<= {COMPARE_WALL_GOAL} s wall, <= {COMPARE_RSS_GOAL_MB:.0f} MB peak RSS",
            verdict(ok),
        ]
    )
    results.append(
        {
            "what": what,
            "sockdiff": cmp.to_json(),
            "diff_summary": main.diff_summary,
            "goal": {"wall_s": COMPARE_WALL_GOAL, "maxrss_mb": COMPARE_RSS_GOAL_MB},
            "pass": ok,
        }
    )

    grow = growth(bench.stages)
    judged = [g for g in grow if g["sockdiff"]]
    sized = [s for s in bench.stages[1:] if s.tcp > 0]
    span = f"{size_label(sized[0].target)} -> {size_label(sized[-1].target)}" if len(sized) >= 2 else "n/a"
    worst = max(judged, key=lambda g: g["net_ratio"] if g["net_ratio"] is not None else math.inf)
    gok: bool | None = None if any(g["linear"] is None for g in judged) else all(g["linear"] for g in judged)
    all_ok = all_ok and bool(gok)
    what = f"cost growth {span} (per-socket cost, start-up excluded)"
    worst_ratio = worst["net_ratio"]
    rows.append(
        [
            what,
            f"worst: {worst['command']}",
            "—",
            "error" if worst_ratio is None else f"{worst_ratio:.2f}",
            f"linear (<= {LINEAR_TOLERANCE})",
            growth_verdict(gok),
        ]
    )
    results.append(
        {
            "what": what,
            "worst": worst["command"],
            "worst_net_ratio": worst_ratio,
            "goal": f"net ratio <= {LINEAR_TOLERANCE}",
            "pass": gok,
        }
    )

    out: list[str] = []
    census = main.census
    if str(env.get("sockdiff source", "")).startswith("CHANGED"):
        out.append("**Warning: sockdiff's source changed during the run; these results mix versions.**\n")
    out.append(
        f"## sockdiff benchmark: {census['tcp']} TCP sockets "
        f"({', '.join(f'{v} {k}' for k, v in census['tcp_states'].items())})\n"
    )
    slow = f" (netstat -p pair: {args.slow_runs})" if args.slow_runs != args.runs else ""
    out.append(
        f"Medians of {args.runs} alternating runs{slow}, {args.small_runs} at the smaller sizes, "
        f"after {args.warmup} warm-up run(s) each; every command run as "
        "`ip netns exec NS CMD >/dev/null`, except compare (no namespace needed).\n"
    )
    out.append(markdown(["what", "sockdiff median", "reference median", "ratio", "goal", "result"], rows))

    sizes = [size_label(s.target) for s in sized]
    header = ["command", "start-up s @" + " / ".join(["0", *sizes])]
    header += [f"ms/1k @{s}" for s in sizes] + [f"net ms/1k @{s}" for s in sizes]
    header += ["raw ratio", "net ratio", "linear"]
    grow_rows = []
    for g in grow:
        name = f"`{g['command']}`" if g["sockdiff"] else g["command"]
        starts = [g["startup_s"], *(z["startup_s"] for z in g["sizes"])]
        cells = [name, " / ".join("—" if t is None else f"{t:.3f}" for t in starts)]
        cells += [_num(z["ms_per_1k"]) for z in g["sizes"]] + [_num(z["net_ms_per_1k"]) for z in g["sizes"]]
        cells += [
            _num(g["raw_ratio"]),
            _num(g["net_ratio"]),
            growth_verdict(g["linear"]) if g["sockdiff"] else "(reference)",
        ]
        grow_rows.append(cells)
    out.append(f"\n### Growth {span}\n")
    out.append(
        "ms/1k: median wall time per 1,000 TCP sockets. net: after subtracting the start-up time; for "
        "the sockdiff commands without -p that is the same command with -x (the namespace's few UNIX "
        "sockets only; compare: of two empty snapshots), run in turn with them at each size; otherwise "
        "the time before any socket was opened. "
        f"Ratios: largest size over smallest; 1.0 is linear, <= {LINEAR_TOLERANCE} passes.\n"
    )
    out.append(markdown(header, grow_rows))

    out.append("\n### Medians at each size\n")
    med_header = (
        ["command"]
        + [f"{size_label(s.target)} ({s.tcp} TCP)" if s.target else "0" for s in bench.stages]
        + ["peak RSS @largest"]
    )
    med_rows = []
    for g in grow:
        med_rows.append(
            [g["command"], secs(g["startup_s"])]
            + [secs(z["median_s"]) for z in g["sizes"]]
            + [_num(g["sizes"][-1]["maxrss_mb"] if g["sizes"] else None, " MB")]
        )
    out.append(markdown(med_header, med_rows))
    if main.diff_summary:
        out.append(f"\ncompare's diff at {size_label(args.sockets)}: {main.diff_summary}")

    out.append("\n### Machine\n")
    out.append(markdown(["", ""], [[k, str(v)] for k, v in env.items()]))
    document = {
        "format": "sockdiff.bench",
        "version": 1,
        "environment": env,
        "settings": {
            "sockets": args.sockets,
            "sizes": args.sizes,
            "runs": args.runs,
            "slow_runs": args.slow_runs,
            "small_runs": args.small_runs,
            "warmup": args.warmup,
            "timeout": args.timeout,
            "linear_tolerance": LINEAR_TOLERANCE,
        },
        "census": census,
        "goals": results,
        "growth": grow,
        "all_pass": all_ok,
        "stages": [
            {
                "target": s.target,
                "census": s.census,
                "diff_summary": s.diff_summary,
                "series": {k: [a.to_json(), b.to_json()] for k, (a, b) in s.series.items()},
                "compare": s.compare.to_json() if s.compare else None,
            }
            for s in bench.stages
        ],
    }
    return "\n".join(out) + "\n", document, all_ok


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.2f}{unit}"


# -------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.py", description="Time sockdiff against ss and netstat in a namespace full of sockets."
    )
    parser.add_argument(
        "--sockets", type=int, default=100_000, help="TCP sockets for the goal table (default 100000)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (default 5)")
    parser.add_argument(
        "--slow-runs", type=int, default=None, help="timed runs of the netstat -p pair (default: --runs)"
    )
    parser.add_argument(
        "--small-runs",
        type=int,
        default=None,
        help="timed runs at the sizes below --sockets and with no sockets (default: 3 x --runs)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="sizes to measure the growth at; --sockets is added (default 10000,100000)",
    )
    parser.add_argument("--sockdiff", default=None, help="the sockdiff to time (default: beside this python)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here as JSON")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any one command may take")
    parser.add_argument(
        "--sockets-per-worker",
        type=int,
        default=SOCKETS_PER_WORKER,
        help=f"sockets one worker process holds at most (default {SOCKETS_PER_WORKER})",
    )
    args = parser.parse_args(argv)
    try:
        sizes = {int(word) for word in args.sizes.split(",") if word.strip()}
    except ValueError:
        parser.error(f"--sizes: not a comma list of integers: {args.sizes!r}")
    args.sizes = sorted(sizes | {args.sockets})
    if args.runs < 1 or args.warmup < 0 or args.sizes[0] < 100:
        parser.error("--runs must be >= 1, --warmup >= 0, sizes >= 100")
    args.slow_runs = args.runs if args.slow_runs is None else args.slow_runs
    args.small_runs = 3 * args.runs if args.small_runs is None else args.small_runs
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and args.sockets_per_worker > hard - FD_MARGIN:
        args.sockets_per_worker = max(1000, hard - FD_MARGIN)
    if math.ceil(args.sizes[-1] / args.sockets_per_worker) > 250:
        parser.error("too many sockets for 250 workers")
    if args.sockdiff is None:
        beside = Path(sys.executable).parent / "sockdiff"
        args.sockdiff = str(beside) if beside.exists() else shutil.which("sockdiff")
    if not args.sockdiff or not os.access(args.sockdiff, os.X_OK):
        parser.error("no sockdiff found: give --sockdiff PATH")
    args.sockdiff = str(Path(args.sockdiff).absolute())
    return args


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def block_signals() -> None:
    """Hold off Ctrl-C and friends for good: cleanup must run to the end, and after it
    there is only the report left to print."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker"]:
        return worker_main(int(argv[1]))
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.py: must run as root (it creates a network namespace); try sudo", file=sys.stderr)
        return 2
    for tool in ("ip", "ss", "netstat", "sysctl"):
        if shutil.which(tool) is None:
            print(f"bench.py: {tool} not found (ss and ip: iproute2; netstat: net-tools)", file=sys.stderr)
            return 2
    stale = [name for name in list_netns() if name.startswith(PREFIX)]
    if stale:
        log(f"warning: namespaces left by earlier runs: {' '.join(stale)} (ip netns delete NAME)")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    env = environment(args.sockdiff)
    source = source_fingerprint(args.sockdiff)
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    bench = Bench(args)
    code = 0
    try:
        bench.run()
    except (KeyboardInterrupt, Interrupted):
        log("interrupted; cleaning up")
        code = 130
    except BenchError as err:
        log(f"bench.py: {err}")
        code = 2
    finally:
        block_signals()
        log("cleaning up: stopping workers, deleting the namespace")
        bench.close()
    if code:
        return code
    (busy0, ours0), (busy1, ours1) = cpu_start, cpu_seconds()
    others = max(0.0, (busy1 - busy0) - (ours1 - ours0))
    span = time.monotonic() - wall_start
    env["other load"] = (
        f"{others:.0f} CPU-s used by other processes over {span:.0f} s "
        f"({others / span / len(os.sched_getaffinity(0)):.0%} of the machine)"
    )
    if others / span > 0.1:
        log(f"warning: other processes kept the machine busy during the run: {env['other load']}")
    after = source_fingerprint(args.sockdiff)
    env["sockdiff source"] = source
    if after != source:
        env["sockdiff source"] = f"CHANGED during the run: {source} at the start, {after} at the end"
        log("warning: sockdiff's source changed while the benchmark ran; the results mix versions")
    text, document, all_ok = report(bench, env)
    print(text, flush=True)
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
