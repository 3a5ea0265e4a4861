"""``sockdiff compare`` and ``watch`` as a user runs them, on zoo transitions in a private namespace.

Every expected difference is computed from the zoo's manifests (what the kernel
shows of each named socket before and after) by the rules of SPEC.md, not read
back from sockdiff; the assertions are exact: every ``+``/``-``/``~`` line, every
socket of the JSON document, every exit code.

sockdiff always runs as a subprocess (``python -m sockdiff``), in a scratch
directory (so no pyproject.toml or .sockdiff.toml leaks in) with its own
``SOCKDIFF_HOME``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import TIMEOUT, one_line_error, sockdiff
from tests.helpers.records import read_back_record
from tests.helpers.zoo import ZooClient, start_zoo

Record = dict[str, Any]
Manifest = dict[str, Record]

#: Seconds any one sockdiff command may take.
#: The fields of a socket record (SPEC.md), in the order a snapshot writes them.
RECORD_FIELDS = ("proto", "family", "type", "state", "local", "remote", "inode", "uid", "recv_q", "send_q")
#: What the zoo's manifest knows of a record, and so what is compared exactly.
KNOWN_FIELDS = ("proto", "family", "type", "state", "local", "remote", "inode", "uid", "processes")
UNIX_NETIDS = {"stream": "u_str", "dgram": "u_dgr", "seqpacket": "u_seq"}
EMPTY_SUMMARY = "0 new, 0 closed, 0 changed"
#: What the text report appends to a difference --fail-on counts, when it counts some kinds only.
COUNTED = "  [counted]"
LIVE_NOTE = "sockdiff: note: live against live: only differences seen in two consecutive reads"


# --------------------------------------------------------------------------
# Running sockdiff
# --------------------------------------------------------------------------


def run_together(
    commands: Sequence[Sequence[str]], *, cwd: Path | Sequence[Path], home: Path
) -> list[subprocess.CompletedProcess[str]]:
    """:func:`sockdiff` for each of ``commands``, independent ones, at the same time; results in order."""
    where = [cwd] * len(commands) if isinstance(cwd, Path) else list(cwd)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda argv, here: sockdiff(*argv, cwd=here, home=home), commands, where))


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


# --------------------------------------------------------------------------
# The oracle: expected differences from two zoo manifests, by SPEC.md's rules
# --------------------------------------------------------------------------


def owners(record: Mapping[str, Any]) -> frozenset[tuple[int, str]]:
    return frozenset((p["pid"], p["name"]) for p in record["processes"])


@dataclass
class Expected:
    """What compare must report: sockets as the zoo's records, changes with their fields."""

    new: list[Record]
    closed: list[Record]
    changed: list[tuple[Record, Record, list[str]]]

    @property
    def summary(self) -> str:
        return f"{len(self.new)} new, {len(self.closed)} closed, {len(self.changed)} changed"


def expected_diff(before: Manifest, after: Manifest) -> Expected:
    """The differences between two manifests (NAME -> record), as SPEC.md defines them.

    The zoo's names pair the sockets. A UNIX socket's identity holds its inode,
    so one with a new inode is a close plus a new; any other pair is a change in
    ``state``, in the set of ``(pid, name)`` owners (where both sides know some),
    or in ``inode`` (where neither is 0).
    """
    found = Expected([], [], [])
    for name in before.keys() - after.keys():
        found.closed.append(before[name])
    for name in after.keys() - before.keys():
        found.new.append(after[name])
    for name in before.keys() & after.keys():
        old, new = before[name], after[name]
        if old["proto"] == "unix" and old["inode"] != new["inode"]:
            found.closed.append(old)
            found.new.append(new)
            continue
        fields = []
        if old["state"] != new["state"]:
            fields.append("state")
        if old["processes"] and new["processes"] and owners(old) != owners(new):
            fields.append("processes")
        if old["inode"] and new["inode"] and old["inode"] != new["inode"]:
            fields.append("inode")
        if fields:
            found.changed.append((old, new, fields))
    return found


# ss's way of writing endpoints, as README's compare output shows them.


def inet_text(record: Mapping[str, Any], end: str) -> str:
    """ss's inet_addr_print: IPv6 ``::`` is ``*`` unless v6only; the local side carries ``%device``."""
    address, port = record[end]["address"], record[end]["port"]
    if record["family"] == "inet6" and address == "::" and not record.get("v6only"):
        host = "*"
    else:
        host = f"[{address}]" if ":" in address else address
    if end == "local" and record.get("interface"):
        host += f"%{record['interface']}"
    return f"{host}:{port or '*'}"


def netid(record: Mapping[str, Any]) -> str:
    return UNIX_NETIDS[record["type"]] if record["proto"] == "unix" else str(record["proto"])


