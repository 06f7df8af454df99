"""Query benchmark: analytics over rollups against the same questions over raw calls.

Builds (once, cached in bench/out/) a SQLite database of --rows calls spread over --days days
(default 10 million over 60 days, so a 30-day range and the 30 days before it are both full),
then times, over the last 30 days: summary (with the previous period), hourly time series, per
number, per region and a filtered summary (one called number). Each question runs --repeat times
on rollups (the product) and once on raw calls (the baseline, same code with use_rollups=False);
the table shows the median, the best and the ratio raw / rollups.

With ``--backend postgres`` the same calls go (COPY) into a schema of their own on ``--url``,
dropped after the run; the rollups are filled by the same rebuild statements.

Usage: bench/queries [--rows 10000000] [--days 60] [--repeat 7] [--backend sqlite|postgres]
       bench/queries --backend postgres --keep    # then: bench/queries --reuse SCHEMA
Recorded figures: docs/performance.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import random
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from callpulse.analytics import Analytics, Filters
from callpulse.config import Settings
from callpulse.regions import region_of
from callpulse.store import open_store
from callpulse.store.base import call_key
from callpulse.store.dialect import POSTGRES, SQLITE
from callpulse.store.partitions import month_start
from callpulse.store.postgres import PostgresStore
from callpulse.store.rollup_triggers import postgres_triggers, sqlite_triggers, trigger_names
from callpulse.store.rollups import rebuild_statements
from ingest import schema_tag  # the one cache key of a schema, as bench/ingest's

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
END = datetime(2026, 11, 1, tzinfo=UTC)
ACCOUNT = "b3877c40-da60-4998-90ad-b792e98472af"
COUNTRIES = {"1": 0.55, "44": 0.12, "49": 0.08, "33": 0.06, "52": 0.06, "55": 0.05, "91": 0.04,
             "61": 0.04}  # fmt: skip
console = Console(stderr=True)
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
KEY_COLUMNS = "account_sid, call_sid, call_id, started_at, fingerprint"
PG_COLUMNS = (
    "call_id, account_sid, call_sid, from_number, to_number, started_at, status, duration_s, mos, "
    "extra, received_at, source, fingerprint, version, region, is_repeat"
)
INSERT = (
    "INSERT INTO calls (call_key, account_sid, call_sid, from_number, to_number, started_at, "
    "status, duration_s, mos, extra, received_at, source, fingerprint, version, region, "
    f"is_repeat) VALUES ({', '.join('?' * 16)})"
)


def hourly_weights() -> list[float]:
    """Quiet nights, a morning and an afternoon peak (UTC hours)."""
    return [0.2 + math.exp(-((h - 10) ** 2) / 6) + 0.8 * math.exp(-((h - 15) ** 2) / 8)
            for h in range(24)]  # fmt: skip


def generate(rows: int, days: int, seed: int = 11) -> Iterator[tuple[Any, ...]]:
    """The calls, in start order, as INSERT's columns (times in epoch ms); repeat flags set."""
    rng = random.Random(seed)
    called = [f"+1800555{n:04d}" for n in range(20)]
    called_weights = [1 / (n + 1) for n in range(20)]
    country_codes, country_weights = list(COUNTRIES), list(COUNTRIES.values())
    callers = [f"+{rng.choices(country_codes, country_weights)[0]}{rng.randrange(10**9, 10**10)}"
               for _ in range(400_000)]  # fmt: skip
    regions = {number: region_of(number) for number in callers}
    weights = hourly_weights()
    start_ms = int((END - timedelta(days=days)).timestamp() * 1000)
    hour_choices = [(d * 24 + h) for d in range(days) for h in range(24)]
    hour_weights = [weights[h] * (0.6 if (d + 3) % 7 >= 5 else 1.0)
                    for d in range(days) for h in range(24)]  # fmt: skip
    last_seen: dict[str, int] = {}
    starts = sorted(
        start_ms + hour * 3_600_000 + rng.randrange(3_600) * 1000
        for hour in rng.choices(hour_choices, hour_weights, k=rows)
    )
    for n, started in enumerate(starts):
        caller = callers[min(int(rng.paretovariate(1.2)) - 1, len(callers) - 1)
                         if rng.random() < 0.3 else rng.randrange(len(callers))]  # fmt: skip
        failed = rng.random() < 0.05
        duration = 0 if failed else int(min(rng.lognormvariate(4.6, 1.0), 7200))
        mos = round(min(4.5, max(1.0, rng.gauss(4.2, 0.25) if rng.random() > 0.07
                                 else rng.uniform(1.5, 3.6))), 2)  # fmt: skip
        previous = last_seen.get(caller)
        repeat = previous is not None and started - previous <= 86_400_000 and previous < started
        last_seen[caller] = started
        sid = f"CA{n:032x}"
        yield (call_key(ACCOUNT, sid), ACCOUNT, sid, caller,
               called[rng.choices(range(20), called_weights)[0]], started,
               "failed" if failed else "completed", duration, mos, "{}", started,
               "callback", n, 1, regions[caller], int(repeat))  # fmt: skip


