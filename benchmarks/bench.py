#!/usr/bin/env python3
"""sockdiff's performance judge: sockdiff against ss and netstat at ~100k TCP sockets.

Run as root (it makes a private network namespace)::

    python benchmarks/bench.py [--sockets 100000] [--runs 5] [--sizes 10000,100000]
                               [--sockdiff PATH] [--json PATH] [--readme README.md]

It fills a private network namespace with real loopback TCP connections held by
worker processes, times each sockdiff command against the tool it stands in for
(runs alternate, A B A B ..., and the medians are quoted), in the empty namespace
and at every size of ``--sizes``, times ``compare`` of two snapshots and the CPU
``watch -i 1`` uses, and judges issue 21's goals. The report goes to stdout as
markdown; ``--json`` writes the same as JSON, ``--readme`` puts the goal table
into README.md.

This file only parses the options and runs the jobs, each in its own module:
``worker.py`` (the socket-holding process), ``population.py`` (the namespace full
of workers, through ``tests/helpers/netns.py``), ``runner.py`` (one timed run),
``measure.py`` (what is run, when, how often), ``report.py`` (the goals judged
once, then rendered) and ``machine.py`` (the machine's description).

Exit status: 0 every goal met, 1 some goal missed, 2 the benchmark could not run,
130 interrupted. The namespace and every process started in it are removed on
the way out, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from machine import cpu_seconds, environment, source_fingerprint
from measure import Bench
from population import FD_MARGIN, SOCKETS_PER_WORKER, stale_namespaces
from report import evaluate, json_document, markdown_report, readme_section, replace_readme_section
from runner import BenchError, log


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived (SIGINT raises KeyboardInterrupt)."""


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
        "--watch-seconds", type=float, default=20.0, help="seconds watch's CPU use is measured (default 20)"
    )
    parser.add_argument(
        "--watch-settle",
        type=float,
        default=5.0,
        help="seconds watch runs before that, for its start and first poll (default 5)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="write the goal table into this README.md, between its benchmark-table marker lines",
    )
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
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if os.geteuid() != 0:
        print("bench.py: must run as root (it creates a network namespace); try sudo", file=sys.stderr)
        return 2
    for tool in ("ip", "ss", "netstat", "sysctl"):
        if shutil.which(tool) is None:
            print(f"bench.py: {tool} not found (ss and ip: iproute2; netstat: net-tools)", file=sys.stderr)
            return 2
    try:
        stale = stale_namespaces()
    except BenchError as err:
        print(f"bench.py: {err}", file=sys.stderr)
        return 2
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
    results = evaluate(bench, env)
    print(markdown_report(results), flush=True)
    if args.json:
        args.json.write_text(json.dumps(json_document(results), indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.readme:
        try:
            replace_readme_section(args.readme, readme_section(results))
        except (OSError, ValueError) as err:
            log(f"bench.py: cannot write the table into {args.readme}: {err}")
            return 2
        log(f"wrote the goal table into {args.readme}")
    return 0 if results.all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
