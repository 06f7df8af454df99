"""What keeping rollups costs the writer: Store.write_batch with the rollup triggers against the
same store with them dropped (the baseline), in one process, runs alternating.

Two shapes of traffic: ``live`` (a call center's: 4 called numbers, 10,000 callers, calls
starting 10 a second, so a batch shares its minute, hour and day) and ``day`` (10 numbers,
20,000 callers, starts spread over a day). Three stores beside the baseline: calls that start
before compacted_until (late ones: the writer upserts every level, as before migration 0008),
calls after it (what callbacks are: the writer upserts minutes only), and the same with the
compaction that later sums those minutes into the coarser levels counted in (off the writer's
path in ``serve``, but on the same machine).

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
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from callpulse.analytics import Analytics, Filters
from callpulse.callback import CallRecord
from callpulse.config import Settings
from callpulse.store import Store, open_store
from callpulse.store.base import CallWrite
from callpulse.store.dialect import to_epoch_ms
from callpulse.store.rollup_triggers import trigger_names

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


@contextmanager
def fresh_store(database: str | None, mode: str) -> Iterator[Store]:
    """``mode``: none (no rollup triggers), late (every call before compacted_until), live."""
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
        statements = {
            "none": [
                f"DROP TRIGGER {name}{'' if schema is None else ' ON calls'}"
                for name in trigger_names(postgres=schema is not None)
            ],
            "late": [],  # (a new database starts compaction by the clock: long after START)
            "live": [f"UPDATE rollup_state SET compacted_until = {to_epoch_ms(START)}"],
        }[mode]
        if schema is None:
            with closing(sqlite3.connect(Path(tmp) / "bench.db")) as lite, lite:
                for statement in statements:
                    lite.execute(statement)
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                for statement in statements:
                    conn.execute(statement)
        try:
            yield store
        finally:
            store.close()
            if schema is not None and database is not None:
                with psycopg.connect(database, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")


def total(store: Store, level: str) -> int:
    with store._snapshot() as conn:
        (calls,) = conn.execute(
            f"SELECT coalesce(sum(calls), 0) FROM rollup_{level}_total"
        ).fetchone()
    return int(calls)


def summary_ms(store: Store) -> float:
    """Median time of a summary (with the previous period) of the two days the calls are in."""
    analytics = Analytics(store, Settings())
    times = []
    for _ in range(7):
        began = time.perf_counter()
        analytics.summary(START - timedelta(days=1), START + timedelta(days=1), Filters())
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def timed(store: Store, writes: list[CallWrite], batch: int, mode: str) -> dict[str, float]:
    """Seconds to write ``writes`` in batches and, live, to compact them, with a summary's time
    before and after that; checks the minutes, and then the days, hold every call."""
    began = time.perf_counter()
    for at in range(0, len(writes), batch):
        store.write_batch(writes[at : at + batch])
    times = {"written": time.perf_counter() - began}
    if mode == "live":
        times["read before"] = summary_ms(store)
        began = time.perf_counter()
        store.compact_rollups(to_epoch_ms(START + timedelta(days=2)))
        times["compacting"] = time.perf_counter() - began
        times["read after"] = summary_ms(store)
    if mode != "none":
        for level in ("minute", "day"):
            got = total(store, level)
            assert got == len(writes), f"{level} rollups hold {got} of {len(writes)} calls"
    return times


def measure(args: argparse.Namespace, shape: str) -> None:
    writes = calls(args.calls, seed=5, shape=shape)
    names = {"without rollup triggers (baseline)": "none",
             "late calls (every level in the writer)": "late",
             "callbacks (minutes in the writer)": "live"}  # fmt: skip
    runs: dict[str, list[float]] = {name: [] for name in [*names, "callbacks, with compaction"]}
    reads: dict[str, list[float]] = {"read before": [], "read after": []}
    for _ in range(args.rounds):
        for name, mode in names.items():
            with fresh_store(args.database, mode) as store:
                times = timed(store, writes, args.batch, mode)
            runs[name].append(len(writes) / times["written"])
            if mode == "live":
                whole = times["written"] + times["compacting"]
                runs["callbacks, with compaction"].append(len(writes) / whole)
                for key, values in reads.items():
                    values.append(times[key])
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
    before, after = (statistics.median(values) for values in reads.values())
    Console().print(
        f"summary of their two days: {before:.1f} ms before compaction (minutes), "
        f"{after:.1f} ms after (hours): {before / after:.2f}x"
    )


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