def progress_bar() -> Progress:
    return Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)  # fmt: skip


def build_sqlite(path: Path, rows: int, days: int) -> None:
    """Calls straight into the table (triggers and indexes off while loading), then the same
    rebuild the product runs, so rollups equal what ingest would have kept."""
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    store = open_store(Settings(database_url=f"sqlite:///{tmp}"))
    store.upgrade()
    store.close()
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    for name in trigger_names():
        conn.execute(f"DROP TRIGGER {name}")
    for name in ("calls_by_key", "calls_by_start", "calls_by_caller"):
        conn.execute(f"DROP INDEX {name}")
    conn.execute("BEGIN")
    with progress_bar() as progress:
        task = progress.add_task("generating calls", total=rows)
        calls = generate(rows, days)
        while batch := list(itertools.islice(calls, 50_000)):
            conn.executemany(INSERT, batch)
            progress.advance(task, len(batch))
    conn.execute("COMMIT")
    with console.status("indexes, rollups"):
        conn.execute("CREATE INDEX calls_by_key ON calls (call_key)")
        conn.execute("CREATE INDEX calls_by_start ON calls (started_at)")
        conn.execute("CREATE INDEX calls_by_caller ON calls (from_number, started_at)")
        conn.execute("BEGIN")
        for statement in rebuild_statements(SQLITE)[1:]:  # repeat flags were set above
            conn.execute(statement)
        for statement in sqlite_triggers():
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    conn.close()
    tmp.rename(path)


def build_postgres(url: str, rows: int, days: int) -> None:
    """The same calls loaded with COPY (call keys too) into the migrated schema ``url`` names,
    rollup triggers off, then the product's rebuild statements, as on SQLite."""
    store = open_store(Settings(database_url=url))
    if not isinstance(store, PostgresStore):
        raise SystemExit(f"{url} is not a PostgreSQL URL")
    store.upgrade()
    first = END - timedelta(days=days)
    store.ensure_partitions({month_start(first + timedelta(days=d)) for d in range(days + 1)})
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        for name in trigger_names(postgres=True):
            conn.execute(f"DROP TRIGGER {name} ON calls")
            conn.execute(f"DROP FUNCTION {name}()")
        # One COPY at a time per connection: the keys go through a second one.
        with (
            psycopg.connect(url) as keys_conn,
            progress_bar() as progress,
            conn.transaction(),
        ):
            task = progress.add_task("copying calls", total=rows)
            with (
                keys_conn.cursor().copy(f"COPY call_keys ({KEY_COLUMNS}) FROM STDIN") as keys,
                conn.cursor().copy(f"COPY calls ({PG_COLUMNS}) FROM STDIN") as calls,
            ):
                for n, row in enumerate(generate(rows, days), 1):
                    started = datetime.fromtimestamp(row[5] / 1000, UTC)
                    keys.write_row((row[1], row[2], n, started, row[12]))
                    calls.write_row((n, *row[1:5], started, *row[6:10], started, *row[11:15],
                                     bool(row[15])))  # fmt: skip
                    if n % 50_000 == 0:
                        progress.advance(task, 50_000)
        with console.status("rollups"), conn.transaction():
            for statement in rebuild_statements(POSTGRES)[1:]:  # repeat flags were set above
                conn.execute(statement)
            for statement in postgres_triggers():
                conn.execute(statement)
        # As autovacuum leaves a table that has settled: statistics, and the visibility map that
        # lets index-only scans skip the heap.
        tables = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )]  # fmt: skip
        conn.execute(f"VACUUM ANALYZE {', '.join(tables)}")


