"""Upgrade benchmark: `callpulse db upgrade` of a SQLite database at the first schema (0001)
holding --rows calls, against copying the same data with VACUUM INTO (the baseline).

Builds (once, cached in bench/out/) a database at schema 0001 only: --rows calls over --days
days to --numbers called numbers from --callers distinct callers in eight countries (some
withheld). Then, each on a fresh copy of it: VACUUM INTO a new file, then fsync of that file (what
a backup costs); `python -m callpulse db upgrade` as a subprocess (the headline figure), sampling
the database, its WAL and SQLite's temporary files for the disk it needs; and the same pending
migration steps run in this process with `run_step`, in the same order in one transaction, timed
one by one (where the time goes). Both upgraded copies are checked: calls kept, every caller
given a region, rollups summing to the calls.

Usage: bench/upgrade [--rows 10000000] [--days 60] [--numbers 20] [--callers 1000000]
Recorded figures: docs/performance.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from callpulse.callback import WITHHELD
from callpulse.config import Settings
from callpulse.regions import region_of
from callpulse.store import open_store
from callpulse.store.migrations import SQLITE_MIGRATIONS, Step, run_step
from callpulse.store.sqlite import SQLiteStore
from ingest import clean_env, machine_busy_s, source_version  # the same helpers, one copy

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
FIRST = SQLITE_MIGRATIONS[0]  # what the first release created
PENDING = SQLITE_MIGRATIONS[1:]  # what `callpulse db upgrade` applies to it
END = datetime(2026, 11, 1, tzinfo=UTC)
ACCOUNT = "b3877c40-da60-4998-90ad-b792e98472af"
EXTRA = json.dumps({"ApiVersion": "2010-04-01", "Direction": "inbound"}, sort_keys=True)
WITHHELD_PERMILLE = 30  # 3 % of calls come from a withheld caller id
# Callers by country: share, and a plausible national number for it (mobile ranges, or area codes
# of the US and Canada), so phonenumbers does the work it does on real callers.
NANP_AREAS = (212, 213, 305, 312, 404, 415, 512, 617, 646, 702, 713, 416, 514, 604)
COUNTRIES: tuple[tuple[float, Callable[[random.Random], str]], ...] = (
    (0.55, lambda r: f"+1{r.choice(NANP_AREAS)}{r.randint(200, 999)}{r.randint(0, 9999):04d}"),
    (0.12, lambda r: f"+447{r.randint(400_000_000, 999_999_999)}"),
    (0.08, lambda r: f"+4915{r.randint(100_000_000, 999_999_999)}"),
    (0.06, lambda r: f"+336{r.randint(10_000_000, 99_999_999)}"),
    (0.06, lambda r: f"+5255{r.randint(10_000_000, 99_999_999)}"),
    (0.05, lambda r: f"+5511{r.randint(910_000_000, 999_999_999)}"),
    (0.04, lambda r: f"+919{r.randint(100_000_000, 999_999_999)}"),
    (0.04, lambda r: f"+614{r.randint(10_000_000, 99_999_999)}"),
)
BUSY_CORES = 0.05  # other processes using more than this (in cores) during a measurement flag it
TICK = os.sysconf("SC_CLK_TCK")
console = Console(width=None if sys.stdout.isatty() else 160)


# -- the database at schema 0001 ---------------------------------------------------------------

# One statement per chunk of calls. The draw is MATERIALIZED so that each random() is evaluated
# once per call (a flattened subquery would repeat it where a column is used twice). Callers: a
# fifth of the calls come from the 5 % "regulars" (the repeat callers a call centre has), the
# rest from all --callers; called numbers skewed towards the first ones. Started in id order, as
# ingest leaves them; the callback arrives after the call ends. One call in 200 was corrected
# (version 2, its first version in call_history).
_FILL_SQL = """
WITH RECURSIVE seq(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM seq WHERE n < :last),
draw AS MATERIALIZED (
    SELECT n,
           :start + (n - 1) * :span / :rows + abs(random() % :step) AS started,
           CASE WHEN abs(random() % 1000) < :withheld_permille THEN NULL
                WHEN abs(random() % 5) = 0 THEN abs(random() % :regulars)
                ELSE abs(random() % :callers) END AS caller,
           abs(random() % :numbers) * abs(random() % :numbers) / :numbers AS called,
           abs(random() % 10) = 0 AS failed,
           5 + abs(random() % 1796) AS talk
    FROM seq
)
INSERT INTO calls (call_key, account_sid, call_sid, from_number, to_number, started_at, status,
                   duration_s, mos, extra, received_at, source, fingerprint, version)
