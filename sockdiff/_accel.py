"""The optional compiled accelerator, chosen here and nowhere else.

``speedups`` is :mod:`sockdiff._speedups` (built from ``_speedups.c`` by
``pip install`` where a C compiler is present) or None: when the build was
skipped, or when ``SOCKDIFF_PURE`` is set to anything but ``""`` or ``0``
(tests and CI use it to run the pure-Python path on purpose).

Each of its functions is a fast path of a pure-Python reference and returns
exactly what the reference would, or None where it declines (input not in the
kernel's own form); the caller then runs the reference, which reads or refuses
the input itself. So both paths give the same bytes and the same errors.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["speedups"]


def _load() -> ModuleType | None:
    if os.environ.get("SOCKDIFF_PURE", "") not in ("", "0"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


speedups = _load()
