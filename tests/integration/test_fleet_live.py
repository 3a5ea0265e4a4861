"""Fleet features on live namespaces: compare --role and show --format prometheus through
the command line, and the Ansible collection against three "hosts" that are namespaces.


Each host is a local connection whose Python runs through ``ip netns exec``, with
its own listeners and its own snapshot store. One play keeps a baseline (and a
check-mode snapshot that must store nothing); then listeners change on two
hosts, and the next play reports exactly those two as changed, the one with a
new listener failed under ``fail_on: listening``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import sockdiff
from tests.helpers.netns import netns_exec_argv, private_netns, require_netns, run_in_netns

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook"
)

# Listens on each ADDRESS:PORT given (TCP), says so, and waits for its standard input to close.
LISTENER = """
import socket, sys
held = []
for spec in sys.argv[1:]:
    address, port = spec.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, int(port)))
    s.listen()
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
"""

# Every host, no fact gathering (it would run modules the hosts do not need).
PLAY = """
- hosts: all
  gather_facts: false
  tasks:
"""
PLAY_SNAPSHOT = (
    PLAY
    + """\
    - name: a dry run stores nothing
      sockdiff.sockdiff.sockdiff: {state: snapshot, name: dry, home: "{{ store }}"}
      check_mode: true
    - name: keep the baseline
      sockdiff.sockdiff.sockdiff: {state: snapshot, name: base, home: "{{ store }}"}
"""
)
PLAY_COMPARE = (
    PLAY
    + """\
    - name: what changed since the baseline
      sockdiff.sockdiff.sockdiff: {state: compare, baseline: base, home: "{{ store }}"}
    - name: new listeners fail a host
      sockdiff.sockdiff.sockdiff: {state: compare, baseline: base, home: "{{ store }}", fail_on: [listening]}
      ignore_errors: true
"""
)


def _listen(stack: ExitStack, namespace: str, *listeners: str) -> subprocess.Popen[str]:
    """A process in ``namespace`` listening on each ``ADDRESS:PORT``, until ``stack`` closes."""
    argv = netns_exec_argv(namespace, [sys.executable, "-c", LISTENER, *listeners])
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    stack.callback(process.wait, 10)
    stack.callback(process.stdout.close)
    stack.callback(process.stdin.close)
    assert process.stdout.readline() == "ready\n"
    return process


# ansible-playbook's recap: one line a host, its counts.
RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


def _play(tmp_path: Path, inventory: Path, text: str) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Run a play: each host's recap counts, and its last task's result (the ``tree`` callback's)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(text)
    tree = tmp_path / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT),
        "ANSIBLE_CALLBACKS_ENABLED": "tree",
        "ANSIBLE_CALLBACK_TREE_DIR": str(tree),
        "ANSIBLE_HOME": str(tmp_path / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible" / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible" / "remote"),
        "ANSIBLE_FORKS": "3",
        "ANSIBLE_NOCOLOR": "1",
    }
    assert PLAYBOOK is not None
    done = subprocess.run(
        [PLAYBOOK, "-i", str(inventory), str(playbook)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    recap = {
        host: {key: int(value) for key, value in (pair.split("=") for pair in counts.split())}
        for host, counts in RECAP.findall(done.stdout)
    }
    return recap, {path.name: json.loads(path.read_text()) for path in tree.iterdir()}


def _stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(10)


def test_role_compare_and_prometheus_through_the_command_line(tmp_path: Path, netns: str) -> None:
    """A listener restarted by another process is no difference to its role; a new one on loopback is."""
    base = tmp_path / "base.json"
    # The namespace's own ephemeral range, recorded in the snapshot (the role view's UDP client ports).
    run_in_netns(netns, ["sh", "-c", "echo 20000 20100 > /proc/sys/net/ipv4/ip_local_port_range"])
    with ExitStack() as stack:
        first = _listen(stack, netns, "0.0.0.0:7001")
        assert sockdiff("snapshot", "-N", netns, "-o", str(base)).returncode == 0
        assert json.loads(base.read_text())["local_ports"] == [20000, 20100]
        _stop(first)
        _listen(stack, netns, "0.0.0.0:7001", "127.0.0.1:7002")
        whole = sockdiff("compare", str(base), "--fail-on", "changed")
        assert whole.returncode == 1, whole.stderr  # other pid, other inode
        role = sockdiff("compare", str(base), "--role", "--fail-on", "changed")
        assert role.returncode == 0 and role.stdout.splitlines()[-1] == "1 new, 0 closed, 0 changed", role
        metrics = tmp_path / "sockdiff.prom"
        found = sockdiff("compare", str(base), "--role", "--report", f"prometheus={metrics}", "-f", "json")
        assert found.returncode == 1, found.stderr
        assert json.loads(found.stdout)["new"][0]["local"] == {"address": "loopback", "port": 7002}
        series = [line for line in metrics.read_text().splitlines() if not line.startswith("#")]
        unexpected = [line for line in series if line.startswith("sockdiff_unexpected_listening")]
        assert unexpected == [
            'sockdiff_unexpected_listening{proto="tcp",family="inet",address="loopback",port="7002",'
            f'process="{Path(sys.executable).name[:15]}",netns=""}} 1'
        ]
        shown = sockdiff("show", "-N", netns, "--format", "prometheus")
        oracle = run_in_netns(netns, ["ss", "-Hltn"]).stdout.split()
        listening = [line for line in shown.stdout.splitlines() if line.startswith("sockdiff_listening{")]
        assert sorted(re.findall(r'address="([^"]*)",port="(\d+)"', "\n".join(listening))) == sorted(
            tuple(word.rsplit(":", 1)) for word in oracle if word.count(":") == 1 and not word.endswith(":*")
        )
        assert len(listening) == 2


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Three namespaces, host name -> namespace."""
    require_netns()
    with ExitStack() as stack:
        yield {f"h{i}": stack.enter_context(private_netns()) for i in (1, 2, 3)}