SELECT random(), :account,
       printf('%08x-%04x-4%03x-%04x-%012x', random() & 4294967295, random() & 65535,
              random() & 4095, (random() & 16383) | 32768, random() & 281474976710655),
       coalesce(cl.number, :withheld), cd.number, d.started,
       CASE WHEN d.failed THEN 'failed' ELSE 'completed' END,
       CASE WHEN d.failed THEN 0 ELSE d.talk END,
       round(CASE WHEN abs(random() % 100) < 85 THEN 3.5 + abs(random() % 101) / 100.0
                  ELSE 1.0 + abs(random() % 401) / 100.0 END, 2),
       :extra,
       d.started + (CASE WHEN d.failed THEN 0 ELSE d.talk END) * 1000 + abs(random() % 5000),
       'callback', random(), CASE WHEN d.n % 200 = 0 THEN 2 ELSE 1 END
FROM draw d
LEFT JOIN temp.callers cl ON cl.k = d.caller
JOIN temp.called cd ON cd.k = d.called
ORDER BY d.n
"""
_HISTORY_SQL = """
INSERT INTO call_history (call_id, from_number, to_number, started_at, status, duration_s, mos,
                          extra, received_at, source, fingerprint, version, superseded_at)
SELECT id, from_number, to_number, started_at, status, duration_s, mos, extra,
       received_at - 60000, source, fingerprint + 1, 1, received_at
FROM calls WHERE version = 2
"""


def schema_tag() -> str:
    """Changes when the first schema or the generated data change: the cache is rebuilt."""
    return hashlib.sha256((repr(FIRST) + _FILL_SQL + _HISTORY_SQL).encode()).hexdigest()[:10]


def caller_numbers(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct E.164 callers, countries mixed by their share."""
    rng = random.Random(seed)
    shares = [share for share, _ in COUNTRIES]
    makers = [make for _, make in COUNTRIES]
    numbers: dict[str, None] = {}  # insertion-ordered set
    while len(numbers) < count:
        for make in rng.choices(makers, shares, k=count - len(numbers)):
            numbers[make(rng)] = None
    return list(numbers)


