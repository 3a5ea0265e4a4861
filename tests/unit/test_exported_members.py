"""The public API is exactly ``__all__``, each name importable and documented (httpx's test)."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import sockdiff
import sockdiff.errors
from tests.helpers.made import snap


def test_all_is_exactly_the_public_names() -> None:
    # Submodules become attributes once imported; they are not API names. Nor are the
    # "@py_builtins" pytest's assertion rewriting adds (sockdiff ships a pytest11 plugin).
    public = {
        name
        for name in dir(sockdiff)
        if not name.startswith("_")
        and name.isidentifier()
        and not isinstance(getattr(sockdiff, name), types.ModuleType)
    }
    assert public == set(sockdiff.__all__) - {"__version__"}
    for name in sockdiff.__all__:
        value = getattr(sockdiff, name)
        assert value is not None, name
        if callable(value):
            assert value.__doc__, f"sockdiff.{name} has no docstring"


def test_type_checkers_see_the_names_the_lookup_serves() -> None:
    """The imports for type checkers bind exactly ``__all__``, each from the module it is served from."""
    tree = ast.parse(Path(sockdiff.__file__).read_text())
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    )
    imported: dict[str, str] = {}  # bound name -> module
    for node in block.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            for target in node.targets:
                assert isinstance(target, ast.Name)
                imported[target.id] = imported.pop(node.value.id)
    served = {name: f"{module}.{attribute}" for name, (module, attribute) in sockdiff._EXPORTS.items()}
    assert imported == {name: served[name] for name in served if name != "__version__"}
    assert set(sockdiff.__all__) == set(served)


def test_errors_are_one_family() -> None:
    """Every exception class sockdiff/errors.py defines is a SockdiffError, listed and exported."""
    defined = {
        name
        for name, value in vars(sockdiff.errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == "sockdiff.errors"
    }
    assert "SockdiffError" in defined and len(defined) > 1, defined
    assert defined == set(sockdiff.errors.__all__), defined ^ set(sockdiff.errors.__all__)
    for name in sorted(defined):
        error = getattr(sockdiff.errors, name)
        assert issubclass(error, sockdiff.SockdiffError), name
        assert getattr(sockdiff, name) is error, name


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        getattr(sockdiff, "nonexistent")  # noqa: B009
    except AttributeError as err:
        assert "nonexistent" in str(err)
    else:
        raise AssertionError("sockdiff.nonexistent resolved")


def test_import_is_cheap() -> None:
    """``import sockdiff`` loads none of the heavy modules; the first use loads them."""
    code = (
        "import sys, sockdiff\n"
        "heavy = {'msgspec', 'pyroute2', 'sockdiff.differ', 'sockdiff.snapshots'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
        "sockdiff.diff\n"
        "print('sockdiff.differ' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"], out


def test_compare_takes_snapshots_and_report_renders_them() -> None:
    empty = snap()
    listener = sockdiff.Socket(
        "tcp",
        "inet",
        "stream",
        "LISTEN",
        sockdiff.inet("127.0.0.1", 8080),
        sockdiff.inet("0.0.0.0", 0),
        5,
        0,
        0,
        128,
        (),
    )
    after = snap(listener)
    result = sockdiff.compare(empty, after)
    assert result.summary == {"new": 1, "closed": 0, "changed": 0}
    assert (
        sockdiff.report(result, "text")
        == "+ tcp LISTEN 127.0.0.1:8080 0.0.0.0:*\n1 new, 0 closed, 0 changed\n"
    )
    assert sockdiff.compile_filter("sport = :8080")(listener)
