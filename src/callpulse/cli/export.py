"""`callpulse export`: the calls of a period (every call by default) to a file or standard
output."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from callpulse.analytics import QueryError
from callpulse.analytics.filters import make_filters
from callpulse.cli.base import (
    cli,
    database_option,
    option_error,
    parse_moment,
    progress_bar,
    store_of,
)
from callpulse.export import FORMATS, iso_utc, write_calls, write_parquet
from callpulse.store.records import CallSelection


@cli.command()
@database_option()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output; Parquet needs one).",
)
@click.option("--since", callback=parse_moment, help="Calls that started from: ISO 8601 or an age.")
@click.option(
    "--until", callback=parse_moment, help="Calls that started before: ISO 8601 or an age."
)
@click.option("--number", "to", help="Only calls to this number (E.164).")
@click.option("--region", help="Only callers from this country (ISO code such as GB, or unknown).")
@click.option("--account", "account_sid", help="Only this AccountSid (project).")
@click.pass_context
def export(
    ctx: click.Context,
    fmt: str,
    output: Path | None,
    since: datetime | None,
    until: datetime | None,
    to: str | None,
    region: str | None,
    account_sid: str | None,
) -> None:
    """Export calls, oldest first, as JSON Lines, CSV or Parquet: every call, or those of
    --since/--until and the filters.

    Example: callpulse export --since 7d --region GB --format csv --output calls.csv
    """
    if fmt == "parquet" and output is None:
        raise click.BadParameter(
            "Parquet is binary: name a file with --output", param_hint="--format"
        )
    if since is not None and until is not None and since >= until:
        raise click.BadParameter(
            f"must be before --until ({iso_utc(until)}), got {iso_utc(since)}",
            param_hint="'--since'",
        )
    try:
        chosen = make_filters(account_sid, to, region)
    except QueryError as exc:
        raise option_error(exc.parameter, exc) from None
    selection = CallSelection(since, until, chosen.account_sid, chosen.to, chosen.region)
    with store_of(ctx) as store:
        total = store.count_calls(selection)
        calls = store.iter_calls(selection=selection)
        with progress_bar(disable=output is None) as progress:
            task = progress.add_task("exporting calls", total=total)
            if fmt == "parquet":
                assert output is not None
                for written in write_parquet(calls, output):
                    progress.advance(task, written)
                return
            target: Any = (
                output.open("w", newline="", encoding="utf-8")
                if output
                else nullcontext(sys.stdout)
            )
            with target as out:
                for _ in write_calls(calls, out, fmt):
                    progress.advance(task)