def build_database(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The cached schema-0001 database for these options (built if missing) and its metadata."""
    key = f"{args.rows}-{args.days}d-{args.numbers}n-{args.callers}c-{schema_tag()}"
    path = OUT / f"upgrade-0001-{key}.db"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        console.print(f"using cached {path.name} (built in {meta['seconds']:.1f} s)")
        return path, meta
    tmp = path.with_suffix(".building")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    began = time.monotonic()
    # The migrations table and schema 0001 as the product creates them (as tests/store/
    # test_upgrade.py does), and nothing newer.
    store = open_store(Settings(database_url=f"sqlite:///{tmp}"))
    assert isinstance(store, SQLiteStore)
    with store._transaction() as conn:
        store._applied(conn)
        for step in FIRST.statements:
            run_step(conn, step)
        conn.execute(
            "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
            (FIRST.name, (END - timedelta(days=args.days + 1)).isoformat()),
        )
    store.close()

    span = args.days * 86_400_000
    params = {
        "account": ACCOUNT,
        "start": int(END.timestamp() * 1000) - span,
        "span": span,
        "rows": args.rows,
        "step": max(1, span // args.rows),
        "withheld_permille": WITHHELD_PERMILLE,
        "withheld": WITHHELD,
        "regulars": max(1, args.callers // 20),
        "callers": args.callers,
        "numbers": args.numbers,
        "extra": EXTRA,
    }
    chunk = 200_000
    with closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("CREATE TEMP TABLE callers (k INTEGER PRIMARY KEY, number TEXT NOT NULL)")
        conn.execute("CREATE TEMP TABLE called (k INTEGER PRIMARY KEY, number TEXT NOT NULL)")
        conn.executemany("INSERT INTO temp.callers VALUES (?, ?)",
                         enumerate(caller_numbers(args.callers)))  # fmt: skip
        conn.executemany("INSERT INTO temp.called VALUES (?, ?)",
                         ((n, f"+1800555{n:04d}") for n in range(args.numbers)))  # fmt: skip
        # Indexes are dropped and re-created from their own SQL: a sort beats 10M random inserts.
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name IN ('calls', 'call_history') AND sql IS NOT NULL"
        ).fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"inserting {args.rows:,} calls", total=args.rows)
            for first in range(1, args.rows + 1, chunk):
                last = min(args.rows, first + chunk - 1)
                conn.execute("BEGIN")
                conn.execute(_FILL_SQL, {**params, "first": first, "last": last})
                conn.execute("COMMIT")
                progress.update(task, completed=last)
            conn.execute(_HISTORY_SQL)
            inserted_s = time.monotonic() - began
            task = progress.add_task("re-creating indexes", total=len(indexes))
            for _name, sql in indexes:
                conn.execute(sql)
                progress.advance(task)
        stored = int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
        distinct = int(conn.execute("SELECT count(DISTINCT from_number) FROM calls").fetchone()[0])
        conn.execute("PRAGMA journal_mode=WAL")  # as the first release left it
    os.sync()
    seconds = time.monotonic() - began
    tmp.rename(path)
    meta = {
        "rows": stored,
        "distinct_callers": distinct,
        "seconds": seconds,
        "insert_s": inserted_s,
        "bytes": path.stat().st_size,
    }
    meta_path.write_text(json.dumps(meta))
    console.print(
        f"built {stored:,} calls ({distinct:,} distinct callers) in {seconds:.1f} s "
        f"(rows {inserted_s:.1f} s, indexes {seconds - inserted_s:.1f} s), "
        f"{meta['bytes'] / 2**30:.2f} GiB: {path}"
    )
    return path, meta


# -- measuring: CPU of others, disk ------------------------------------------------------------


def own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the measured subprocess)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


QUIET_WAIT_S = [300.0]  # --quiet-wait


def wait_until_quiet() -> None:
    """Wait (up to --quiet-wait seconds) until other processes leave the machine idle."""
    deadline = time.monotonic() + QUIET_WAIT_S[0]
    while True:
        before = machine_busy_s()
        time.sleep(1)
        busy = machine_busy_s() - before
        if busy < BUSY_CORES or time.monotonic() > deadline:
            return
        console.print(f"  (machine busy: {busy:.0%} of a core used by others; waiting)")


class OthersCpu:
    """The CPU (in cores) used by processes other than this one and its children meanwhile."""

    def __init__(self) -> None:
        self.began, self.machine, self.ours = time.monotonic(), machine_busy_s(), own_cpu_s()

    def cores(self) -> float:
        other = machine_busy_s() - self.machine - (own_cpu_s() - self.ours)
        return max(0.0, other / (time.monotonic() - self.began))


@dataclass
class Disk:
    """Peak disk (allocated bytes) held by a database during a run, sampled."""

    start: int = 0  # database file before the run
    peak_total: int = 0  # database + WAL + shm + SQLite's temporary files, at one moment
    peak_wal: int = 0
    peak_temp: int = 0
    samples: int = 0

    @property
    def peak_extra(self) -> int:
        return self.peak_total - self.start


def allocated(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0


def temp_files(pid: int) -> int:
    """Bytes of deleted files ``pid`` holds open: SQLite's sorter and temp files are unlinked at
    once, so they show only here (not as files in any directory)."""
    total = 0
    fds = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fds.iterdir())
    except OSError:  # exited meanwhile
        return 0
    for fd in entries:
        try:
            if not os.readlink(fd).endswith(" (deleted)"):
                continue
            info = fd.stat()  # the open file itself
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            total += info.st_blocks * 512
    return total


def sample(db: Path, pid: int, disk: Disk) -> tuple[int, int, int]:
    main = allocated(db)
    wal = allocated(Path(f"{db}-wal")) + allocated(Path(f"{db}-shm"))
    temp = temp_files(pid)
    disk.peak_total = max(disk.peak_total, main + wal + temp)
    disk.peak_wal = max(disk.peak_wal, wal)
    disk.peak_temp = max(disk.peak_temp, temp)
    disk.samples += 1
    return main, wal, temp


class Sampler(threading.Thread):
    """Samples the disk a database holds every 0.2 s while this process works on it (sqlite3
    releases the GIL while SQLite runs)."""

    def __init__(self, db: Path, disk: Disk) -> None:
        super().__init__(name="disk-sampler", daemon=True)
        self.db, self.disk, self.done = db, disk, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            sample(self.db, os.getpid(), self.disk)

    def stop(self) -> None:
        self.done.set()
        self.join()
        sample(self.db, os.getpid(), self.disk)


def gib(size: float) -> str:
    return f"{size / 2**30:.2f} GiB"


# -- the runs ----------------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    others_cores: float
    disk: Disk = field(default_factory=Disk)
    final_bytes: int = 0  # the database file (or the copy) afterwards
    extra: dict[str, Any] = field(default_factory=dict)


def fresh_copy(source: Path, workdir: Path) -> Path:
    """A `cp` of the cached database, flushed, so write-back of the copy does not compete with
    the measured run."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    db = workdir / "callpulse.db"
    with console.status(f"copying {source.name}"):
        shutil.copyfile(source, db)
        os.sync()
    wait_until_quiet()
    return db


def run_vacuum_into(source: Path, workdir: Path) -> Timed:
    """The baseline: the same data copied table by table into a new file, then made durable."""
    db = fresh_copy(source, workdir)
    target = workdir / "vacuum-into.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn, console.status("VACUUM INTO"):
        others = OthersCpu()
        began = time.perf_counter()
        conn.execute("VACUUM INTO ?", (str(target),))
        vacuum_s = time.perf_counter() - began
        # SQLite does not fsync the VACUUM INTO output; the upgrade's commit is durable.
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        seconds = time.perf_counter() - began
    result = Timed(seconds, others.cores(), final_bytes=target.stat().st_size)
    result.extra = {"vacuum_into_s": vacuum_s, "fsync_s": seconds - vacuum_s}
    console.print(
        f"VACUUM INTO: {seconds:.1f} s (of which fsync {seconds - vacuum_s:.1f} s), "
        f"copy {gib(result.final_bytes)}, others {result.others_cores:.0%} of a core"
    )
    return result


def run_cli_upgrade(source: Path, workdir: Path) -> tuple[Timed, Path]:
    """`python -m callpulse db upgrade` on a fresh copy, as an operator runs it."""
    db = fresh_copy(source, workdir)
    disk = Disk(start=allocated(db), peak_total=allocated(db))
    log = workdir / "upgrade.log"
    argv = [sys.executable, "-m", "callpulse", "db", "upgrade"]
    with log.open("wb") as out, console.status("callpulse db upgrade") as status:
        others = OthersCpu()
        began = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=clean_env(database_url=f"sqlite:///{db}"),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        while True:
            try:
                proc.wait(timeout=0.2)  # returns as soon as it exits: the time stays exact
                break
            except subprocess.TimeoutExpired:
                main, wal, temp = sample(db, proc.pid, disk)
                status.update(
                    f"callpulse db upgrade: {time.perf_counter() - began:,.0f} s, database "
                    f"{gib(main)}, WAL {gib(wal)}, temp files {gib(temp)}, peak extra "
                    f"{gib(disk.peak_extra)}"
                )
        seconds = time.perf_counter() - began
    output = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"callpulse db upgrade failed (exit {proc.returncode}):\n{output}")
    sample(db, os.getpid(), disk)
    result = Timed(seconds, others.cores(), disk, db.stat().st_size, {"output": output.strip()})
    console.print(
        f"callpulse db upgrade: {seconds:.1f} s ({output.strip()}), peak extra disk "
        f"{gib(disk.peak_extra)} (WAL {gib(disk.peak_wal)}, temp files {gib(disk.peak_temp)}), "
        f"database {gib(disk.start)} -> {gib(result.final_bytes)}, "
        f"others {result.others_cores:.0%} of a core"
    )
    return result, db


