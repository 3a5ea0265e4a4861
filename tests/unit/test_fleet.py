"""Fleet formats: Prometheus's text, role baselines, host identity in json and jsonl.

The Prometheus text is read back by prometheus_client's parser (the reference
Python reader), and each metric and label name checked against the exposition
format's rules; names are hostile (quotes, backslashes, newlines, bytes that are
not UTF-8). The role view is checked on hand-made records; the Ansible play is
tests/test_ansible.py.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sockdiff import Process, Socket, inet, unix_name, unix_peer
from sockdiff.acquire import host_identity
from sockdiff.cli import main
from sockdiff.comparison import compare
from sockdiff.differ import diff, taken_again
from sockdiff.formats import Format, ListingOptions, event_format, listing_format, report
from sockdiff.formats.facts import listening_facts
from sockdiff.formats.notation import escape
from sockdiff.model import Namespace
from sockdiff.roles import role_view
from sockdiff.snapshots import Header, Snapshot, dumps, loads
from tests.helpers.made import HEADER, counters, eth, route

# The exposition format's names (prometheus/docs, "Metric names and labels").
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

HOSTILE_NAMES = (
    'evil"} 1\nsockdiff_listening{proto="tcp"} 1',
    "back\\\\slash\\xff\\xfe",  # a record's text for b"back\\slash\xff\xfe"
    "tab\there\x1b[31m\u2028",
)
ANY = inet("0.0.0.0", 0)


def _listener(
    port: int, name: str, address: str = "0.0.0.0", pid: int = 10, inode: int = 0, proto: str = "tcp"
) -> Socket:
    return Socket(
        proto,  # type: ignore[arg-type]
        "inet",
        "stream" if proto == "tcp" else "dgram",
        "LISTEN" if proto == "tcp" else "CLOSE",
        inet(address, port),
        ANY,
        inode or port,
        0,
        0,
        128,
        (Process(pid, name, 3),),
    )


def _snapshot(sockets: tuple[Socket, ...], header: Header = HEADER) -> Snapshot:
    return Snapshot(header, sockets, None, None)


OLD = _snapshot((_listener(22, "sshd"), _listener(80, "nginx")))
NEW = _snapshot(
    (
        _listener(22, "sshd"),
        *(_listener(9000 + i, name, pid=20 + i) for i, name in enumerate(HOSTILE_NAMES)),
        Socket(
            "tcp",
            "inet",
            "stream",
            "ESTABLISHED",
            inet("10.0.0.1", 22),
            inet("10.0.0.9", 50000),
            5,
            0,
            0,
            0,
            (),
        ),
        Socket(
            "unix", "unix", "stream", "LISTENING", unix_name('/run/a"b\n.sock'), unix_peer(0), 7, 0, 0, 0, ()
        ),
    )
)


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every family prometheus_client reads, its samples' labels and values; every name checked."""
    assert text.endswith("\n") and "\r" not in text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert METRIC_NAME.match(family.name), family.name
        assert family.type == "gauge" and family.documentation
        samples = []
        for sample in family.samples:
            assert sample.timestamp is None  # the textfile collector refuses timestamps
            for label in sample.labels:
                assert LABEL_NAME.match(label) and not label.startswith("__"), label
            samples.append((sample.labels, sample.value))
        found[family.name] = samples
    # HELP and TYPE on each family, once.
    for name in found:
        assert text.count(f"# HELP {name} ") == 1 and text.count(f"# TYPE {name} gauge\n") == 1
    return found


