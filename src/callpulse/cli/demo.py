"""`callpulse demo`: the whole loop on one machine, from a placed call to the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from click.core import ParameterSource

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
from callpulse.demo_alerts import WebhookReceiver, serve_env
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
# With --degrade: enough calls that the busiest number has the alerts' 20 calls within a minute.
DEGRADE_RATE = 1.0


@dataclass(frozen=True)
class Degrade:
    """What --degrade asks for: the webhook receiver's port, and when the number goes bad."""

    webhook_port: int
    after_s: float


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
    f"backlog has them, {BACKLOG_CALLS_PER_DAY} a day, so now is like any other hour; with "
    f"--degrade {DEGRADE_RATE:g} a second, so the alerts have enough calls within a minute).",
)
@click.option("--seed", type=int, help="Reproduce the calls of a run.")
@click.option(
    "--degrade",
    is_flag=True,
    help="After a minute of live calls the busiest number degrades (poor MOS, failures): "
    "alerts fire within a couple of minutes, on the dashboard and at a local webhook receiver.",
)
@click.option(
    "--webhook-port",
    default=8082,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the demo's webhook receiver (with --degrade).",
)
# How long the live calls stay healthy with --degrade; shorter for tests.
@click.option("--degrade-after", default=60.0, type=click.FloatRange(min=0), hidden=True)
@click.pass_context
def demo(
    ctx: click.Context,
    port: int,
    emulator_port: int,
    days: int,
    rate: float | None,
    seed: int | None,
    degrade: bool,
    webhook_port: int,
    degrade_after: float,
) -> None:
    """Start an emulated SignalWire and the receiver on loopback, play a few days of calls
    through the emulator's numbers, then live calls until Ctrl-C.

    Example: callpulse demo --port 8080 --days 3 --degrade
    """
    if not degrade and ctx.get_parameter_source("webhook_port") is ParameterSource.COMMANDLINE:
        raise click.BadParameter(
            "only with --degrade (the demo's webhook receiver)", param_hint="--webhook-port"
        )
    ports = {"--port": port, "--emulator-port": emulator_port}
    if degrade:
        ports["--webhook-port"] = webhook_port
    taken: dict[int, str] = {}
    for option, value in ports.items():
        if value in taken:
            raise click.BadParameter(f"must differ from {taken[value]}", param_hint=option)
        taken[value] = option
    for option, value in ports.items():
        ensure_port_free(value, option)
    callback_path = settings_of(ctx).callback_path
    database = settings_of(ctx).database_url if database_chosen(ctx) else DEMO_DATABASE_URL
    plan = Degrade(webhook_port, degrade_after) if degrade else None
    if plan is not None and rate is None:
        rate = DEGRADE_RATE
    with tempfile.TemporaryDirectory(prefix="callpulse-demo-") as logs:
        asyncio.run(
            _run(Path(logs), port, emulator_port, database, callback_path, days, rate, seed, plan)
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
    plan: Degrade | None,
) -> None:
    keys = DemoSecrets.generate()
    webhook = WebhookReceiver(plan.webhook_port, click.echo) if plan else None
    emulator = Child(
        "emulator",
        ["emulate", "--host", HOST, "--port", str(emulator_port), "--numbers", str(DEMO_NUMBERS),
         "--project-id", keys.project_id, "--api-token", keys.api_token,
         "--signing-key", keys.signing_key],
        emulator_port,
        logs / "emulator.log",
    )  # fmt: skip
    alerting = (
        serve_env(logs, webhook.url, webhook.secret, f"http://{HOST}:{port}") if webhook else {}
    )
    receiver = Child(
        "receiver",
        ["serve", "--host", HOST, "--port", str(port)],
        port,
        logs / "receiver.log",
        env={
            "CALLPULSE_DATABASE_URL": database,
            "CALLPULSE_SIGNING_KEYS": keys.signing_key,
            "CALLPULSE_API_TOKEN": keys.dashboard_token,
            **alerting,
        },
    )
    stop = asyncio.Event()
    children = (receiver, emulator)
    with stop_on_signals(stop):  # Ctrl-C or SIGTERM: a clean stop from any phase
        try:
            if webhook is not None:
                await webhook.start()
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
                + (
                    f"  webhook     {webhook.url}   (alert notifications print here, "
                    "signatures checked)\n"
                    f"  degrading   {numbers[0]} after {plan.after_s:g} s of live calls\n"
                    if webhook and plan
                    else ""
                )
                + "Ctrl-C stops everything.\n"
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
            degrader = (
                asyncio.create_task(_degrade_later(model, numbers[0], plan.after_s, stop))
                if plan
                else None
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
            if degrader is not None:
                degrader.cancel()
            for child in children:
                if child.exited():
                    raise child.failure()
        finally:
            for child in (emulator, receiver):  # the sender first, so no callback is cut off
                child.stop()
            if webhook is not None:
                await webhook.close()
    err_console.print("callpulse demo stopped")


async def _watch(children: tuple[Child, ...], stop: asyncio.Event) -> None:
    """Stops the traffic when a child dies; the caller then reports that child's error."""
    while not stop.is_set():
        if any(child.exited() for child in children):
            stop.set()
        await asyncio.sleep(0.5)


async def _degrade_later(
    model: TrafficModel, number: str, after_s: float, stop: asyncio.Event
) -> None:
    """After ``after_s`` of live calls, calls to ``number`` go bad (see TrafficModel.degrade)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), after_s)
    if stop.is_set():
        return
    model.degrade(number)
    click.echo(
        f"degraded    {number}: most calls now below MOS 3.0, about 30 % failing; alerts "
        "fire within a couple of minutes (the dashboard's banner, the webhook lines here)"
    )