@dataclass
class StepTime:
    migration: str
    label: str
    group: str
    seconds: float
    wal_bytes: int  # the WAL (+ shm) after the step: where the transaction's pages go


def describe(step: Step) -> tuple[str, str]:
    """A short label for a migration step, and the group it is summed in."""
    if not isinstance(step, str):
        name = getattr(step, "__qualname__", repr(step))
        if "caller_regions" in name:
            return "caller regions (phonenumbers once per distinct caller)", "regions"
        return name, "other"
    sql = " ".join(step.split())
    words = sql.split()
    if sql.startswith("INSERT INTO rollup_"):
        source = words[words.index("FROM") + 1]
        if source.startswith("rollup_"):
            return f"INSERT INTO {words[2]} from {source}", "rollups from finer rollups"
        kind = ""
        if words[2].endswith("_hist"):
            kind = " (MOS)" if "mos * 100" in sql else " (duration)"
        return f"INSERT INTO {words[2]}{kind} from calls", "rollups from calls"
    if sql.startswith(("CREATE TEMP TABLE repeat_calls", "INSERT INTO repeat_calls")):
        return "repeat calls (one window over the calls)", "repeat flags"
    groups = (
        (r"^(CREATE TABLE|DROP TABLE|ALTER TABLE) calls|^INSERT INTO calls_v2", "copy calls"),
        (r"^CREATE INDEX \S+ ON calls ", "calls indexes"),
        (r"call_history", "copy call_history"),
        (r"^CREATE (TABLE|TRIGGER) ", "rollup tables and triggers"),
        (r"^DELETE FROM rollup_", "clear rollups"),
    )
    group = next((name for pattern, name in groups if re.search(pattern, sql)), "other")
    if sql.startswith(("CREATE TABLE", "CREATE TRIGGER")):
        return " ".join(words[:3]), group
    if sql.startswith("INSERT INTO") and "FROM" in words:
        return f"INSERT INTO {words[2]} ... FROM {words[words.index('FROM') + 1]}", group
    return (sql if len(sql) <= 70 else sql[:67] + "..."), group