def test_compare_prometheus_reads_back_with_hostile_names() -> None:
    families = _families(report(diff(OLD, NEW), Format.PROMETHEUS))
    listening = families["sockdiff_listening"]
    # Every listener once, connections never; each name reads back as sockdiff's text shows it.
    assert sorted((labels["port"], labels["process"]) for labels, _ in listening) == sorted(
        [("22", "sshd"), ("", "")]
        + [(str(9000 + i), escape(n, backslash=False)) for i, n in enumerate(HOSTILE_NAMES)]
    )
    assert all(value == 1 for _, value in listening)
    assert {labels["netns"] for labels, _ in listening} == {""}
    unix = [labels for labels, _ in listening if labels["proto"] == "unix"]
    assert unix == [
        {
            "proto": "unix",
            "family": "unix",
            "address": '/run/a"b\\n.sock',
            "port": "",
            "process": "",
            "netns": "",
        }
    ]
    unexpected = families["sockdiff_unexpected_listening"]
    assert sorted(labels["port"] for labels, _ in unexpected) == ["", "9000", "9001", "9002"]
    assert [labels["port"] for labels, _ in families["sockdiff_missing_listening"]] == ["80"]
    differences = {
        (labels["section"], labels["kind"]): value for labels, value in families["sockdiff_differences"]
    }
    assert differences == {("sockets", "new"): 5, ("sockets", "closed"): 1, ("sockets", "changed"): 0}
    assert families["sockdiff_sockets"] == [
        ({"proto": "tcp", "state": "ESTABLISHED", "netns": ""}, 1),
        ({"proto": "tcp", "state": "LISTEN", "netns": ""}, 4),
        ({"proto": "unix", "state": "LISTENING", "netns": ""}, 1),
    ]
    assert families["sockdiff_snapshot_timestamp_seconds"] == [
        ({}, 1795600800)
    ]  # date -ud 2026-11-25T10:00:00Z +%s
    [(build, one)] = families["sockdiff_build_info"]
    assert set(build) == {"version"} and one == 1


def test_no_name_starts_a_line_or_a_series() -> None:
    text = report(diff(OLD, NEW), Format.PROMETHEUS)
    for line in text.splitlines():
        assert line.startswith(("# HELP sockdiff_", "# TYPE sockdiff_", "sockdiff_")), line
    assert text.isprintable() is False  # newlines only
    assert all(line.isprintable() for line in text.splitlines())


def test_reuseport_twins_are_one_series() -> None:
    """Listeners alike in every label (SO_REUSEPORT) are one series, 1 as every listener: no duplicate
    series, and the README's rule (``== 1``) finds them."""
    twins = _snapshot((_listener(80, "nginx", inode=1), _listener(80, "nginx", inode=2)))
    out = io.StringIO()
    listing_format(Format.PROMETHEUS).write(out, twins, "sockets", ListingOptions())
    assert _families(out.getvalue())["sockdiff_listening"] == [
        (
            {
                "proto": "tcp",
                "family": "inet",
                "address": "0.0.0.0",
                "port": "80",
                "process": "nginx",
                "netns": "",
            },
            1,
        )
    ]
    golden = _snapshot((_listener(22, "sshd"),))
    found = _families(report(diff(golden, twins), Format.PROMETHEUS))["sockdiff_unexpected_listening"]
    assert [(labels["port"], value) for labels, value in found] == [("80", 1)]
    with pytest.raises(Exception, match="prometheus lists sockets"):
        listing_format(Format.PROMETHEUS).write(out, twins, "routes", ListingOptions())


