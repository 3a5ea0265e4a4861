"""Every command has help text; every docstring example runs; the README says what the CLI does."""

from __future__ import annotations

import doctest
import gc
import importlib
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sockdiff
from sockdiff.cli import _invoked, app, main
from tests.helpers import cli

COMMANDS = ["snapshot", "show", "compare", "watch", "run", "list"]


def test_every_command_is_registered_with_help() -> None:
    registered = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    assert registered == set(COMMANDS)
    for command in app.registered_commands:
        assert command.callback is not None and (command.callback.__doc__ or "").strip()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_text(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"Usage: sockdiff {command}" in out
    assert len(out.splitlines()) > 3


@pytest.mark.parametrize("command", COMMANDS)
def test_the_invoked_command_alone_reads_as_in_the_whole_app(command: str) -> None:
    """main() builds only the command named (sockdiff.cli._invoked): same help, same callback."""
    import typer.testing

    narrowed = _invoked([command, "--help"])
    assert narrowed.registered_commands == [
        c for c in app.registered_commands if (c.name or getattr(c.callback, "__name__", "")) == command
    ]
    assert len(narrowed.registered_commands) == 1 and narrowed.registered_callback is app.registered_callback
    runner = typer.testing.CliRunner()
    try:
        whole, alone = (runner.invoke(a, [command, "--help"], prog_name="sockdiff") for a in (app, narrowed))
    finally:
        gc.enable()  # the app's callback turned it off, and main(), which turns it back on, is not run
    assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output)
    assert len(app.registered_commands) == len(COMMANDS)  # the app itself untouched
    for args in ([], ["--help"], ["--version"], ["shwo"]):
        assert _invoked(args) is app


def test_the_console_script_turns_the_collector_back_on() -> None:
    """sockdiff._start imports the CLI with gc off, and hands watch a collector that is on."""
    code = (
        "import gc, sockdiff.cli as cli\n"
        "cli.run = lambda: print(gc.isenabled(), 'pyroute2' in __import__('sys').modules)\n"
        "from sockdiff._start import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "False"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["show", "--bogus"], "No such option"),
        (["show", "sport", "="], "bad filter"),
        (["compare", "--fail-on", "sometimes", "live", "live"], "unknown --fail-on kind 'sometimes'"),
        (["compare", "--fields", "colour", "live", "live"], "unknown field 'colour' for --fields"),
        (["snapshot", "--backend", "carrier-pigeon", "-o", "-"], "unknown backend"),
        (["show", "--format", "xml"], "unknown format"),
        (["snapshot", "--netns", "sockdiff-no-such-ns", "-o", "-"], "no network namespace"),
        (["compare", "/nonexistent/old.json", "live"], "/nonexistent/old.json"),
        (["show", "/nonexistent/snap.json"], "/nonexistent/snap.json: no such file"),
        (["show", "snap.json.gz", "-a"], "snap.json.gz: no such file"),
    ],
)
def test_usage_errors_are_one_line_exit_2(argv: list[str], fragment: str) -> None:
    assert fragment in cli.one_line_error(cli.sockdiff(*argv))


@pytest.mark.parametrize(
    "argv", [["list"], ["show", "snap.json", "-a"], ["compare", "snap.json", "snap.json"]]
)
def test_output_that_cannot_be_written_is_one_line_exit_2(tmp_path: Path, argv: list[str]) -> None:
    """A full disk under stdout is an error (2), never a traceback nor "differences" (1)."""
    env = {**os.environ, "SOCKDIFF_HOME": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", "sockdiff", "snapshot", "--backend", "proc", "-o", "snap.json"],
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "sockdiff", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "sockdiff: standard output: cannot write: No space left on device\n"


def test_readme_quick_start_is_what_ci_runs() -> None:
    """The README's two commands, and .ci/run installing the same extra and running the same tests."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") : readme.index("## Everyday use")]
    blocks = [block.split("\n", 1)[1].strip() for block in quick_start.split("```")[1::2]]
    assert blocks == [
        "pip install . && sockdiff snapshot && sockdiff compare",
        "pip install '.[test]' && python -m pytest -n 4",
    ]
    ci = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines()]
    # (a compiler, or CC=/bin/false for the pass without the accelerator; editable or not)
    assert 'CC="$compiler" python -m pip install -q "${constraints[@]}" "${install[@]}" ".[test]"' in ci
    assert "python -m pytest -n 4" in ci and "for deps in newest oldest; do" in ci


def test_the_oldest_dependencies_ci_pins_are_the_lower_bounds() -> None:
    """.ci/oldest.txt pins exactly the lower bound of every dependency, runtime and test."""
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    bounds = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, _, rest = requirement.partition(">=")
        bounds[name.strip()] = rest.split(",")[0].strip()
    lines = (root / ".ci" / "oldest.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pins == bounds


def test_docstring_examples() -> None:
    """Every ``>>>`` example in the package runs and shows what it says."""
    # (not sockdiff.__main__: importing it runs the CLI)
    names = [
        info.name
        for info in pkgutil.walk_packages(sockdiff.__path__, "sockdiff.")
        if not info.name.endswith("__main__")
    ]
    tried = 0
    for name in names:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        tried += result.attempted
    assert tried >= 5 and "sockdiff.backends.proc.sockets" in names
