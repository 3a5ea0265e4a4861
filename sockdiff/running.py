"""``sockdiff run -- CMD``: run a command under the leak engine, and say what its tree left open.

CMD is started (``posix_spawnp``) with this process's standard streams, its
process group and its environment, plus the engine's token; this process is
its child subreaper, so children, grandchildren and double-forked daemons stay
in the tree (:class:`sockdiff.leaks.LeakEngine`, whose session is the run).

Signals pass through. While CMD runs, the signals a user or a CI runner sends
(:data:`FORWARDED`) and SIGCHLD are blocked here and taken with ``sigtimedwait``,
which also paces the engine's polls (:data:`POLL_SECONDS`). A signal another
process sent to sockdiff (``kill``: ``si_code`` SI_USER or SI_QUEUE) is sent on
to CMD; one the kernel sent (Ctrl-C, a hung-up terminal: to the whole foreground
process group) reached CMD already, and is not sent twice. CMD is given the
signal mask and dispositions sockdiff was given, so it sees each signal as it
would have without sockdiff. Every child that ends is reaped (orphans come to a
subreaper); when CMD itself ends, the engine reports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .leaks import LeakEngine
    from .model import Holder, RunReport

__all__ = ["FORWARDED", "KILL_GRACE_SECONDS", "POLL_SECONDS", "kill_leftovers", "left_running", "run_tree"]

#: The signals passed on to CMD.
FORWARDED = frozenset(
    {
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
        signal.SIGCONT,
        signal.SIGALRM,
    }
)
#: How often the tree's sockets are looked at while CMD runs (for the timeline).
POLL_SECONDS = 0.15
#: How long --kill waits after SIGTERM before SIGKILL.
KILL_GRACE_SECONDS = 5.0
# si_code of a signal a process sent (kill, sigqueue, tgkill): linux/include/uapi/asm-generic/siginfo.h
_SENT_BY_A_PROCESS = {0, -1, -6}


def run_tree(argv: Sequence[str], engine: LeakEngine, fail_on: tuple[str, ...]) -> RunReport:
    """Run ``argv`` to its end under ``engine`` (not started yet); what the tree left open."""
    from .model import RunReport, escape_name

    if not argv:
        raise UsageError("no command to run (sockdiff run [OPTIONS] -- CMD [ARGS...])")
    engine.start()  # the token in the environment, and this process a subreaper: before CMD starts
    watched = FORWARDED | {signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        started_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        began = time.monotonic()
        try:
            if not argv[0]:
                raise UsageError("cannot run '': a command has a name")
            child = os.posix_spawnp(argv[0], list(argv), dict(os.environ), setsigmask=previous)
        except OSError as err:
            raise UsageError(f"cannot run {argv[0]!r}: {err.strerror or err}") from None
        status = _wait(child, engine, watched)
        seconds = time.monotonic() - began
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    leaks = engine.finish()
    engine.stop()
    return RunReport(
        tuple(escape_name(os.fsencode(arg)) for arg in argv),
        _exit_code(status),
        started_at,
        round(seconds, 3),
        fail_on,
        leaks,
        left_running(engine),
    )


def _wait(child: int, engine: LeakEngine, watched: frozenset[signal.Signals]) -> int:
    """Pass signals on, poll the tree now and then, reap children, until ``child`` ends; its
    wait status."""
    next_poll = time.monotonic()
    while True:
        info = signal.sigtimedwait(watched, max(0.0, next_poll - time.monotonic()))
        if info is None:
            engine.poll()
            next_poll = time.monotonic() + POLL_SECONDS
        elif info.si_signo == signal.SIGCHLD:
            status = _reap(child)
            if status is not None:
                engine.poll()  # what it opened last has a time too
                return status
        elif info.si_code in _SENT_BY_A_PROCESS:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, info.si_signo)


def _reap(child: int) -> int | None:
    """Reap every child that ended; ``child``'s wait status if it is one of them."""
    found: int | None = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        if pid == child:
            found = status


def _exit_code(status: int) -> int:
    """A wait status as a shell says it: the exit code, or 128 + the signal that ended it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def left_running(engine: LeakEngine) -> tuple[Holder, ...]:
    """The processes of the tree still running, this one aside."""
    from .processes import holder

    me = os.getpid()
    _reap(-1)
    found = (holder(pid) for pid in sorted(engine.members()) if pid != me)
    return tuple(h for h in found if h is not None and not _zombie(h.pid))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def kill_leftovers(engine: LeakEngine, grace: float = KILL_GRACE_SECONDS) -> tuple[list[int], list[int]]:
    """SIGTERM to every process the tree left, SIGKILL to those still there after ``grace``.

    Returns the pids sent SIGTERM, and those sent SIGKILL.
    """
    termed = [h.pid for h in left_running(engine)]
    for pid in termed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    remaining = set(termed)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap(-1)
        remaining = {h.pid for h in left_running(engine)} & remaining
    killed = sorted(remaining)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if killed:
        time.sleep(0.05)
        _reap(-1)
    return termed, killed