def test_report_prometheus_replaces_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--report prometheus=PATH is a document: written whole, replacing the older file."""
    old, new, metrics = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "sockdiff.prom"
    old.write_bytes(dumps(OLD))
    new.write_bytes(dumps(NEW))
    metrics.write_text("stale\n")
    assert main(["compare", str(old), str(new), "--report", f"prometheus={metrics}"]) == 1
    assert "stale" not in metrics.read_text()
    assert len(_families(metrics.read_text())["sockdiff_unexpected_listening"]) == 4
    capsys.readouterr()


def test_role_view_keeps_what_a_role_exposes() -> None:
    """Two hosts of one role: other pids, inodes, specific addresses, ephemeral ports and connections."""
    web1 = _snapshot(
        (
            _listener(22, "sshd", pid=100),
            _listener(80, "nginx", "10.0.0.5", pid=200),
            _listener(80, "nginx", "10.0.1.5", pid=201),  # a second specific address: one role listener
            _listener(5432, "postgres", "127.0.0.1", pid=300),
            _listener(40000, "rpc.statd", pid=400, proto="udp"),  # a UDP socket on an ephemeral port
            Socket(
                "tcp",
                "inet",
                "stream",
                "ESTABLISHED",
                inet("10.0.0.5", 22),
                inet("10.0.0.9", 50000),
                9,
                0,
                0,
                0,
                (),
            ),
        )
    )
    web2 = _snapshot(
        (
            _listener(22, "sshd", pid=900, inode=77),
            _listener(80, "nginx", "192.168.7.7", pid=901),
            _listener(5432, "postgres", "127.0.0.2", pid=902),
            _listener(41234, "rpc.statd", pid=903, proto="udp"),
        )
    )
    assert not diff(role_view(web1), role_view(web2), fields="programs").opened
    result = diff(role_view(web1), role_view(web2), fields="programs")
    assert (result.opened, result.closed, result.changed) == ((), (), ())
    view = role_view(web1).sockets or ()
    assert sorted((s.local.address, s.local.port, [p.name for p in s.processes]) for s in view) == [
        ("loopback", 5432, ["postgres"]),
        ("specific", 80, ["nginx"]),
        ("wildcard", 22, ["sshd"]),
    ]
    # Another program on a role's port is a change; a listener of another class is new.
    web3 = _snapshot(
        (
            _listener(22, "dropbear"),
            _listener(80, "nginx", "127.0.0.1"),
            _listener(5432, "postgres", "127.0.0.1"),
        )
    )
    result = diff(role_view(web1), role_view(web3), fields="programs")
    assert [c.fields for c in result.changed] == [("programs",)]
    assert [(s.local.address, s.local.port) for s in result.opened] == [("loopback", 80)]
    assert [(s.local.address, s.local.port) for s in result.closed] == [("specific", 80)]
    assert "programs:" in report(result, Format.TEXT)


IDENTITY = {"host": "web1", "machine_id": "0" * 31 + "1", "boot_id": "0b5f3c2e-8d0a-4c1e-9a57-3f2d1c0b9a87"}


def test_jsonl_events_and_json_documents_carry_the_host() -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    events = event_format(Format.JSONL, identity=IDENTITY)
    events.poll(out, "2026-12-01T11:54:51.451Z", diff(OLD, NEW), ())
    events.overrun(out, "2026-12-01T11:54:52.000Z", "socket events")
    out.flush()
    lines = out.buffer.getvalue().splitlines()
    assert len(lines) == 7
    for line in lines:
        event = json.loads(line)
        assert list(event)[:6] == ["time", "section", "kind", "host", "machine_id", "boot_id"]
        assert {k: event[k] for k in IDENTITY} == IDENTITY
    header = msgspec.structs.replace(HEADER, **IDENTITY)
    document = json.loads(report(diff(OLD, _snapshot(NEW.sockets or (), header)), Format.JSON))
    assert {k: document[k] for k in IDENTITY} == IDENTITY
    # A file from before identity: null, and its bytes are those it always had.
    assert b"machine_id" not in dumps(OLD)
    older = json.loads(report(diff(OLD, OLD), Format.JSON))
    assert (older["host"], older["machine_id"], older["boot_id"]) == ("h", None, None)
    assert older["snapshots"]["old"]["machine_id"] is None
    assert loads(dumps(_snapshot((), header)), "f").header.identity() == IDENTITY


def test_a_snapshot_says_which_host_and_boot() -> None:
    """Read from this machine: /etc/machine-id and the kernel's boot_id, as they are."""
    host, machine_id, boot_id = host_identity()
    assert boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    expected = Path("/etc/machine-id").read_text().strip() if Path("/etc/machine-id").exists() else None
    assert machine_id == (expected or None)
    assert host


def test_identity_that_is_not_in_its_form_is_none(tmp_path: Path) -> None:
    forged = tmp_path / "machine-id"
    forged.write_text('x"}\n')
    assert host_identity(machine_id=str(forged))[1] is None
    assert host_identity(machine_id=str(tmp_path / "absent"))[1] is None


def test_role_view_keeps_a_tcp_listener_on_an_ephemeral_port() -> None:
    """A TCP listener on a port the kernel could hand out is still a listener the role lacks."""
    golden = _snapshot((_listener(22, "sshd"),))
    host = _snapshot((_listener(22, "sshd", pid=7), _listener(45678, "backdoor", "127.0.0.1", pid=8)))
    result = diff(role_view(golden), role_view(host), fields="programs")
    assert [(s.local.address, s.local.port) for s in result.opened] == [("loopback", 45678)]


def _v6(port: int, name: str, v6only: bool | None, pid: int = 10) -> Socket:
    return msgspec.structs.replace(
        _listener(port, name, pid=pid), family="inet6", local=inet("::", port), v6only=v6only
    )


