"""Interfaces and routes through the CLI as a subprocess: --fail-on's exit codes, sections not taken."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sockdiff import save
from tests.helpers.cli import sockdiff
from tests.helpers.made import eth, route
from tests.helpers.made import sections_snap as snap


def test_cli_fail_on_sections_exit_codes(tmp_path: Path) -> None:
    """Exit 1 only when --fail-on counts what differs; the text names the sections in its summary."""
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    save(snap((eth(),), (route(),)), str(old))
    save(snap((eth(operstate="DOWN"),), (route(),)), str(new))
    for kinds, code in (("interfaces", 1), ("any", 1), ("routes", 0), ("new,closed,changed,listening", 0)):
        result = sockdiff("compare", str(old), str(new), "--fail-on", kinds)
        assert result.returncode == code, (kinds, result.stderr)
        assert result.stdout.splitlines()[-1] == (
            "0 new, 0 closed, 0 changed; interfaces: 0 added, 0 removed, 1 changed"
        )
    save(snap((eth(),), (route(), route("10.7.0.0/24"))), str(new))
    assert sockdiff("compare", str(old), str(new), "--fail-on", "routes").returncode == 1
    assert sockdiff("compare", str(old), str(new), "--fail-on", "interfaces").returncode == 0


def test_compare_notes_the_sections_one_side_did_not_take(tmp_path: Path) -> None:
    """Interfaces only against sockets only compares nothing: a note on stderr says what and why."""
    only_interfaces, only_sockets = tmp_path / "i.json", tmp_path / "s.json"
    save(dataclasses.replace(snap((eth(),), None), sockets=None), str(only_interfaces))
    save(snap(None, None), str(only_sockets))
    result = sockdiff("compare", str(only_interfaces), str(only_sockets))
    assert (result.returncode, result.stdout) == (0, "0 new, 0 closed, 0 changed\n")
    assert result.stderr == (
        f"sockdiff: note: not compared: sockets ({only_interfaces} has none: taken with interfaces only),"
        f" interfaces ({only_sockets} has none: taken with sockets only)\n"
    )
    # Sections both took, or both left out, need no note.
    assert sockdiff("compare", str(only_sockets), str(only_sockets)).stderr == ""
