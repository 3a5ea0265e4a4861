"""``sockdiff run -- CMD`` around real test runners: a shell script, unittest, ``node --test``.

Each leaky suite leaves three listeners: one its own process opened and handed to
a process it started (which keeps it after the suite ends: "in-process"; a shell
cannot listen, so its suite has none), one a child listening on, and one a
double-forked daemon's (``setsid``). ss, in the same namespace, is the oracle of
who listens where. sockdiff's report goes to stderr (CMD's stdout stays CMD's).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import TIMEOUT, sockdiff, sockdiff_command
from tests.helpers.netns import netns_exec_argv, private_netns, run_in_netns

# A listener on 127.0.0.1, any port: writes "PORT PID" to READY once it listens, then waits.
# "daemon": forks, setsid, forks again first (the classic double fork).
LISTENER = """\
import os, socket, sys, time
mode, ready = sys.argv[1], sys.argv[2]
if mode == "daemon":
    if os.fork():
        sys.exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
server = socket.create_server(("127.0.0.1", 0))
with open(ready + ".tmp", "w") as out:
    out.write(f"{server.getsockname()[1]} {os.getpid()}")
os.rename(ready + ".tmp", ready)
time.sleep(120)
"""

SHELL_SUITE = """\
#!/bin/sh
# test_child: a server started and never stopped; test_daemon: one that detached
"$PY" "$DIR/listener.py" child "$DIR/child.ready" &
"$PY" "$DIR/listener.py" daemon "$DIR/daemon.ready"
for f in child daemon; do
    while [ ! -e "$DIR/$f.ready" ]; do sleep 0.02; done
done
echo "2 tests passed"
exit "${EXIT:-0}"
"""

UNITTEST_SUITE = """\
import os, socket, subprocess, sys, time, unittest

DIR = os.environ["DIR"]


def wait(name):
    while not os.path.exists(os.path.join(DIR, name)):
        time.sleep(0.02)


class Leaky(unittest.TestCase):
    def test_in_process(self):
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
        helper = subprocess.Popen(sleeper, pass_fds=[server.fileno()])
        with open(os.path.join(DIR, "inproc.ready"), "w") as out:
            out.write(f"{port} {helper.pid}")
        server.close()  # this process's copy: the helper's stays

    def test_child(self):
        listener = os.path.join(DIR, "listener.py")
        subprocess.Popen([sys.executable, listener, "child", os.path.join(DIR, "child.ready")])
        wait("child.ready")

    def test_daemon(self):
        listener = os.path.join(DIR, "listener.py")
        subprocess.run([sys.executable, listener, "daemon", os.path.join(DIR, "daemon.ready")], check=True)
        wait("daemon.ready")


if __name__ == "__main__":
    unittest.main()
"""

NODE_SUITE = """\
const { test } = require("node:test");
const net = require("node:net");
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");
const DIR = process.env.DIR;
const SERVE = `const s = require("net").createServer().listen(0, "127.0.0.1", () => {
  require("fs").writeFileSync(process.argv[1] + ".tmp", s.address().port + " " + process.pid);
  require("fs").renameSync(process.argv[1] + ".tmp", process.argv[1]); });`;

async function ready(name) {
  while (!fs.existsSync(path.join(DIR, name))) await new Promise((r) => setTimeout(r, 20));
}

test("in process", async () => {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const helper = spawn("sleep", ["120"], { stdio: ["ignore", "ignore", "ignore", server._handle.fd] });
  helper.unref();
  fs.writeFileSync(path.join(DIR, "inproc.ready"), server.address().port + " " + helper.pid);
  server.unref();
});

test("child", async () => {
  spawn(process.execPath, ["-e", SERVE, path.join(DIR, "child.ready")], { stdio: "ignore" }).unref();
  await ready("child.ready");
});

test("daemon", async () => {
  spawn("setsid", ["-f", process.execPath, "-e", SERVE, path.join(DIR, "daemon.ready")], { stdio: "ignore" });
  await ready("daemon.ready");
});
"""

CLEAN_PY = """\
import socket, subprocess, sys, unittest