def test_a_program_taking_over_a_port_is_unexpected_and_missing() -> None:
    """Same port, another program: a listener the baseline lacks by program name (and one it had)."""
    golden = _snapshot((_listener(80, "nginx"),))
    host = _snapshot((_listener(80, "evil", pid=66),))
    result = compare(golden, host, role=True)
    families = _families(report(result, Format.PROMETHEUS))
    assert [
        (labels["port"], labels["process"], value)
        for labels, value in families["sockdiff_unexpected_listening"]
    ] == [("80", "evil", 1)]
    assert [(labels["port"], labels["process"]) for labels, _ in families["sockdiff_missing_listening"]] == [
        ("80", "nginx")
    ]
    # The same program restarted (another pid) is neither.
    restarted = _families(
        report(compare(golden, _snapshot((_listener(80, "nginx", pid=99),))), Format.PROMETHEUS)
    )
    assert restarted["sockdiff_unexpected_listening"] == restarted["sockdiff_missing_listening"] == []


def test_dual_stack_and_v6only_wildcards_stay_apart() -> None:
    """ss's ``*:80`` (IPv4 too) and ``[::]:80`` (IPV6_V6ONLY) are other doors: other role keys and labels."""
    golden = _snapshot((_v6(80, "nginx", v6only=False),))
    host = _snapshot((_v6(80, "nginx", v6only=True),))
    result = compare(golden, host, role=True)
    assert [s.local.address for s in result.opened] == ["wildcard-v6only"]
    assert [s.local.address for s in result.closed] == ["wildcard"]
    families = _families(report(result, Format.PROMETHEUS))
    assert [labels["address"] for labels, _ in families["sockdiff_unexpected_listening"]] == [
        "wildcard-v6only"
    ]
    assert [labels["address"] for labels, _ in families["sockdiff_missing_listening"]] == ["wildcard"]
    both = _snapshot((_v6(80, "a", v6only=False), _v6(81, "b", v6only=True), _v6(82, "c", v6only=None)))
    listening = _families(report(diff(both, both), Format.PROMETHEUS))["sockdiff_listening"]
    assert sorted((labels["port"], labels["address"]) for labels, _ in listening) == [
        ("80", "*"),
        ("81", "::"),
        ("82", "*"),  # unknown (read from /proc): as ss writes it
    ]


def _in(sock: Socket, inode: int) -> Socket:
    return msgspec.structs.replace(sock, netns=inode)


def test_role_keys_keep_the_namespace() -> None:
    """compare --role --all-netns: a listener in another namespace is another listener, labelled by it."""
    namespaces = (Namespace(11, ("front",), (), None), Namespace(12, ("back",), (), None))

    def every(*sockets: Socket) -> Snapshot:
        return Snapshot(HEADER, sockets, None, None, namespaces=namespaces)

    golden = every(_in(_listener(80, "nginx"), 11))
    host = every(_in(_listener(80, "nginx", pid=5), 11), _in(_listener(80, "nginx", pid=6), 12))
    assert len(role_view(host).sockets or ()) == 2
    result = compare(golden, host, role=True)
    assert [(s.local.port, s.netns) for s in result.opened] == [(80, 12)]
    unexpected = _families(report(result, Format.PROMETHEUS))["sockdiff_unexpected_listening"]
    assert [labels["netns"] for labels, _ in unexpected] == ["back"]


def test_role_compares_listeners_only_and_reports_the_host_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Interfaces and routes are one machine's, not a role's; counts and listings stay the host's."""
    connection = Socket(
        "tcp", "inet", "stream", "ESTABLISHED", inet("10.0.0.5", 22), inet("10.0.0.9", 50000), 9, 0, 0, 0, ()
    )
    golden = Snapshot(HEADER, (_listener(22, "sshd", "10.0.0.1"),), (eth("eth0"),), (route("10.1.0.0/24"),))
    host = Snapshot(
        HEADER,
        (_listener(22, "sshd", "10.0.0.5", pid=7), connection),
        (eth("ens3", index=3),),
        (route("192.168.0.0/16", dev="ens3"),),
    )
    result = compare(golden, host, role=True)
    assert (result.interfaces, result.routes) == (None, None)
    assert result.counted(("any",)) == 0 and result.role
    assert result.new is host and result.old is golden
    families = _families(report(result, Format.PROMETHEUS))
    assert {(labels["state"], value) for labels, value in families["sockdiff_sockets"]} == {
        ("LISTEN", 1),
        ("ESTABLISHED", 1),
    }
    assert [labels["address"] for labels, _ in families["sockdiff_listening"]] == ["10.0.0.5"]
    assert all(labels["section"] == "sockets" for labels, _ in families["sockdiff_differences"])
    document = json.loads(report(result, Format.JSON))
    assert document["summary"]["interfaces"] is None and "as a role" in document["note"]
    assert listening_facts(result.new)[0]["address"] == "10.0.0.5"
    old, new = tmp_path / "golden.json", tmp_path / "host.json"
    old.write_bytes(dumps(golden))
    new.write_bytes(dumps(host))
    assert main(["compare", str(old), str(new), "--role"]) == 0
    assert "compared as a role: listeners only" in capsys.readouterr().err


