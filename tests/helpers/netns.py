"""Private network namespaces for the tests and the benchmark, through ``ip netns``.

>>> with private_netns() as ns:                              # doctest: +SKIP
...     run_in_netns(ns, ["ss", "-tuwxan"]).stdout

Every namespace is named ``<prefix><pid>-<n>``: ``sockdiff-test-`` for the tests
(:data:`PREFIX`), ``sockdiff-bench-`` for ``benchmarks/`` (:data:`BENCH_PREFIX`).
It has its loopback up, and is deleted on the way out together with any process
still running in it. Tests that need namespaces call :func:`require_netns` (the
``netns`` fixture and the ``netns`` marker do it for them): it skips them where
namespaces are unavailable, except on CI (``CI=true``), where it fails them.

The tests import this module as ``tests.helpers.netns``, and so do the benchmark
(``benchmarks/population.py``) and ``fixtures/capture*.py``;
only :func:`require_netns` needs pytest, and imports it when called.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

__all__ = [
    "BENCH_PREFIX",
    "PREFIX",
    "NetnsError",
    "create_netns",
    "delete_netns",
    "list_netns",
    "netns_available",
    "netns_exec_argv",
    "netns_pids",
    "netns_unavailable_reason",
    "our_netns",
    "private_netns",
    "require_netns",
    "run_in_netns",
]

#: Every namespace the tests make is named PREFIX + "<pid>-<n>"...
PREFIX = "sockdiff-test-"
#: ...and every one the benchmark makes BENCH_PREFIX + "<pid>-<n>".
BENCH_PREFIX = "sockdiff-bench-"
#: delete_netns() deletes only namespaces named so.
_OURS = (PREFIX, BENCH_PREFIX)
#: Seconds any one ``ip`` command may take.
IP_TIMEOUT = 10.0

_counter = itertools.count(1)


class NetnsError(Exception):
    """A namespace could not be created, entered or deleted."""


def _ip(*args: str, timeout: float = IP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; NetnsError with ip's message if it fails."""
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NetnsError(f"ip {' '.join(args)}: {err}") from err
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
    return done


def list_netns() -> list[str]:
    """The names ``ip netns list`` shows: the files under /run/netns, read as they are
    (a name may hold a space, a newline or bytes that are not UTF-8: another's, hostile)."""
    try:
        return os.listdir("/run/netns")
    except FileNotFoundError:
        return []


def our_netns(prefix: str = PREFIX) -> list[str]:
    """The namespaces named ``prefix`` that this process made and that still exist."""
    mine = f"{prefix}{os.getpid()}-"
    return [name for name in list_netns() if name.startswith(mine)]


def create_netns(prefix: str = PREFIX) -> str:
    """Create a uniquely named namespace with its loopback up; return its name."""
    name = f"{prefix}{os.getpid()}-{next(_counter)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
    except BaseException:
        delete_netns(name)
        raise
    return name


def netns_pids(name: str) -> list[int]:
    """The processes running in namespace ``name`` (``ip netns pids``)."""
    try:
        out = _ip("netns", "pids", name).stdout
    except NetnsError:
        return []
    return sorted(int(word) for word in out.split() if word.isdigit())


def _kill_netns_pids(name: str, timeout: float = 5.0) -> None:
    """SIGKILL every process still in ``name`` (all started by a test) and wait for them."""
    deadline = time.monotonic() + timeout
    while pids := netns_pids(name):
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() >= deadline:
            raise NetnsError(f"processes {pids} in namespace {name} do not die")
        time.sleep(0.02)


def delete_netns(name: str) -> None:
    """Kill what still runs in namespace ``name``, then delete it (a missing one is fine)."""
    if not name.startswith(_OURS):
        raise NetnsError(f"refusing to delete {name!r}: not a namespace of the tests or the benchmark")
    if name not in list_netns():
        return
    _kill_netns_pids(name)
    _ip("netns", "delete", name)


@contextmanager
def private_netns(prefix: str = PREFIX) -> Iterator[str]:
    """A fresh namespace for the body; always deleted afterwards."""
    name = create_netns(prefix)
    try:
        yield name
    finally:
        delete_netns(name)


def netns_exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside namespace ``name``."""
    return ["ip", "netns", "exec", name, *argv]


def run_in_netns(
    name: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in namespace ``name``, capturing text output (CalledProcessError if ``check``)."""
    return subprocess.run(
        netns_exec_argv(name, argv), capture_output=True, text=True, timeout=timeout, check=check
    )


@functools.cache
def netns_unavailable_reason() -> str | None:
    """Why this machine cannot give tests a namespace, or None if it can (probed once)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    try:
        with private_netns():
            pass
    except NetnsError as err:
        return f"cannot create a network namespace: {err}"
    return None


def netns_available() -> bool:
    """Whether we are root and ``ip netns add`` works."""
    return netns_unavailable_reason() is None


def require_netns() -> None:
    """Skip the calling test if namespaces are unavailable; on CI (``CI=true``) fail it instead."""
    reason = netns_unavailable_reason()
    if reason is None:
        return
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)
