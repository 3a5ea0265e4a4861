"""The floor the empty-namespace goal stands on: a typer app set up as sockdiff's (no rich, no
completion, the collector off while importing, only the invoked command built) with the snapshot
command's options and nothing behind them. Its run is the interpreter, typer imported, one command
built and parsed: what any typer CLI pays before it does anything (bench.py times it against ``ss``)."""

from __future__ import annotations

import gc

gc.disable()

from typing import Annotated  # noqa: E402

import typer  # noqa: E402

app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def options(version: Annotated[bool, typer.Option("--version", is_eager=True)] = False) -> None:
    """The group's own option, as sockdiff's --version."""


@app.command()
def snapshot(
    backend: Annotated[str, typer.Option("--backend", "-b")] = "auto",
    no_processes: Annotated[bool, typer.Option("--no-processes")] = False,
    output: Annotated[str, typer.Option("--output", "-o")] = "-",
) -> None:
    """Nothing: the options parsed, no work done."""


if __name__ == "__main__":
    app()
