"""What ``sockdiff run`` adds to a command: one that opens and closes 10,000 TCP connections
and starts 300 processes, run with and without it.

The script makes a private network namespace and runs, alternately, ``--rounds`` times
each: the workload alone, the workload under ``sockdiff run``, ``/bin/true`` alone and
``/bin/true`` under ``sockdiff run`` (every one through ``ip netns exec``). The constant
start-up is the median of ``sockdiff run -- true`` less that of ``true``; the overhead
proportional to the command is the median of the workload under ``sockdiff run`` less the
workload alone, less that start-up, as a share of the workload's own median. Goals
(issue 18): a start-up of at most 0.2 s, an overhead of at most 5 %.

Needs root (``ip netns``). Run it with the interpreter sockdiff is installed in::

    sudo .venv/bin/python benchmarks/run_overhead.py
    sudo .venv/bin/python benchmarks/run_overhead.py --rounds 9 --json out.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # the namespace helper lives with the tests, as tests.helpers.netns
    sys.path.append(_ROOT)

from plugin_overhead import emit, log  # noqa: E402

from tests.helpers.netns import BENCH_PREFIX, netns_exec_argv, private_netns  # noqa: E402

#: Opens and closes CONNECTIONS loopback connections, and starts PROCESSES processes (/bin/true).
WORKLOAD = """
import os, socket, sys
connections, processes = int(sys.argv[1]), int(sys.argv[2])
with socket.create_server(("127.0.0.1", 0), backlog=1024) as server:
    address = server.getsockname()
    for _ in range(connections):
        client = socket.create_connection(address)
        accepted, _ = server.accept()
        client.close()
        accepted.close()
for _ in range(processes):
    os.waitpid(os.posix_spawn("/bin/true", ["true"], os.environ), 0)
"""


def timed(ns: str, argv: Sequence[str], cwd: Path) -> float:
    """The wall time of ``argv`` in ``ns``; a failure ends the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(netns_exec_argv(ns, argv), cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall


def measure(args: argparse.Namespace) -> dict[str, Any]:
    sockdiff_run = [sys.executable, "-m", "sockdiff", "run", "--"]
    with tempfile.TemporaryDirectory(prefix="sockdiff-run-bench-") as tmp:
        directory = Path(tmp)
        (directory / "workload.py").write_text(WORKLOAD)
        workload = [sys.executable, "workload.py", str(args.connections), str(args.processes)]
        commands = {
            "workload": workload,
            "workload under run": [*sockdiff_run, *workload],
            "true": ["/bin/true"],
            "true under run": [*sockdiff_run, "/bin/true"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        with private_netns(BENCH_PREFIX) as ns:
            log(f"namespace {ns}: {args.connections} connections and {args.processes} processes a run")
            for argv in commands.values():  # one unmeasured run each: caches warm
                timed(ns, argv, directory)
            for round_number in range(1, args.rounds + 1):
                for name, argv in commands.items():
                    times[name].append(timed(ns, argv, directory))
                log(f"round {round_number}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()))
    median = {name: statistics.median(values) for name, values in times.items()}
    startup = median["true under run"] - median["true"]
    added = median["workload under run"] - median["workload"]
    share = (added - startup) / median["workload"]
    summary = (
        f"workload {median['workload']:.3f} s alone, {median['workload under run']:.3f} s under sockdiff run"
        f" (ratio {median['workload under run'] / median['workload']:.3f}); start-up {startup:.3f} s"
        f" (goal <= 0.2 s); overhead beyond it {share * 100:.1f} % of the workload (goal <= 5 %);"
        f" medians of {args.rounds} alternating rounds"
    )
    return {
        "summary": summary,
        "median_s": median,
        "runs_s": times,
        "startup_s": startup,
        "overhead_share": share,
        "connections": args.connections,
        "processes": args.processes,
        "rounds": args.rounds,
        "met": startup <= 0.2 and share <= 0.05,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000, help="connections a run (10000)")
    parser.add_argument("--processes", type=int, default=300, help="processes a run (300)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (7)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(args)
    emit(result, args.json)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
