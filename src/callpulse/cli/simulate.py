"""`callpulse simulate`: realistic signed traffic at a receiver or through an emulator."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable
from datetime import timedelta

import click
import phonenumbers
from rich.console import Console
from rich.table import Table

from callpulse.cli.base import cli, parse_age, progress_bar, settings_of
from callpulse.errors import CallpulseError
from callpulse.simulate import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_NUMBERS,
    EmulatorSender,
    ReceiverSender,
    Sender,
    Tally,
    backlog_calls,
    emulator_numbers,
    live_calls,
    send_calls,
    stop_on_signals,
)
from callpulse.simulate_processes import Share, send_in_processes
from callpulse.traffic import SimulatedCall, TrafficModel


def _parse_numbers(ctx: click.Context, param: click.Parameter, text: str | None) -> list[str]:
    numbers = [n.strip() for n in (text or "").split(",") if n.strip()]
    for number in numbers:
        try:
            valid = phonenumbers.is_possible_number(phonenumbers.parse(number))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid or not number.startswith("+"):
            raise click.BadParameter(f"{number!r} is not an E.164 number such as +18005550100")
    return numbers


@cli.command()
@click.option(
    "--url",
    help="The receiver's callback URL (with --via-emulator: the numbers are pointed at it).",
)
@click.option("--signing-key", help="Signing Key (default: CALLPULSE_SIGNING_KEYS, one key).")
@click.option("--account-sid", default=DEFAULT_ACCOUNT_SID, show_default=True)
@click.option(
    "--rate",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Calls per second (0: as fast as the receiver answers).",
)
@click.option("--calls", "count", type=click.IntRange(min=1), help="Send this many calls.")
@click.option(
    "--duration", callback=parse_age, help="Send --rate calls a second for this long, e.g. 60s."
)
@click.option("--seed", type=int, help="Reproduce a run: same seed, same calls.")
@click.option(
    "--numbers",
    callback=_parse_numbers,
    help="Called numbers, comma-separated (default: a few toll-free and local lines).",
)
@click.option(
    "--backfill",
    callback=parse_age,
    help="Spread the calls' timestamps over this span before now (daily pattern), e.g. 3d.",
)
@click.option(
    "--concurrency", default=8, show_default=True, type=click.IntRange(1, 1024),
    help="Requests in flight at most.",
)  # fmt: skip
@click.option(
    "--processes", default=1, show_default=True, type=click.IntRange(1, 64),
    help="Sending processes sharing --calls and --rate (each with --concurrency in flight).",
)  # fmt: skip
@click.option("--via-emulator", "emulator_url", help="Place the calls on this emulator's numbers.")
@click.option(
    "--project-id",
    envvar="SIGNALWIRE_PROJECT_ID",
    help="The emulator's project id (also SIGNALWIRE_PROJECT_ID).",
)
@click.option(
    "--api-token",
    envvar="SIGNALWIRE_API_TOKEN",
    help="The emulator's API token (also SIGNALWIRE_API_TOKEN).",
)
@click.pass_context
def simulate(
    ctx: click.Context,
    url: str | None,
    signing_key: str | None,
    account_sid: str,
    rate: float,
    count: int | None,
    duration: timedelta | None,
    seed: int | None,
    numbers: list[str],
    backfill: timedelta | None,
    concurrency: int,
    processes: int,
    emulator_url: str | None,
    project_id: str | None,
    api_token: str | None,
) -> None:
    """Send realistic inbound calls: a daily pattern, callers from several countries, a few
    failures, MOS with a poor tail.

    Example: callpulse simulate --url http://127.0.0.1:8080/callbacks/call-status --calls 1000
    """
    if count is not None and duration is not None:
        raise CallpulseError("give either --calls N or --duration SPAN, not both")
    if duration is not None:
        if not rate:
            raise CallpulseError("--duration needs a --rate above 0 (calls per second)")
        count = math.ceil(rate * duration.total_seconds())
    if count is None:
        raise CallpulseError("give either --calls N or --duration SPAN (e.g. --duration 60s)")
    if processes > 1 and emulator_url:
        raise CallpulseError("--processes sends straight at a receiver: drop --via-emulator")
    sender: Sender
    if emulator_url:
        if not (project_id and api_token):
            raise CallpulseError(
                "--via-emulator needs --project-id and --api-token (as `callpulse emulate` printed)"
            )
        sender = EmulatorSender(emulator_url, project_id, api_token)
        owned = emulator_numbers(emulator_url, project_id, api_token, url)
        numbers = numbers or owned
    elif url:
        keys = settings_of(ctx).signing_keys.for_account(account_sid)
        key = signing_key or (keys[0] if keys else None)
        if not key:
            raise CallpulseError(
                "no signing key: pass --signing-key or set CALLPULSE_SIGNING_KEYS to the "
                "receiver's Signing Key"
            )
        sender = ReceiverSender(url, key, account_sid, connections=concurrency)
        numbers = numbers or list(DEFAULT_NUMBERS)
    else:
        raise CallpulseError("give --url (the receiver's callback URL) or --via-emulator BASE_URL")
    if processes > 1:
        assert isinstance(sender, ReceiverSender)
        seeds = random.Random(seed)
        shares = [
            Share(sender.url, sender.signing_key, account_sid, numbers, backfill,
                  count // processes + (i < count % processes), rate / processes, concurrency,
                  seeds.getrandbits(64))
            for i in range(processes)
        ]  # fmt: skip
        with progress_bar() as progress:
            task = progress.add_task(f"sending calls ({processes} processes)", total=count)
            tally = send_in_processes(shares, lambda n: progress.update(task, completed=n))
    else:
        rng = random.Random(seed)
        model = TrafficModel(rng, numbers)
        calls = backlog_calls(model, count, backfill) if backfill else live_calls(model, count)

        async def main() -> Tally:
            stop = asyncio.Event()
            with stop_on_signals(stop):  # Ctrl-C ends the run early, with its table
                return await send_with_progress(
                    sender, calls, rng, total=count, rate=rate, stop=stop, concurrency=concurrency
                )

        tally = asyncio.run(main())
    Console().print(summary_table(tally))
    if tally.calls and not tally.accepted:
        answers = ", ".join(f"{label} x{n}" for label, n in tally.answers.most_common())
        hint = (
            "check that the emulator's numbers call back a running receiver with its signing key"
            if emulator_url
            else "check the URL and the signing key"
        )
        raise CallpulseError(
            f"the receiver accepted none of {tally.calls} calls ({answers}); {hint}"
        )


async def send_with_progress(
    sender: Sender,
    calls: Iterable[SimulatedCall],
    rng: random.Random,
    *,
    total: int | None,
    rate: float | None,
    stop: asyncio.Event,
    concurrency: int = 8,
    description: str = "sending calls",
    at_start_times: bool = False,
) -> Tally:
    """``send_calls`` with a live progress bar on standard error."""
    with progress_bar() as progress:
        task = progress.add_task(description, total=total)
        return await send_calls(
            sender,
            calls,
            rng,
            rate=rate or None,
            concurrency=concurrency,
            on_answer=lambda call, answer: progress.advance(task),
            stop=stop,
            at_start_times=at_start_times,
        )


def summary_table(tally: Tally) -> Table:
    table = Table(title="simulated calls", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    mean_mos = tally.mean_mos
    table.add_row("calls sent", str(tally.calls))
    table.add_row("completed", str(tally.completed))
    table.add_row("failed", str(tally.failed))
    table.add_row("mean MOS", f"{mean_mos:.2f}" if mean_mos is not None else "-")
    table.add_section()
    for label, n in sorted(tally.answers.items()):
        table.add_row(f"answer {label}", str(n))
    return table
