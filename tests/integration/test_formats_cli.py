"""compare's reports through the CLI, run as a subprocess: beside the output, errors in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from sockdiff import save
from sockdiff.formats import Format, ReportOptions, report
from sockdiff.snapshots import Scope
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.made import sample_diff as sample


def test_compare_writes_reports_beside_its_output(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    result = sample()
    save(result.old, str(old))
    save(result.new, str(new))
    xml, md = tmp_path / "sockdiff.xml", tmp_path / "summary.md"
    ran = sockdiff(
        "compare", str(old), str(new), "--format", "github", "--fail-on", "listening",
        "--report", f"junit={xml}", "--report", f"markdown={md}",
    )  # fmt: skip
    assert ran.returncode == 1, ran
    assert ran.stdout == report(result, Format.GITHUB, ReportOptions(fail_on=("listening",)))
    assert xml.read_text() == report(result, Format.JUNIT, ReportOptions(fail_on=("listening",)))
    assert md.read_text() == report(result, Format.MARKDOWN, ReportOptions(fail_on=("listening",)))
    assert one_line_error(sockdiff("compare", str(old), str(new), "--report", "junit")).endswith(
        "--report takes FORMAT=PATH, e.g. junit=sockdiff.xml, not 'junit'"
    )
    assert "unknown format 'xml'" in one_line_error(
        sockdiff("compare", str(old), str(new), "--format", "xml")
    )


def test_a_failed_report_is_the_only_line_on_stderr(tmp_path: Path) -> None:
    """The note that compare narrowed its scope follows a report written whole, never an error."""
    result = sample()
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    narrow = msgspec.structs.replace(result.old.header, scope=Scope(("tcp",), None))
    save(dataclasses.replace(result.old, header=narrow), str(old))
    save(result.new, str(new))
    ran = sockdiff("compare", str(old), str(new), "--report", f"junit={tmp_path}")
    assert one_line_error(ran) == f"sockdiff: {tmp_path}: cannot write: Is a directory"
    ran = sockdiff("compare", str(old), str(new))
    assert ran.returncode == 1 and ran.stderr.startswith("sockdiff: note: ") and ran.stderr.count("\n") == 1