def run_steps(source: Path, workdir: Path) -> tuple[Timed, list[StepTime], Path]:
    """The pending migrations' steps on a fresh copy, in this process, in one transaction on the
    store's migrating connection, as ``SQLiteStore.upgrade`` runs them, each one timed."""
    db = fresh_copy(source, workdir)
    wal = Path(f"{db}-wal")
    disk = Disk(start=allocated(db), peak_total=allocated(db))
    steps = [(m.name, step) for m in PENDING for step in m.statements]
    times: list[StepTime] = []
    store = open_store(Settings(database_url=f"sqlite:///{db}"))
    assert isinstance(store, SQLiteStore)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("steps", total=len(steps) + 2)
        sampler = Sampler(db, disk)
        sampler.start()
        others = OthersCpu()
        began = time.perf_counter()
        with store._migrating() as conn:
            applied = store._applied(conn)
            assert set(applied) == {FIRST.name}, f"not a first-schema database: {applied}"
            for migration, step in steps:
                label, group = describe(step)
                progress.update(task, description=label[:60])
                step_began = time.perf_counter()
                run_step(conn, step)
                seconds = time.perf_counter() - step_began
                times.append(StepTime(migration, label, group, seconds, allocated(wal)))
                progress.advance(task)
            for migration in PENDING:
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (migration.name, datetime.now(UTC).isoformat()),
                )
            progress.update(task, description="COMMIT")
            commit_began = time.perf_counter()
        # (_migrating commits on leaving; SQLite's automatic checkpoint runs in the COMMIT)
        times.append(
            StepTime("", "COMMIT (with its automatic checkpoint)", "commit and close",
                     time.perf_counter() - commit_began, allocated(wal))
        )  # fmt: skip
        progress.advance(task)
        progress.update(task, description="close")
        close_began = time.perf_counter()
        store.close()  # the last connection checkpoints and removes the WAL
        times.append(
            StepTime("", "close (last checkpoint, WAL removed)", "commit and close",
                     time.perf_counter() - close_began, allocated(wal))
        )  # fmt: skip
        progress.advance(task)
        seconds = time.perf_counter() - began
        sampler.stop()
    result = Timed(seconds, others.cores(), disk, db.stat().st_size)
    console.print(
        f"steps in-process: {seconds:.1f} s, peak extra disk {gib(disk.peak_extra)} "
        f"(WAL {gib(disk.peak_wal)}, temp files {gib(disk.peak_temp)}), "
        f"others {result.others_cores:.0%} of a core"
    )
    return result, times, db


