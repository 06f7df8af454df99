"""`callpulse demo`: the whole loop on one machine, from a placed call to the dashboard."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from callpulse.cli.base import (
    DEMO_DATABASE_URL,
    cli,
    database_chosen,
    database_option,
    err_console,
    settings_of,
)
from callpulse.cli.simulate import send_with_progress
from callpulse.demo import HOST, Child, DemoSecrets, ensure_port_free
from callpulse.simulate import (
    EmulatorSender,
    backlog_calls,
    emulator_numbers,
    live_calls,
    modelled_live_calls,
    stop_on_signals,
)
from callpulse.traffic import TrafficModel, calls_per_hour

BACKLOG_CALLS_PER_DAY = 1000
DEMO_NUMBERS = 5


@cli.command()
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--emulator-port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@database_option(default="callpulse-demo.db, apart from your real calls")
@click.option(
    "--days",
    default=3,
    show_default=True,
    type=click.IntRange(0, 60),
    help=f"Days of backlog played first ({BACKLOG_CALLS_PER_DAY} calls a day).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.01, max=1000),
    help="Live calls per second after the backlog (default: as the daily pattern of the "
    f"backlog has them, {BACKLOG_CALLS_PER_DAY} a day, so now is like any other hour).",
)
@click.option("--seed", type=int, help="Reproduce the calls of a run.")
@click.pass_context
def demo(
    ctx: click.Context,
    port: int,
    emulator_port: int,
    days: int,
    rate: float | None,
    seed: int | None,
) -> None:
    """Start an emulated SignalWire and the receiver on loopback, play a few days of calls
    through the emulator's numbers, then live calls until Ctrl-C.

    Example: callpulse demo --port 8080 --days 3
    """
    if port == emulator_port:
        raise click.BadParameter("must differ from --port", param_hint="--emulator-port")
    ensure_port_free(port, "--port")
    ensure_port_free(emulator_port, "--emulator-port")
    callback_path = settings_of(ctx).callback_path
    database = settings_of(ctx).database_url if database_chosen(ctx) else DEMO_DATABASE_URL
    with tempfile.TemporaryDirectory(prefix="callpulse-demo-") as logs:
        asyncio.run(
            _run(Path(logs), port, emulator_port, database, callback_path, days, rate, seed)
        )


async def _run(
    logs: Path,
    port: int,
    emulator_port: int,
    database: str,
    callback_path: str,
    days: int,
    rate: float | None,
    seed: int | None,
) -> None:
    keys = DemoSecrets.generate()
    emulator = Child(
        "emulator",
        ["emulate", "--host", HOST, "--port", str(emulator_port), "--numbers", str(DEMO_NUMBERS),
         "--project-id", keys.project_id, "--api-token", keys.api_token,
         "--signing-key", keys.signing_key],
        emulator_port,
        logs / "emulator.log",
    )  # fmt: skip
    receiver = Child(
        "receiver",
        ["serve", "--host", HOST, "--port", str(port)],
        port,
        logs / "receiver.log",
        env={
            "CALLPULSE_DATABASE_URL": database,
            "CALLPULSE_SIGNING_KEYS": keys.signing_key,
            "CALLPULSE_API_TOKEN": keys.dashboard_token,
        },
    )
    stop = asyncio.Event()
    children = (receiver, emulator)
    with stop_on_signals(stop):  # Ctrl-C or SIGTERM: a clean stop from any phase
        try:
            for child in children:
                child.start()
            for child in children:
                await child.wait_healthy(stop)
            if stop.is_set():
                return
            callback_url = receiver.base_url + callback_path
            numbers = await asyncio.to_thread(
                emulator_numbers, emulator.base_url, keys.project_id, keys.api_token, callback_url
            )
            if stop.is_set():
                return
            click.echo(
                f"\ncallpulse demo: {len(numbers)} emulated numbers call back {callback_url}\n"
                f"  dashboard   {receiver.base_url}/\n"
                f"  API token   {keys.dashboard_token}   (log in with it)\n"
                f"  database    {database}   (callpulse report --database {database})\n"
                "Ctrl-C stops everything.\n"
            )
            rng = random.Random(seed)
            model = TrafficModel(rng, numbers)
            sender = EmulatorSender(emulator.base_url, keys.project_id, keys.api_token)
            watcher = asyncio.create_task(_watch(children, stop))
            if days and not stop.is_set():
                count = days * BACKLOG_CALLS_PER_DAY
                await send_with_progress(
                    sender,
                    backlog_calls(model, count, timedelta(days=days)),
                    rng,
                    total=count,
                    rate=None,
                    stop=stop,
                    description=f"backlog of {days} day{'s' * (days > 1)}",
                )
            if not stop.is_set():
                modelled = rate is None
                now_per_hour = calls_per_hour(datetime.now(UTC), BACKLOG_CALLS_PER_DAY)
                await send_with_progress(
                    sender,
                    modelled_live_calls(model, BACKLOG_CALLS_PER_DAY)
                    if modelled
                    else live_calls(model, None),
                    rng,
                    total=None,
                    rate=rate,
                    stop=stop,
                    concurrency=4,
                    description=(
                        f"live calls (daily pattern: ~{now_per_hour:.0f} an hour now)"
                        if modelled
                        else f"live calls ({rate:g}/s)"
                    ),
                    at_start_times=modelled,
                )
            watcher.cancel()
            for child in children:
                if child.exited():
                    raise child.failure()
        finally:
            for child in (emulator, receiver):  # the sender first, so no callback is cut off
                child.stop()
    err_console.print("callpulse demo stopped")


async def _watch(children: tuple[Child, ...], stop: asyncio.Event) -> None:
    """Stops the traffic when a child dies; the caller then reports that child's error."""
    while not stop.is_set():
        if any(child.exited() for child in children):
            stop.set()
        await asyncio.sleep(0.5)
