"""What keeping rollups costs the writer: Store.write_batch with the rollup triggers against the
same store with them dropped (the baseline), in one process, runs alternating.

Two shapes of traffic: ``live`` (a call center's: 4 called numbers, 10,000 callers, calls
starting 10 a second, so a batch shares its minute, hour and day) and ``day`` (10 numbers,
20,000 callers, starts spread over a day). On SQLite a third store is measured: the
alternative of keeping rollups per batch, where row triggers only note each call's row in a
pending table and one statement per batch aggregates it into the rollups (the same
``aggregate_statements`` as ``db rebuild-rollups``), in the batch's transaction; and a fourth,
the row triggers of the minute level alone: what the writer would pay if the coarser levels were
summed from finished minutes off the writing path.

Usage: bench/rollups [--calls 40000] [--batch 256] [--rounds 3] [--shape live|day|both]
       bench/rollups --database postgresql://postgres@127.0.0.1:5432/test
Recorded figures: docs/performance.md
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from callpulse.callback import CallRecord
from callpulse.config import Settings
from callpulse.store import Store, open_store, rollups
from callpulse.store.base import CallWrite, SaveResult, WriteOp
from callpulse.store.dialect import SQLITE
from callpulse.store.repeats import later_repeats
from callpulse.store.sqlite import SQLiteStore

START = datetime(2026, 11, 2, tzinfo=UTC)


def calls(count: int, seed: int, shape: str) -> list[CallWrite]:
    """Calls of the shape (see above), repeat callers included."""
    rng = random.Random(seed)
    live = shape == "live"
    callers = [f"+1415{rng.randrange(10**6, 10**7)}" for _ in range(10_000 if live else 20_000)]
    numbers = 4 if live else 10
    return [
        CallWrite(
            CallRecord(
                account_sid="AC-bench",
                call_sid=str(uuid.UUID(int=rng.getrandbits(128))),
                from_number=rng.choice(callers),
                to_number=f"+1800555000{rng.randrange(numbers)}",
                started_at=START
                + (
                    timedelta(milliseconds=100 * n)
                    if live
                    else timedelta(seconds=rng.randrange(86_400))
                ),
                status="completed" if rng.random() > 0.05 else "failed",
                duration_s=rng.randrange(600),
                mos=round(rng.uniform(3.0, 4.5), 2),
            ),
            START,
        )
        for n in range(count)
    ]


_PENDING = ("started_at", "account_sid", "to_number", "region", "status", "duration_s", "mos",
            "is_repeat", "problems")  # fmt: skip


def per_batch_sql() -> list[str]:
    """SQLite: the row triggers replaced by pending rows, and a view whose insert flushes them."""
    columns = ", ".join(_PENDING)

    def note(row: str, sign: int) -> str:
        values = ", ".join(f"{row}.{c}" for c in _PENDING)
        return f"INSERT INTO rollup_pending ({columns}, sign) VALUES ({values}, {sign})"

    flush = ";\n".join(
        [*rollups.aggregate_statements("rollup_pending", SQLITE), "DELETE FROM rollup_pending"]
    )
    repeats = later_repeats("new", SQLITE)  # the same repeat flags
    return [
        "DROP TRIGGER calls_rollup_insert",
        "DROP TRIGGER calls_rollup_update",
        f"CREATE TABLE rollup_pending ({columns}, sign INTEGER NOT NULL)",
        "CREATE VIEW rollup_flush AS SELECT 0 AS n",
        f"CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls BEGIN {note('new', 1)}; "
        f"{repeats}; END",
        f"CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls BEGIN {note('old', -1)}; "
        f"{note('new', 1)}; END",
        f"CREATE TRIGGER rollup_flush INSTEAD OF INSERT ON rollup_flush BEGIN {flush}; END",
    ]


class PerBatchStore(SQLiteStore):
    """write_batch in one transaction: the batch's calls, then the one flush of their rollups."""

    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
        if self._writer is None:
            self._writer = self._open_writer()
        conn = self._writer
        results = [SaveResult.QUARANTINED] * len(ops)
        conn.execute("BEGIN IMMEDIATE")
        rest = self._insert_new_calls(conn, ops, results)
        self._write_one_by_one(conn, ops, rest, results)
        conn.execute("INSERT INTO rollup_flush VALUES (0)")
        conn.execute("COMMIT")
        return results


