"""Running sockdiff as ``nobody``, wherever the checkout lives.

The checkout (and the venv inside it, as .ci/run makes it) may sit under a
directory nobody cannot enter: a fresh clone under a 0700 temporary directory.
So the package and the libraries it imports are copied into a fresh directory
anyone can read, and run by the base interpreter (which the system provides).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NOBODY", "as_nobody", "readable_copy"]

NOBODY = 65534
TIMEOUT = 60.0

# What a CLI run imports from outside the standard library, found by running one.
_IMPORTED = (
    "import json, sys, sockdiff.cli, sockdiff.backends.netlink.sockets, sockdiff.backends.proc.sockets;"
    "sockdiff.cli.main(['show', '-a', '-p', '--format', 'json']);"
    "stdlib = sys.stdlib_module_names;"
    "names = {m.split('.')[0] for m, mod in list(sys.modules.items()) if getattr(mod, '__file__', None)};"
    "found = sorted(n for n in names if n not in stdlib and not n.startswith('_'));"
    "print(json.dumps(found), file=sys.stderr)"
)


@contextmanager
def readable_copy() -> Iterator[Path]:
    """A fresh world-readable directory holding sockdiff and every library it imports."""
    found = subprocess.run(
        [sys.executable, "-c", _IMPORTED], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    names = json.loads(found.stderr.strip().splitlines()[-1])
    root = Path(tempfile.mkdtemp(prefix="sockdiff-nobody-"))
    try:
        root.chmod(0o755)
        for name in names:
            spec = importlib.util.find_spec(name)
            assert spec is not None and spec.origin is not None, name
            if spec.submodule_search_locations:
                source = Path(next(iter(spec.submodule_search_locations)))
                shutil.copytree(source, root / source.name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(spec.origin, root / Path(spec.origin).name)
        for path in root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(root)


def as_nobody(
    copy: Path, argv: list[str], cwd: str = "/", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` as nobody, importing only from ``copy``."""
    python = os.path.realpath(sys.executable)  # the base interpreter, not the checkout's venv
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python, "-s", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(copy), **(env or {})},
    )
