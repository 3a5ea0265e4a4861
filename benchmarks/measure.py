"""Measurement: every command timed at every size, alternating, in one run.

:class:`Bench` drives a :class:`population.Population` through its sizes (0,
then ``--sizes``) and at each one times the four snapshot commands against ``ss``
and ``netstat`` in turns (A B A B ...), the start-up baselines the growth check
subtracts, and ``compare`` of two snapshots taken a little apart. In the empty
namespace it also times the interpreter alone and ``sockdiff --version``, so the
report can say where the start-up goes; at the largest size, the CPU share of
``watch -i 1`` on an idle namespace; and, where ``plugin_overhead.py`` exists,
the pytest plugin's cost per test, and what ``sockdiff run`` adds to a command
(``run_overhead.py``). It keeps raw runs; report.py judges them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from population import Population
from runner import BenchError, CpuShare, Run, cpu_share, find_gnu_time, log, run_timed

#: The share of connections closed, and opened, between the two snapshots compare reads.
CHURN_CLOSE = 0.01
CHURN_OPEN = 0.005
#: The longest wait for the namespace's TIME-WAIT sockets to end before watch is timed
#: (Linux keeps one 60 s).
QUIET_WAIT = 75
#: Where the pytest plugin's own benchmark lives, if it does.
PLUGIN_OVERHEAD = Path(__file__).resolve().parent / "plugin_overhead.py"
#: Where sockdiff run's own benchmark lives.
RUN_OVERHEAD = Path(__file__).resolve().parent / "run_overhead.py"
#: A typer app with sockdiff's snapshot options and no work: the empty-namespace goal's floor.
TYPER_FLOOR = Path(__file__).resolve().parent / "typer_floor.py"
#: The environment that makes sockdiff take its pure-Python path (the accelerator left out).
PURE = "SOCKDIFF_PURE=1"


@dataclasses.dataclass(frozen=True, slots=True)
class Pair:
    """A sockdiff snapshot command and the tool it is held against."""

    key: str
    sockdiff: tuple[str, ...]
    reference: tuple[str, ...]
    processes: bool  # scans /proc/PID/fd, whose cost grows with the workers' descriptors
    slow: bool = False  # netstat -p: may use fewer runs
    pure: bool = False  # sockdiff's pure-Python path (SOCKDIFF_PURE=1): the accelerator left out


def _pairs() -> tuple[Pair, ...]:
    snap = ("snapshot", "--backend")
    return (
        Pair("netlink", (*snap, "netlink", "--no-processes", "-o", "-"), ("ss", "-tuwxan"), False),
        Pair(
            "netlink pure",
            (*snap, "netlink", "--no-processes", "-o", "-"),
            ("ss", "-tuwxan"),
            False,
            pure=True,
        ),
        Pair("netlink -p", (*snap, "netlink", "-o", "-"), ("ss", "-tuwxanp"), True),
        Pair("proc", (*snap, "proc", "--no-processes", "-o", "-"), ("netstat", "-tuwxan"), False),
        Pair("proc -p", (*snap, "proc", "-o", "-"), ("netstat", "-tuwxanp"), True, slow=True),
    )


PAIRS = _pairs()


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
    """Everything measured at one size (0: the empty namespace)."""

    target: int
    census: dict[str, Any]
    series: dict[str, tuple[Series, Series]] = dataclasses.field(default_factory=dict)
    compare: Series | None = None
    compare_pure: Series | None = None
    # The same sockdiff command for UNIX sockets only, run in turn with the others:
    # its start-up cost at this moment (see report.growth()).
    baselines: dict[str, Series] = dataclasses.field(default_factory=dict)
    # In the empty namespace: the interpreter alone, `sockdiff --version`, typer's floor.
    startup: dict[str, Series] = dataclasses.field(default_factory=dict)
    diff_summary: dict[str, Any] | None = None

    @property
    def tcp(self) -> int:
        return int(self.census["tcp"])


@dataclasses.dataclass(frozen=True, slots=True)
class Watch:
    """``watch -i 1`` on the namespace at one size, nothing changing."""

    tcp: int
    usage: CpuShare | None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PluginOverhead:
    """What ``plugin_overhead.py`` reported (its own JSON), or why there is nothing."""

    result: dict[str, Any] | None
    error: str | None = None


def script_python(script: str) -> str:
    """The interpreter a console script runs under (its ``#!`` line), else ours."""
    with open(script, "rb") as file:
        first = file.readline()
    return first[2:].decode().split()[0] if first.startswith(b"#!") else sys.executable


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sockdiff: str = args.sockdiff
        self.python = script_python(self.sockdiff)
        self.ns = Population(args.sockets_per_worker)
        self.tmp = Path(tempfile.mkdtemp(prefix="sockdiff-bench-"))
        self.stages: list[Stage] = []
        self.watch: Watch | None = None
        self.watch_pure: Watch | None = None
        self.plugin: PluginOverhead | None = None
        self.run_cost: PluginOverhead | None = None
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

    def sockdiff_argv(self, args: Sequence[str], pure: bool = False) -> list[str]:
        """sockdiff ARGS; ``pure``: on its pure-Python path (through env(1): well under a
        millisecond, beside the ~5 ms of launching it in the namespace)."""
        return ["env", PURE, self.sockdiff, *args] if pure else [self.sockdiff, *args]

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
        log(f"namespace {self.ns.name}; measuring it empty, then at {', '.join(map(str, sizes))}")
        self.stages.append(self.measure(0))
        workers = math.ceil(max(sizes) / self.ns.sockets_per_worker)
        log(f"starting {workers} workers ({self.ns.sockets_per_worker} sockets at most each)")
        self.ns.start_workers(workers)
        for size in sizes:
            start = time.perf_counter()
            self.ns.grow(size)
            log(f"opened sockets up to {size} in {time.perf_counter() - start:.1f} s")
            self.stages.append(self.measure(size))
        self.watch = self.measure_watch(self.stages[-1].tcp)
        self.watch_pure = self.measure_watch(self.stages[-1].tcp, pure=True)
        self.plugin = self.measure_own(PLUGIN_OVERHEAD)
        self.run_cost = self.measure_own(RUN_OVERHEAD)

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
        for pair in PAIRS:
            n = self.args.slow_runs if pair.slow and big else runs
            argv = self.sockdiff_argv(pair.sockdiff, pair.pure)
            sa = Series("sockdiff " + " ".join(pair.sockdiff) + (" (pure Python)" if pair.pure else ""))
            sb = Series(" ".join(pair.reference))
            commands = [(self.in_ns(argv), sa), (self.in_ns(pair.reference), sb)]
            if size and not pair.processes and not pair.pure:
                # The start-up baseline: the same command for UNIX sockets only (a
                # handful here). An empty namespace would not do for the proc
                # backend: /proc/net/tcp walks the kernel's one TCP hash table, every
                # namespace's sockets included.
                stage.baselines[pair.key] = Series(f"{sa.command} -x (start-up baseline)")
                commands.append((self.in_ns([*argv, "-x"]), stage.baselines[pair.key]))
            if not size and pair.key == "netlink":
                # Where the start-up goes: the interpreter alone, then the CLI loaded.
                stage.startup["interpreter"] = Series(f"{self.python} -c pass")
                stage.startup["cli"] = Series("sockdiff --version")
                floor = [self.python, str(TYPER_FLOOR), *pair.sockdiff]
                stage.startup["typer"] = Series(" ".join(["typer_floor.py", *pair.sockdiff]))
                commands += [
                    (self.in_ns([self.python, "-c", "pass"]), stage.startup["interpreter"]),
                    (self.in_ns(self.sockdiff_argv(["--version"])), stage.startup["cli"]),
                    (self.in_ns(floor), stage.startup["typer"]),
                ]
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
        if series.error or series.wall is None or series.rss_mb is None:
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
        pure = Series(f"sockdiff compare A B --format json ({stage.tcp} sockets, pure Python)")
        out_path = self.tmp / "diff.json"
        with open(out_path, "wb") as out:  # the warm-up run's output is kept, for its summary
            run = self.timed(argv, stdout=out.fileno())
        if run.returncode not in (0, 1):
            series.add(run, ok_codes=(0, 1))
        else:
            with contextlib.suppress(ValueError, KeyError, OSError):
                stage.diff_summary = json.loads(out_path.read_bytes())["summary"]
        commands = [(argv, series), (self.sockdiff_argv(argv[1:], pure=True), pure)]
        if stage.target:
            empty = [str(self.tmp / "old-0.json"), str(self.tmp / "new-0.json")]
            stage.baselines["compare"] = Series("sockdiff compare of the empty snapshots")
            commands.append(
                (self.sockdiff_argv(["compare", *empty, "--format", "json"]), stage.baselines["compare"])
            )
        self.alternate(commands, runs, ok=1)
        stage.compare, stage.compare_pure = series, pure
        log(f"  compare's diff: {stage.diff_summary}")

    def measure_watch(self, tcp: int, pure: bool = False) -> Watch:
        """The share of a core ``sockdiff watch -i 1`` uses on the full namespace once
        its first poll is done, nothing changing (``pure``: on the pure-Python path)."""
        argv = self.in_ns(self.sockdiff_argv(["watch", "-i", "1"], pure))
        self.wait_for_quiet()
        settle, window = self.args.watch_settle, self.args.watch_seconds
        how = " (pure Python)" if pure else ""
        log(f"watch -i 1{how} at {tcp} TCP sockets: {settle:g} s to settle, then {window:g} s measured")
        try:
            usage = cpu_share(argv, settle, window, env=self.env)
        except BenchError as err:
            log(f"  ERROR ({err})")
            return Watch(tcp, None, str(err))
        log(f"  {usage.share:.1%} of a core ({usage.cpu:.2f} CPU-s in {usage.wall:.1f} s)")
        return Watch(tcp, usage)

    def wait_for_quiet(self) -> None:
        """Wait until the namespace holds no TIME-WAIT socket (the connections compare's
        churn closed, and any the population's set-up left), QUIET_WAIT seconds at most:
        each one's timer moves at every poll and its end is a socket gone, which a watch
        of a namespace where nothing changes must not be timed on."""
        deadline = time.monotonic() + QUIET_WAIT
        while True:
            waiting = self.ns.census()["tcp_states"].get("TIME-WAIT", 0)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(2)
        log(
            f"  {waiting} TCP sockets in TIME-WAIT as watch starts"
            if waiting
            else "  no TIME-WAIT socket left"
        )

    def measure_own(self, script: Path) -> PluginOverhead:
        """A feature's own benchmark (the pytest plugin's, sockdiff run's), run as it is, its JSON
        kept whole."""
        if not script.exists():
            return PluginOverhead(None, f"not measured: {script.name} is not there")
        out = self.tmp / f"{script.stem}.json"
        log(f"running {script.name}")
        try:
            done = subprocess.run(
                [self.python, str(script), "--json", str(out)],
                capture_output=True,
                text=True,
                timeout=self.args.timeout,
                env=self.env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return PluginOverhead(None, f"{script.name}: {err}")
        tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no message"
        if done.returncode not in (0, 1):  # 1: its own goal missed, which its JSON says
            return PluginOverhead(None, f"{script.name}: exit status {done.returncode}: {tail}")
        try:
            result = json.loads(out.read_text())
        except (OSError, ValueError) as err:
            return PluginOverhead(None, f"{script.name} wrote no JSON ({err}): {tail}")
        return PluginOverhead(result if isinstance(result, dict) else {"result": result})
