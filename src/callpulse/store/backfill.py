"""What migration 0002 works out for the calls stored before it, set-based: each caller's region
(phonenumbers once per distinct caller, into a temporary table) and the repeat flags (one window
over the calls), before any rollup trigger exists, so no trigger fires for them."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from callpulse.regions import UNKNOWN, region_of
from callpulse.store.dialect import POSTGRES, SQLITE
from callpulse.store.rollups import earlier_calls

REGIONS = "caller_regions"  # temporary: number, region; callers of a known region only
REPEATS = "repeat_calls"  # temporary (SQLite): call_id of every repeat call


PARALLEL_FROM = 20_000  # callers; fewer take less time than starting processes for them


def _regions(numbers: list[str]) -> list[str]:
    # (uncached: a million callers would only churn region_of's cache of the busy ones)
    return [region_of.__wrapped__(number) for number in numbers]


def regions_of(numbers: list[str]) -> list[str]:
    """Each number's region; phonenumbers takes 0.1 ms or more a number, so a million callers
    are shared among a process per core."""
    workers = os.cpu_count() or 1
    if len(numbers) < PARALLEL_FROM or workers == 1:
        return _regions(numbers)
    size = -(-len(numbers) // (workers * 4))
    chunks = [numbers[at : at + size] for at in range(0, len(numbers), size)]
    # spawn, not fork: `serve` migrates beside threads whose locks a fork would copy held
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return [region for part in pool.map(_regions, chunks) for region in part]


def caller_regions(param: str) -> Callable[[Any], None]:
    def fill(conn: Any) -> None:
        conn.execute(f"CREATE TEMP TABLE {REGIONS} (number TEXT PRIMARY KEY, region TEXT NOT NULL)")
        numbers = sorted(n for (n,) in conn.execute("SELECT DISTINCT from_number FROM calls"))
        known = [(n, r) for n, r in zip(numbers, regions_of(numbers), strict=True) if r != UNKNOWN]
        conn.cursor().executemany(f"INSERT INTO {REGIONS} VALUES ({param}, {param})", known)

    return fill


Step = str | Callable[[Any], None]  # (as migrations.Step, which imports this module)


def sqlite_copy(columns: str) -> list[Step]:
    """The calls of schema 0001 into ``calls_v2`` with their regions and repeat flags."""
    return [
        caller_regions(SQLITE.param),
        f"CREATE TEMP TABLE {REPEATS} (call_id INTEGER PRIMARY KEY)",
        f"INSERT INTO {REPEATS} (call_id) SELECT id FROM ({earlier_calls(SQLITE)}) AS e "
        "WHERE earlier > 0 ORDER BY id",
        f"INSERT INTO calls_v2 ({columns}, region, is_repeat) SELECT {columns}, "
        f"coalesce((SELECT r.region FROM {REGIONS} r WHERE r.number = calls.from_number), "
        f"'{UNKNOWN}'), calls.id IN (SELECT call_id FROM {REPEATS}) FROM calls",
        f"DROP TABLE {REGIONS}",
        f"DROP TABLE {REPEATS}",
    ]


def postgres_update() -> list[Step]:
    """Regions and repeat flags of the calls in place: one UPDATE, each row rewritten once."""
    known = (
        f"SELECT e.id, e.account_sid, e.started_at, coalesce(r.region, '{UNKNOWN}') AS region, "
        f"e.earlier > 0 AS repeat FROM ({earlier_calls(POSTGRES)}) AS e "
        f"LEFT JOIN {REGIONS} r ON r.number = e.from_number"
    )
    return [
        caller_regions(POSTGRES.param),
        f"UPDATE calls AS c SET region = f.region, is_repeat = f.repeat FROM ({known}) AS f "
        "WHERE c.account_sid = f.account_sid AND c.started_at = f.started_at "
        f"AND c.call_id = f.id AND (f.region <> '{UNKNOWN}' OR f.repeat)",
        f"DROP TABLE {REGIONS}",
    ]
