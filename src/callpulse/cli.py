"""The ``callpulse`` command: a thin layer over the library; every error is one line."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from callpulse.config import PREFIX, Settings, load_settings
from callpulse.errors import CallpulseError
from callpulse.export import FORMATS, iso_utc, write_calls
from callpulse.store import Store, open_store

err_console = Console(stderr=True)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


def _store(ctx: click.Context) -> Store:
    return open_store(_settings(ctx))


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


@cli.command()
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
    "--allow-unsigned",
    is_flag=True,
    help="Accept callbacks without signatures when no signing key is set (testing only).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, allow_unsigned: bool) -> None:
    """Run the callback receiver, health checks and metrics.

    Example: CALLPULSE_SIGNING_KEYS=PSKxxxx callpulse serve --port 8080
    """
    import uvicorn

    from callpulse.metrics import MULTIPROC_ENV
    from callpulse.web.app import ALLOW_UNSIGNED_ENV, app_from_environment

    settings = _settings(ctx)
    if not settings.signing_keys and not allow_unsigned:
        raise CallpulseError(
            "no signing key: set CALLPULSE_SIGNING_KEYS to your project's Signing Key "
            "(or AccountSid=key pairs), or pass --allow-unsigned for local testing"
        )
    store = open_store(settings)
    try:
        store.upgrade()
    finally:
        store.close()
    if not settings.signing_keys:
        err_console.print("[yellow]warning:[/] signatures are NOT checked (--allow-unsigned)")
    os.environ[ALLOW_UNSIGNED_ENV] = "1" if allow_unsigned else "0"
    click.echo(
        f"callpulse receiving at http://{host}:{port}{settings.callback_path} "
        f"(database {settings.database_url}, {workers} worker{'s' * (workers > 1)})",
        err=True,
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="callpulse-metrics-") as metrics_dir:
        if workers > 1:
            os.environ[MULTIPROC_ENV] = metrics_dir
        uvicorn.run(
            "callpulse.web.app:app_from_environment" if workers > 1 else app_from_environment(),
            factory=workers > 1,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@click.pass_context
def export(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Export every call, oldest first.

    Example: callpulse export --format csv --output calls.csv
    """
    store = _store(ctx)
    try:
        total = store.count_calls()
        target: Any = (
            output.open("w", newline="", encoding="utf-8") if output else nullcontext(sys.stdout)
        )
        with (
            target as out,
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                disable=output is None,
            ) as progress,
        ):
            task = progress.add_task("exporting calls", total=total)
            for _ in write_calls(store.iter_calls(), out, fmt):
                progress.advance(task)
    finally:
        store.close()


@cli.group()
def quarantine() -> None:
    """Rejected requests, kept with the reason."""


def _entry_summary(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "received_at": iso_utc(entry.received_at),
        "reason": entry.reason,
        "errors": entry.errors,
        "method": entry.method,
        "url": entry.url,
        "body_size": entry.body_size,
    }