def schema_url(url: str, schema: str) -> str:
    return f"{url}?options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema(url: str, keep: bool) -> Iterator[str]:
    """A schema of its own on ``url``, dropped after unless ``keep``: yields a URL whose
    search_path is it."""
    schema = f"bench_queries_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema_url(url, schema)
    finally:
        if keep:
            console.print(f"kept schema {schema}: --reuse {schema} asks it again")
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def timed(ask: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        ask()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", default=POSTGRES_URL, help="PostgreSQL (--backend postgres)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema built")
    parser.add_argument("--reuse", metavar="SCHEMA", help="ask a kept PostgreSQL schema again")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.reuse:
        run(schema_url(args.url, args.reuse), "PostgreSQL", args)
        return
    if args.backend == "postgres":
        with postgres_schema(args.url, args.keep) as url:
            build_postgres(url, args.rows, args.days)
            run(url, "PostgreSQL", args)
        return
    path = OUT / f"queries-{args.rows}-{args.days}d-{schema_tag()}.db"  # anew when the schema is
    if not path.exists():
        build_sqlite(path, args.rows, args.days)
    run(f"sqlite:///{path}", "SQLite", args)


def run(url: str, backend: str, args: argparse.Namespace) -> None:
    store = open_store(Settings(database_url=url))
    fast = Analytics(store, Settings())
    raw = Analytics(store, Settings(), use_rollups=False)
    until, since = END, END - timedelta(days=30)
    top = fast.numbers(since, until, Filters())[0].to
    questions: list[tuple[str, Callable[[Analytics], Any]]] = [
        ("summary (30 d + previous 30 d)", lambda a: a.summary(since, until, Filters())),
        ("timeseries, hourly (30 d)", lambda a: a.timeseries(since, until, Filters(), "hour")),
        ("per number (30 d)", lambda a: a.numbers(since, until, Filters())),
        ("per region (30 d)", lambda a: a.regions(since, until, Filters())),
        (f"summary, To={top} (30 d)", lambda a: a.summary(since, until, Filters(to=top))),
        ("summary (24 h)", lambda a: a.summary(until - timedelta(days=1), until, Filters())),
    ]
    stored = store.count_calls()
    table = Table(
        "question", "rollups median ms", "best ms", "raw calls ms", "raw / rollups",
        title=f"analytics on {backend}, {stored:,} calls stored over {args.days} days",
    )  # fmt: skip
    results = []
    for name, ask in questions:
        rollup_times = timed(lambda ask=ask: ask(fast), args.repeat)
        raw_time = min(timed(lambda ask=ask: ask(raw), 1))
        median = statistics.median(rollup_times)
        best = min(rollup_times)
        results.append(
            {"question": name, "median_ms": median * 1000, "best_ms": best * 1000,
             "raw_ms": raw_time * 1000}
        )  # fmt: skip
        table.add_row(name, f"{median * 1000:.1f}", f"{best * 1000:.1f}",
                      f"{raw_time * 1000:.0f}", f"{raw_time / median:.0f}x")  # fmt: skip
    store.close()
    Console().print(table)
    console.print(f"{platform.python_implementation()} {platform.python_version()}, "
                  f"SQLite {sqlite3.sqlite_version}, {platform.machine()}")  # fmt: skip
    (OUT / f"queries-{args.backend}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
