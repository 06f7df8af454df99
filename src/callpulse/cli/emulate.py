"""`callpulse emulate`: a local SignalWire Compatibility API that places calls and calls back."""

from __future__ import annotations

import secrets
import socket
import uuid

import click

from callpulse.cli.base import cli
from callpulse.errors import CallpulseError


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535))
@click.option("--project-id", help="Project id (AccountSid) [default: a new UUID]")
@click.option("--api-token", help="API token for HTTP Basic auth [default: generated]")
@click.option(
    "--signing-key", help="Signing Key the callbacks are signed with [default: generated]"
)
@click.option(
    "--numbers",
    default=0,
    show_default=True,
    type=click.IntRange(0, 10000),
    help="Phone numbers to create at start.",
)
@click.option(
    "--drop-share",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of calls whose callback is never sent (to exercise reconciliation).",
)
@click.option(
    "--seed", type=int, help="Seed for numbers, call values and drops (reproducible runs)."
)
def emulate(
    host: str,
    port: int,
    project_id: str | None,
    api_token: str | None,
    signing_key: str | None,
    numbers: int,
    drop_share: float,
    seed: int | None,
) -> None:
    """Run a local emulator of the SignalWire Compatibility REST API.

    Example: callpulse emulate --port 8081 --numbers 12 --drop-share 0.2
    """
    import uvicorn

    from callpulse.signalwire.emulator import Emulator, EmulatorConfig, create_app

    config = EmulatorConfig(
        project_id=project_id or str(uuid.uuid4()),
        api_token=api_token or "PT" + secrets.token_hex(24),
        signing_key=signing_key or "PSK" + secrets.token_hex(16),
        drop_share=drop_share,
        seed=seed,
        numbers=numbers,
    )
    emulator = Emulator(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CallpulseError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "choose another --port or --host"
        ) from None
    shown_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown_host}:{sock.getsockname()[1]}"  # --port 0 takes a free port
    click.echo(
        f"callpulse emulator at {base_url} (API base {base_url}/api/laml/2010-04-01)\n"
        f"  project id   {config.project_id}\n"
        f"  API token    {config.api_token}\n"
        f"  signing key  {config.signing_key}\n"
        f"  numbers      {numbers}, drop share {drop_share:g}",
        err=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(emulator),
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    )
    server.run(sockets=[sock])
