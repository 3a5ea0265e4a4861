"""The console script's entry: the CLI imported with the cyclic collector off.

Importing the CLI (typer, click, sockdiff's modules) makes a few hundred
thousand objects and no garbage; with the collector on, it walks them several
times over (~3.5 ms of every start). It is turned back on once the CLI is
loaded, and the CLI decides from there (every command but watch turns it off).
"""

from __future__ import annotations

import gc
from typing import NoReturn

__all__ = ["run"]


def run() -> NoReturn:
    """The ``sockdiff`` command (see :func:`sockdiff.cli.run`)."""
    collecting = gc.isenabled()
    gc.disable()
    from .cli import run as cli_run

    if collecting:
        gc.enable()
    cli_run()
