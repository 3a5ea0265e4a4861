"""A process's tree: descendants by parent pid, detached daemons by subreaper or by marker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sockdiff.proctree import ProcessTree
from tests.helpers.daemon import DAEMON


def fake_process(proc: Path, pid: int, parent: int, environ: bytes = b"PATH=/bin\0") -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_bytes(f"{pid} (a (b) c) S {parent} {pid} {pid} 0 -1 4194560".encode())
    (proc / str(pid) / "environ").write_bytes(environ)


def set_last_pid(proc: Path, pid: int) -> None:
    (proc / "loadavg").write_text(f"0.00 0.00 0.00 1/5 {pid}\n")


def test_only_processes_created_since_are_read(tmp_path: Path) -> None:
    proc = tmp_path
    set_last_pid(proc, 160)
    fake_process(proc, 1, 0)
    fake_process(proc, 100, 1)  # the root
    fake_process(proc, 150, 100)
    fake_process(proc, 151, 150)
    fake_process(proc, 160, 1, b"A=1\0MARK=yes\0")  # detached, found by its marker
    fake_process(proc, 140, 1, b"MARK=yes-but-not-quite\0")
    tree = ProcessTree(100, "MARK=yes", str(proc))
    assert tree.members() == {100, 150, 151, 160}
    # While the pid counter stands still, nothing is read again.
    fake_process(proc, 170, 100)
    assert tree.members() == {100, 150, 151, 160}
    # Once it moves, what it handed out since (161..175) is read, and nothing else.
    set_last_pid(proc, 175)
    (proc / "140" / "stat").write_bytes(b"140 (x) S 100 140 140 0 -1 0")  # no pid changes parent...
    assert tree.members() == {100, 150, 151, 160, 170}  # ...so 140 was not read again
    (proc / "140" / "stat").write_bytes(b"140 (x) S 1 140 140 0 -1 0")
    # The counter wraps at pid_max: 176 and up, and 2..110, are new.
    fake_process(proc, 110, 170)
    set_last_pid(proc, 110)
    assert tree.members() == {100, 150, 151, 160, 170, 110}
    # 151 exits, its pid goes to a process outside the tree, and 152 starts under 110.
    for name in ("stat", "environ"):
        (proc / "151" / name).unlink()
    (proc / "151").rmdir()
    fake_process(proc, 151, 1)
    fake_process(proc, 152, 110)
    set_last_pid(proc, 152)
    assert tree.members() == {100, 150, 160, 170, 110, 152}


def run_child(code: str) -> dict[str, Any]:
    """Run ``code`` (given DAEMON as argv[1]) in a process of its own; what it prints, as JSON.

    Its own process, not this one: this pytest may be a subreaper (run with --sockdiff),
    which would keep detached daemons in its tree whatever the marker says.
    """
    done = subprocess.run(
        [sys.executable, "-c", code, DAEMON], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def test_a_detached_daemon_is_found_by_its_marker() -> None:
    seen = run_child(
        "import json, os, subprocess, sys\n"
        "from sockdiff.proctree import ProcessTree\n"
        "tree = ProcessTree(marker='SOCKDIFF_TEST_MARK=1')\n"
        "def daemon(env):\n"
        "    first = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE, env=env)\n"
        "    pid, inode = map(int, first.stdout.readline().split())\n"
        "    first.wait()\n"
        "    return pid, inode\n"
        "env = {k: v for k, v in os.environ.items() if k != 'SOCKDIFF_TEST_MARK'}\n"
        "marked, inode = daemon({**env, 'SOCKDIFF_TEST_MARK': '1'})\n"
        "unmarked, _ = daemon(env)\n"
        "members = tree.members()\n"
        "print(json.dumps({'marked': marked, 'unmarked': unmarked, 'members': sorted(members),\n"
        "    'holders': [p.pid for p in tree.sockets()[inode]]}))\n"
        "os.kill(marked, 9)\n"
        "os.kill(unmarked, 9)\n"
    )
    assert seen["marked"] in seen["members"]
    assert seen["unmarked"] not in seen["members"]  # re-parented away, and unmarked
    assert seen["holders"] == [seen["marked"]]


def test_a_subreaper_keeps_a_detached_daemon_in_its_tree() -> None:
    # In a process of its own: a subreaper stays one for life.
    code = (
        "import json, os, subprocess, sys\n"
        "from sockdiff.proctree import ProcessTree, become_subreaper, is_subreaper\n"
        "assert not is_subreaper() and become_subreaper() and is_subreaper()\n"
        "tree = ProcessTree()\n"
        "first = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE, env={})\n"
        "pid, inode = map(int, first.stdout.readline().split())\n"
        "first.wait()\n"
        "parent = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1]\n"
        "print(json.dumps({'pid': pid, 'parent': int(parent), 'me': os.getpid(),\n"
        "    'members': sorted(tree.members()), 'holders': [p.pid for p in tree.sockets()[inode]]}))\n"
        "os.kill(pid, 9)\n"
    )
    seen = run_child(code)
    assert seen["parent"] == seen["me"]  # re-parented to the subreaper, not to init
    assert seen["pid"] in seen["members"]
    assert seen["holders"] == [seen["pid"]]
