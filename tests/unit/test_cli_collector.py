"""Short commands run without the cyclic collector; main() gives it back as it found it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from sockdiff import save
from sockdiff.cli import main
from tests.helpers.made import sample


def test_main_turns_the_collector_back_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.json"
    save(sample(), str(path))
    assert gc.isenabled()
    assert main(["compare", str(path), str(path)]) == 0
    assert gc.isenabled()
    assert "0 new, 0 closed, 0 changed" in capsys.readouterr().out
