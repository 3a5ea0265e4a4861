"""Every output format of a diff, on hand-made snapshots: structure, escaping, exact counts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import msgspec
import pytest
from junitparser import Failure, JUnitXml
from lxml import etree

from sockdiff import Process, Socket, UsageError, unix_name, unix_peer
from sockdiff.differ import Diff, diff, parse_fields
from sockdiff.formats import COMPARE_FORMATS, Format, ReportOptions, parse_format, report
from sockdiff.formats.github import SHOWN, escape_data, escape_property
from sockdiff.formats.notation import interface_line
from sockdiff.model import Namespace
from sockdiff.snapshots import Snapshot
from tests.helpers.junit import jenkins_schema, valid_for_jenkins
from tests.helpers.made import HEADER, counters, eth, route, sections_snap, snap, tcp, unix
from tests.helpers.made import sample_diff as sample


def named(name: str) -> Socket:
    """A UNIX listener whose name and owner hold what reports must escape."""
    return Socket(
        "unix",
        "unix",
        "stream",
        "LISTENING",
        unix_name(name),
        unix_peer(0),
        40,
        0,
        0,
        0,
        (Process(9, name, 4),),
    )


def test_json_is_version_2_with_each_key_once() -> None:
    text = report(sample(), Format.JSON)
    members: list[list[str]] = []

    def keep(pairs: list[tuple[str, object]]) -> dict[str, object]:
        members.append([key for key, _ in pairs])
        return dict(pairs)

    document = json.loads(text, object_pairs_hook=keep)
    top = members[-1]
    assert top == [
        "format",
        "version",
        "snapshots",
        "summary",
        "new",
        "closed",
        "changed",
        "interfaces",
        "routes",
        "host",
        "machine_id",
        "boot_id",
    ]
    assert all(len(keys) == len(set(keys)) for keys in members)
    assert document["format"] == "sockdiff.diff" and document["version"] == 2
    assert document["summary"] == {"new": 2, "closed": 1, "changed": 1, "interfaces": None, "routes": None}
    assert [s["local"]["port"] for s in document["new"]] == [82, 6000]
    assert [s["local"]["port"] for s in document["closed"]] == [80]
    assert document["changed"] == [
        {"old": document["changed"][0]["old"], "new": document["changed"][0]["new"], "fields": ["state"]}
    ]
    assert document["changed"][0]["old"]["state"] == "ESTABLISHED"
    assert document["snapshots"]["old"]["format"] == "sockdiff.snapshot"


def test_text_is_one_line_a_difference_then_the_summary() -> None:
    lines = report(sample(), "text").splitlines()
    assert lines == [
        '+ tcp LISTEN 127.0.0.1:82 0.0.0.0:* users:(("p1",pid=1,fd=3))',
        '+ tcp ESTABLISHED 127.0.0.1:6000 127.0.0.1:5000 users:(("p1",pid=1,fd=3))',
        '- tcp LISTEN 127.0.0.1:80 0.0.0.0:* users:(("p1",pid=1,fd=3))',
        "~ tcp 127.0.0.1:81 127.0.0.1:5000  state: ESTABLISHED → CLOSE_WAIT",
        "2 new, 1 closed, 1 changed",
    ]


def test_text_marks_what_fail_on_counted() -> None:
    """As junit's failures and github's errors: here the one new listener --fail-on listening counts."""
    lines = report(sample(), "text", ReportOptions(fail_on=("listening",))).splitlines()
    assert [line.endswith("  [counted]") for line in lines] == [True, False, False, False, False]
    assert lines[0] == '+ tcp LISTEN 127.0.0.1:82 0.0.0.0:* users:(("p1",pid=1,fd=3))  [counted]'
    closed = report(sample(), "text", ReportOptions(fail_on=("closed", "changed"))).splitlines()
    assert [line[:2] for line in closed if line.endswith("  [counted]")] == ["- ", "~ "]
    # A process name cannot forge the mark: the line ends with the owner's own text.
    forged = report(diff(snap(), snap(named("x  [counted]"))), "text", ReportOptions(fail_on=("closed",)))
    assert not forged.splitlines()[0].endswith("[counted]")


def test_changed_remote_is_in_socket_notation_not_a_repr() -> None:
    old = snap(Socket("unix", "unix", "stream", "CONNECTED", unix_name("/s"), unix_peer(7), 3, 0, 0, 0, ()))
    new = snap(Socket("unix", "unix", "stream", "CONNECTED", unix_name("/s"), unix_peer(8), 3, 0, 0, 0, ()))
    line = report(diff(old, new, fields=["remote"]), "text").splitlines()[0]
    assert line.endswith("remote: * 7 → * 8"), line
    assert "Endpoint" not in line and "peer_inode" not in line


def junit(result: Diff, fail_on: tuple[str, ...]) -> ElementTree.Element:
    text = report(result, Format.JUNIT, ReportOptions(fail_on=fail_on))
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    valid_for_jenkins(text)
    return ElementTree.fromstring(text)


def test_the_schema_refuses_what_jenkins_refuses() -> None:
    """The schema check can fail: issue 15's report, with "skipped" on <testsuites>."""
    text = report(sample(), Format.JUNIT).replace("<testsuites ", '<testsuites skipped="0" ', 1)
    assert not jenkins_schema().validate(etree.fromstring(text.encode()))


