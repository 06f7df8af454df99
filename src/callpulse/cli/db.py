"""`callpulse db upgrade|status|prune`: the schema and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from callpulse.cli.base import cli as root
from callpulse.cli.base import (
    database_option,
    err_console,
    parse_age,
    progress_bar,
    settings_of,
    store_of,
)
from callpulse.export import iso_utc
from callpulse.store import without_password
from callpulse.store.records import prune_boundary


@root.group()
def db() -> None:
    """Database schema: migrations."""


@db.command()
@database_option()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply pending migrations.

    Example: callpulse db upgrade
    """
    with store_of(ctx, create=True) as store, progress_bar() as progress:
        task = progress.add_task("migrations", total=None)

        def show(name: str, place: int, count: int) -> None:
            progress.update(task, description=name, completed=place - 1, total=count)

        applied = store.upgrade(show)
        progress.update(task, description="migrations", completed=len(applied))
    click.echo("\n".join(f"applied {name}" for name in applied) or "schema is up to date")


@db.command()
@database_option()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Name the database and show which migrations are applied.

    Example: callpulse db status --database calls.db
    """
    with store_of(ctx, schema=False) as store:
        states = store.migration_status()
    click.echo(f"database {without_password(settings_of(ctx).database_url)}")
    for state in states:
        when = iso_utc(state.applied_at) if state.applied_at else "pending"
        click.echo(f"{state.name}  {when}")


@db.command()
@database_option()
@click.option("--older-than", required=True, callback=parse_age, help="Age such as 400d or 12h.")
@click.pass_context
def prune(ctx: click.Context, older_than: timedelta) -> None:
    """Delete calls that started longer ago than --older-than (whole UTC days); their rollups
    stay, so figures for older periods remain.

    On PostgreSQL whole monthly partitions go, so a month is removed once all of it is older.
    Example: callpulse db prune --older-than 400d
    """
    cutoff = prune_boundary(datetime.now(UTC) - older_than)
    with store_of(ctx) as store:
        removed = store.prune(cutoff)
    click.echo(f"removed {removed} calls that started before {iso_utc(cutoff)}")


@db.command("rebuild-rollups")
@database_option()
@click.pass_context
def rebuild_rollups(ctx: click.Context) -> None:
    """Recompute rollups and repeat-caller flags from the stored calls.

    Rollups are kept in step on every write; this is for repairs. Callbacks wait (or spool)
    while it runs. Rollups of calls already pruned are kept.
    Example: callpulse db rebuild-rollups
    """
    with store_of(ctx) as store:
        with err_console.status("rebuilding rollups from the stored calls"):
            store.rebuild_rollups()
        calls = store.count_calls()
    click.echo(f"rollups rebuilt from {calls} calls")
