"""The snapshot file through the CLI, run as a subprocess: bad sources in one line, stdin and stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sockdiff.snapshots import loads
from tests.helpers.cli import one_line_error, sockdiff
from tests.helpers.made import GOOD, VERSION_1, sample


@pytest.mark.parametrize("content", [b"", b"{", b'{"format": "other"}'])
def test_cli_bad_source_is_one_line_exit_2(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = sockdiff("compare", str(path), str(path))
    assert str(path) in one_line_error(result) and result.stdout == ""


def test_loads_from_stdin_and_stdout(tmp_path: Path) -> None:
    path = tmp_path / "snap.json"
    path.write_bytes(GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "sockdiff", "compare", "-", str(path)],
        input=GOOD,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "0 new, 0 closed, 0 changed"
    assert loads(GOOD, "x") == sample()


def test_a_version_1_file_predates_sections(tmp_path: Path) -> None:
    """show -i or --route on a version 1 file says it is one, not that it was taken with --sections."""
    path = tmp_path / "v1.json"
    path.write_bytes(VERSION_1)
    for flag, section in (("-i", "interfaces"), ("--route", "routes")):
        assert one_line_error(sockdiff("show", str(path), flag)) == (
            f"sockdiff: {path}: this snapshot has no {section} section"
            " (a version 1 file, from before sections)"
        )
