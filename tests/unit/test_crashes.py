"""Inputs that once ended in a traceback: each is one line on stderr and exit code 2 now."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from sockdiff import BadConfig, BadFilter, Socket, UsageError, inet
from sockdiff.cli import main
from sockdiff.config import load_defaults
from sockdiff.filter import MAX_DEPTH, compile_filter
from sockdiff.formats.notation import local_text
from sockdiff.watching import watch

LISTENER = Socket(
    "tcp", "inet", "stream", "LISTEN", inet("0.0.0.0", 22), inet("0.0.0.0", 0), 7, 0, 0, 128, ()
)


def one_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("sockdiff: ") and err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (".sockdiff.toml", b"ignore = ['\xff\xfe']\n", "not UTF-8 text"),
        (".sockdiff.toml", b"tool = 5\n", ".sockdiff.toml [tool]: expected a table"),
        ("pyproject.toml", b"tool = 5\n", "pyproject.toml [tool]: expected a table"),
        ("pyproject.toml", b"[tool]\nsockdiff = [1]\n", "[tool.sockdiff]: expected a table"),
        ("pyproject.toml", b"[tool]\nsockdiff = []\n", "[tool.sockdiff]: expected a table"),
        ("pyproject.toml", b"[tool.sockdiff]\nignore = [[1]]\n", "'ignore' must be a list of filter"),
        ("pyproject.toml", b"[tool.sockdiff]\nfail_on = {a = 1}\n", "'fail_on' must be a string or a list"),
        ("pyproject.toml", b"[tool.sockdiff]\nfail_on = [1]\n", "'fail_on' must be a string or a list"),
        ("pyproject.toml", b"[tool.sockdiff\n", "not valid TOML"),
        ("pyproject.toml", b'[tool.sockdiff]\nfail_on = " , "\n', "fail_on names no kind"),
    ],
)
def test_a_malformed_config_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes,
    reason: str,
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BadConfig, match=r"\.toml"):
        load_defaults(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert reason in one_line(capsys, "compare", "live", "live")


@pytest.mark.parametrize("kinds", ["", " , "])
def test_an_empty_fail_on_is_refused_not_read_as_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kinds: str
) -> None:
    """``--fail-on ''`` (a variable left empty) counted every difference: it names no kind."""
    monkeypatch.chdir(tmp_path)
    assert "--fail-on names no kind" in one_line(capsys, "compare", "live", "live", "--fail-on", kinds)


def test_deep_parentheses_are_refused_in_words() -> None:
    deep = "(" * 340 + "sport = :22" + ")" * 340
    with pytest.raises(
        BadFilter, match=f"parentheses nested deeper than {MAX_DEPTH} at column {MAX_DEPTH + 1}"
    ):
        compile_filter(deep)
    deepest = "(" * MAX_DEPTH + "sport = :22" + ")" * MAX_DEPTH
    assert compile_filter(deepest)(LISTENER) is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (" or ".join(["sport = :1"] * 1000 + ["sport = :22"]), True),
        (" and ".join(["sport = :22"] * 1000 + ["sport = :1"]), False),
        (" ".join(["sport = :22"] * 1000), True),
        ("not " * 5001 + "sport = :22", False),
        ("! " * 5000 + "sport = :22", True),
    ],
)
def test_long_expressions_compile_and_evaluate_without_recursion(expression: str, expected: bool) -> None:
    assert compile_filter(expression)(LISTENER) is expected


@pytest.mark.parametrize("interval", ["inf", "1e300", "nan", "-inf"])
def test_watch_intervals_out_of_range(capsys: pytest.CaptureFixture[str], interval: str) -> None:
    assert "--interval" in one_line(capsys, "watch", "--interval", interval, "--count", "1")


@pytest.mark.parametrize("size", ["2147483648", "99999999999999999999", "-1", "1023"])
def test_watch_buffer_sizes_out_of_range(capsys: pytest.CaptureFixture[str], size: str) -> None:
    """setsockopt takes a C int: past it was a TypeError from deep in the event sockets."""
    assert "--buffer-size must be 1024 to 2147483647" in one_line(
        capsys, "watch", "--buffer-size", size, "--count", "1"
    )
    with pytest.raises(UsageError):
        watch(buffer_size=int(size))


@pytest.mark.parametrize("address", ["1.2.3.4\x00", "not-an-ip", "::1\x00x", ""])
def test_resolving_an_address_that_is_not_one_shows_it_as_it_is(address: str) -> None:
    """show -r of a damaged file: no lookup of a NUL (ValueError) nor of a host name."""
    sock = msgspec.structs.replace(LISTENER, local=inet(address, 80))
    shown = local_text(sock, resolve=True)
    assert "\x00" not in shown and address.replace("\x00", "\\x00") in shown
