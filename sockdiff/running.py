"""``sockdiff run -- CMD``: run a command under the leak engine, and say what its tree left open.

CMD is started (``posix_spawnp``) with this process's standard streams and
its environment, plus the engine's token, leading a process group of its own; this process is
its child subreaper, so children, grandchildren and double-forked daemons stay
in the tree (:class:`sockdiff.leaks.LeakEngine`, whose session is the run).

Signals pass through, each once. CMD leads a process group of its own, so a
signal sent to sockdiff's group (``kill -- -PGID``, ``timeout``, a CI runner
cancelling a job) reaches sockdiff alone, never CMD as well. While CMD runs, the
signals a user or a CI runner sends (:data:`FORWARDED`) and SIGCHLD are blocked
here and taken with ``sigtimedwait``, which also paces the engine's polls
(:data:`POLL_SECONDS`); each one sockdiff gets is sent on to CMD (as a signal
sent to CMD without sockdiff, its children do not get it). At a terminal where sockdiff runs in
the foreground, CMD's group is made the foreground group (as a shell does for a
job), so CMD reads the terminal and gets its Ctrl-C and Ctrl-Z straight from the
kernel, and sockdiff none of them; when CMD stops (Ctrl-Z), sockdiff takes the
terminal back and stops too, so the shell sees its job stopped, and hands it
back when continued. CMD is given the signal mask and dispositions sockdiff was
given (SIGPIPE and SIGXFSZ at their default: Python ignores them in itself).
Every child that ends is reaped (orphans come to a subreaper); when CMD itself
ends, the engine reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

__all__ = [
    "FORWARDED",
    "KILL_GRACE_SECONDS",
    "KILL_ROUNDS",
    "POLL_SECONDS",
    "Stopping",
    "command_words",
    "kill_leftovers",
    "left_running",
    "run_tree",
]

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
        signal.SIGTSTP,
    }
)
# The signals of FORWARDED that ask sockdiff to be done: during --kill's grace, they end it.
_IMPATIENT = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})
# The signals Python itself ignores at start (CMD gets them at their default, as from a shell:
# a pipeline's writer ends on SIGPIPE, a write past RLIMIT_FSIZE on SIGXFSZ).
_PYTHONS_OWN = (signal.SIGPIPE, signal.SIGXFSZ)
#: How often the tree's sockets are looked at while CMD runs (for the timeline).
POLL_SECONDS = 0.15
#: How long --kill waits after SIGTERM before SIGKILL.
KILL_GRACE_SECONDS = 5.0
#: How many rounds of SIGKILL --kill sends (the tree read again before each) before it gives up.
KILL_ROUNDS = 20
# The pause between two rounds of --kill.
_ROUND_SECONDS = 0.05
#: How long processes CMD left running are given to finish starting (a double-forked
#: daemon whose parent exited before it listened) before the tree's sockets are read.
SETTLE_SECONDS = 1.0


def run_tree(argv: Sequence[str], engine: LeakEngine, fail_on: tuple[str, ...]) -> RunReport:
    """Run ``argv`` to its end under ``engine`` (not started yet); what the tree left open."""
    from .model import RunReport

    if not argv:
        raise UsageError("no command to run (sockdiff run [OPTIONS] -- CMD [ARGS...])")
    engine.start()  # the token in the environment, and this process a subreaper: before CMD starts
    watched = FORWARDED | {signal.SIGCHLD}
    # SIGTTOU too: the terminal is taken back from a background group (sockdiff's, while CMD has it).
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched | {signal.SIGTTOU})
    try:
        started_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        began = time.monotonic()
        try:
            if not argv[0]:
                raise UsageError("cannot run '': a command has a name")
            child = os.posix_spawnp(
                argv[0],
                list(argv),
                dict(os.environ),
                setpgroup=0,
                setsigmask=previous,
                setsigdef=_PYTHONS_OWN,
            )
        except OSError as err:
            raise UsageError(f"cannot run {argv[0]!r}: {err.strerror or err}") from None
        terminal = _Terminal.ours()
        try:
            terminal.give(child)
            status = _wait(child, engine, watched, terminal)
        finally:
            terminal.take_back()
        seconds = time.monotonic() - began
    finally:
        # The forwarded signals stay blocked for the rest of the run, CMD gone: one that comes
        # now cuts the settle, or --kill's grace, short; none ends sockdiff before its report
        # and --kill are done (the exit code is the run's).
        signal.pthread_sigmask(signal.SIG_SETMASK, set(previous) | FORWARDED)
    _settle(engine)
    leaks = engine.finish()
    engine.stop()
    return RunReport(
        command_words(argv),
        _exit_code(status),
        started_at,
        round(seconds, 3),
        fail_on,
        leaks,
        left_running(engine),
    )


def command_words(argv: Sequence[str]) -> tuple[str, ...]:
    """CMD's words as reports show them: bytes that are not UTF-8 as ``\\xNN`` (escape_name)."""
    from .model import escape_name

    return tuple(escape_name(os.fsencode(arg)) for arg in argv)


