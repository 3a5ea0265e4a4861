"""The import graph: the records, the file codec, the differ, the filter and formats/ read no kernel.

Every import is followed, those inside functions and under TYPE_CHECKING too
(sockdiff imports lazily, so a module-level check alone would miss them), from
the source with ast; then one process reads a file, diffs and reports, and must
not have loaded a kernel reader either.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sockdiff

PACKAGE = Path(sockdiff.__file__).resolve().parent

# What reads the live system (or leads to what does): none of these may be reached.
KERNEL = (
    "sockdiff.backends",
    "sockdiff.processes",
    "sockdiff.proctree",
    "sockdiff.netns",
    "sockdiff.acquire",
    "sockdiff.leaks",
    "sockdiff.namespaces",
)
KERNEL_THIRD_PARTY = ("pyroute2",)
# Pure: over records and bytes only.
PURE = (
    "sockdiff.model",
    "sockdiff.coverage",
    "sockdiff.validation",
    "sockdiff.ssview",
    "sockdiff.snapshots",
    "sockdiff.differ",
    "sockdiff.roles",
    "sockdiff.filter",
    "sockdiff.errors",
    "sockdiff.formats",
    "sockdiff.saved",
)


def _module_names() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["sockdiff", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _module_names()


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports anywhere in its source, as absolute names."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import store``: the name may be a module of its own.
            found.update(
                f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES
            )
    return found


def _reached(start: str) -> dict[str, str]:
    """Each module ``start`` reaches, with the module that imports it (the path back)."""
    seen = {start: ""}
    pending = [start]
    while pending:
        current = pending.pop()
        # The package root imports its public names when first used (test_import_is_cheap):
        # reaching it runs only errors and _version.
        if current not in MODULES or current == "sockdiff":
            continue
        for target in _imports(current):
            # Importing a.b.c runs a and a.b first.
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                step = ".".join(parts[:end])
                if step not in seen:
                    seen[step] = current
                    pending.append(step)
    return seen


def _chain(seen: dict[str, str], end: str) -> str:
    links = [end]
    while seen[links[-1]]:
        links.append(seen[links[-1]])
    return " <- ".join(links)


def _is_kernel(name: str) -> bool:
    return any(name == k or name.startswith(k + ".") for k in KERNEL + KERNEL_THIRD_PARTY)


@pytest.mark.parametrize(
    "start", sorted(n for n in MODULES if any(n == p or n.startswith(p + ".") for p in PURE))
)
def test_pure_modules_import_no_kernel_reader(start: str) -> None:
    seen = _reached(start)
    bad = sorted(name for name in seen if _is_kernel(name))
    assert not bad, [_chain(seen, name) for name in bad]


def test_the_walk_sees_lazy_imports() -> None:
    """The check can fail: acquire reaches the backends through an import inside a function."""
    assert "sockdiff.processes" in _reached("sockdiff.acquire")
    assert "sockdiff.backends.netlink.sockets" in _reached("sockdiff.acquire")


def test_reading_diffing_and_reporting_loads_no_kernel_reader(tmp_path: Path) -> None:
    """What the ast walk says, in a process: load a file, diff it, write every report."""
    code = f"""
import sys
from sockdiff.differ import diff
from sockdiff.formats import Format, report
from sockdiff.formats.notes import route_tables_note
from sockdiff.model import Socket, Endpoint
from sockdiff.snapshots import Header, Scope, Snapshot, load, save
sources = {{"tcp": "proc", "routes": "proc (IPv4 main table only)"}}
header = Header(taken_at="2026-11-25T10:00:00Z", host="h", kernel="k", backend="proc", netns=None,
    sources=sources, scope=Scope(("tcp",)), tool_version="0")
any_end = Endpoint("0.0.0.0", 0)
sock = Socket("tcp", "inet", "stream", "LISTEN", Endpoint("0.0.0.0", 80), any_end, 1, 0, 0, 0, ())
path = {str(tmp_path / "s.json")!r}
save(Snapshot(header, (sock,), None, ()), path)
old = load(path)
result = diff(old, Snapshot(header, (), None, ()))
for chosen in ("text", "json", "junit", "github", "markdown"):
    report(result, chosen)
route_tables_note(result)
print(sorted(m for m in sys.modules if m.startswith({KERNEL + KERNEL_THIRD_PARTY!r})))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n", done.stdout
