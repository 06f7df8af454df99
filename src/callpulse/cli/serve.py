"""`callpulse serve`: the receiver, API and dashboard in one ASGI process."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import resource
import tempfile

import click

from callpulse.cli.base import cli, database_option, err_console, settings_of, store_of
from callpulse.config import PREFIX
from callpulse.errors import CallpulseError
from callpulse.logs import LOG_FORMATS, configure_logging
from callpulse.store import without_password


@cli.command()
@database_option()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Receiver processes sharing the port.",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="text, or json: one object a line (default: CALLPULSE_LOG_FORMAT, else text).",
)
@click.option(
    "--allow-unsigned",
    is_flag=True,
    help="Accept callbacks without signatures when no signing key is set (testing only).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    log_format: str | None,
    allow_unsigned: bool,
) -> None:
    """Run the callback receiver, dashboard, API, health checks and metrics; one log line per
    callback (at most CALLPULSE_ACCESS_LOG_PER_S a second, the rest summed up).

    Example: CALLPULSE_SIGNING_KEYS=PSKxxxx callpulse serve --port 8080
    """
    import uvicorn

    from callpulse.metrics import MULTIPROC_ENV
    from callpulse.web.app import ALLOW_UNSIGNED_ENV, app_from_environment
    from callpulse.web.protocol import GuardedHttpToolsProtocol

    settings = settings_of(ctx)
    if log_format is not None:
        os.environ[PREFIX + "LOG_FORMAT"] = log_format  # worker processes read it
    configure_logging(log_format or settings.log_format)
    if not settings.signing_keys and not allow_unsigned:
        raise CallpulseError(
            "no signing key: set CALLPULSE_SIGNING_KEYS to your project's Signing Key "
            "(or AccountSid=key pairs), or pass --allow-unsigned for local testing"
        )
    with store_of(ctx, create=True) as store:
        states = store.migration_status()  # (a database it cannot reach stops it here)
        if not any(state.applied_at for state in states):
            store.upgrade()  # a new database: empty tables, made before listening
        pending = store.pending_migrations()
    if pending:
        err_console.print(
            f"{len(pending)} migration{'s' * (len(pending) > 1)} pending: applied in the "
            "background while callbacks are spooled (callpulse db upgrade applies them first)"
        )
    os.environ[PREFIX + "DATABASE_URL"] = settings.database_url  # worker processes read it
    if not settings.signing_keys:
        err_console.print("[yellow]warning:[/] signatures are NOT checked (--allow-unsigned)")
    os.environ[ALLOW_UNSIGNED_ENV] = "1" if allow_unsigned else "0"
    # Built here even for several workers (each builds its own): a setting the app rejects is
    # then the only line printed.
    app = app_from_environment()
    click.echo(
        f"callpulse receiving at http://{host}:{port}{settings.callback_path} "
        f"(database {without_password(settings.database_url)}, "
        f"{workers} worker{'s' * (workers > 1)})",
        err=True,
    )
    click.echo(
        f"dashboard and API at http://{host}:{port}/"
        + access_note(bool(settings.api_token), allow_unsigned, host),
        err=True,
    )
    _raise_open_files_limit()
    with tempfile.TemporaryDirectory(prefix="callpulse-metrics-") as metrics_dir:
        if workers > 1:
            os.environ[MULTIPROC_ENV] = metrics_dir
        uvicorn.run(
            "callpulse.web.app:app_from_environment" if workers > 1 else app,
            factory=workers > 1,
            host=host,
            port=port,
            workers=workers,
            http=GuardedHttpToolsProtocol,
            access_log=False,
            log_level="warning",
            log_config=None,  # uvicorn's lines go through configure_logging's output too
            timeout_graceful_shutdown=10,
        )


def access_note(token: bool, allow_unsigned: bool, host: str) -> str:
    """What the start message says of the API and dashboard: exactly who web/auth.py lets in."""
    if token:
        return ""
    if not allow_unsigned:
        return " (closed: set CALLPULSE_API_TOKEN to open them)"
    # Open without a token only to connections made over loopback, which a wildcard bind takes.
    reachable = host in ("", "localhost")
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        reachable = address.is_loopback or address.is_unspecified
    if not reachable:
        return f" (closed: {host} is not loopback; set CALLPULSE_API_TOKEN to open them)"
    return (
        " (open without a token on loopback only, --allow-unsigned; closed to other hosts: "
        "set CALLPULSE_API_TOKEN to open them there)"
    )


def _raise_open_files_limit() -> None:
    """Every connection is a file descriptor: the soft limit (often 1024) up to the hard one, so
    many idle or slow clients don't stop the server from accepting a sender's callback."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit may be refused
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
