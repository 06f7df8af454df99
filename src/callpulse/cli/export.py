"""`callpulse export`: every call to a file or standard output."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from callpulse.cli.base import cli, database_option, progress_bar, store_of
from callpulse.export import FORMATS, write_calls, write_parquet


@cli.command()
@database_option()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@click.pass_context
def export(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Export every call, oldest first: JSON Lines, CSV or Parquet (needs --output).

    Example: callpulse export --format parquet --output calls.parquet
    """
    if fmt == "parquet" and output is None:
        raise click.BadParameter(
            "Parquet is binary: name a file with --output", param_hint="--format"
        )
    with store_of(ctx) as store:
        total = store.count_calls()
        with progress_bar(disable=output is None) as progress:
            task = progress.add_task("exporting calls", total=total)
            if fmt == "parquet":
                assert output is not None
                for written in write_parquet(store.iter_calls(), output):
                    progress.advance(task, written)
                return
            target: Any = (
                output.open("w", newline="", encoding="utf-8")
                if output
                else nullcontext(sys.stdout)
            )
            with target as out:
                for _ in write_calls(store.iter_calls(), out, fmt):
                    progress.advance(task)