class Clean(unittest.TestCase):
    def test_server(self):
        with socket.create_server(("127.0.0.1", 0)) as server:
            with socket.create_connection(server.getsockname()):
                pass
        subprocess.run([sys.executable, "-c", "pass"], check=True)


if __name__ == "__main__":
    unittest.main()
"""


def _suite(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "listener.py").write_text(LISTENER)
    return {"DIR": str(tmp_path), "PY": sys.executable}


def _run(netns: str, tmp_path: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``sockdiff run ARGV`` in ``netns``; its streams are files, which the leftovers may hold open
    (a pipe would not end while they run)."""
    command, base = sockdiff_command("run", *argv)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            netns_exec_argv(netns, command),
            stdout=stdout,
            stderr=stderr,
            timeout=TIMEOUT,
            cwd=tmp_path,
            env={**base, **env},
            check=False,
        )
    return subprocess.CompletedProcess(done.args, done.returncode, out.read_text(), err.read_text())


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The json report: the last line of stderr (CMD's own stderr comes before it)."""
    document: dict[str, Any] = json.loads(result.stderr.splitlines()[-1])
    assert document["format"] == "sockdiff.run"
    return document


def _listeners(netns: str) -> dict[int, set[int]]:
    """ss's word: listening TCP port -> the pids holding it."""
    out = run_in_netns(netns, ["ss", "-Htlnp"]).stdout
    found: dict[int, set[int]] = {}
    for line in out.splitlines():
        words = line.split()
        port = int(words[3].rsplit(":", 1)[1])
        found[port] = {int(part.split("=")[1]) for part in line.split(",") if part.startswith("pid=")}
    return found


def _ready(tmp_path: Path, names: tuple[str, ...]) -> dict[int, int]:
    """port -> pid, as each leak wrote them."""
    pairs = ((tmp_path / f"{name}.ready").read_text().split() for name in names)
    return {int(port): int(pid) for port, pid in pairs}


def _check_leaks(
    netns: str, tmp_path: Path, result: subprocess.CompletedProcess[str], names: tuple[str, ...]
) -> None:
    assert result.returncode == 1, result.stderr
    document = _report(result)
    expected = _ready(tmp_path, names)
    reported = {leak["socket"]["local"]["port"]: leak for leak in document["leaks"]}
    assert reported.keys() == expected.keys()
    listening = _listeners(netns)
    for port, leak in reported.items():
        pids = {holder["pid"] for holder in leak["holders"]}
        assert pids == {expected[port]} == listening[port]  # ss agrees: that process holds it
        (holder,) = leak["holders"]
        assert holder["command"] and holder["seconds"] is not None and holder["seconds"] >= 0
        assert leak["appeared"] is not None and 0 <= leak["appeared"] <= document["seconds"] + 0.5
        assert leak["socket"]["state"] == "LISTEN" and leak["kind"] == "command"
    still = {holder["pid"] for holder in document["left_running"]}
    assert set(expected.values()) <= still


def test_a_shell_suite(netns: str, tmp_path: Path) -> None:
    env = _suite(tmp_path)
    (tmp_path / "suite.sh").write_text(SHELL_SUITE)
    result = _run(netns, tmp_path, "--format", "json", "--", "sh", "suite.sh", env=env)
    assert result.stdout == "2 tests passed\n"  # CMD's output, untouched
    _check_leaks(netns, tmp_path, result, ("child", "daemon"))


def test_a_unittest_suite_and_kill(netns: str, tmp_path: Path) -> None:
    env = _suite(tmp_path)
    (tmp_path / "test_leaky.py").write_text(UNITTEST_SUITE)
    result = _run(netns, tmp_path, "--format", "json", "--", sys.executable, "-m", "unittest", "-q", env=env)
    _check_leaks(netns, tmp_path, result, ("inproc", "child", "daemon"))
    assert "OK" in result.stderr  # unittest's own verdict passed through
    # --kill, in text: each leak named with its process, then each process stopped.
    for name in ("inproc", "child", "daemon"):
        (tmp_path / f"{name}.ready").unlink()
    result = _run(
        netns, tmp_path, "--kill", "--timeline", "--", sys.executable, "-m", "unittest", "-q", env=env
    )
    assert result.returncode == 1, result.stderr
    ports = _ready(tmp_path, ("inproc", "child", "daemon"))
    lines = result.stderr.splitlines()
    for port, pid in ports.items():
        (line,) = [line for line in lines if line.startswith("+ tcp LISTEN") and f":{port} " in line]
        assert f"pid={pid}," in line and f"pid {pid} up " in line and "s after the start" in line
        assert any(line.startswith(f"sockdiff run: stopped pid {pid} ") for line in lines)
    assert "sockdiff run: 3 listening sockets left open by " in result.stderr
    assert not set(_listeners(netns)) & set(ports)


def test_a_node_suite(netns: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:  # not on every CI machine: the shell and unittest suites still run
        pytest.skip("node is not installed")
    env = _suite(tmp_path)
    (tmp_path / "leaky.test.js").write_text(NODE_SUITE)
    result = _run(netns, tmp_path, "--format", "json", "--", node, "--test", "leaky.test.js", env=env)
    _check_leaks(netns, tmp_path, result, ("inproc", "child", "daemon"))
    assert "# pass 3" in result.stdout


def test_a_clean_suite_reports_nothing(netns: str, tmp_path: Path) -> None:
    (tmp_path / "test_clean.py").write_text(CLEAN_PY)
    result = _run(netns, tmp_path, "--format", "json", "--", sys.executable, "-m", "unittest", "-q", env={})
    assert result.returncode == 0, result.stderr
    document = _report(result)
    assert document["leaks"] == [] and document["left_running"] == [] and document["exit_code"] == 0
    result = _run(netns, tmp_path, "--", sys.executable, "-m", "unittest", "-q", env={})
    assert result.returncode == 0
    assert result.stderr.splitlines()[-1].endswith("(exit 0) left no listening socket open")


def test_the_commands_exit_code_wins(netns: str, tmp_path: Path) -> None:
    env = _suite(tmp_path)
    (tmp_path / "suite.sh").write_text(SHELL_SUITE)
    result = _run(netns, tmp_path, "--", "sh", "suite.sh", env={**env, "EXIT": "3"})
    assert result.returncode == 3
    assert "sockdiff run: 2 listening sockets left open by sh suite.sh (exit 3)" in result.stderr
    result = _run(netns, tmp_path, "--fail-on", "new", "--", "sh", "-c", "exit 0", env={})
    assert result.returncode == 0, result.stderr
    # A --report that cannot be written (CMD removed its directory) is said, but CMD's failure wins.
    (tmp_path / "gone").mkdir()
    report = f"json={tmp_path / 'gone' / 'report.json'}"
    result = _run(netns, tmp_path, "--report", report, "--", "sh", "-c", "rmdir gone; exit 3", env={})
    assert result.returncode == 3, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "report.json" in line]
    assert line.startswith(f"sockdiff: {tmp_path / 'gone' / 'report.json'}: cannot write")
    result = _run(netns, tmp_path, "--report", report, "--", "sh", "-c", "exit 0", env={})
    assert result.returncode == 2, result.stderr  # CMD passed: the lost report is the failure


TRAPS = """\
trap 'echo "CMD got $1" >&2; exit 7' "$1"
echo ready
while :; do sleep 0.05; done
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_reach_the_command_first(netns: str, tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "traps.sh").write_text(TRAPS)
    code, err = _signalled(
        netns, tmp_path, ("sh", "traps.sh", sig.name[3:]), lambda pid: _signal_sockdiff(netns, pid, sig)
    )
    lines = err.splitlines()
    # CMD had it first (its line), then sockdiff reported, and exited with CMD's code.
    assert lines[0] == f"CMD got {sig.name[3:]}", err
    assert lines[-1].startswith("sockdiff run: sh traps.sh") and "(exit 7)" in lines[-1]
    assert code == 7


def _signalled(
    netns: str, tmp_path: Path, argv: tuple[str, ...], send: Callable[[int], None]
) -> tuple[int, str]:
    """``sockdiff run -- ARGV`` leading a process group of its own (as a shell's job), ``send``
    called with its pid once CMD printed "ready"; its exit code and stderr."""
    command, env = sockdiff_command("run", "--", *argv)
    with subprocess.Popen(
        netns_exec_argv(netns, command),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,  # ip netns exec execs sockdiff: the same pid, leading the group
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        send(process.pid)
        _, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, err


def _signal_sockdiff(netns: str, ip_pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the sockdiff process (``ip netns exec`` execs it: the same pid)."""
    deadline = time.monotonic() + TIMEOUT
    while b"sockdiff" not in Path(f"/proc/{ip_pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(ip_pid, sig)


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for argv in (
        ("run", "--fail-on", "closed", "--", "true"),
        ("run", "--fail-on", "", "--", "true"),  # not every socket: a variable left empty
        ("run", "--ignore", "sport = :nope", "--", "true"),
        ("run", "--", "/nonexistent/command"),
        ("run", "--", ""),
        ("run", "--format", "table", "--", "true"),
        ("run", "--report", "json=-", "--", "true"),
    ):
        result = sockdiff(*argv, cwd=tmp_path)
        assert result.returncode == 2, (argv, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("sockdiff: ")
    # The kinds an error offers are those run can count, and --help names them all.
    for wrong in ("closed", ""):
        error = sockdiff("run", "--fail-on", wrong, "--", "true", cwd=tmp_path).stderr
        assert error.rstrip().endswith("(choose from listening, new, any)"), error
    described = " ".join(sockdiff("run", "--help", cwd=tmp_path).stdout.split())
    assert "listening (default), or new (any: all)" in described, described


# Counts each delivery of the signal named (SIGINT, SIGTERM): the C-level handler writes a byte to
# the wakeup fd for every delivery, where two close together would run the Python handler once.
# "own-group" first: it moves itself to a process group of its own (setpgid), as some runners do.
COUNT = """
import os, signal, sys, time
counted = signal.Signals[sys.argv[1]]
if sys.argv[2:] == ["own-group"]:
    os.setpgid(0, 0)
read, write = os.pipe()
os.set_blocking(read, False)
os.set_blocking(write, False)
signal.set_wakeup_fd(write, warn_on_full_buffer=False)
signal.signal(counted, lambda signum, frame: None)
print("ready", flush=True)
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    time.sleep(0.01)
try:
    count = os.read(read, 100).count(counted)
except BlockingIOError:  # not one
    count = 0
print(f"got {count}", file=sys.stderr, flush=True)
sys.exit(10 + count)
"""


@pytest.mark.parametrize("moves", [False, True], ids=["in-its-group", "moved-to-its-own-group"])
def test_a_terminals_ctrl_c_reaches_the_command_once(netns: str, tmp_path: Path, moves: bool) -> None:
    """Ctrl-C at a terminal signals the foreground group: CMD gets it once, not twice (sockdiff
    does not send it again), nor never (CMD moved to a group of its own: setpgid)."""
    command, env = sockdiff_command(
        "run", "--", sys.executable, "-c", COUNT, "SIGINT", *(["own-group"] if moves else [])
    )
    master, slave = pty.openpty()
    try:
        with (
            (tmp_path / "stderr").open("w") as stderr,
            subprocess.Popen(
                # setsid --ctty: a session of its own, the pty on stdin its controlling terminal.
                ["setsid", "--ctty", *netns_exec_argv(netns, command)],
                stdin=slave,
                stdout=slave,
                stderr=stderr,
                env=env,
            ) as process,
        ):
            os.close(slave)
            slave = -1
            seen = b""
            while b"ready" not in seen:
                seen += os.read(master, 1024)
            os.write(master, b"\x03")  # the terminal's interrupt character: SIGINT to the foreground group
            process.wait(timeout=TIMEOUT)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    err = (tmp_path / "stderr").read_text()
    assert "got 1\n" in err, err
    assert process.returncode == 11


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_sockdiffs_group_reaches_the_command_once(
    netns: str, tmp_path: Path, sig: signal.Signals
) -> None:
    """``kill -- -PGID`` (a CI runner cancelling, ``timeout``): sockdiff's group gets it; CMD, in a
    group of its own, gets it once, from sockdiff, not once from the kill and once more from sockdiff."""
    code, err = _signalled(
        netns, tmp_path, (sys.executable, "-c", COUNT, sig.name), lambda pid: os.killpg(pid, sig)
    )
    assert "got 1\n" in err, err
    assert code == 11


def test_kill_runs_with_stderr_closed(netns: str, tmp_path: Path) -> None:
    """Started with stderr closed (2>&-): the report has nowhere to go, but what was left is still stopped."""
    server = "import socket, time; s = socket.create_server(('127.0.0.1', 40064)); time.sleep(30)"
    script = f"{shlex.quote(sys.executable)} -c {shlex.quote(server)} & sleep 0.5"
    command, env = sockdiff_command("run", "--kill", "--", "sh", "-c", script)
    argv = netns_exec_argv(netns, ["sh", "-c", 'exec "$@" 2>&-', "sh", *command])
    result = subprocess.run(argv, env=env, cwd=tmp_path, timeout=TIMEOUT, check=False)
    assert result.returncode == 1
    assert 40064 not in _listeners(netns)


# A listener whose SIGTERM handler forks a copy of itself (which keeps the listening socket) and exits.
FORKS_ON_TERM = """
import os, signal, socket, time
server = socket.create_server(("127.0.0.1", 40071))
def again(signum, frame):
    if os.fork():
        os._exit(0)
signal.signal(signal.SIGTERM, again)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
"""
# A supervisor that shrugs SIGTERM off and starts its server again each time it ends.
SUPERVISOR = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda signum, frame: None)
server = "import socket, time; s = socket.create_server(('127.0.0.1', 40072)); time.sleep(60)"
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    subprocess.run([sys.executable, "-c", server], check=False)
"""


def test_kill_stops_what_restarts_itself(netns: str, tmp_path: Path) -> None:
    """--kill reads the tree again after each round: a copy forked by a SIGTERM handler, a server its
    supervisor started again, are stopped too, and named; none is left listening (ss)."""
    python = shlex.quote(sys.executable)
    script = (
        f"{python} -c {shlex.quote(FORKS_ON_TERM)} & {python} -c {shlex.quote(SUPERVISOR)} &"
        " while [ $(ss -Htln | grep -c ':4007[12] ') -lt 2 ]; do sleep 0.02; done"
    )
    result = _run(netns, tmp_path, "--kill", "--", "sh", "-c", script, env={})
    assert result.returncode == 1, result.stderr
    assert not {40071, 40072} & set(_listeners(netns)), result.stderr
    lines = result.stderr.splitlines()
    stopped = [line for line in lines if line.startswith("sockdiff run: stopped pid ")]
    # The two first seen, the copies forked and restarted after them: each named once.
    assert len(stopped) > 3 and any(line.endswith("(SIGKILL after 5s)") for line in stopped), result.stderr
    assert not [line for line in lines if "could not stop" in line]


def test_kill_stops_a_stopped_leftover_with_sigterm(netns: str, tmp_path: Path) -> None:
    """A leftover that stopped itself (SIGSTOP) acts on SIGTERM once continued: --kill sends
    SIGCONT after it, so the process ends within the grace, not by SIGKILL after it."""
    server = (
        "import os, signal, socket, time; s = socket.create_server(('127.0.0.1', 40073));"
        " os.kill(os.getpid(), signal.SIGSTOP); time.sleep(60)"
    )
    script = (
        f"{shlex.quote(sys.executable)} -c {shlex.quote(server)} &"
        " while [ $(ss -Htln | grep -c ':40073 ') -lt 1 ]; do sleep 0.02; done"
    )
    result = _run(netns, tmp_path, "--kill", "--", "sh", "-c", script, env={})
    assert result.returncode == 1, result.stderr
    assert 40073 not in _listeners(netns)
    stopped = [line for line in result.stderr.splitlines() if line.startswith("sockdiff run: stopped pid ")]
    assert len(stopped) == 1 and stopped[0].endswith("(SIGTERM)"), result.stderr


def test_kill_says_what_it_may_not_stop(tmp_path: Path) -> None:
    """Not root, a leftover of another user (a setuid program that switched for good) cannot be
    signalled: one line names it, no traceback, and the exit code is the run's."""
    from tests.helpers.unprivileged import as_nobody, readable_copy

    place = Path(tempfile.mkdtemp(prefix="sockdiff-setuid-"))
    try:
        place.chmod(0o755)
        setpriv = place / "setpriv"
        shutil.copy2("/usr/bin/setpriv", setpriv)
        setpriv.chmod(0o4755)  # root's, setuid: it may take another user's identity for good
        script = f"{setpriv} --reuid=1 --regid=1 --clear-groups sleep 30 >/dev/null 2>&1 & sleep 0.2"
        with readable_copy() as copy:
            result = as_nobody(copy, ["-m", "sockdiff", "run", "--kill", "--", "sh", "-c", script])
    finally:
        shutil.rmtree(place)
    refused = [line for line in result.stderr.splitlines() if "could not stop" in line]
    pids = [int(line.split()[6]) for line in refused]
    for pid in pids:  # root may
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in result.stderr and len(refused) == 1, result.stderr
    assert refused[0].startswith("sockdiff run: could not stop pid ") and "sleep 30" in refused[0]
    assert result.returncode == 0, result.stderr  # CMD passed, no socket counted


def test_ctrl_z_stops_the_job_and_fg_continues_it(tmp_path: Path) -> None:
    """CMD has the terminal (its own group, in the foreground): Ctrl-Z stops it, and sockdiff stops
    with it, so an interactive shell sees its job stopped; ``fg`` gives CMD the terminal again."""
    command, env = sockdiff_command("run", "--", "sh", "-c", "sleep 1; echo done-$((6*7))")
    pid, master = pty.fork()
    if pid == 0:  # the child: an interactive shell on the pty, with job control
        os.chdir(tmp_path)
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], {**env, "PS1": "$ "})

    def until(wanted: bytes) -> bytes:
        seen = b""
        deadline = time.monotonic() + TIMEOUT
        while wanted not in seen:
            assert time.monotonic() < deadline, seen
            with contextlib.suppress(BlockingIOError):
                seen += os.read(master, 4096)
        return seen

    try:
        os.write(master, f"{shlex.join(command)} 2>&1\n".encode())
        until(b"sockdiff")
        time.sleep(0.3)  # CMD has started and holds the terminal
        os.write(master, b"\x1a")  # Ctrl-Z: SIGTSTP to the foreground group
        until(b"Stopped")
        os.write(master, b"fg\n")
        seen = until(b"left no listening socket open")
        assert b"done-42" in seen
        os.write(master, b"exit\n")
    finally:
        os.close(master)
        os.waitpid(pid, 0)


def test_a_leak_in_another_namespace_is_labelled_with_it(netns: str, tmp_path: Path) -> None:
    """CMD's child listening in another namespace (``ip netns exec``): its leak names that namespace,
    in text (``[NAME] tcp ...``, as compare names one) and in json (the label, and the inode)."""
    env = _suite(tmp_path)
    with private_netns() as other:
        ready = tmp_path / "child.ready"
        script = (
            f"ip netns exec {other} {shlex.quote(sys.executable)} listener.py child {ready} >/dev/null &"
            f" while [ ! -e {ready} ]; do sleep 0.02; done"
        )
        result = _run(netns, tmp_path, "--kill", "--", "sh", "-c", script, env=env)
        ((port, _),) = _ready(tmp_path, ("child",)).items()
        leaks = [line for line in result.stderr.splitlines() if line.startswith("+ ")]
        assert leaks == [leaks[0]] and leaks[0].startswith(f"+ [{other}] tcp LISTEN 127.0.0.1:{port} "), (
            result.stderr
        )
        ready.unlink()
        result = _run(netns, tmp_path, "--format", "json", "--", "sh", "-c", script, env=env)
        (leak,) = _report(result)["leaks"]
        assert leak["netns"] == other
        assert leak["socket"]["netns"] == os.stat(f"/run/netns/{other}").st_ino
        # (the listener left running goes with its namespace)


# A double fork whose daemon listens only a moment after the command exited.
LATE_DAEMON = """\
import os, socket, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
time.sleep(0.3)
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], os.getpid(), file=open(sys.argv[1] + ".tmp", "w"), flush=True)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
"""


def test_a_daemon_listening_just_after_the_command_exits_is_found(netns: str, tmp_path: Path) -> None:
    """CMD exits before its double-forked daemon listens: what it left running is given time to
    start before the tree's sockets are read (it was missed: 'left no listening socket open')."""
    (tmp_path / "late.py").write_text(LATE_DAEMON)
    ready = tmp_path / "late.ready"
    result = _run(netns, tmp_path, "--kill", "--", sys.executable, "late.py", str(ready), env={})
    port, pid = ready.read_text().split()
    assert result.returncode == 1, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("+ tcp LISTEN")]
    assert f"127.0.0.1:{port} " in line and f"pid={pid}," in line


