"""`callpulse numbers list|show|configure`: numbers of a SignalWire space, their StatusCallback."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from callpulse.cli.base import cli as root
from callpulse.cli.base import progress_bar
from callpulse.errors import CallpulseError
from callpulse.signalwire.client import CompatibilityClient, PhoneNumber

METHODS = ("POST", "GET")


@root.group()
def numbers() -> None:
    """Phone numbers of a SignalWire space (SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID,
    SIGNALWIRE_API_TOKEN) and where they send the call status callback."""


@numbers.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def numbers_list(as_json: bool) -> None:
    """List every number with its StatusCallback and method.

    Example: callpulse numbers list
    """
    with CompatibilityClient.from_environment() as client:
        found = list(client.iter_numbers())
    if as_json:
        for number in found:
            click.echo(json.dumps(dataclasses.asdict(number)))
        return
    table = Table(title=f"{len(found)} phone number{'s' * (len(found) != 1)}")
    for column in ("number", "friendly name", "sid", "StatusCallback", "method"):
        table.add_column(column, overflow="fold")
    for number in found:
        table.add_row(
            *map(
                Text,  # plain text: a friendly name is not rich markup
                (
                    number.phone_number,
                    number.friendly_name,
                    number.sid,
                    number.status_callback or "-",
                    number.status_callback_method,
                ),
            )
        )
    Console().print(table)


@numbers.command("show")
@click.argument("number_or_sid")
def numbers_show(number_or_sid: str) -> None:
    """Show one number (+15551234567 or its sid) as JSON.

    Example: callpulse numbers show +15551234567
    """
    with CompatibilityClient.from_environment() as client:
        number = client.find_number(number_or_sid)
    click.echo(json.dumps(dataclasses.asdict(number), indent=2))


def _callback_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"expected an http:// or https:// URL such as "
            f"https://calls.example.com/callbacks/call-status, got {value!r}"
        )
    return value


def _diff(number: PhoneNumber, url: str, method: str) -> str:
    changes = []
    if number.status_callback != url:
        changes.append(f"StatusCallback {number.status_callback or '(none)'} → {url}")
    if number.status_callback_method != method:
        changes.append(f"method {number.status_callback_method} → {method}")
    return ", ".join(changes)


@numbers.command("configure")
@click.option(
    "--number",
    "wanted",
    multiple=True,
    metavar="NUMBER_OR_SID",
    help="A number (+15551234567) or its sid; repeat for several.",
)
@click.option("--all", "every", is_flag=True, help="Every number of the project.")
@click.option("--url", required=True, callback=_callback_url, help="The new StatusCallback URL.")
@click.option(
    "--method",
    type=click.Choice(METHODS, case_sensitive=False),
    default="POST",
    show_default=True,
    help="The new StatusCallbackMethod.",
)
@click.option("--apply", "apply_", is_flag=True, help="Make the change (default: only show it).")
def numbers_configure(
    wanted: tuple[str, ...], every: bool, url: str, method: str, apply_: bool
) -> None:
    """Point numbers' status callback at URL; a dry run showing the change unless --apply.

    Example: callpulse numbers configure --all --url https://calls.example.com/callbacks/call-status
    """
    if bool(wanted) == every:
        raise CallpulseError("name the numbers with --number (repeatable) or pass --all, not both")
    method = method.upper()
    with CompatibilityClient.from_environment() as client:
        if every:
            targets = list(client.iter_numbers())
        else:  # every name is resolved before anything changes: a typo changes nothing
            by_sid = {n.sid: n for n in map(client.find_number, wanted)}
            targets = list(by_sid.values())
        changes = [(number, _diff(number, url, method)) for number in targets]
        for number, diff in changes:
            click.echo(f"{number.phone_number} ({number.sid}): {diff or 'unchanged'}")
        to_change = [number for number, diff in changes if diff]
        unchanged = len(targets) - len(to_change)
        if not apply_:
            click.echo(
                f"dry run: {len(to_change)} of {len(targets)} numbers would change; "
                "pass --apply to make the change"
            )
            return
        with progress_bar(disable=len(to_change) < 2) as progress:
            task = progress.add_task("configuring numbers", total=len(to_change))
            for number in to_change:
                client.update_number(number.sid, status_callback=url, method=method)
                progress.advance(task)
    click.echo(f"changed {len(to_change)} numbers, {unchanged} already right")