def minute_only_sql() -> list[str]:
    """SQLite: the row triggers of the minute level only (the coarser tables stay empty)."""
    minutes = replace(rollups.SPEC, levels={"minute": rollups.LEVELS["minute"]})
    return [
        "DROP TRIGGER calls_rollup_insert",
        "DROP TRIGGER calls_rollup_update",
        *rollups.sqlite_triggers(minutes),
    ]


@contextmanager
def fresh_store(
    database: str | None, triggers: bool, per_batch: bool = False, minute_only: bool = False
) -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        if database is None:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            schema = None
        else:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{database}?options=-csearch_path%3D{schema}"
        store = open_store(Settings(database_url=url, sqlite_synchronous="NORMAL"))
        store.upgrade()
        if per_batch:
            store.close()
            with closing(sqlite3.connect(Path(tmp) / "bench.db")) as lite:
                for statement in per_batch_sql():
                    lite.execute(statement)
            store = PerBatchStore(Path(tmp) / "bench.db", synchronous="NORMAL")
        elif minute_only:
            with closing(sqlite3.connect(Path(tmp) / "bench.db")) as lite:
                for statement in minute_only_sql():
                    lite.execute(statement)
        elif not triggers:
            drop = [
                f"DROP TRIGGER {name}" for name in ("calls_rollup_insert", "calls_rollup_update")
            ]
            if schema is None:
                with closing(sqlite3.connect(Path(tmp) / "bench.db")) as lite:
                    for statement in drop:
                        lite.execute(statement)
            else:
                with psycopg.connect(url, autocommit=True) as conn:
                    for statement in drop:
                        conn.execute(f"{statement} ON calls")
        try:
            yield store
        finally:
            store.close()
            if schema is not None and database is not None:
                with psycopg.connect(database, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")


def rate(store: Store, writes: list[CallWrite], batch: int, level: str = "day") -> float:
    """Calls per second of ``writes`` in batches; checks ``level``'s rollups hold every call."""
    began = time.perf_counter()
    for at in range(0, len(writes), batch):
        store.write_batch(writes[at : at + batch])
    per_s = len(writes) / (time.perf_counter() - began)
    with store._snapshot() as conn:
        (total,) = conn.execute(
            f"SELECT coalesce(sum(calls), 0) FROM rollup_{level}_total"
        ).fetchone()
    if isinstance(store, PerBatchStore) or total:  # (no rollups kept: the baseline)
        assert total == len(writes), f"{level} rollups hold {total} of {len(writes)} calls"
    return per_s


def measure(args: argparse.Namespace, shape: str) -> None:
    writes = calls(args.calls, seed=5, shape=shape)
    stores = {"without rollup triggers (baseline)": (False, False, False),
              "with rollups (callpulse: row triggers)": (True, False, False)}  # fmt: skip
    if args.database is None:
        stores["per batch (pending rows, one flush)"] = (True, True, False)
        stores["row triggers, minute level only"] = (True, False, True)
    runs: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(args.rounds):
        for name, (triggers, per_batch, minute_only) in stores.items():
            with fresh_store(args.database, triggers, per_batch, minute_only) as store:
                level = "minute" if minute_only else "day"
                runs[name].append(rate(store, writes, args.batch, level))
    backend = "PostgreSQL" if args.database else "SQLite"
    table = Table(
        "store", "calls/s, median", "runs", "/ baseline",
        title=f"{backend}: write_batch of {args.batch}, {shape} traffic",
    )  # fmt: skip
    baseline = statistics.median(runs["without rollup triggers (baseline)"])
    for name, values in runs.items():
        median = statistics.median(values)
        table.add_row(name, f"{median:,.0f}", ", ".join(f"{r:,.0f}" for r in values),
                      f"{median / baseline:.2f}")  # fmt: skip
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="postgresql://... (default: a SQLite file)")
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shape", choices=("live", "day", "both"), default="both")
    args = parser.parse_args()
    for shape in ("live", "day") if args.shape == "both" else (args.shape,):
        measure(args, shape)


if __name__ == "__main__":
    main()
