"""`callpulse export`: every call to a file or standard output."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from callpulse.cli.base import cli, progress_bar, store_of
from callpulse.export import FORMATS, write_calls


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@click.pass_context
def export(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Export every call, oldest first.

    Example: callpulse export --format csv --output calls.csv
    """
    store = store_of(ctx)
    try:
        total = store.count_calls()
        target: Any = (
            output.open("w", newline="", encoding="utf-8") if output else nullcontext(sys.stdout)
        )
        with target as out, progress_bar(disable=output is None) as progress:
            task = progress.add_task("exporting calls", total=total)
            for _ in write_calls(store.iter_calls(), out, fmt):
                progress.advance(task)
    finally:
        store.close()
