"""PostgreSQL's monthly partitions of ``calls``: names, the window of months that get their own,
creating one (taking its month over from the default partition), pruning the default one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

PARTITIONS_AHEAD = 2  # months of partitions created before calls arrive for them
# Months before the current one that get a partition of their own when calls arrive for them;
# calls outside the window (reconciled long ago, stray clocks) go to the default partition.
PARTITIONS_BEHIND = 13
DEFAULT_PARTITION = "calls_default"


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def partition_name(start: datetime) -> str:
    return f"calls_p{start:%Y_%m}"


def existing(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'calls'::regclass"
    ).fetchall()
    return {name for (name,) in rows}


def window() -> tuple[datetime, datetime]:
    """The first and last month that get partitions of their own."""
    now = month_start(datetime.now(UTC))
    months = now.year * 12 + now.month - 1
    first = months - PARTITIONS_BEHIND
    last = months + PARTITIONS_AHEAD
    return (
        now.replace(year=first // 12, month=first % 12 + 1),
        now.replace(year=last // 12, month=last % 12 + 1),
    )


def create(
    conn: psycopg.Connection[Any], name: str, start: datetime, take_from_default: bool
) -> None:
    """A month's partition, taking over what the default partition holds of that month
    (attaching it would fail otherwise); the rows only move, so rollups stay as they are."""
    table = sql.Identifier(name)
    bounds = (sql.Literal(start), sql.Literal(next_month(start)))
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                table
            )
        )
        if take_from_default:
            conn.execute(
                sql.SQL(
                    "WITH moved AS (DELETE FROM {} WHERE started_at >= {} AND started_at < {} "
                    "RETURNING *) INSERT INTO {} SELECT * FROM moved"
                ).format(sql.Identifier(DEFAULT_PARTITION), *bounds, table)
            )
        conn.execute(
            sql.SQL("ALTER TABLE calls ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                table, *bounds
            )
        )


def months_ahead() -> set[datetime]:
    month = month_start(datetime.now(UTC))
    months = {month}
    for _ in range(PARTITIONS_AHEAD):
        month = next_month(month)
        months.add(month)
    return months


def prune_default(conn: psycopg.Connection[Any], cutoff: datetime) -> int:
    """Calls before ``cutoff`` in the default partition, removed row by row."""
    with conn.transaction():
        rows = conn.execute(
            "DELETE FROM calls_default WHERE started_at < %s RETURNING account_sid, call_id",
            (cutoff,),
        ).fetchall()
        if rows:
            ids = [call_id for _account, call_id in rows]
            conn.execute("DELETE FROM call_history WHERE call_id = ANY(%s)", (ids,))
            conn.execute("DELETE FROM call_keys WHERE call_id = ANY(%s)", (ids,))
    return len(rows)