def test_a_junit_library_reads_the_report_back(tmp_path: Path) -> None:
    """junitparser (what Python CI tools read JUnit with) sees the counts, names and failures."""
    path = tmp_path / "sockdiff.xml"
    path.write_text(report(sample(), Format.JUNIT, ReportOptions(fail_on=("listening",))))
    document = JUnitXml.fromfile(str(path))
    (suite,) = list(document)
    assert (suite.name, suite.tests, suite.failures, suite.errors, suite.skipped) == ("sockdiff", 4, 1, 0, 0)
    cases = list(suite)
    assert [case.name for case in cases] == [
        'new tcp LISTEN 127.0.0.1:82 0.0.0.0:* users:(("p1",pid=1,fd=3))',
        'new tcp ESTABLISHED 127.0.0.1:6000 127.0.0.1:5000 users:(("p1",pid=1,fd=3))',
        'closed tcp LISTEN 127.0.0.1:80 0.0.0.0:* users:(("p1",pid=1,fd=3))',
        "changed tcp 127.0.0.1:81 127.0.0.1:5000",
    ]
    assert all(case.classname == "sockdiff.sockets" and case.time == 0 for case in cases)
    failed = [case for case in cases if any(isinstance(r, Failure) for r in case.result)]
    assert [case.name for case in failed] == [cases[0].name]
    (failure,) = failed[0].result
    assert failure.type == "new" and failure.message == "+ " + cases[0].name.removeprefix("new ")
    assert [case.is_passed for case in cases] == [False, True, True, True]


def test_junit_structure_and_exact_counts() -> None:
    root = junit(sample(), ("listening",))
    assert root.tag == "testsuites"
    (suite,) = list(root)
    assert suite.tag == "testsuite" and suite.get("name") == "sockdiff"
    cases = suite.findall("testcase")
    assert len(cases) == 4
    assert {c.get("classname") for c in cases} == {"sockdiff.sockets"}
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [
        'new tcp LISTEN 127.0.0.1:82 0.0.0.0:* users:(("p1",pid=1,fd=3))'
    ]
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == ("4", "1", "0")
    everything = junit(sample(), ("any",))
    assert everything.get("failures") == "4"


def test_junit_without_differences_is_one_passing_case() -> None:
    root = junit(diff(snap(tcp(80)), snap(tcp(80))), ("any",))
    cases = root.findall("testsuite/testcase")
    assert len(cases) == 1 and cases[0].find("failure") is None
    assert (root.get("tests"), root.get("failures")) == ("1", "0")