def test_the_command_gets_sigpipe_at_its_default(tmp_path: Path) -> None:
    """Python ignores SIGPIPE and SIGXFSZ in itself; CMD gets them at their default, as from a shell:
    a writer into a closed pipe (``| head -1``) ends by SIGPIPE instead of writing on for ever."""
    status = "grep SigIgn /proc/self/status"
    shell = subprocess.run(["sh", "-c", status], capture_output=True, text=True, check=True)
    result = sockdiff("run", "--", "sh", "-c", status, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # glibc's posix_spawn leaves its own two signals (32, 33) ignored in the child; glibc and musl
    # programs handle them themselves. Every other signal is as the shell gave it.
    glibcs = (1 << 31) | (1 << 32)
    ignored, expected = (int(text.split()[1], 16) & ~glibcs for text in (result.stdout, shell.stdout))
    assert ignored == expected, (result.stdout, shell.stdout)
    writer = "i=0; while [ $i -lt 100000 ]; do echo x; i=$((i + 1)); done"
    command, env = sockdiff_command("run", "--", "sh", "-c", writer)
    with subprocess.Popen(command, stdout=subprocess.PIPE, cwd=tmp_path, env=env) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == b"x\n"
        process.stdout.close()  # as head -1 does
        assert process.wait(TIMEOUT) == 128 + signal.SIGPIPE


def test_a_command_line_that_is_not_utf8_is_reported_in_every_format(netns: str, tmp_path: Path) -> None:
    """A byte of CMD's that is not UTF-8 is written ``\\xff`` in every report (json's could not be
    written: the report vanished from stderr, and with --report, --kill never ran)."""
    env = _suite(tmp_path)
    odd = os.fsdecode(b"caf\xff")
    # The listener's own command line has it too ("$0" is CMD's last word).
    script = f'{shlex.quote(sys.executable)} listener.py child {tmp_path / "child.ready"} "$0" & sleep 0.5'

    for chosen in ("json", "junit", "github", "markdown"):
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / "child.ready").unlink()
        argv = ("--kill", "--format", "json", "--report", f"{chosen}=report", "--", "sh", "-c", script, odd)
        result = _run(netns, tmp_path, *argv, env=env)
        ((port, _),) = _ready(tmp_path, ("child",)).items()
        assert result.returncode == 1, result.stderr
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("{")]
        document = json.loads(line)
        assert document["command"][-1] == "caf\\xff"
        (leak,) = document["leaks"]
        assert leak["owner"].endswith(" 'caf\\xff'") and leak["socket"]["local"]["port"] == port
        assert leak["holders"][0]["command"][-1] == "caf\\xff"
        written = (tmp_path / "report").read_text()
        if chosen == "json":
            written = json.loads(written)["leaks"][0]["holders"][0]["command"][-1]
        assert "caf\\xff" in written, written
        assert port not in _listeners(netns), result.stderr  # --kill ran


