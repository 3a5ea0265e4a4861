"""A private network namespace populated with sockets by worker processes.

:class:`Population` makes the namespace (through the tests' ``netns`` helper,
shared with ``tests/``), starts ``worker.py`` processes inside it and drives
them over the line protocol that module documents. ``close()`` leaves nothing
behind: the workers, anything else in the namespace, the namespace itself.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner import BenchError, log, run_checked
from worker import LISTENERS_PER_WORKER

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # the namespace helper lives with the tests, as tests.helpers.netns
    sys.path.append(_ROOT)

from tests.helpers.netns import (  # noqa: E402
    BENCH_PREFIX,
    NetnsError,
    create_netns,
    delete_netns,
    list_netns,
    netns_exec_argv,
)

#: Sockets one worker may hold, well under the 20,000-descriptor limit per process.
SOCKETS_PER_WORKER = 18_000
#: Descriptors a worker keeps for itself besides the sockets it is asked for.
FD_MARGIN = 200
#: Seconds to wait for a worker to start, open its share, or exit.
WORKER_TIMEOUT = 300.0
WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"
#: Kernel settings inside the namespace, so that 100k loopback connections fit.
SYSCTLS = (
    "net.ipv4.ip_local_port_range=1024 65535",
    "net.core.somaxconn=65535",
    "net.ipv4.tcp_max_syn_backlog=65535",
)


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


def stale_namespaces() -> list[str]:
    """Namespaces an earlier run left behind (killed with SIGKILL, say)."""
    try:
        return [name for name in list_netns() if name.startswith(BENCH_PREFIX)]
    except NetnsError as err:
        raise BenchError(str(err)) from err


class Population:
    """A private network namespace full of workers; close() leaves nothing behind."""

    def __init__(self, sockets_per_worker: int) -> None:
        self.name: str | None = None
        self.sockets_per_worker = sockets_per_worker
        self.workers: list[WorkerHandle] = []

    def create(self) -> None:
        try:
            self.name = create_netns(BENCH_PREFIX)
        except NetnsError as err:
            raise BenchError(str(err)) from err
        for setting in SYSCTLS:
            run_checked(self.exec_argv(["sysctl", "-q", "-w", setting]))

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside the namespace."""
        assert self.name is not None, "create() first"
        return netns_exec_argv(self.name, argv)

    def start_workers(self, count: int) -> None:
        for index in range(count):
            proc = subprocess.Popen(
                self.exec_argv([sys.executable, "-I", str(WORKER_SCRIPT), str(index)]),
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
        """Stop the workers (end of input, then SIGKILL), then delete the namespace
        with anything still in it. Each step runs even when an earlier one fails."""
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
        if self.name is None:
            return
        try:
            delete_netns(self.name)
        except NetnsError as err:
            log(f"warning: {err}; it may still be there: ip netns delete {self.name}")
        else:
            self.name = None
