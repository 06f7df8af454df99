"""Query benchmark: analytics over rollups against the same questions over raw calls.

Builds (once, cached in bench/out/) a SQLite database of --rows calls spread over --days days
(default 10 million over 60 days, so a 30-day range and the 30 days before it are both full),
then times, over the last 30 days: summary (with the previous period), hourly time series, per
number, per region and a filtered summary (one called number). Each question runs --repeat times
on rollups (the product) and once on raw calls (the baseline, same code with use_rollups=False);
the table shows the median, the best and the ratio raw / rollups.

Usage: bench/queries [--rows 10000000] [--days 60] [--repeat 7]
Recorded figures: docs/performance.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from callpulse.analytics import Analytics, Filters
from callpulse.config import Settings
from callpulse.regions import region_of
from callpulse.store import open_store
from callpulse.store.base import call_key
from callpulse.store.migrations import SQLITE_MIGRATIONS
from callpulse.store.rollups import SQLITE, rebuild_statements, sqlite_triggers

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
END = datetime(2026, 11, 1, tzinfo=UTC)
ACCOUNT = "b3877c40-da60-4998-90ad-b792e98472af"
COUNTRIES = {"1": 0.55, "44": 0.12, "49": 0.08, "33": 0.06, "52": 0.06, "55": 0.05, "91": 0.04,
             "61": 0.04}  # fmt: skip
console = Console(stderr=True)
INSERT = (
    "INSERT INTO calls (call_key, account_sid, call_sid, from_number, to_number, started_at, "
    "status, duration_s, mos, extra, received_at, source, fingerprint, version, region, "
    f"is_repeat) VALUES ({', '.join('?' * 16)})"
)


def hourly_weights() -> list[float]:
    """Quiet nights, a morning and an afternoon peak (UTC hours)."""
    return [0.2 + math.exp(-((h - 10) ** 2) / 6) + 0.8 * math.exp(-((h - 15) ** 2) / 8)
            for h in range(24)]  # fmt: skip


def build(path: Path, rows: int, days: int, seed: int = 11) -> None:
    """Calls straight into the table (triggers and indexes off while loading), then the same
    rebuild the product runs, so rollups equal what ingest would have kept."""
    rng = random.Random(seed)
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    store = open_store(Settings(database_url=f"sqlite:///{tmp}"))
    store.upgrade()
    store.close()
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    for name in ("calls_rollup_insert", "calls_rollup_update"):
        conn.execute(f"DROP TRIGGER {name}")
    for name in ("calls_by_key", "calls_by_start", "calls_by_caller"):
        conn.execute(f"DROP INDEX {name}")
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
    conn.execute("BEGIN")
    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:  # fmt: skip
        task = progress.add_task("generating calls", total=rows)
        batch: list[tuple[Any, ...]] = []
        for n, started in enumerate(starts):
            caller = callers[min(int(rng.paretovariate(1.2)) - 1, len(callers) - 1)
                             if rng.random() < 0.3 else rng.randrange(len(callers))]  # fmt: skip
            failed = rng.random() < 0.05
            duration = 0 if failed else int(min(rng.lognormvariate(4.6, 1.0), 7200))
            mos = round(min(4.5, max(1.0, rng.gauss(4.2, 0.25) if rng.random() > 0.07
                                     else rng.uniform(1.5, 3.6))), 2)  # fmt: skip
            previous = last_seen.get(caller)
            repeat = (
                previous is not None and started - previous <= 86_400_000 and previous < started
            )
            last_seen[caller] = started
            sid = f"CA{n:032x}"
            batch.append((call_key(ACCOUNT, sid), ACCOUNT, sid, caller,
                          called[rng.choices(range(20), called_weights)[0]], started,
                          "failed" if failed else "completed", duration, mos, "{}", started,
                          "callback", n, 1, regions[caller], int(repeat)))  # fmt: skip
            if len(batch) == 50_000 or n == rows - 1:
                conn.executemany(INSERT, batch)
                progress.advance(task, len(batch))
                batch = []
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
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    schema = hashlib.sha256(repr(SQLITE_MIGRATIONS).encode()).hexdigest()[:8]
    path = OUT / f"queries-{args.rows}-{args.days}d-{schema}.db"  # rebuilt when the schema changes
    if not path.exists():
        build(path, args.rows, args.days)
    store = open_store(Settings(database_url=f"sqlite:///{path}"))
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
        title=f"analytics on SQLite, {stored:,} calls stored over {args.days} days",
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
    (OUT / "queries.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