@dataclasses.dataclass(slots=True)
class _Terminal:
    """The controlling terminal when sockdiff's group is its foreground group (``fd`` -1: none)."""

    fd: int = -1

    @classmethod
    def ours(cls) -> _Terminal:
        for fd in (0, 1, 2):
            with contextlib.suppress(OSError):
                if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                    return cls(fd)
        return cls()

    def give(self, child: int) -> None:
        """Make CMD's group the foreground group, as a shell does for the job it starts."""
        if self.fd < 0:
            return
        try:
            os.tcsetpgrp(self.fd, child)
        except OSError:  # CMD ended already, or the terminal went away: nothing to hand over
            self.fd = -1
            return
        if _state(child) == b"T":  # it read the terminal before it had it (SIGTTIN): go on
            with contextlib.suppress(OSError):
                os.killpg(child, signal.SIGCONT)

    def take_back(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):  # SIGTTOU is blocked: allowed from the background
                os.tcsetpgrp(self.fd, os.getpgrp())


def _state(pid: int) -> bytes:
    """A process's state letter (``R``, ``S``, ``T``, ``Z``, ...); ``Z`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return b"Z"


def _wait(child: int, engine: LeakEngine, watched: frozenset[signal.Signals], terminal: _Terminal) -> int:
    """Pass signals on, poll the tree now and then, reap children, until ``child`` ends; its
    wait status."""
    next_poll = time.monotonic()
    stop_asked = False  # SIGTSTP came to sockdiff and went on to CMD's group
    while True:
        info = signal.sigtimedwait(watched, max(0.0, next_poll - time.monotonic()))
        if info is None:
            engine.poll()
            next_poll = time.monotonic() + POLL_SECONDS
        elif info.si_signo == signal.SIGCHLD:
            status, stopped = _stop_with(child, terminal) if terminal.fd >= 0 or stop_asked else (None, False)
            stop_asked &= not stopped  # stopped with CMD, and continued with it
            status = _reap(child) if status is None else _reap(child) or status
            if status is not None:
                engine.poll()  # what it opened last has a time too
                return status
        elif info.si_signo == signal.SIGTSTP:
            # The job is asked to stop (kill -TSTP, with or without a terminal): CMD's group
            # stops as at a Ctrl-Z, and sockdiff with it when CMD has (above).
            stop_asked = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGTSTP)
        else:
            # CMD is in a group of its own: whatever reached sockdiff did not reach it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, info.si_signo)


def _stop_with(child: int, terminal: _Terminal) -> tuple[int | None, bool]:
    """CMD stopped (Ctrl-Z at the terminal, or the SIGTSTP sockdiff passed on): stop too, so
    that the shell sees its job stopped; when continued (``fg``), give CMD the terminal again
    (if it had it) and continue it. CMD's wait status if it ended instead; whether it stopped."""
    try:
        pid, status = os.waitpid(child, os.WNOHANG | os.WUNTRACED)
    except ChildProcessError:
        return None, False
    if pid != child:
        return None, False
    if not os.WIFSTOPPED(status):
        return status, False
    terminal.take_back()
    os.kill(os.getpid(), signal.SIGSTOP)  # the shell's fg (or bg) continues us here
    with contextlib.suppress(OSError):  # a terminal hung up meanwhile: none to give
        if os.tcgetpgrp(terminal.fd) == os.getpgrp():  # fg: the terminal is ours to give
            terminal.give(child)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child, signal.SIGCONT)
    return None, True


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


