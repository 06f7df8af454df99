"""What later migrations do to the rollups of earlier ones: the statements that take a
database from one ``Spec`` to the next (the tables of a new database come from ``SPEC``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from callpulse.store.dialect import Dialect
from callpulse.store.rollups import (
    COMPACT_LAG_MS,
    LEVELS,
    SPEC,
    SPEC_0002,
    SPEC_0003,
    SPEC_0006,
    compact_statements,
    create_table,
    primary_key,
    summed,
    value_columns,
)

LAST_BUCKET = 1 << 62  # after every bucket (epoch ms)


def metric_columns_0003(dialect: Dialect) -> list[str]:
    """The metrics 0003 adds, on every counter table; completed calls had a duration until now."""
    statements = []
    for level, family in SPEC_0003.tables():
        if family.hist:
            continue
        table = family.table(level)
        for metric in SPEC_0003.metrics[len(SPEC_0002.metrics) :]:
            statements.append(
                f"ALTER TABLE {table} ADD COLUMN {metric} {dialect.int_type} NOT NULL DEFAULT 0"
            )
        statements.append(f"UPDATE {table} SET duration_n = completed")
    return statements


def week_and_number_first(dialect: Dialect) -> list[str]:
    """From SPEC_0003 to SPEC's tables (migration 0006; the triggers are the caller's): tables
    whose primary key changed order are copied into the new order, the per-number counters are
    summed from the per-group ones, and the week tables from the day ones (exact: a week is
    seven whole days; what pruned calls left comes along)."""
    statements = []
    for level, family in SPEC_0006.tables():
        table, keys = family.table(level), family.key_columns(dialect)
        values = value_columns(family)
        if level in SPEC_0003.levels and family.suffix == "_number":
            statements += [
                create_table(level, family, dialect, SPEC_0006),
                summed(level, family, dialect, f"rollup_{level}"),
            ]
        elif level in SPEC_0003.levels:
            if family.primary_key(dialect) != keys:  # 0003's keys were all in this order
                copy = f"{table}_0006"
                statements += [
                    create_table(level, family, dialect, SPEC_0006, name=copy),
                    f"INSERT INTO {copy} SELECT {', '.join([*keys, *values])} FROM {table}",
                    f"DROP TABLE {table}",
                    f"ALTER TABLE {copy} RENAME TO {table}",
                ]
        else:
            statements += [
                create_table(level, family, dialect, SPEC_0006),
                summed(level, family, dialect, family.table("day")),
            ]
    return statements


def covering_keys(dialect: Dialect) -> list[str]:
    """From SPEC_0006 to SPEC on PostgreSQL (migration 0007): every rollup table's primary key
    anew, its values included."""
    statements = []
    for level, family in SPEC.tables():
        table = family.table(level)
        # (0006's copies kept their constraint names: the name is looked up)
        drop = f"format('ALTER TABLE {table} DROP CONSTRAINT %I', conname)"
        statements += [
            f"DO $$ BEGIN EXECUTE (SELECT {drop} FROM pg_constraint "
            f"WHERE conrelid = '{table}'::regclass AND contype = 'p'); END $$",
            f"ALTER TABLE {table} ADD {primary_key(family, dialect)}",
        ]
    return statements


def compaction_state(dialect: Dialect) -> list[str | Callable[[Any], None]]:
    """From SPEC_0007 to SPEC (migration 0008; the triggers are the caller's): every level holds
    every call so far; compaction starts where the clock puts it, and the coarser levels give
    back the minutes after it (calls dated ahead of the clock among them), which it will sum."""
    minute = LEVELS["minute"]

    def start(conn: Any) -> None:
        by_clock = int(time.time() * 1000) - COMPACT_LAG_MS
        since, p = by_clock - by_clock % minute, dialect.param
        conn.execute(f"INSERT INTO rollup_state (id, compacted_until) VALUES (1, {p})", (since,))
        for statement, params in compact_statements(dialect, since, LAST_BUCKET, SPEC, sign=-1):
            conn.execute(statement, params)

    return [
        f"CREATE TABLE rollup_state (id integer PRIMARY KEY CHECK (id = 1), "
        f"compacted_until {dialect.int_type} NOT NULL)",
        start,
    ]