def test_junit_holds_any_name() -> None:
    hostile = '/tmp/<a href="x">&amp;]]>\x01\x1b'
    root = junit(diff(snap(), snap(named(hostile))), ("any",))
    (case,) = root.findall("testsuite/testcase")
    name = case.get("name")
    assert name is not None and "<a href=" in name and "\x01" not in name and "\\x01" in name


# A workflow command: ::name key=value,key=value::message, on one line; in a
# property value no raw % , : CR LF, in the message no raw % CR LF.
_COMMAND = re.compile(
    r"^::(error|warning|notice) title=([^,:\r\n%]|%25|%0D|%0A|%3A|%2C)*::([^\r\n%]|%25|%0D|%0A)*$"
)


def test_github_commands_follow_the_grammar_with_hostile_names() -> None:
    names = ["/tmp/50%:a,b\nevil", "@x\r\n::error::forged", "plain"]
    result = diff(snap(), snap(*(named(n) for n in names)))
    lines = report(result, Format.GITHUB, ReportOptions(fail_on=("new",))).splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert len(commands) == 3
    for line in commands:
        assert _COMMAND.match(line), line
        assert line.startswith("::error title=sockdiff%3A new socket::")
    assert lines[-1] == "3 new, 0 closed, 0 changed"


def test_github_shows_ten_of_a_kind_and_says_how_many_more() -> None:
    result = diff(snap(), snap(*(unix(f"/run/{n:02}.sock", 100 + n) for n in range(13))))
    lines = report(result, Format.GITHUB, ReportOptions(fail_on=("any",))).splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    notices = [line for line in lines if line.startswith("::notice ")]
    assert len(errors) == SHOWN
    assert len(notices) == 1 and "3 more errors and 0 more warnings" in notices[0]
    assert [line for line in lines if line.startswith("+ ")] == [
        f"+ u_str LISTENING /run/{n:02}.sock {100 + n} * 0" for n in (10, 11, 12)
    ]


def test_github_escapes() -> None:
    assert escape_data("100%\r\n") == "100%25%0D%0A"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"


def cells(row: str) -> list[str]:
    """A markdown table row's cells, split on pipes that are not escaped."""
    assert row.startswith("| ") and row.endswith(" |"), row
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row[1:-1])]


def test_markdown_is_a_table_with_one_row_a_difference() -> None:
    result = sample()
    lines = report(result, Format.MARKDOWN, ReportOptions(fail_on=("listening",))).splitlines()
    assert lines[0] == "### sockdiff: 2 new, 1 closed, 1 changed"
    header, rule, *rows = lines[2:]
    width = len(cells(header))
    assert cells(rule) == ["---"] * width
    assert len(rows) == 4 and all(len(cells(row)) == width for row in rows)
    assert [cells(row)[-1] for row in rows] == ["**yes**", "no", "no", "no"]


def test_markdown_cells_hold_pipes_and_backticks() -> None:
    lines = report(diff(snap(), snap(named("/tmp/a|b`c"))), Format.MARKDOWN).splitlines()
    row = cells(lines[-1])
    assert len(row) == 5 and row[2].startswith("``") and "a\\|b`c" in row[2]


def test_markdown_without_differences() -> None:
    assert report(diff(snap(), snap()), "markdown").splitlines()[-1] == "No differences."


def test_format_names() -> None:
    assert [f.value for f in COMPARE_FORMATS] == ["text", "json", "junit", "github", "markdown", "prometheus"]
    with pytest.raises(
        UsageError,
        match=r"unknown format 'xml' \(choose from text, json, junit, github, markdown, prometheus\)",
    ):
        parse_format("xml", COMPARE_FORMATS)
    with pytest.raises(UsageError, match="cannot be written as table"):
        report(sample(), Format.TABLE)