def _settle(engine: LeakEngine, seconds: float = SETTLE_SECONDS) -> None:
    """Give what CMD left running ``seconds`` to finish starting (or to exit) before the
    sockets are read: a daemon CMD started may still be on its way to listen() when CMD
    exits. Nothing left running: no wait. A signal of :data:`FORWARDED` that asks sockdiff
    to be done (blocked: see :func:`run_tree`) ends the wait."""
    deadline = time.monotonic() + seconds
    while left_running(engine) and time.monotonic() < deadline:
        info = signal.sigtimedwait(FORWARDED, _ROUND_SECONDS * 2)
        if info is not None and info.si_signo in _IMPATIENT:
            return


def _zombie(pid: int) -> bool:
    return _state(pid) == b"Z"


@dataclasses.dataclass(frozen=True, slots=True)
class Stopping:
    """What ``--kill`` did to the tree's leftovers, each process as first seen.

    ``stopped``: each process signalled that is gone, with the signal it last needed
    (SIGTERM, or SIGKILL); ``refused``: those the kernel would not let this process
    signal (another user's: a setuid program, ``su``); ``surviving``: those still
    running after every SIGKILL round (stuck in the kernel, most likely);
    ``hurried``: the signal (one of :data:`FORWARDED`: Ctrl-C, a CI runner's cancel)
    that cut the grace short, if one came.
    """

    stopped: tuple[tuple[Holder, signal.Signals], ...]
    refused: tuple[Holder, ...]
    surviving: tuple[Holder, ...]
    hurried: signal.Signals | None = None


def kill_leftovers(
    engine: LeakEngine, grace: float = KILL_GRACE_SECONDS, kill_rounds: int = KILL_ROUNDS
) -> Stopping:
    """SIGTERM (and SIGCONT, for a stopped one) to every process the tree left, SIGKILL to what
    is still there after ``grace``.

    The tree is read again after each round, until it is empty: a supervisor loop
    that starts its server again, or a process whose SIGTERM handler forks a new
    copy, leaves new processes, and each gets the signal of the round it was seen
    in. Past ``grace``, SIGKILL goes to every process of the tree, round after
    round (at most ``kill_rounds``): what a killed process forked before it died
    is killed in the next.

    A signal of :data:`FORWARDED` that comes meanwhile (a user who will not wait,
    a CI runner cancelling the job) ends the grace: SIGKILL goes at once, and the
    rounds run to their end, so no orphan is left behind by the hurry.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        return _kill_rounds(engine, grace, kill_rounds)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _kill_rounds(engine: LeakEngine, grace: float, kill_rounds: int) -> Stopping:
    hurried: signal.Signals | None = None
    seen: dict[int, Holder] = {}
    sent: dict[int, signal.Signals] = {}
    refused: dict[int, Holder] = {}
    deadline = time.monotonic() + grace
    kills = 0
    while True:
        running = [h for h in left_running(engine) if h.pid not in refused]
        killing = time.monotonic() >= deadline
        if not running or (killing and kills >= kill_rounds):
            break
        chosen = signal.SIGKILL if killing else signal.SIGTERM
        kills += killing
        for holder in running:
            seen.setdefault(holder.pid, holder)
            if sent.get(holder.pid) == chosen != signal.SIGKILL:
                continue  # asked already: its grace runs
            try:
                os.kill(holder.pid, chosen)
                if chosen == signal.SIGTERM:
                    # A stopped process acts on SIGTERM only once continued (as a shell's kill
                    # does for a stopped job); one running ignores SIGCONT.
                    os.kill(holder.pid, signal.SIGCONT)
            except ProcessLookupError:
                continue
            except PermissionError:
                refused[holder.pid] = seen[holder.pid]
                continue
            sent[holder.pid] = chosen
        info = signal.sigtimedwait(FORWARDED, _ROUND_SECONDS)
        if info is not None and info.si_signo in _IMPATIENT and not killing:
            hurried = hurried or signal.Signals(info.si_signo)
            deadline = time.monotonic()
    left = {h.pid for h in running}
    return Stopping(
        tuple((seen[pid], how) for pid, how in sent.items() if pid not in left),
        tuple(refused.values()),
        tuple(seen.get(h.pid, h) for h in running),
        hurried,
    )