def _inventory(tmp_path: Path, hosts: dict[str, str], **more: dict[str, Any]) -> Path:
    """Each host a local connection whose Python runs in its namespace, with its own store
    (``more``: further variables, host -> mapping)."""
    found = {}
    for host, namespace in hosts.items():
        wrapper = tmp_path / f"python-{host}"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(netns_exec_argv(namespace, [sys.executable]))} "$@"\n')
        wrapper.chmod(0o755)
        found[host] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": str(wrapper),
            "store": str(tmp_path / f"store-{host}"),
            **more.get(host, {}),
        }
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": found}}))
    return inventory


@pytest.mark.skipif(PLAYBOOK is None, reason="ansible-core is not installed")
def test_a_play_reports_exactly_the_hosts_whose_listeners_changed(
    tmp_path: Path, hosts: dict[str, str]
) -> None:
    inventory = _inventory(tmp_path, hosts)
    with ExitStack() as stack:
        served = {host: _listen(stack, namespace, "0.0.0.0:7001") for host, namespace in hosts.items()}
        stats, kept = _play(tmp_path, inventory, PLAY_SNAPSHOT)
        assert {host: (s["changed"], s["failed"]) for host, s in stats.items()} == {
            host: (2, 0) for host in hosts
        }
        for host in hosts:
            # Each host's baseline in its own store, and the dry run's nowhere.
            assert sorted(p.name for p in (tmp_path / f"store-{host}").iterdir()) == ["base.json"]
            facts = kept[host]["ansible_facts"]["sockdiff_listening"]
            assert [(f["proto"], f["address"], f["port"]) for f in facts] == [("tcp", "0.0.0.0", 7001)]
            assert [p["name"] for p in facts[0]["processes"]] == [Path(sys.executable).name[:15]]
        # h1 opens a listener, h3 closes its one; h2 stays as it was.
        _listen(stack, hosts["h1"], "0.0.0.0:7002")
        assert served["h3"].stdin is not None
        served["h3"].stdin.close()
        served["h3"].wait(10)
        stats, compared = _play(tmp_path, inventory, PLAY_COMPARE)
    # Both tasks changed h1 and h3; the second failed h1 alone (a new listener), and the play went on.
    assert {host: (s["changed"], s["ignored"]) for host, s in stats.items()} == {
        "h1": (2, 1),
        "h2": (0, 0),
        "h3": (2, 0),
    }
    # What fail_on counted: h1's new listener; h3's closed one is no new listener.
    assert [compared[host]["counted"] for host in ("h1", "h2", "h3")] == [1, 0, 0]
    assert "fail_on" in compared["h1"]["msg"]
    ports = {
        host: (
            [s["local"]["port"] for s in compared[host]["differences"]["new"]],
            [s["local"]["port"] for s in compared[host]["differences"]["closed"]],
        )
        for host in hosts
    }
    assert ports == {"h1": ([7002], []), "h2": ([], []), "h3": ([], [7001])}
    assert all(
        compared[host]["differences"]["machine_id"] for host in hosts if Path("/etc/machine-id").exists()
    )


