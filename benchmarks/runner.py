"""The timed runner: one command run, timed from outside, with its peak RSS.

Every figure the benchmark quotes comes from here: :func:`run_timed` for a
command's wall time and peak RSS, :func:`cpu_share` for the share of a core a
long-running command (``watch``) uses once it has settled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

#: Seconds a setup command (ip, sysctl, ss's census) may take by default.
SETUP_TIMEOUT = 30.0


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def log(message: str) -> None:
    """Progress, on stderr, so that stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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


def run_checked(argv: Sequence[str], timeout: float = SETUP_TIMEOUT) -> str:
    """Run a setup command and return its stdout; BenchError with its stderr if it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise BenchError(f"{' '.join(argv)}: {err}") from err
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done.stdout


@dataclasses.dataclass(frozen=True, slots=True)
class CpuShare:
    """What a long-running command used once settled: CPU seconds over wall seconds."""

    cpu: float
    wall: float
    startup_cpu: float  # CPU seconds before the measured window (its first poll included)

    @property
    def share(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads together."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        # Fields 14 and 15 (utime, stime) follow the ")" that ends the command name.
        fields = stat.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(
    argv: Sequence[str], settle: float, window: float, env: dict[str, str] | None = None
) -> CpuShare:
    """Start ``argv`` (stdout to /dev/null), let it settle, then measure the CPU it
    uses over ``window`` seconds; SIGINT ends it. ``ip netns exec`` execs the
    command in its own process, so the pid read is the command's."""
    with tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                start_new_session=True,
                env=env,
            )
        except OSError as err:
            raise BenchError(f"cannot run {argv[0]}: {err}") from err
        try:
            time.sleep(settle)
            if proc.poll() is not None:
                err_file.seek(0)
                message = err_file.read().decode(errors="replace").strip()[-300:]
                raise BenchError(f"{' '.join(argv)} ended early (exit status {proc.returncode}): {message}")
            cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            time.sleep(window)
            cpu1, t1 = _cpu_seconds(proc.pid), time.monotonic()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return CpuShare(cpu=cpu1 - cpu0, wall=t1 - t0, startup_cpu=cpu0)