def test_json_sections_and_their_summary() -> None:
    old = sections_snap((eth("eth0"), eth("eth1")), (route("10.1.0.0/24"),))
    new = sections_snap(
        (eth("eth0", mtu=1400, counters=counters(rx_packets=15)),),
        (route("10.1.0.0/24", gateway="10.0.0.253"), route("10.2.0.0/24")),
    )
    result = diff(old, new, fields=parse_fields("+counters"))
    document = json.loads(report(result, Format.JSON))
    assert list(document)[-5:] == ["interfaces", "routes", "host", "machine_id", "boot_id"]
    assert document["summary"] == {
        "new": 0,
        "closed": 0,
        "changed": 0,
        "interfaces": {"added": 0, "removed": 1, "changed": 1},
        "routes": {"added": 1, "removed": 0, "changed": 1},
    }
    interfaces, routes = document["interfaces"], document["routes"]
    assert [i["name"] for i in interfaces["removed"]] == ["eth1"]
    [change] = interfaces["changed"]
    assert change["fields"] == ["mtu", "counters"]
    assert change["deltas"] == {"rx_packets": 5, "rx_bytes": 500}
    assert (change["old"]["mtu"], change["new"]["mtu"]) == (1500, 1400)
    assert [r["destination"] for r in routes["added"]] == ["10.2.0.0/24"]
    assert routes["changed"][0]["fields"] == ["gateway"] and "deltas" not in routes["changed"][0]


def test_json_section_not_taken_is_null() -> None:
    result = diff(sections_snap(None, None), sections_snap((eth(),), ()))
    document = json.loads(report(result, Format.JSON))
    assert document["interfaces"] is None and document["routes"] is None
    assert document["summary"]["interfaces"] is None and document["summary"]["routes"] is None


def test_every_format_covers_the_sections() -> None:
    old = sections_snap((eth("eth0"),), ())
    new = sections_snap((eth("eth0", operstate="DOWN"),), (route(),))
    result = diff(old, new)
    options = ReportOptions(fail_on=("routes",))
    cases = junit(result, ("routes",)).findall("testsuite/testcase")
    assert [(c.get("classname"), c.find("failure") is not None) for c in cases] == [
        ("sockdiff.interfaces", False),
        ("sockdiff.routes", True),
    ]
    github = report(result, Format.GITHUB, options).splitlines()
    assert [line.split("::")[1] for line in github if line.startswith("::")] == [
        "warning title=sockdiff%3A interfaces changed",
        "error title=sockdiff%3A routes added",
    ]
    rows = report(result, Format.MARKDOWN, options).splitlines()[4:]
    assert [cells(row)[1] for row in rows] == ["interfaces", "routes"]
    text = report(result, Format.TEXT, options).splitlines()
    assert text[0].startswith("~ interface eth0 ") and text[1].startswith("+ route 10.1.0.0/24 ")


def test_a_namespace_that_came_counts_its_records_under_its_line() -> None:
    """compare --all-netns (and watch): a namespace on one side only is one line, its sockets,
    interfaces and routes counted under it, none of them a line of its own; the rest is listed."""
    front, back = Namespace(11, ("front",), (), None), Namespace(12, ("back",), (), None)
    here = msgspec.structs.replace(eth("eth1"), netns=11)
    old = Snapshot(HEADER, (), (), (), namespaces=(front,))
    new = Snapshot(
        HEADER,
        (msgspec.structs.replace(tcp(22), netns=12),),
        (msgspec.structs.replace(eth(), netns=12), here),
        (msgspec.structs.replace(route(), netns=12), msgspec.structs.replace(route("10.2.0.0/24"), netns=12)),
        namespaces=(front, back),
    )
    lines = report(diff(old, new), "text").splitlines()
    assert [line for line in lines if "back" in line] == [
        "+ netns back (net:[12])  1 socket, 1 interface, 2 routes"
    ]
    assert [line for line in lines if "[front]" in line] == [f"+ [front] {interface_line(here)}"]