# Each host's results, written by the host itself (the tree callback keeps one task's only).
PLAY_OPTIONS = (
    PLAY
    + """\
    - sockdiff.sockdiff.sockdiff: {state: snapshot, name: base, home: "{{ store }}"}
      register: first
    - sockdiff.sockdiff.sockdiff: {state: snapshot, name: base, home: "{{ store }}"}
      register: again
    - sockdiff.sockdiff.sockdiff: {state: compare, baseline: "{{ baseline }}", home: "{{ store }}"}
      register: compared
      ignore_errors: true
    - sockdiff.sockdiff.sockdiff: {state: snapshot, name: every, all_netns: true, home: "{{ store }}"}
      check_mode: true
      register: every
      when: inventory_hostname == "h1"
    - ansible.builtin.copy:
        content: "{{ {'first': first, 'again': again, 'compared': compared, 'every': every} | to_json }}"
        dest: "{{ store }}.results.json"
"""
)


@pytest.mark.skipif(PLAYBOOK is None, reason="ansible-core is not installed")
def test_the_module_keeps_an_unchanged_baseline_refuses_no_baseline_and_reads_every_namespace(
    tmp_path: Path, hosts: dict[str, str]
) -> None:
    baselines = {"h1": "live", "h2": "nosuch", "h3": "base"}
    inventory = _inventory(tmp_path, hosts, **{host: {"baseline": name} for host, name in baselines.items()})
    with ExitStack() as stack:
        for namespace in hosts.values():
            _listen(stack, namespace, "0.0.0.0:7001")
        _play(tmp_path, inventory, PLAY_OPTIONS)
    results = {host: json.loads((tmp_path / f"store-{host}.results.json").read_text()) for host in hosts}
    for host, found in results.items():
        # The second snapshot finds the baseline as it was: not changed, and the file left alone.
        assert (found["first"]["changed"], found["again"]["changed"]) == (True, False), host
        assert found["again"]["path"] == found["first"]["path"]
    # live (the host against itself) and a name stored nowhere fail, each in one clear message.
    for host in ("h1", "h2"):
        refused = results[host]["compared"]
        assert refused["failed"] and f"baseline {baselines[host]!r}" in refused["msg"], refused
        assert "Traceback" not in refused.get("module_stderr", "")
    assert not results["h3"]["compared"].get("failed") and results["h3"]["compared"]["counted"] == 0
    # all_netns: every host's listener, each in its namespace, and nothing stored in check mode.
    facts = results["h1"]["every"]["ansible_facts"]["sockdiff_listening"]
    assert set(hosts.values()) <= {f["netns"] for f in facts if f["port"] == 7001}
    assert sorted(p.name for p in (tmp_path / "store-h1").iterdir()) == ["base.json"]


# Runs ``sockdiff ARGV`` in a UTS namespace of its own whose host name is not UTF-8 (sethostname(2)
# takes any bytes).
ODD_HOST = (
    "import os, socket, sys; socket.sethostname(b'ab\\xffcd');"
    " os.execv(sys.executable, [sys.executable, '-m', 'sockdiff', *sys.argv[1:]])"
)