# -- checks ------------------------------------------------------------------------------------


def check(db: Path, rows: int, seed: int = 3) -> dict[str, Any]:
    """What the upgrade must leave: every call, a region for every caller, rollups equal to the
    calls they count."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:

        def one(query: str, params: tuple[Any, ...] = ()) -> Any:
            return conn.execute(query, params).fetchone()[0]

        found: dict[str, Any] = {
            "migrations": [name for (name,) in conn.execute("SELECT name FROM migrations")],
            "calls": one("SELECT count(*) FROM calls"),
            "history": one("SELECT count(*) FROM call_history"),
            "region_null": one("SELECT count(*) FROM calls WHERE region IS NULL"),
            "region_unknown": one("SELECT count(*) FROM calls WHERE region = 'unknown'"),
            "withheld": one("SELECT count(*) FROM calls WHERE from_number = ?", (WITHHELD,)),
            "repeats": one("SELECT count(*) FROM calls WHERE is_repeat"),
            "page_size": one("PRAGMA page_size"),
            "pages": one("PRAGMA page_count"),
            "free_pages": one("PRAGMA freelist_count"),
        }
        for table in ("rollup_day", "rollup_day_total", "rollup_hour_total", "rollup_minute_total"):
            found[f"{table}.calls"] = one(f"SELECT sum(calls) FROM {table}")
        found["rollup_day_total.repeats"] = one("SELECT sum(repeats) FROM rollup_day_total")
        # A sample of callers against phonenumbers itself: the backfill stored the right region.
        numbers = [n for (n,) in conn.execute("SELECT DISTINCT from_number FROM calls")]
        picked = random.Random(seed).sample(numbers, min(500, len(numbers)))
        stored_regions = "SELECT DISTINCT region FROM calls WHERE from_number = ?"
        wrong = [
            number
            for number in picked
            if {r for (r,) in conn.execute(stored_regions, (number,))} != {region_of(number)}
        ]
        found["regions_sampled"], found["regions_wrong"] = len(picked), wrong[:10]
        found["distinct_callers"] = len(numbers)
        by_region = conn.execute(
            "SELECT region, count(*) FROM calls GROUP BY region ORDER BY 2 DESC"
        ).fetchall()
        found["regions"] = dict(by_region)
    failures = []
    if found["calls"] != rows:
        failures.append(f"calls {found['calls']:,} != {rows:,} before the upgrade")
    if found["region_null"]:
        failures.append(f"{found['region_null']:,} calls without a region")
    if found["region_unknown"] != found["withheld"]:
        failures.append(
            f"{found['region_unknown']:,} calls of region unknown, {found['withheld']:,} withheld"
        )
    if found["regions_wrong"]:
        failures.append(f"wrong region for {found['regions_wrong']}")
    for key in ("rollup_day.calls", "rollup_day_total.calls", "rollup_hour_total.calls",
                "rollup_minute_total.calls"):  # fmt: skip
        if found[key] != found["calls"]:
            failures.append(f"{key} {found[key]:,} != {found['calls']:,} calls")
    if found["rollup_day_total.repeats"] != found["repeats"]:
        failures.append("rollup repeats != calls flagged as repeats")
    if {m.name for m in SQLITE_MIGRATIONS} != set(found["migrations"]):
        failures.append(f"migrations recorded: {found['migrations']}")
    found["failures"] = failures
    return found


# -- report ------------------------------------------------------------------------------------


def fsync_ms() -> tuple[float, float]:
    """What one flush costs on the disk under bench/out (200 appends + fdatasync): p50, p99."""
    samples: list[float] = []
    probe = OUT / "fsync-probe.tmp"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for _ in range(200):
            os.write(fd, b"x" * 4096)
            began = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        os.close(fd)
        probe.unlink()
    samples.sort()
    return samples[len(samples) // 2 - 1], samples[len(samples) * 99 // 100 - 1]


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    p50, p99 = fsync_ms()
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"phonenumbers {phonenumbers.__version__}, "
        f"fdatasync of 4 KiB in {OUT.name}/: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )


def groups_of(times: list[StepTime]) -> dict[str, float]:
    grouped: dict[str, float] = {}
    for t in times:
        grouped[t.group] = grouped.get(t.group, 0.0) + t.seconds
    return grouped


def report(
    rows: int, vacuum: Timed, cli: Timed, steps: Timed, times: list[StepTime], source_bytes: int
) -> None:
    per_million = 1e6 / rows
    table = Table(title=f"upgrade from {FIRST.name}, SQLite, {rows:,} calls")
    for column in ("run", "seconds", "s per million calls", "peak extra disk", "file after",
                   "others' CPU"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(
        "VACUUM INTO + fsync (baseline)",
        f"{vacuum.seconds:,.1f}",
        f"{vacuum.seconds * per_million:,.1f}",
        gib(vacuum.final_bytes),
        gib(vacuum.final_bytes),
        f"{vacuum.others_cores:.0%}",
    )
    table.add_row(
        "callpulse db upgrade",
        f"{cli.seconds:,.1f}",
        f"{cli.seconds * per_million:,.1f}",
        gib(cli.disk.peak_extra),
        gib(cli.final_bytes),
        f"{cli.others_cores:.0%}",
    )
    if times:
        table.add_row(
            "same steps in-process",
            f"{steps.seconds:,.1f}",
            f"{steps.seconds * per_million:,.1f}",
            gib(steps.disk.peak_extra),
            gib(steps.final_bytes),
            f"{steps.others_cores:.0%}",
        )
    console.print(table)
    console.print(
        f"upgrade / VACUUM INTO: {cli.seconds / vacuum.seconds:.1f}x; database before "
        f"{gib(source_bytes)}; peak WAL {gib(cli.disk.peak_wal)}, peak temp files "
        f"{gib(cli.disk.peak_temp)}"
    )
    total = sum(t.seconds for t in times)
    grouped = Table(title="where the time goes (in-process run)")
    for column in ("group", "seconds", "share"):
        grouped.add_column(column, justify="right")
    for name, seconds in sorted(groups_of(times).items(), key=lambda item: -item[1]):
        grouped.add_row(name, f"{seconds:,.1f}", f"{seconds / total:.1%}")
    console.print(grouped)
    detail = Table(title="every step, in order")
    for column in ("step", "group", "seconds", "WAL after"):
        detail.add_column(column, justify="right")
    for t in times:
        detail.add_row(t.label, t.group, f"{t.seconds:,.2f}", gib(t.wal_bytes))
    console.print(detail)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/upgrade", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="calls in the database")
    parser.add_argument("--days", type=int, default=60, help="days the calls are spread over")
    parser.add_argument("--numbers", type=int, default=20, help="called numbers (To)")
    parser.add_argument("--callers", type=int, default=1_000_000, help="distinct callers (From)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=300.0,
        help="seconds to wait at most for a quiet machine before each run",
    )
    parser.add_argument(
        "--skip-steps", action="store_true", help="time the CLI only, not the steps one by one"
    )
    args = parser.parse_args()
    QUIET_WAIT_S[0] = args.quiet_wait
    if min(args.rows, args.days, args.numbers, args.callers) < 1:
        parser.error("--rows, --days, --numbers and --callers must be positive")
    OUT.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    about, version = machine(), source_version()
    console.print(f"machine: {about}\ncallpulse: commit {version}")
    source, built = build_database(args)
    if built["rows"] != args.rows:
        raise SystemExit(f"the cached database holds {built['rows']:,} calls, not {args.rows:,}")
    free = shutil.disk_usage(OUT).free
    if free < 5 * built["bytes"]:
        console.print(f"[yellow]only {gib(free)} free beside {gib(built['bytes'])}: may not fit")
    workdir = OUT / f"upgrade-run-{stamp}-{os.getpid()}"  # (two runs never share copies)
    try:
        vacuum = run_vacuum_into(source, workdir)
        cli, cli_db = run_cli_upgrade(source, workdir)
        with console.status("checking the upgraded database"):
            cli_checks = check(cli_db, built["rows"])
        steps, times, step_checks = Timed(0.0, 0.0), [], {"failures": []}
        if not args.skip_steps:
            steps, times, steps_db = run_steps(source, workdir)
            with console.status("checking the upgraded database"):
                step_checks = check(steps_db, built["rows"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(built["rows"], vacuum, cli, steps, times, built["bytes"])
    checked = [("CLI upgrade", cli_checks)] + [("in-process steps", step_checks)] * bool(times)
    for name, found in checked:
        failures = "; ".join(found["failures"])
        verdict = f"[red]FAILED: {failures}[/]" if failures else "ok"
        console.print(
            f"checks after the {name}: {verdict} (calls {found['calls']:,}, region NULL "
            f"{found['region_null']}, region unknown {found['region_unknown']:,} = withheld "
            f"{found['withheld']:,}, {found['regions_sampled']} sampled callers' regions right, "
            f"rollup_day calls {found['rollup_day.calls']:,}, repeats {found['repeats']:,}; "
            f"free pages {gib(found['free_pages'] * found['page_size'])} of "
            f"{gib(found['pages'] * found['page_size'])})"
        )
    saved = OUT / f"upgrade-{stamp}.json"
    millions = built["rows"] / 1e6
    saved.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": about,
                "commit": version,
                "database": {"path": source.name, **built},
                "vacuum_into": asdict(vacuum) | {"seconds_per_million": vacuum.seconds / millions},
                "upgrade_cli": asdict(cli)
                | {"peak_extra_bytes": cli.disk.peak_extra}
                | {"seconds_per_million": cli.seconds / millions},
                "upgrade_steps": asdict(steps) | {"peak_extra_bytes": steps.disk.peak_extra},
                "ratio_upgrade_to_vacuum_into": cli.seconds / vacuum.seconds,
                "steps": [asdict(t) for t in times],
                "groups": groups_of(times),
                "checks": {"cli": cli_checks, "steps": step_checks},
            },
            indent=2,
        )
    )
    console.print(f"saved {saved}")
    if cli_checks["failures"] or step_checks["failures"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