@quarantine.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def quarantine_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List quarantined requests, newest first.

    Example: callpulse quarantine list --limit 20
    """
    store = _store(ctx)
    try:
        entries = store.list_quarantine(limit=limit)
        kept, dropped = store.quarantine_counts()
    finally:
        store.close()
    if as_json:
        for entry in entries:
            click.echo(json.dumps(_entry_summary(entry)))
        return
    table = Table(title=f"quarantine: {kept} kept, {dropped} dropped by the cap")
    for column in ("id", "received", "reason", "errors", "bytes"):
        table.add_column(column)
    for entry in entries:
        errors = "; ".join(f"{k}: {v}" for k, v in entry.errors.items())
        table.add_row(
            str(entry.id),
            iso_utc(entry.received_at),
            entry.reason,
            errors[:120],
            str(entry.body_size),
        )
    Console().print(table)


@quarantine.command("show")
@click.argument("entry_id", type=int)
@click.pass_context
def quarantine_show(ctx: click.Context, entry_id: int) -> None:
    """Show one quarantined request in full (headers and body).

    Example: callpulse quarantine show 12
    """
    store = _store(ctx)
    try:
        entry = store.get_quarantine(entry_id)
    finally:
        store.close()
    if entry is None:
        raise CallpulseError(f"no quarantine entry {entry_id} (see: callpulse quarantine list)")
    data = _entry_summary(entry)
    data["headers"] = entry.headers
    data["body"] = entry.body.decode("utf-8", errors="replace")
    data["truncated"] = entry.body_size > len(entry.body)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@quarantine.command("replay")
@click.argument("entry_ids", type=int, nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every entry.")
@click.option(
    "--allow-unsigned", is_flag=True, help="Accept unsigned entries when no signing key is set."
)
@click.pass_context
def quarantine_replay(
    ctx: click.Context, entry_ids: tuple[int, ...], replay_all: bool, allow_unsigned: bool
) -> None:
    """Run quarantined requests through the pipeline again, e.g. after adding a signing key.

    Accepted entries are stored and leave the quarantine; the others stay.
    Example: callpulse quarantine replay --all
    """
    from callpulse.ingest import Rejected, gate_for, raw_from_quarantine

    if not entry_ids and not replay_all:
        raise CallpulseError("name entry ids (see: callpulse quarantine list) or pass --all")
    settings = _settings(ctx)
    if not settings.signing_keys and not allow_unsigned:
        raise CallpulseError(
            "no signing key: set CALLPULSE_SIGNING_KEYS (or pass --allow-unsigned)"
        )
    gate = gate_for(settings, allow_unsigned)
    store = _store(ctx)
    table = Table("id", "outcome", "detail")
    try:
        entries = (
            [e for e in map(store.get_quarantine, entry_ids) if e is not None]
            if entry_ids
            else store.list_quarantine(limit=store.quarantine_counts()[0] or 1)
        )
        missing = set(entry_ids) - {e.id for e in entries}
        if missing:
            raise CallpulseError(
                f"no quarantine entry {min(missing)} (see: callpulse quarantine list)"
            )
        for entry in reversed(entries):  # oldest first, as they arrived
            try:
                write = gate.accept(raw_from_quarantine(entry))
            except Rejected as rejection:
                detail = "; ".join(f"{k}: {v}" for k, v in rejection.errors.items())
                table.add_row(str(entry.id), f"still {rejection.reason}", detail[:120])
                continue
            (result,) = store.write_batch([write])
            store.delete_quarantine(entry.id)
            table.add_row(str(entry.id), str(result), write.record.call_sid)
    finally:
        store.close()
    Console().print(table)


@cli.group()
def db() -> None:
    """Database schema: migrations."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply pending migrations.

    Example: callpulse db upgrade
    """
    store = _store(ctx)
    try:
        applied = store.upgrade()
    finally:
        store.close()
    click.echo("\n".join(f"applied {name}" for name in applied) or "schema is up to date")


@db.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show which migrations are applied.

    Example: callpulse db status
    """
    store = _store(ctx)
    try:
        states = store.migration_status()
    finally:
        store.close()
    for state in states:
        when = iso_utc(state.applied_at) if state.applied_at else "pending"
        click.echo(f"{state.name}  {when}")


_AGE_UNITS = {"d": 86400, "h": 3600}


def _parse_age(ctx: click.Context, param: click.Parameter, text: str) -> timedelta:
    number, unit = text[:-1], text[-1:]
    if unit not in _AGE_UNITS or not number.isdigit():
        raise click.BadParameter(
            f"expected a number of days or hours such as 400d or 12h, got {text!r}"
        )
    return timedelta(seconds=int(number) * _AGE_UNITS[unit])


@db.command()
@click.option("--older-than", required=True, callback=_parse_age, help="Age such as 400d or 12h.")
@click.pass_context
def prune(ctx: click.Context, older_than: timedelta) -> None:
    """Delete calls that started longer ago than --older-than.

    On PostgreSQL whole monthly partitions go, so a month is removed once all of it is older.
    Example: callpulse db prune --older-than 400d
    """
    cutoff = datetime.now(UTC) - older_than
    store = _store(ctx)
    try:
        removed = store.prune(cutoff)
    finally:
        store.close()
    click.echo(f"removed {removed} calls that started before {iso_utc(cutoff)}")


def _fail(message: str, out: IO[str] = sys.stderr) -> None:
    print(f"callpulse: error: {message}", file=out)


def main(argv: list[str] | None = None) -> None:
    # The pool warns on every failed connection attempt; the one-line error below says why.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    try:
        cli.main(args=argv, prog_name="callpulse", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc.format_message())
        sys.exit(exc.exit_code)
    except CallpulseError as exc:
        _fail(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: no traceback for users
        if os.environ.get(PREFIX + "DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (set CALLPULSE_DEBUG=1 for details)")
        sys.exit(1)
