"""The floor the empty-namespace goal stands on: a typer app with sockdiff's snapshot options and
nothing behind them. Its run is the interpreter, typer imported, one command built and parsed:
what any typer CLI pays before it does anything (bench.py times it against ``ss``)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False)


@app.command()
def snapshot(
    backend: Annotated[str, typer.Option("--backend", "-b")] = "auto",
    no_processes: Annotated[bool, typer.Option("--no-processes")] = False,
    output: Annotated[str, typer.Option("--output", "-o")] = "-",
) -> None:
    """Nothing: the options parsed, no work done."""


@app.command()
def compare() -> None:
    """A second command, so that typer builds a group as sockdiff's does."""


if __name__ == "__main__":
    app()