def test_udp_ephemeral_ports_are_the_snapshots_own() -> None:
    """A UDP socket is a client's when its port is in the snapshot's recorded range, else Linux's default."""
    sockets = (_listener(20050, "client", proto="udp"), _listener(40000, "dns", proto="udp"))
    narrow = _snapshot(sockets, msgspec.structs.replace(HEADER, local_ports=(20000, 20100)))
    assert [s.local.port for s in role_view(narrow).sockets or ()] == [40000]
    assert [s.local.port for s in role_view(_snapshot(sockets)).sockets or ()] == [20050]
    assert loads(dumps(narrow), "f").header.local_ports == (20000, 20100)
    assert b"local_ports" not in dumps(_snapshot(sockets))  # files before it keep their bytes


def test_a_snapshot_taken_again_is_one_the_store_need_not_write() -> None:
    """The Ansible module's idempotence: only the time and interface counters may differ."""
    stored = Snapshot(HEADER, (_listener(22, "sshd"),), (eth(),), ())
    later = msgspec.structs.replace(HEADER, taken_at="2026-11-25T10:05:00Z")
    assert taken_again(stored, Snapshot(later, stored.sockets, (eth(counters=counters(99, 99)),), ()))
    assert not taken_again(stored, Snapshot(later, (_listener(22, "sshd", pid=11),), stored.interfaces, ()))
    assert not taken_again(stored, Snapshot(later, stored.sockets, None, ()))  # fewer sections
    other_range = msgspec.structs.replace(later, local_ports=(20000, 20100))
    assert not taken_again(stored, Snapshot(other_range, stored.sockets, stored.interfaces, ()))


def test_a_port_taken_over_or_joined_is_a_program_come_and_one_gone() -> None:
    """Role mode: a listener's program is part of it. Takeover: one closed, one new (fail-on new and
    listening count it); another program joining with SO_REUSEPORT: it is new, the other unchanged.
    Each program is its own series, whatever its name holds."""
    golden = _snapshot((_listener(80, "nginx"),))
    taken = compare(golden, _snapshot((_listener(80, "evil", pid=66),)), role=True)
    assert [[p.name for p in s.processes] for s in taken.opened] == [["evil"]]
    assert [[p.name for p in s.processes] for s in taken.closed] == [["nginx"]]
    assert taken.changed == () and taken.counted(("new",)) == taken.counted(("listening",)) == 1
    joined = msgspec.structs.replace(
        _listener(80, "nginx"), processes=(Process(10, "nginx", 3), Process(66, "evil", 4))
    )
    for result in (compare(golden, _snapshot((joined,)), role=True), diff(golden, _snapshot((joined,)))):
        families = _families(report(result, Format.PROMETHEUS))
        assert [labels["process"] for labels, _ in families["sockdiff_unexpected_listening"]] == ["evil"]
        assert families["sockdiff_missing_listening"] == []
    role = compare(golden, _snapshot((joined,)), role=True)
    assert [[p.name for p in s.processes] for s in role.opened] == [["evil"]] and not role.closed
    assert "pid=" not in report(role, Format.TEXT)
    comma = _snapshot(
        (
            _listener(81, "a,b"),
            msgspec.structs.replace(_listener(82, "a"), processes=(Process(1, "a", 3), Process(2, "b", 3))),
        )
    )
    listening = _families(report(diff(comma, comma), Format.PROMETHEUS))["sockdiff_listening"]
    assert sorted((labels["port"], labels["process"]) for labels, _ in listening) == [
        ("81", "a,b"),
        ("82", "a"),
        ("82", "b"),
    ]