def local_text(record: Mapping[str, Any]) -> str:
    if record["proto"] == "unix":
        path = record["local"]["path"]
        return f"{'*' if path is None else path} {record['inode']}"
    return inet_text(record, "local")


def remote_text(record: Mapping[str, Any]) -> str:
    if record["proto"] == "unix":
        return f"* {record['remote']['peer_inode']}"
    return inet_text(record, "remote")


def users_text(record: Mapping[str, Any]) -> str:
    if not record["processes"]:
        return ""
    inner = ",".join(f'("{p["name"]}",pid={p["pid"]},fd={p["fd"]})' for p in record["processes"])
    return f" users:({inner})"


def owners_detail(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """README's ``+("b",pid=2,fd=3) -("a",pid=1,fd=3)``: the owners that came, then those that went."""

    def texts(sign: str, came: Sequence[Mapping[str, Any]], went: Sequence[Mapping[str, Any]]) -> list[str]:
        return [
            f'{sign}("{p["name"]}",pid={p["pid"]},fd={p["fd"]})'
            for p in sorted(came, key=lambda p: (p["pid"], p["name"], p["fd"]))
            if p not in went
        ]

    return " ".join(
        texts("+", new["processes"], old["processes"]) + texts("-", old["processes"], new["processes"])
    )


def socket_line(sign: str, record: Mapping[str, Any]) -> str:
    """The whole ``+``/``-`` line of a new or closed socket."""
    return (
        f"{sign} {netid(record)} {record['state']} {local_text(record)} {remote_text(record)}"
        + users_text(record)
    )


def change_where(record: Mapping[str, Any]) -> str:
    """What a ``~`` line names its socket by (before the two spaces and the details)."""
    return f"~ {netid(record)} {local_text(record)} {remote_text(record)}"


def check_text(result: subprocess.CompletedProcess[str], expected: Expected) -> None:
    """compare's text output is exactly ``expected``: every line, in +, -, ~ order, then the summary."""
    lines = lines_of(result)
    assert lines, result.stderr
    assert lines[-1] == expected.summary, result.stdout
    # A difference --fail-on counts ends in COUNTED when it counts some kinds only.
    marked = [line.endswith(COUNTED) for line in lines[:-1]]
    assert not any(marked) or result.returncode == 1, result.stdout
    args = [str(arg) for arg in result.args]
    if "--fail-on" in args and "any" not in args[args.index("--fail-on") + 1].split(","):
        assert any(marked) == (result.returncode == 1), result.stdout
    body = [line.removesuffix(COUNTED) for line in lines[:-1]]
    signs = [line[:2] for line in body]
    assert signs == sorted(signs, key=["+ ", "- ", "~ "].index), result.stdout
    assert sorted(line for line in body if line.startswith("+ ")) == sorted(
        socket_line("+", r) for r in expected.new
    ), result.stdout
    assert sorted(line for line in body if line.startswith("- ")) == sorted(
        socket_line("-", r) for r in expected.closed
    ), result.stdout
    changes: dict[str, list[str]] = {}
    for line in body:
        if line.startswith("~ "):
            where, _, detail = line.partition("  ")
            assert where not in changes, result.stdout
            changes[where] = detail.split("; ")
    assert set(changes) == {change_where(new) for _, new, _ in expected.changed}, result.stdout
    for old, new, fields in expected.changed:
        details = changes[change_where(new)]
        assert [part.split(":", 1)[0] for part in details] == fields, details
        for name, part in zip(fields, details, strict=True):
            if name == "processes":
                assert part == f"processes: {owners_detail(old, new)}", part
            else:
                assert part == f"{name}: {old[name]} → {new[name]}", part


def known(record: Mapping[str, Any]) -> Record:
    """The part of a record the zoo's manifest knows."""
    return {key: record[key] for key in KNOWN_FIELDS}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def check_record(sock: Mapping[str, Any]) -> None:
    """A socket of the diff document has SPEC.md's fields in order, and the snapshot reader takes it."""
    assert list(sock) == [*RECORD_FIELDS, "processes", "interface", "v6only"], sock
    read_back_record(sock)


def parse_diff(text: str) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The diff document as json.loads sees it, and its members in order (a repeated key too)."""
    calls: list[list[tuple[str, Any]]] = []

    def keep(members: list[tuple[str, Any]]) -> dict[str, Any]:
        calls.append(members)  # inner objects first: the document's own members come last
        return dict(members)

    json.loads(text, object_pairs_hook=keep)
    return json.loads(text), calls[-1]


def check_json(result: subprocess.CompletedProcess[str], expected: Expected, netns: str) -> dict[str, Any]:
    """compare --format json is SPEC.md's document with exactly ``expected`` in it."""
    document, members = parse_diff(result.stdout)
    names = [name for name, _ in members]
    assert len(names) == len(set(names)), names  # no key twice
    assert names[:9] == [
        "format", "version", "snapshots", "summary", "new", "closed", "changed", "interfaces", "routes"
    ], names  # fmt: skip
    assert document["format"] == "sockdiff.diff" and document["version"] == 2
    old_meta, new_meta = document["snapshots"]["old"], document["snapshots"]["new"]
    assert isinstance(document["new"], list)
    for meta in (old_meta, new_meta):
        assert meta["format"] == "sockdiff.snapshot" and meta["netns"] == netns, meta
    unchanged = {"added": 0, "removed": 0, "changed": 0}  # the namespace's links and routes stay put
    assert document["summary"] == {
        "new": len(expected.new),
        "closed": len(expected.closed),
        "changed": len(expected.changed),
        "interfaces": unchanged,
        "routes": unchanged,
    }
    for kind, records in (("new", expected.new), ("closed", expected.closed)):
        for sock in document[kind]:
            check_record(sock)
        got = sorted(canonical(known(s)) for s in document[kind])
        assert got == sorted(canonical(known(r)) for r in records), (kind, document[kind])
    for change in document["changed"]:
        assert list(change) == ["old", "new", "fields"], change
        check_record(change["old"])
        check_record(change["new"])
    got_changes = sorted(
        canonical([known(c["old"]), known(c["new"]), c["fields"]]) for c in document["changed"]
    )
    want_changes = sorted(canonical([known(o), known(n), f]) for o, n, f in expected.changed)
    assert got_changes == want_changes, document["changed"]
    return document


# --------------------------------------------------------------------------
# The transitions, shared by the module's tests
# --------------------------------------------------------------------------


@dataclass
class Transitions:
    """A zoo taken through two sets of transitions, with snapshots around them.

    ``before`` (snapshot ``old.json``) -> the first set (a listener opened,
    listeners closed, a connection half-closed, a listener restarted in a new
    process, one SO_REUSEPORT twin closed) -> ``middle`` (``new.json``, and the
    live compares made right then) -> the second set (closes only) -> ``after``
    (``third.json``).
    """

    netns: str
    dir: Path
    home: Path
    old: Path
    new: Path
    third: Path
    before: Manifest
    middle: Manifest
    after: Manifest
    answers: dict[str, Record]
    live_text: subprocess.CompletedProcess[str]
    live_json: subprocess.CompletedProcess[str]

    def run(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return sockdiff(*argv, cwd=cwd or self.dir, home=self.home)

    def run_many(
        self, commands: Sequence[Sequence[str]], directories: Sequence[Path | None] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        """:meth:`run` each of ``commands`` (independent ones: at the same time), in order."""
        where = [cwd or self.dir for cwd in directories or [None] * len(commands)]
        return run_together(commands, cwd=where, home=self.home)

    @property
    def first(self) -> Expected:
        return expected_diff(self.before, self.middle)

    @property
    def second(self) -> Expected:
        return expected_diff(self.middle, self.after)

    @property
    def leak_port(self) -> int:
        return int(self.answers["listen"]["record"]["local"]["port"])


def snapshot_matches(path: Path, manifest: Manifest) -> None:
    """The premise of the oracle: a snapshot holds the zoo's sockets and nothing else."""
    sockets = json.loads(path.read_text())["sockets"]
    got = sorted(canonical({k: s[k] for k in KNOWN_FIELDS if k != "uid"}) for s in sockets)
    want = sorted(canonical({k: r[k] for k in KNOWN_FIELDS if k != "uid"}) for r in manifest.values())
    assert got == want


def take_snapshot(netns: str, path: Path, cwd: Path, home: Path) -> None:
    result = sockdiff("snapshot", "--netns", netns, "-o", str(path), cwd=cwd, home=home)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result


@pytest.fixture(scope="module")
def transitions(module_netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Transitions]:
    base = tmp_path_factory.mktemp("compare")
    work, home = base / "work", base / "home"
    work.mkdir()
    with start_zoo(module_netns) as zoo:
        old, new, third = work / "old.json", work / "new.json", work / "third.json"
        take_snapshot(module_netns, old, work, home)
        before = zoo.refresh()["sockets"]
        answers = {
            "close_tcp6_listener": zoo.check({"cmd": "close", "name": "tcp6_listener"}),
            "close_unix_abstract": zoo.check({"cmd": "close", "name": "unix_abstract_listener"}),
            "listen": zoo.check(
                {"cmd": "listen", "name": "leak", "proto": "tcp", "family": "inet", "address": "127.0.0.1"}
            ),
            "half_close": zoo.check({"cmd": "half_close", "name": "tcp4_client"}),
            "restart": zoo.check({"cmd": "restart_in_child", "name": "dualstack_listener"}),
            "close_reuseport_a": zoo.check({"cmd": "close", "name": "reuseport_a"}),
        }
        middle = zoo.refresh()["sockets"]
        # Nothing changes until the next command: the three reads can share the time.
        live_text, live_json, taken = run_together(
            [
                ("compare", str(old), "live", "--netns", module_netns),
                ("compare", str(old), "live", "--netns", module_netns, "--format", "json"),
                ("snapshot", "--netns", module_netns, "-o", str(new)),
            ],
            cwd=work,
            home=home,
        )
        assert taken.returncode == 0 and taken.stdout == "" and taken.stderr == "", taken
        answers["close_tcp6_client"] = zoo.check({"cmd": "close", "name": "tcp6_client"})
        answers["close_udp4_bound"] = zoo.check({"cmd": "close", "name": "udp4_bound"})
        after = zoo.refresh()["sockets"]
        take_snapshot(module_netns, third, work, home)
        yield Transitions(
            module_netns,
            work,
            home,
            old,
            new,
            third,
            before,
            middle,
            after,
            answers,
            live_text,
            live_json,
        )


def test_zoo_answers_and_snapshots_are_what_the_oracle_assumes(transitions: Transitions) -> None:
    t = transitions
    half = t.answers["half_close"]
    assert half["peer"] == "tcp4_server"
    assert half["states"] == {"tcp4_client": "FIN_WAIT2", "tcp4_server": "CLOSE_WAIT"}
    assert half["record"]["inode"] == 0 and half["record"]["processes"] == []
    restart = t.answers["restart"]
    assert restart["record"]["pids"] == [restart["pid"]] != restart["old_record"]["pids"]
    assert restart["record"]["local"] == restart["old_record"]["local"]
    for name in ("close_tcp6_listener", "close_unix_abstract", "close_reuseport_a", "close_udp4_bound"):
        assert t.answers[name]["record"] is None and t.answers[name]["changed"] == {}, name
    assert t.answers["close_tcp6_client"]["record"]["state"] == "FIN_WAIT2"
    assert set(t.answers["close_tcp6_client"]["changed"]) == {"tcp6_server"}
    snapshot_matches(t.old, t.before)
    snapshot_matches(t.new, t.middle)
    snapshot_matches(t.third, t.after)
    # The oracle, in words: what each transition must show as.
    first = t.first
    assert sorted(r["inode"] for r in first.new) == [t.middle["leak"]["inode"]]
    assert sorted(r["inode"] for r in first.closed) == sorted(
        t.before[n]["inode"] for n in ("tcp6_listener", "unix_abstract_listener", "reuseport_a")
    )
    assert sorted((new["inode"], fields) for _, new, fields in first.changed) == sorted(
        [
            (0, ["state"]),  # tcp4_client: ESTABLISHED -> FIN_WAIT2, orphaned
            (t.middle["tcp4_server"]["inode"], ["state"]),  # ESTABLISHED -> CLOSE_WAIT
            (t.middle["dualstack_listener"]["inode"], ["processes", "inode"]),
        ]
    )
    second = t.second
    assert second.new == [] and [r["inode"] for r in second.closed] == [t.middle["udp4_bound"]["inode"]]
    assert sorted(fields for _, _, fields in second.changed) == [["state"], ["state"]]


def test_compare_live_text(transitions: Transitions) -> None:
    t = transitions
    assert t.live_text.returncode == 1, t.live_text
    assert t.live_text.stderr == ""
    check_text(t.live_text, t.first)
    # The SO_REUSEPORT twin that stayed is neither closed nor changed.
    port = t.middle["reuseport_b"]["local"]["port"]
    assert [line for line in lines_of(t.live_text) if f"127.0.0.1:{port} " in line] == [
        socket_line("-", t.before["reuseport_a"])
    ]


def test_compare_live_json(transitions: Transitions) -> None:
    t = transitions
    assert t.live_json.returncode == 1 and t.live_json.stderr == "", t.live_json
    document = check_json(t.live_json, t.first, t.netns)
    assert "note" not in document
    assert document["snapshots"]["new"]["backend"] == "netlink"


def test_compare_two_snapshot_files(transitions: Transitions) -> None:
    t = transitions
    text = t.run("compare", str(t.old), str(t.new))
    assert text.returncode == 1 and text.stderr == "", text
    check_text(text, t.first)
    assert text.stdout == t.live_text.stdout
    document = check_json(t.run("compare", str(t.old), str(t.new), "--format", "json"), t.first, t.netns)
    live = json.loads(t.live_json.stdout)
    for kind in ("new", "closed", "changed", "summary"):
        assert document[kind] == live[kind], kind
    # The second set of transitions: closes only.
    later = t.run("compare", str(t.new), str(t.third))
    check_text(later, t.second)
    check_json(t.run("compare", str(t.new), str(t.third), "--format", "json"), t.second, t.netns)


def test_fail_on_exit_codes(transitions: Transitions) -> None:
    t = transitions
    old, new, third = str(t.old), str(t.new), str(t.third)
    kinds = ("any", "new", "closed", "changed", "listening")
    # The first set has every kind of difference, a new listener among them.
    # The second has no new socket at all, so no new listener: only closed and changed count.
    cases: list[tuple[tuple[str, ...], int]] = [((old, new, "--fail-on", kind), 1) for kind in kinds]
    cases += [((new, third, "--fail-on", kind), int(kind in ("any", "closed", "changed"))) for kind in kinds]
    cases += [((new, third, "--fail-on", "new,listening"), 0), ((new, third), 1)]  # default: any
    results = t.run_many([("compare", *argv) for argv, _ in cases])
    assert [r.returncode for r in results] == [code for _, code in cases], [argv for argv, _ in cases]
    for result in results:
        assert result.stderr == "" and result.stdout.endswith(" changed\n"), result
    same = t.run("compare", new, new, "--fail-on", "any")
    assert (same.returncode, lines_of(same), same.stderr) == (0, [EMPTY_SUMMARY], "")


def test_ignore_and_only(transitions: Transitions) -> None:
    """README's Choices: they filter differences; a change goes with either of its sockets."""
    t = transitions
    port = t.leak_port
    first = t.first
    leak = [r for r in first.new if r["local"]["port"] == port]
    assert len(leak) == 1
    not_unix = [r for r in first.closed if r["proto"] != "unix"]
    unix = [r for r in first.closed if r["proto"] == "unix"]
    cases: list[tuple[tuple[str, ...], int, Expected]] = [
        # The leaked listener fails --fail-on listening ...
        (("--fail-on", "listening"), 1, first),
        # ... and passes once ignored, the rest of the report unchanged.
        (
            ("--fail-on", "listening", "--ignore", f"sport = :{port}"),
            0,
            Expected([], first.closed, first.changed),
        ),
        # Repeated --ignore: any of them.
        (
            ("--ignore", f"sport = :{port}", "--ignore", "proto unix", "--fail-on", "new"),
            0,
            Expected([], not_unix, first.changed),
        ),
        # --only keeps the UNIX differences: the abstract listener's close.
        (("--only", "proto unix"), 1, Expected([], unix, [])),
        (("--only", "proto unix", "--fail-on", "new,changed"), 0, Expected([], unix, [])),
        (("--only", "proto raw"), 0, Expected([], [], [])),
        # A change is kept by --only when either side matches, dropped by --ignore when either does.
        (
            ("--only", "state close-wait"),
            1,
            Expected([], [], [c for c in first.changed if c[1]["state"] == "CLOSE_WAIT"]),
        ),
        (
            ("--ignore", "state established"),
            1,
            Expected(first.new, first.closed, [c for c in first.changed if c[0]["state"] != "ESTABLISHED"]),
        ),
        # --only and --ignore together: --ignore wins.
        (
            ("--only", "proto tcp", "--ignore", "state listening"),
            1,
            Expected([], [], [c for c in first.changed if c[1]["state"] != "LISTEN"]),
        ),
    ]
    results = t.run_many([("compare", str(t.old), str(t.new), *argv) for argv, _, _ in cases])
    for (argv, code, expected), result in zip(cases, results, strict=True):
        assert result.returncode == code and result.stderr == "", (argv, result)
        check_text(result, expected)
    assert socket_line("+", leak[0]) + COUNTED in lines_of(results[0])  # --fail-on listening counts it


def write_config(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory


def test_project_defaults(transitions: Transitions, tmp_path: Path) -> None:
    """[tool.sockdiff] in pyproject.toml, or .sockdiff.toml: ignore and fail_on; flags override."""
    t = transitions
    old, new, third = str(t.old), str(t.new), str(t.third)
    port = t.leak_port
    ignore = f'ignore = ["sport = :{port}", "path \'/run/user/*\'"]\n'
    pyproject = "[project]\nname = 'demo'\n\n[tool.sockdiff]\n"
    fail_on = write_config(tmp_path / "fail_on", "pyproject.toml", f'{pyproject}fail_on = "listening"\n')
    both = write_config(tmp_path / "both", "pyproject.toml", f'{pyproject}{ignore}fail_on = "listening"\n')
    dotfile = write_config(tmp_path / "dotfile", ".sockdiff.toml", f'{ignore}fail_on = "listening"\n')
    dot_table = write_config(
        tmp_path / "dot_table", ".sockdiff.toml", f'[tool.sockdiff]\n{ignore}fail_on = "listening"\n'
    )
    listed = write_config(tmp_path / "listed", ".sockdiff.toml", 'fail_on = ["new", "changed"]\n')
    no_table = write_config(tmp_path / "no_table", "pyproject.toml", 'fail_on = "listening"\n[project]\n')
    first = write_config(tmp_path / "first", ".sockdiff.toml", 'fail_on = "new"\n')
    write_config(first, "pyproject.toml", '[tool.sockdiff]\nfail_on = "closed"\n')
    cases: list[tuple[Path, tuple[str, ...], int]] = [
        # fail_on = "listening": the leak fails it; closing a listener does not count; a flag overrides.
        (fail_on, (old, new), 1),
        (fail_on, (new, third), 0),
        (fail_on, (new, third, "--fail-on", "closed"), 1),
        # ignore the leak as well: the verdict passes (the report is checked below).
        (both, (old, new), 0),
        (dotfile, (old, new), 0),
        (dot_table, (old, new), 0),
        # --fail-on replaces fail_on; any --ignore replaces the whole list.
        (both, (old, new, "--fail-on", "closed"), 1),
        (dotfile, (old, new, "--ignore", "proto unix"), 1),
        (dotfile, (old, new, "--ignore", f"sport = :{port}"), 0),
        # fail_on as a list.
        (listed, (new, third), 1),
        (listed, (new, third, "--only", "proto udp"), 0),
        # pyproject.toml without [tool.sockdiff] sets nothing; .sockdiff.toml comes first.
        (no_table, (new, third), 1),
        (first, (new, third), 0),
    ]
    results = t.run_many([("compare", *argv) for _, argv, _ in cases], [cwd for cwd, _, _ in cases])
    assert [r.returncode for r in results] == [code for _, _, code in cases], [r.stderr for r in results]
    # stderr names the config that decided what was ignored or counted, and nothing else.
    for (cwd, _, _), result in zip(cases, results, strict=True):
        assert result.stderr == "" or (
            result.stderr.startswith("sockdiff: note: ")
            and f" from {cwd}/" in result.stderr
            and result.stderr.count("\n") == 1
        ), result.stderr
    assert results[0].stderr == f"sockdiff: note: fail_on from {fail_on}/pyproject.toml [tool.sockdiff]\n"
    assert results[2].stderr == ""  # --fail-on replaced the only setting
    assert results[4].stderr == f"sockdiff: note: ignore and fail_on from {dotfile}/.sockdiff.toml\n"
    for index in (3, 4, 5):
        check_text(results[index], Expected([], t.first.closed, t.first.changed))
    not_unix = [r for r in t.first.closed if r["proto"] != "unix"]
    check_text(results[7], Expected(t.first.new, not_unix, t.first.changed))


def test_malformed_config_or_filter_is_a_usage_error(transitions: Transitions, tmp_path: Path) -> None:
    t = transitions
    configs = [
        ("pyproject.toml", "[tool.sockdiff\nignore = []\n", "pyproject.toml: not valid TOML"),
        (".sockdiff.toml", "ignore = [\n", ".sockdiff.toml: not valid TOML"),
        ("pyproject.toml", '[tool.sockdiff]\nignore = ["sport = "]\n', "bad filter"),
        (".sockdiff.toml", 'ignore = ["(proto tcp"]\n', "bad filter"),
        ("pyproject.toml", "[tool.sockdiff]\nignore = [5]\n", "'ignore'"),
        (".sockdiff.toml", 'fail_on = "sometimes"\n', "'sometimes'"),
        ("pyproject.toml", '[tool.sockdiff]\nfail_on = "new"\nignroe = []\n', "'ignroe'"),
    ]
    flags = [
        (["--ignore", "sport = "], "bad filter"),
        (["--ignore", "proto tcp", "--ignore", "state nonsense"], "nonsense"),
        (["--only", "(proto tcp"], "bad filter"),
        (["--fail-on", "listening,sometimes"], "'sometimes'"),
        (["--fields", "colour"], "'colour'"),
    ]
    commands: list[tuple[str, ...]] = []
    directories: list[Path | None] = []
    for index, (name, text, _) in enumerate(configs):
        commands.append(("compare", str(t.old), str(t.new)))
        directories.append(write_config(tmp_path / str(index), name, text))
    for argv, _ in flags:
        commands.append(("compare", str(t.old), str(t.new), *argv))
        directories.append(None)
    fragments = [fragment for *_, fragment in configs] + [fragment for _, fragment in flags]
    for command, result, fragment in zip(commands, t.run_many(commands, directories), fragments, strict=True):
        assert fragment in one_line_error(result), (command, result.stderr)
        assert result.stdout == "", command


def test_readme_processes_detail(transitions: Transitions) -> None:
    """README: ``~ tcp 127.0.0.1:6379 0.0.0.0:*  processes: +("redis-server",pid=5120,fd=6) -(..)``.

    Up to 01e9549 a one-for-one owner swap (a listener restarted by another
    process) came out as ``users:(old) → users:(new)`` instead.
    """
    t = transitions
    old, new = t.before["dualstack_listener"], t.middle["dualstack_listener"]
    (came,) = new["processes"]
    (went,) = old["processes"]
    want = (
        f"{change_where(new)}  processes: "
        f'+("{came["name"]}",pid={came["pid"]},fd={came["fd"]}) '
        f'-("{went["name"]}",pid={went["pid"]},fd={went["fd"]}); '
        f"inode: {old['inode']} → {new['inode']}"
    )
    assert want in lines_of(t.run("compare", str(t.old), str(t.new)))


# --------------------------------------------------------------------------
# The README's CI recipe, the store, backends against each other, watch
# --------------------------------------------------------------------------


def test_readme_ci_recipe(zoo: ZooClient, tmp_path: Path) -> None:
    """``snapshot --name before-tests``; a test run leaks listeners; ``compare --fail-on listening``."""
    assert zoo.netns is not None
    ns = zoo.netns
    work, home = tmp_path / "project", tmp_path / "home"
    work.mkdir()
    taken = sockdiff("snapshot", "--name", "before-tests", "--netns", ns, cwd=work, home=home)
    assert taken.returncode == 0 and taken.stderr == "", taken
    assert taken.stdout == f"{home / 'before-tests.json'}\n"
    before = zoo.refresh()["sockets"]
    # "pytest": a test run that leaves a TCP and a UNIX listener behind.
    zoo.check(
        {"cmd": "listen", "name": "leaked_tcp", "proto": "tcp", "family": "inet", "address": "127.0.0.1"}
    )
    zoo.check(
        {"cmd": "listen", "name": "leaked_unix", "proto": "unix", "type": "stream", "path": "leaked.sock"}
    )
    after = zoo.refresh()["sockets"]
    expected = expected_diff(before, after)
    assert sorted(r["inode"] for r in expected.new) == sorted(
        after[n]["inode"] for n in ("leaked_tcp", "leaked_unix")
    )
    assert expected.closed == [] and expected.changed == []

    failed = sockdiff("compare", "before-tests", "--fail-on", "listening", "--netns", ns, cwd=work, home=home)
    assert failed.returncode == 1 and failed.stderr == "", failed
    check_text(failed, expected)
    assert socket_line("+", after["leaked_tcp"]) + COUNTED in lines_of(failed)

    # The expected listeners go into pyproject.toml, as README shows.
    port = after["leaked_tcp"]["local"]["port"]
    (work / "pyproject.toml").write_text(
        "[tool.sockdiff]\n"
        f'ignore = ["sport = :{port}", "process postgres", "path \'{zoo.dir}/*.sock\'"]\n'
        'fail_on = "listening"\n'
    )
    passed = sockdiff("compare", "before-tests", "--fail-on", "listening", "--netns", ns, cwd=work, home=home)
    note = (
        f"sockdiff: note: ignore from {work}/pyproject.toml [tool.sockdiff]\n"  # --fail-on replaced fail_on
    )
    assert (passed.returncode, lines_of(passed), passed.stderr) == (0, [EMPTY_SUMMARY], note), passed

    # Quick start, inside the namespace: bare snapshot, bare compare, list.
    bare = sockdiff("snapshot", cwd=work, home=home, netns=ns)
    assert bare.returncode == 0 and bare.stderr == "", bare
    stored = Path(bare.stdout.strip())
    assert stored.parent == home and stored.suffix == ".json" and stored.is_file()
    listing = sockdiff("list", cwd=work, home=home)
    assert listing.returncode == 0 and listing.stderr == "", listing
    rows = [line.split() for line in lines_of(listing)]
    assert [row[0] for row in rows] == ["before-tests", stored.stem]
    assert [row[-1] for row in rows] == [str(home / "before-tests.json"), str(stored)]
    # A bare compare (no project defaults here) takes the newest stored snapshot, which
    # has the leaks in it, not before-tests.
    newest = sockdiff("compare", cwd=tmp_path, home=home, netns=ns)
    assert (newest.returncode, lines_of(newest), newest.stderr) == (0, [EMPTY_SUMMARY], ""), newest


def test_backends_compare_equal_live(zoo: ZooClient, tmp_path: Path) -> None:
    assert zoo.netns is not None
    text, result = run_together(
        [
            ("compare", "live:netlink", "live:proc", "--netns", zoo.netns),
            ("compare", "live:netlink", "live:proc", "--netns", zoo.netns, "--format", "json"),
        ],
        cwd=tmp_path,
        home=tmp_path,
    )
    # /proc shows IPv4's main table only and numbers IPv6's main and local only: said once.
    tables = (
        "sockdiff: note: routes compared in IPv4's main table and IPv6's main and local tables only:"
        " live:proc's come from /proc, which shows IPv4's main table only"
        " and numbers no IPv6 table but main and local\n"
    )
    assert (text.returncode, text.stdout, text.stderr) == (0, EMPTY_SUMMARY + "\n", tables + LIVE_NOTE + "\n")
    assert result.returncode == 0 and result.stderr == tables, result
    document = check_json(result, Expected([], [], []), zoo.netns)
    assert document["note"] == "live against live: only differences seen in two consecutive reads"
    assert document["snapshots"]["old"]["backend"] == "netlink"
    assert document["snapshots"]["new"]["backend"] == "proc"


def test_watch_reports_a_listener_opened_while_it_runs(zoo: ZooClient, tmp_path: Path) -> None:
    """watch --count ends by itself; listeners opened between its first and last read show as new.

    When watch takes its first read cannot be seen from outside, so listeners are
    opened one after another until it exits: those opened before its first read
    are never reported, those after its last read neither, and every one in
    between exactly once -- a run of consecutive listeners, never empty.
    """
    assert zoo.netns is not None
    count = 3
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env["SOCKDIFF_HOME"] = str(tmp_path)
    argv = ["watch", "--netns", zoo.netns, "--interval", "0.2", "--count", str(count), "--format", "jsonl"]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "sockdiff", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    opened: list[Record] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while watcher.poll() is None and time.monotonic() < deadline:
            answer = zoo.check(
                {
                    "cmd": "listen",
                    "name": f"watched_{len(opened)}",
                    "proto": "tcp",
                    "family": "inet",
                    "address": "127.0.0.1",
                }
            )
            opened.append(answer["record"])
            time.sleep(0.1)
        out, err = watcher.communicate(timeout=TIMEOUT)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, (watcher.returncode, err)
    banner, summary = err.splitlines()
    assert banner.startswith("sockdiff: watching every 0.2 s") and summary.startswith(
        f"sockdiff: {count} polls, "
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert events, f"no listener reported among {len(opened)} opened"
    shape = ["time", "section", "kind", "host", "machine_id", "boot_id", "socket"]
    assert all(list(event) == shape for event in events), out
    assert all((event["section"], event["kind"]) == ("sockets", "new") for event in events), out
    assert len({event["time"] for event in events}) <= count
    by_inode = {record["inode"]: index for index, record in enumerate(opened)}
    reported = [by_inode.get(event["socket"]["inode"]) for event in events]
    assert None not in reported, out
    indices = sorted(i for i in reported if i is not None)
    assert indices == list(range(indices[0], indices[-1] + 1)), indices
    for event in events:
        sock = event["socket"]
        check_record(sock)
        record = opened[by_inode[sock["inode"]]]
        # Owners are scanned just before the sockets are read: a listener opened in
        # between is new with no owner yet (as with ss -p).
        assert sock["processes"] in ([], record["processes"]), (sock, record)
        assert {**known(sock), "processes": []} == {**known(record), "processes": []}
        assert sock["state"] == "LISTEN"


@pytest.mark.parametrize("no_color", [None, "1"])
def test_colour_only_on_a_terminal(transitions: Transitions, no_color: str | None) -> None:
    """On a terminal the +/-/~ lines are green, red and yellow, unless NO_COLOR is set; piped: plain."""
    t = transitions
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["SOCKDIFF_HOME"] = str(t.home)
    if no_color is not None:
        env["NO_COLOR"] = no_color
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sockdiff", "compare", str(t.old), str(t.new)],
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 1
    finally:
        os.close(leader)
    shown = b"".join(chunks).decode()
    colours = {line[:5] for line in shown.splitlines() if line.startswith("\033[")}
    if no_color is None:
        assert colours == {"\033[32m", "\033[31m", "\033[33m"}, shown
    else:
        assert colours == set() and "\033[" not in shown
    assert "\033[" not in t.run("compare", str(t.old), str(t.new)).stdout