def test_a_host_or_namespace_name_that_is_not_utf8_is_written_escaped(tmp_path: Path) -> None:
    """The host's name and a namespace's (any bytes) as the records write names: snapshot and compare
    --format json write them (watch's events take the same header), and the file's namespace is read again."""
    require_netns()
    name = f"sockdiff-test-{os.getpid()}-odd\udcff"
    shown = f"sockdiff-test-{os.getpid()}-odd\\xff"
    snap = tmp_path / "snap.json"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        found = subprocess.run(
            ["unshare", "--uts", sys.executable, "-c", ODD_HOST, *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert found.returncode in (0, 1) and not found.stderr, found.stderr
        return found

    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run("snapshot", "--netns", name, "-o", str(snap))
        written = json.loads(snap.read_text())
        assert (written["host"], written["netns"]) == ("ab\\xffcd", shown)
        document = json.loads(run("compare", str(snap), "live", "--format", "json").stdout)
        assert document["host"] == "ab\\xffcd"
        assert document["snapshots"]["new"]["netns"] == shown  # read again in the file's namespace
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_namespace_names_any_bytes_are_labels_apart(tmp_path: Path) -> None:
    """--all-netns: a namespace named with a newline, one with a backslash and an n, one not
    UTF-8: the snapshot writes each, and each is its own prometheus label (no series twice)."""
    require_netns()
    from prometheus_client.parser import text_string_to_metric_families

    stem = f"sockdiff-test-{os.getpid()}-"
    names = [stem + "a\nb", stem + "a\\nb", stem + "x\udcff"]
    with ExitStack() as stack:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
            stack.callback(subprocess.run, ["ip", "netns", "delete", name], check=True)
        for name in names:
            _listen(stack, name, "0.0.0.0:7001")
        snap = tmp_path / "all.json"
        assert sockdiff("snapshot", "--all-netns", "-o", str(snap)).stderr == ""
        written = {n for space in json.loads(snap.read_text())["namespaces"] for n in space["names"]}
        assert {stem + "a\nb", stem + "a\\\\nb", stem + "x\\xff"} <= written
        shown = sockdiff("show", "--all-netns", "--format", "prometheus")
        assert shown.returncode == 0, shown.stderr
        [listening] = [
            f for f in text_string_to_metric_families(shown.stdout) if f.name == "sockdiff_listening"
        ]
        ours = [dict(s.labels) for s in listening.samples if s.labels["netns"].startswith(stem)]
        assert len(ours) == 3 and len({labels["netns"] for labels in ours}) == 3


def test_the_modules_warnings_are_the_tasks_not_stderr() -> None:
    """Run as a user who is not root (other users' owners hidden): the module returns sockdiff's
    warning in ``warnings``, as Ansible shows a task's, and writes nothing to stderr."""
    import importlib.util

    from tests.helpers.unprivileged import as_nobody, readable_copy

    with readable_copy() as copy:
        ansible = importlib.util.find_spec("ansible")
        assert ansible is not None and ansible.origin is not None
        shutil.copytree(Path(ansible.origin).parent, copy / "ansible")
        module = ROOT / "ansible_collections/sockdiff/sockdiff/plugins/modules/sockdiff.py"
        shutil.copy2(module, copy / "sockdiff_module.py")
        home = copy / "home"
        home.mkdir()
        home.chmod(0o777)
        arguments = copy / "args.json"
        arguments.write_text(
            json.dumps(
                {
                    "ANSIBLE_MODULE_ARGS": {
                        "state": "snapshot",
                        "name": "b",
                        "home": str(home),
                        "_ansible_check_mode": True,
                    }
                }
            )
        )
        for path in copy.rglob("*"):
            path.chmod(0o777 if path.is_dir() else 0o644)
        found = as_nobody(copy, [str(copy / "sockdiff_module.py"), str(arguments)])
    assert found.stderr == "", found.stderr
    result = json.loads(found.stdout)
    assert result["changed"] is True and "failed" not in result, result
    assert "run as root" in json.dumps(result["warnings"]), result.get("warnings")  # its form: ansible-core's
