"""`callpulse reconcile`: store the finished inbound calls whose callbacks never arrived."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from callpulse.cli.base import cli, database_option, parse_moment, progress_bar, store_of
from callpulse.export import iso_utc
from callpulse.reconcile import ReconcileSummary, reconcile, windows
from callpulse.signalwire.client import CompatibilityClient
from callpulse.store.base import SaveResult


@cli.command("reconcile")
@database_option()
@click.option(
    "--since",
    required=True,
    callback=parse_moment,
    help="Calls that started from: ISO 8601 (UTC unless an offset is given) or an age (24h, 7d).",
)
@click.option("--until", callback=parse_moment, help="Calls that started until (default: now).")
@click.pass_context
def reconcile_command(ctx: click.Context, since: datetime, until: datetime | None) -> None:
    """Store every finished inbound call of the Calls API that the receiver never got.

    Credentials come from SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN.
    Recovered calls are marked as reconciled; calls already stored are never changed.
    Example: callpulse reconcile --since 24h
    """
    until = until or datetime.now(UTC)
    if since >= until:
        raise click.BadParameter(
            f"must be before --until ({iso_utc(until)}), got {iso_utc(since)}",
            param_hint="'--since'",
        )
    with CompatibilityClient.from_environment() as client, store_of(ctx, create=True) as store:
        store.upgrade()  # a fresh database can be backfilled before serve ever ran
        progress = progress_bar()
        task = progress.add_task("reading calls", total=len(windows(since, until)))

        def advance(summary: ReconcileSummary) -> None:
            # Started after the first window, so a wrong setting fails with one line only.
            progress.start()
            progress.update(task, advance=1, description=f"{summary.seen} calls read")

        try:
            summary = reconcile(client, store.write_batch, since, until, on_window=advance)
        finally:
            progress.stop()
    click.echo(f"calls that started from {iso_utc(since)} to {iso_utc(until)}:")
    table = Table()
    table.add_column("calls")
    table.add_column("count", justify="right")
    rows = [
        ("seen in the Calls API", summary.seen),
        ("finished inbound", summary.finished_inbound),
        ("already stored", summary.already_stored),
        ("inserted as reconciled", summary.inserted),
    ]
    shown = {SaveResult.INSERTED, SaveResult.DUPLICATE}
    rows += [(str(result), n) for result, n in summary.results.items() if result not in shown]
    if summary.unreadable:
        rows.append(("not stored: invalid fields (named above)", summary.unreadable))
    for label, count in rows:
        table.add_row(label, str(count))
    Console().print(table)
