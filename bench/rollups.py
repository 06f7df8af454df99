"""What keeping rollups costs the writer: Store.write_batch with the rollup triggers against the
same store with them dropped (the baseline), in one process, runs alternating.

Usage: bench/rollups [--calls 40000] [--batch 256] [--rounds 3]
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
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from callpulse.callback import CallRecord
from callpulse.config import Settings
from callpulse.store import Store, open_store
from callpulse.store.base import CallWrite

START = datetime(2026, 11, 2, tzinfo=UTC)


def calls(count: int, seed: int) -> list[CallWrite]:
    """A day of calls from 20,000 callers (repeat callers included) to 10 numbers."""
    rng = random.Random(seed)
    callers = [f"+1415{rng.randrange(10**6, 10**7)}" for _ in range(20_000)]
    return [
        CallWrite(
            CallRecord(
                account_sid="AC-bench",
                call_sid=str(uuid.UUID(int=rng.getrandbits(128))),
                from_number=rng.choice(callers),
                to_number=f"+1800555000{rng.randrange(10)}",
                started_at=START + timedelta(seconds=rng.randrange(86_400)),
                status="completed" if rng.random() > 0.05 else "failed",
                duration_s=rng.randrange(600),
                mos=round(rng.uniform(3.0, 4.5), 2),
            ),
            START,
        )
        for _ in range(count)
    ]


@contextmanager
def fresh_store(database: str | None, triggers: bool) -> Iterator[Store]:
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
        if not triggers:
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


def rate(database: str | None, triggers: bool, writes: list[CallWrite], batch: int) -> float:
    with fresh_store(database, triggers) as store:
        began = time.perf_counter()
        for at in range(0, len(writes), batch):
            store.write_batch(writes[at : at + batch])
        return len(writes) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="postgresql://... (default: a SQLite file)")
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    writes = calls(args.calls, seed=5)
    with_rollups, baseline = [], []
    for _ in range(args.rounds):
        baseline.append(rate(args.database, False, writes, args.batch))
        with_rollups.append(rate(args.database, True, writes, args.batch))
    backend = "PostgreSQL" if args.database else "SQLite"
    table = Table(
        "store", "calls/s, median", "runs", title=f"{backend}: write_batch of {args.batch}"
    )
    table.add_row("without rollup triggers (baseline)", f"{statistics.median(baseline):,.0f}",
                  ", ".join(f"{r:,.0f}" for r in baseline))  # fmt: skip
    table.add_row("with rollups (callpulse)", f"{statistics.median(with_rollups):,.0f}",
                  ", ".join(f"{r:,.0f}" for r in with_rollups))  # fmt: skip
    Console().print(table)
    ratio = statistics.median(with_rollups) / statistics.median(baseline)
    Console().print(f"with / without: {ratio:.2f}")


if __name__ == "__main__":
    main()
