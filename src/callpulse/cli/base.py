"""The root ``callpulse`` group and what every command shares: settings, store, consoles."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from callpulse import moments
from callpulse.config import PREFIX, Settings, load_settings
from callpulse.errors import CallpulseError
from callpulse.store import SQLITE_PREFIX, Store, open_store, sqlite_path, without_password

err_console = Console(stderr=True)

# `callpulse demo` keeps its made-up calls out of the real database by default.
DEMO_DATABASE_URL = SQLITE_PREFIX + "callpulse-demo.db"
_CHOSEN = "callpulse.database_chosen"
F = Callable[..., object]


# analytics' names for the options
_OPTIONS = {
    "to": "number",
    "account_sid": "account",
    "service_level": "service-level",
    "answer_within_s": "answer-within",
    "max_occupancy": "max-occupancy",
}


def option_error(parameter: str, message: object) -> CallpulseError:
    """An analytics complaint about a parameter, in the words of the command's options."""
    return CallpulseError(f"--{_OPTIONS.get(parameter, parameter)}: {message}")


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def database_url(value: str) -> str:
    """A database URL as given, or a path to an SQLite file made into one."""
    return value if "://" in value else SQLITE_PREFIX + value


def _use_database(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    root = ctx.find_root()
    root.obj = dataclasses.replace(root.obj, database_url=database_url(value))
    ctx.meta[_CHOSEN] = True


def database_option(default: str = "CALLPULSE_DATABASE_URL, else callpulse.db") -> Callable[[F], F]:
    """``--database`` for every command that opens the database; it wins over the setting."""
    return click.option(
        "--database",
        metavar="URL|PATH",
        callback=_use_database,
        expose_value=False,
        help=f"Database URL (sqlite:///file.db, postgresql://...) or SQLite file "
        f"(default: {default}).",
    )


def database_chosen(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(_CHOSEN))


def store_of(ctx: click.Context, *, create: bool = False, schema: bool = True) -> Store:
    """The store of the chosen database. Commands that only read never create one: a missing
    SQLite file is an error naming it, as is (with ``schema``) a database without the tables."""
    settings = settings_of(ctx)
    if not create:
        settings = ctx.find_root().obj = _existing(ctx, settings)  # later messages name it
    store = open_store(settings)
    if create or not schema:
        return store
    try:
        applied = any(state.applied_at for state in store.migration_status())
    except BaseException:
        store.close()
        raise
    if not applied:
        store.close()
        shown = without_password(settings.database_url)
        raise CallpulseError(
            f"database {shown} has no callpulse tables yet: create them with "
            f"callpulse db upgrade --database {shown}, or choose another with --database"
        )
    return store


def _existing(ctx: click.Context, settings: Settings) -> Settings:
    path = sqlite_path(settings.database_url)
    if path is None or path.exists():
        return settings
    demo = sqlite_path(DEMO_DATABASE_URL)
    assert demo is not None
    default = not database_chosen(ctx) and settings.database_url == Settings().database_url
    if default and demo.exists():  # what a newcomer has after `callpulse demo`
        err_console.print(f"note: {path} does not exist: reading the demo's database {demo}")
        return dataclasses.replace(settings, database_url=DEMO_DATABASE_URL)
    raise CallpulseError(
        f"no database at {path}: choose one with --database (or CALLPULSE_DATABASE_URL), "
        "or create it with callpulse db upgrade (callpulse serve does too)"
    )


def progress_bar(disable: bool = False) -> Progress:
    """The progress bar every long command shows on standard error."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=disable,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (also CALLPULSE_CONFIG).",
)
@click.version_option(package_name="callpulse")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """callpulse: inbound call status callbacks in, call-center truth out."""
    if config_file is not None:
        os.environ[PREFIX + "CONFIG"] = str(config_file)  # worker processes read it too
    ctx.obj = load_settings(config_file=config_file)


def parse_age(ctx: click.Context, param: click.Parameter, text: str | None) -> timedelta | None:
    """A span such as 400d, 12h, 15m or 90s (a click callback)."""
    if text is None:
        return None
    try:
        return moments.parse_age(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_moment(ctx: click.Context, param: click.Parameter, text: str | None) -> datetime | None:
    """ISO 8601 (UTC unless it has an offset) or an age before now such as 24h or 7d."""
    if text is None:
        return None
    try:
        return moments.parse_moment(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
