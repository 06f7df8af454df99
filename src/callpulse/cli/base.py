"""The root ``callpulse`` group and what every command shares: settings, store, consoles."""

from __future__ import annotations

import os
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
