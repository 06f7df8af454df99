"""`callpulse quarantine list|show|replay`: rejected requests, kept with the reason."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from callpulse.cli.base import cli as root
from callpulse.cli.base import database_option, settings_of, store_of
from callpulse.errors import CallpulseError
from callpulse.export import iso_utc

MAX_ERRORS = 120  # characters of an entry's errors in the list


def _errors_text(errors: dict[str, str]) -> str:
    """An entry's errors on a row: shortened at a word, never mid-word."""
    text = "; ".join(f"{k}: {v}" for k, v in errors.items())
    return textwrap.shorten(text, MAX_ERRORS, placeholder=" …")


@root.group()
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
@database_option()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def quarantine_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List quarantined requests, newest first.

    Example: callpulse quarantine list --limit 20
    """
    with store_of(ctx) as store:
        entries = store.list_quarantine(limit=limit)
        kept, dropped = store.quarantine_counts()
    if as_json:
        for entry in entries:
            click.echo(json.dumps(_entry_summary(entry)))
        return
    table = Table(title=f"quarantine: {kept:,} kept, {dropped:,} dropped by the cap")
    # The short columns never wrap; the errors take the rest of the width, wrapped at spaces
    # and shortened at a word (the whole entry: callpulse quarantine show ID).
    table.add_column("id", no_wrap=True, justify="right")
    table.add_column("received (UTC)", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("errors", ratio=1, min_width=20)
    table.add_column("bytes", no_wrap=True, justify="right")
    for entry in entries:
        table.add_row(
            str(entry.id),
            entry.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            entry.reason,
            _errors_text(entry.errors),
            f"{entry.body_size:,}",
        )
    Console().print(table)


@quarantine.command("show")
@database_option()
@click.argument("entry_id", type=int)
@click.pass_context
def quarantine_show(ctx: click.Context, entry_id: int) -> None:
    """Show one quarantined request in full (headers and body).

    Example: callpulse quarantine show 12
    """
    with store_of(ctx) as store:
        entry = store.get_quarantine(entry_id)
    if entry is None:
        raise CallpulseError(f"no quarantine entry {entry_id} (see: callpulse quarantine list)")
    data = _entry_summary(entry)
    data["headers"] = entry.headers
    data["body"] = entry.body.decode("utf-8", errors="replace")
    data["truncated"] = entry.body_size > len(entry.body)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@quarantine.command("replay")
@database_option()
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
    from callpulse.ingest.gate import Rejected, gate_for
    from callpulse.ingest.quarantine import raw_from_quarantine

    if not entry_ids and not replay_all:
        raise CallpulseError("name entry ids (see: callpulse quarantine list) or pass --all")
    settings = settings_of(ctx)
    if not settings.signing_keys and not allow_unsigned:
        raise CallpulseError(
            "no signing key: set CALLPULSE_SIGNING_KEYS (or pass --allow-unsigned)"
        )
    gate = gate_for(settings, allow_unsigned)
    table = Table("id", "outcome", "detail")
    with store_of(ctx) as store:
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
                table.add_row(
                    str(entry.id), f"still {rejection.reason}", _errors_text(rejection.errors)
                )
                continue
            (result,) = store.write_batch([write])
            store.delete_quarantine(entry.id)
            table.add_row(str(entry.id), str(result), write.record.call_sid)
    Console().print(table)