STUBBORN = """\
import signal, socket, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.create_server(("127.0.0.1", 40081))
time.sleep(60)
"""


def test_a_signal_during_the_kill_grace_sends_sigkill_at_once(netns: str, tmp_path: Path) -> None:
    """Ctrl-C while --kill waits out its grace (a leftover shrugging SIGTERM off): SIGKILL goes at
    once, what was stopped is said, and the exit code is the run's (it was 130, the orphan left)."""
    script = f"{shlex.quote(sys.executable)} -c {shlex.quote(STUBBORN)} >/dev/null 2>&1 & sleep 0.5"
    command, env = sockdiff_command("run", "--kill", "--", "sh", "-c", script)
    with subprocess.Popen(
        netns_exec_argv(netns, command), cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        lines = [process.stderr.readline()]
        while "left open by" not in lines[-1]:
            lines.append(process.stderr.readline())
            assert lines[-1], lines
        time.sleep(0.3)  # SIGTERM sent, its grace running
        _signal_sockdiff(netns, process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
    (stopped,) = [line for line in err.splitlines() if line.startswith("sockdiff run: stopped pid ")]
    assert stopped.endswith("(SIGKILL after SIGINT)"), err
    assert process.returncode == 1, err
    assert 40081 not in _listeners(netns)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_cmd_ended_still_reports_and_kills(
    netns: str, tmp_path: Path, signum: signal.Signals
) -> None:
    """A signal that comes after CMD ended, while its leftover is given time to settle (a CI
    runner's cancel, Ctrl-C): the report is still written and --kill still stops the leftover;
    the exit code is the run's (SIGTERM ended sockdiff there, the orphan left behind)."""
    server = "import socket, time; s = socket.create_server(('127.0.0.1', 40082)); time.sleep(60)"
    marker = tmp_path / "cmd-ended"
    script = (
        f"{shlex.quote(sys.executable)} -c {shlex.quote(server)} >/dev/null 2>&1 &"
        " while [ $(ss -Htln | grep -c ':40082 ') -lt 1 ]; do sleep 0.02; done;"
        f" echo $$ > {shlex.quote(str(marker))}"
    )
    command, env = sockdiff_command("run", "--kill", "--", "sh", "-c", script)
    with subprocess.Popen(
        netns_exec_argv(netns, command), cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        while not marker.exists() or not marker.read_text().endswith("\n"):
            time.sleep(0.01)
        cmd = Path(f"/proc/{marker.read_text().strip()}/stat")
        with contextlib.suppress(FileNotFoundError):  # CMD exits (a zombie until reaped, or gone)
            while cmd.read_bytes().rpartition(b")")[2].split()[0] != b"Z":
                time.sleep(0.01)
        _signal_sockdiff(netns, process.pid, signum)
        _, err = process.communicate(timeout=TIMEOUT)
    assert "left open by" in err, err
    assert process.returncode == 1, err
    assert 40082 not in _listeners(netns)


def test_sigtstp_without_a_terminal_stops_the_job(tmp_path: Path) -> None:
    """``kill -TSTP`` to sockdiff with no terminal: CMD's group stops, then sockdiff (it was
    not passed on: CMD ran on, sockdiff alone was stopped); SIGCONT continues both."""

    def state(pid: int) -> str:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]

    def until(wanted: str, *pids: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while {state(pid) for pid in pids} != {wanted}:
            assert time.monotonic() < deadline, [state(pid) for pid in pids]
            time.sleep(0.02)

    command, env = sockdiff_command("run", "--", "sh", "-c", "echo ready; exec sleep 60")
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        (cmd,) = map(int, Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split())
        until("S", cmd)  # sleeping
        process.send_signal(signal.SIGTSTP)
        until("T", cmd, process.pid)
        process.send_signal(signal.SIGCONT)
        until("S", cmd, process.pid)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM, err
