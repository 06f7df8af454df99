"""The root ``callpulse`` group and what every command shares: settings, store, consoles."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from callpulse.config import PREFIX, Settings, load_settings
from callpulse.store import Store, open_store

err_console = Console(stderr=True)


def settings_of(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def store_of(ctx: click.Context) -> Store:
    return open_store(settings_of(ctx))


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


AGE_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_age(ctx: click.Context, param: click.Parameter, text: str | None) -> timedelta | None:
    """A span such as 400d, 12h, 15m or 90s (a click callback)."""
    if text is None:
        return None
    number, unit = text[:-1], text[-1:]
    if unit not in AGE_UNITS or not number.isdigit() or int(number) == 0:
        raise click.BadParameter(f"expected a span such as 400d, 12h, 15m or 90s, got {text!r}")
    return timedelta(seconds=int(number) * AGE_UNITS[unit])


def parse_moment(ctx: click.Context, param: click.Parameter, text: str | None) -> datetime | None:
    """ISO 8601 (UTC unless it has an offset) or an age before now such as 24h or 7d."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            age = parse_age(ctx, param, text)
        except click.BadParameter:
            raise click.BadParameter(
                f"expected an ISO 8601 time such as 2024-04-04T18:00:00+00:00 "
                f"or an age such as 24h or 7d, got {text!r}"
            ) from None
        assert age is not None
        return datetime.now(UTC) - age
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
