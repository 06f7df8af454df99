"""Ingest benchmark: wrk against a bare Starlette app, naive callpulse and callpulse.

SQLite (default): each server runs as its own process on the same port, one after another, first
on an empty database and then on a copy of a cached database holding --rows calls. Per server: a
warm-up, a run at full speed, and a run paced at half of callpulse's full-speed rate (in that
state).

PostgreSQL (--database postgresql://...): callpulse with 1 worker, with 2 workers, and naive
(1 worker, one insert per request), each server run on a fresh, empty schema. First every server
at full speed, then every server again (fresh schema) paced at half of the best callpulse rate.

Usage: bench/ingest [--duration 10] [--connections 64] [--rows 10000000] [--skip-10m]
                    [--shape random|call-center]
       bench/ingest --database postgresql://postgres@127.0.0.1:5432/test [--shape call-center]
Details and recorded figures: docs/performance.md
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from callpulse.signature import compatibility_signature
from callpulse.store.dialect import SQLITE
from callpulse.store.migrations import SQLITE_MIGRATIONS
from callpulse.store.rollups import rebuild_statements

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
LUA = BENCH / "callbacks.lua"
BARE_APP = BENCH / "bare_app.py"
CALLBACK_PATH = "/callbacks/call-status"
SIGNING_KEY = "PSKbench-signing-key-0123456789"
ACCOUNT_SID = "b3877c40-da60-4998-90ad-b792e98472af"
EXTRA = {"ApiVersion": "2010-04-01", "Direction": "inbound"}  # sent by real senders; kept as-is
# Sizes the request pool of a full-speed run (x1.5): above any one-process Python server here.
CEILING_PER_S = 24_000
VARIANTS = ("callpulse", "naive", "bare")  # callpulse first: its rate sets the paced runs' rate
PG_VARIANTS = ("callpulse-w1", "callpulse-w2", "naive")  # PostgreSQL mode; naive has 1 worker
WORKERS = {"callpulse-w2": 2}  # `serve --workers`; 1 for every other server
console = Console(width=None if sys.stdout.isatty() else 160)


# -- signed callbacks --------------------------------------------------------------------------


def e164(rng: random.Random) -> str:
    """A North American number: +1, area code, exchange, line."""
    return f"+1{rng.randint(200, 999)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"


class Traffic:
    """Who calls whom, and when. ``random``: every call from and to a number of its own, started in
    the last five minutes. ``call-center``: 4 called numbers, 10,000 callers (so some call
    again), calls starting 10 a second, as a call center's lines see them: from the pool's
    making on (a replay hundreds of times faster than the calls runs ahead of the clock; old
    ones would be late calls, which cost the writer every rollup level)."""

    def __init__(self, shape: str, rng: random.Random, now: datetime) -> None:
        self.shape, self.rng, self.now, self.calls = shape, rng, now, 0
        self.callers = [e164(rng) for _ in range(10_000)]
        self.lines = [e164(rng) for _ in range(4)]

    def parties(self) -> tuple[str, str, datetime]:
        self.calls += 1
        if self.shape == "random":
            return (
                e164(self.rng),
                e164(self.rng),
                self.now - timedelta(seconds=self.rng.uniform(0, 300)),
            )
        started = self.now + timedelta(milliseconds=100 * self.calls)
        return self.rng.choice(self.callers), self.rng.choice(self.lines), started


def fake_callback(rng: random.Random, traffic: Traffic) -> dict[str, str]:
    completed = rng.random() < 0.9
    caller, called, started = traffic.parties()
    return {
        "CallSid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": called,
        "Timestamp": email.utils.format_datetime(started),
        "CallStatus": "completed" if completed else "failed",
        "CallDuration": str(rng.randint(5, 1800) if completed else 0),
        "AudioInMos": f"{min(5.0, max(1.0, rng.gauss(4.2, 0.5))):.2f}",
        **EXTRA,
    }


class Pool:
    """Signed callbacks with unique CallSids, one "signature<TAB>body" line each, made on demand.

    Every server starts from a fresh database, so each server run reuses the pool from line 1.
    """

    def __init__(self, path: Path, url: str, shape: str = "random") -> None:
        self.path, self.url, self.size = path, url, 0
        self.rng = random.Random()
        self.traffic = Traffic(shape, self.rng, datetime.now(UTC))
        path.write_text("")

    def ensure(self, lines: int) -> None:
        if lines <= self.size:
            return
        with self.path.open("a") as out:
            for _ in range(lines - self.size):
                fields = fake_callback(self.rng, self.traffic)
                signature = compatibility_signature(SIGNING_KEY, self.url, fields.items())
                body = "&".join(f"{name}={quote_plus(value)}" for name, value in fields.items())
                out.write(f"{signature}\t{body}\n")
        self.size = lines


# -- wrk ---------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    responses: int
    duration_s: float
    sent: int
    non200: int
    wraps: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    other_cores: float = 0.0  # CPU used by other processes on the machine during the run
    target_per_s: float = 0.0  # paced runs only
    rows_added: int | None = None
    wal_mib: float | None = None  # size of the database's WAL file after the run

    @property
    def ok_per_s(self) -> float:
        return (self.responses - self.non200) / self.duration_s

    @property
    def ok(self) -> int:
        return self.responses - self.non200

    def problems(self) -> list[str]:
        found = []
        if self.non200:
            found.append(f"{self.non200} non-200")
        if self.socket_errors:
            found.append(f"{self.socket_errors} socket errors/timeouts")
        if self.wraps:
            found.append(f"requests repeated ({self.wraps} wraps)")
        if self.other_cores > BUSY_CORES:
            found.append(f"other processes used {self.other_cores:.0%} of a core")
        return found


# -- CPU accounting: is anything else running on the machine? ----------------------------------

BUSY_CORES = 0.05  # other processes using more than this (in cores) during a run flag it
RETRIES = 2  # a flagged measured run is repeated (new callbacks, same server) up to this often
TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot."""
    user, nice, system = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
    return (int(user) + int(nice) + int(system)) / TICK  # not irq/softirq: loopback traffic


def processes() -> dict[int, tuple[str, int, float]]:
    """Every process: pid -> (name, parent pid, CPU s of it and of its reaped children)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except OSError:  # exited meanwhile
            continue
        fields = rest.split()
        # utime + stime (all threads) + cutime + cstime: a worker that exits moves to its parent
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
        found[int(entry.name)] = (name, int(fields[1]), cpu)
    return found


def server_cpu_s(pid: int, postgres: bool) -> float:
    """CPU s of the server's process tree, and of every PostgreSQL process if ``postgres``."""
    table = processes()
    ours, grew = {pid}, True
    if postgres:
        ours |= {p for p, (name, _, _) in table.items() if name == "postgres"}
    while grew:
        more = {p for p, (_, parent, _) in table.items() if parent in ours} - ours
        ours |= more
        grew = bool(more)
    return sum(table[p][2] for p in ours if p in table)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until_quiet(limit_s: float = 180) -> None:
    """Wait (up to ``limit_s``) until the machine is idle between runs: nothing else busy."""
    deadline = time.monotonic() + limit_s
    while True:
        before = machine_busy_s()
        time.sleep(1)
        busy = machine_busy_s() - before
        if busy < BUSY_CORES or time.monotonic() > deadline:
            return
        console.print(f"  (machine busy: {busy:.0%} of a core used by others; waiting)")


def run_wrk(
    url: str,
    pool: Pool,
    first: int,
    count: int,
    seconds: float,
    connections: int,
    log: Path,
    rate: float = 0.0,
    server_pid: int | None = None,
    postgres: bool = False,
) -> WrkRun:
    pool.ensure(first + count - 1)
    wait_until_quiet()
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    argv += ["-s", str(LUA), url, "--", str(pool.path), str(first), str(count)]
    argv.append(f"{rate:.1f}")
    began, machine, ours = time.monotonic(), machine_busy_s(), children_cpu_s()
    server = server_cpu_s(server_pid, postgres) if server_pid else 0.0
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    server = server_cpu_s(server_pid, postgres) - server if server_pid else 0.0
    ours = children_cpu_s() - ours + server
    other_cores = (machine_busy_s() - machine - ours) / (time.monotonic() - began)
    log.write_text(" ".join(argv) + "\n" + done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("JSON ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed (exit {done.returncode}), see {log}:\n{done.stderr}")
    data = json.loads(lines[-1].removeprefix("JSON "))
    return WrkRun(
        responses=data["responses"],
        duration_s=data["duration_us"] / 1e6,
        sent=data["sent"],
        non200=data["non200"],
        wraps=data["wraps"],
        socket_errors=sum(data[k] for k in ("connect", "read", "write", "timeout")),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        other_cores=max(0.0, other_cores),
    )


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without any CALLPULSE_* setting, plus ``settings`` (prefix added)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPULSE_")}
    env.update({f"CALLPULSE_{k.upper()}": v for k, v in settings.items()})
    return env


def start_server(
    variant: str, port: int, workdir: Path, database_url: str
) -> subprocess.Popen[bytes]:
    settings = {
        "database_url": database_url,
        "signing_keys": SIGNING_KEY,
        "spool_dir": str(workdir / "spool"),
    }
    if variant == "naive":
        settings["writer_max_batch"] = "1"  # one commit (and fsync) per callback
    if variant == "bare":
        argv = [sys.executable, str(BARE_APP), "--port", str(port)]
    else:
        argv = [sys.executable, "-m", "callpulse", "serve", "--port", str(port)]
        argv += ["--workers", str(WORKERS.get(variant, 1))]
    log = (workdir / "server.log").open("ab")
    proc = subprocess.Popen(
        argv, env=clean_env(**settings), cwd=workdir, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{variant} server exited:\n{(workdir / 'server.log').read_text()}")
        try:
            health = f"http://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(health, timeout=1) as answer:
                if answer.status == 200:
                    return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    stop_server(proc)
    raise SystemExit(f"{variant} server did not answer /healthz within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
        except sqlite3.OperationalError:  # no schema yet
            return 0


def settled_rows(count: Callable[[], int]) -> int:
    """The row count once requests still in flight when wrk stopped have been written."""
    rows = count()
    for _ in range(20):
        time.sleep(0.25)
        again = count()
        if again == rows:
            break
        rows = again
    return rows


class SqliteStorage:
    """A server's SQLite file in its work directory (optionally a copy of ``source``)."""

    postgres = False

    def __init__(self, workdir: Path, source: Path | None) -> None:
        self.db = workdir / "callpulse.db"
        self.url = f"sqlite:///{self.db}"
        if source is not None:
            shutil.copyfile(source, self.db)
        os.sync()  # no write-back of the copy competing with the server's fsyncs

    def rows(self) -> int:
        return count_rows(self.db)

    def wal_mib(self) -> float | None:
        wal = self.db.with_name(self.db.name + "-wal")
        return wal.stat().st_size / 2**20 if wal.exists() else 0.0

    def drop(self) -> None:
        pass  # removed with the work directory


class PostgresStorage:
    """A fresh, empty schema in the --database server; `callpulse serve` migrates it."""

    postgres = True

    def __init__(self, database: str) -> None:
        self.database = database
        self.schema = f"bench_ingest_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        joiner = "&" if urlsplit(database).query else "?"
        self.url = f"{database}{joiner}options=-csearch_path%3D{self.schema}"

    def rows(self) -> int:
        query = sql.SQL("SELECT count(*) FROM {}.calls").format(sql.Identifier(self.schema))
        with psycopg.connect(self.database, autocommit=True) as conn:
            try:
                row = conn.execute(query).fetchone()
            except psycopg.errors.UndefinedTable:  # no schema yet
                return 0
        return int(row[0]) if row else 0

    def wal_mib(self) -> float | None:
        return None

    def drop(self) -> None:
        with psycopg.connect(self.database, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema)))


# -- the database with --rows calls ------------------------------------------------------------

# call_key: random 64-bit ints from SQLite's random() (same distribution as callpulse's blake2b
# call_key); call_sid: random UUID-v4-shaped text; started_at: spread evenly over the past 400
# days with jitter, in insertion (id) order as real ingest would leave it.
_FILL_SQL = """
WITH RECURSIVE seq(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM seq WHERE n < :last)
INSERT INTO calls (call_key, account_sid, call_sid, from_number, to_number, started_at, status,
                   duration_s, mos, extra, received_at, source, fingerprint, version)
SELECT random(), :account,
       printf('%08x-%04x-4%03x-%04x-%012x', random() & 4294967295, random() & 65535,
              random() & 4095, (random() & 16383) | 32768, random() & 281474976710655),
       printf('+1%d%09d', 2 + abs(random() % 8), abs(random() % 1000000000)),
       printf('+1%d%09d', 2 + abs(random() % 8), abs(random() % 1000000000)),
       :start + (n - 1) * :span / :rows + abs(random() % (:span / :rows)),
       CASE WHEN n % 10 = 7 THEN 'failed' ELSE 'completed' END,
       CASE WHEN n % 10 = 7 THEN 0 ELSE 5 + abs(random() % 1796) END,
       round(1.0 + abs(random() % 4001) / 1000.0, 2),
       :extra,
       :start + (n - 1) * :span / :rows + 3600000,
       'callback', random(), 1
FROM seq
"""


def schema_tag() -> str:
    # The SQL and the names of the steps that are functions (whose repr holds an address).
    steps = [[s if isinstance(s, str) else s.__qualname__ for s in m.statements]
             for m in SQLITE_MIGRATIONS]  # fmt: skip
    return hashlib.sha256(repr(steps).encode()).hexdigest()[:10]


def build_database(rows: int) -> tuple[Path, float]:
    """The cached database holding ``rows`` calls (built if missing) and its build time in s."""
    path = OUT / f"calls-{rows}-{schema_tag()}.db"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        built = json.loads(meta.read_text())
        console.print(f"using cached {path.name} (built in {built['seconds']:.1f} s)")
        return path, float(built["seconds"])
    tmp = path.with_suffix(".building")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "callpulse", "db", "upgrade"],
        env=clean_env(database_url=f"sqlite:///{tmp}"),
        check=True,
        capture_output=True,
    )
    chunk = 200_000
    now_ms = int(time.time() * 1000)
    span = 400 * 86_400_000
    params = {
        "account": ACCOUNT_SID,
        "start": now_ms - span,
        "span": span,
        "rows": rows,
        "extra": json.dumps(EXTRA, sort_keys=True),
    }
    with closing(sqlite3.connect(tmp, isolation_level=None)) as conn:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
            conn.execute(f"PRAGMA {pragma}")
        # Indexes are dropped and re-created from their own SQL: a sort beats 10M random inserts.
        # So are the rollup triggers (without the caller index each insert's repeat check would
        # scan the table): the product's rebuild then sets repeat flags and fills the rollups.
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' "
            "AND sql IS NOT NULL"
        ).fetchall()
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'calls'"
        ).fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for name, _sql in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"inserting {rows:,} calls", total=rows)
            for first in range(1, rows + 1, chunk):
                last = min(rows, first + chunk - 1)
                conn.execute("BEGIN")
                conn.execute(_FILL_SQL, {**params, "first": first, "last": last})
                conn.execute("COMMIT")
                progress.update(task, completed=last)
            inserted_s = time.monotonic() - began
            task = progress.add_task("re-creating indexes", total=len(indexes))
            for _name, sql in indexes:
                conn.execute(sql)
                progress.advance(task)
            rebuild = rebuild_statements(SQLITE)
            task = progress.add_task("repeat flags, rollups", total=len(rebuild) + len(triggers))
            conn.execute("BEGIN")
            for statement in rebuild:
                conn.execute(statement)
                progress.advance(task)
            for _name, sql in triggers:
                conn.execute(sql)
                progress.advance(task)
            conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # as `callpulse db upgrade` left it
    os.sync()
    seconds = time.monotonic() - began
    tmp.rename(path)
    meta.write_text(json.dumps({"rows": rows, "seconds": seconds, "insert_s": inserted_s}))
    size = path.stat().st_size / 2**30
    console.print(
        f"built {rows:,} calls in {seconds:.1f} s (rows {inserted_s:.1f} s, indexes and rollups "
        f"{seconds - inserted_s:.1f} s), {size:.2f} GiB: {path}"
    )
    return path, seconds


# -- the benchmark -----------------------------------------------------------------------------


@dataclass
class Measured:
    state: str
    variant: str
    full: WrkRun
    paced: WrkRun


def rows_check(run: WrkRun) -> tuple[bool, str]:
    """Every 200 must be a new row; requests unanswered when wrk stopped may add rows too."""
    if run.rows_added is None:
        return True, "-"
    unanswered = max(0, run.sent - run.responses)
    ok = run.ok <= run.rows_added <= run.ok + unanswered
    text = f"rows +{run.rows_added:,} / 200s {run.ok:,}"
    if run.rows_added != run.ok:
        text += f" ({unanswered} unanswered at the cut-off)"
    return ok, text + (" ok" if ok else " MISMATCH")


def measure(
    variant: str,
    state: str,
    source_db: Path | None,
    port: int,
    pool: Pool,
    args: argparse.Namespace,
    half_rate: float | None,
    logs: Path,
) -> Measured:
    """SQLite: one server run, a warm-up, full speed, then paced (``half_rate`` or its own half)."""
    plan = [("full", None), ("paced", half_rate)]
    full, paced = serve_and_run(variant, state, source_db, port, pool, args, logs, plan)
    return Measured(state, variant, full, paced)


def serve_and_run(
    variant: str,
    state: str,
    source_db: Path | None,
    port: int,
    pool: Pool,
    args: argparse.Namespace,
    logs: Path,
    plan: list[tuple[str, float | None]],
) -> list[WrkRun]:
    """One server run on its own database: a warm-up, then the runs of ``plan`` in order.

    ``plan`` holds (mode, rate): rate None is full speed for "full" and, for "paced", half of
    the preceding full-speed run's rate.
    """
    workdir = OUT / "run"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    storage: SqliteStorage | PostgresStorage
    if args.database:
        storage = PostgresStorage(args.database)
    else:
        storage = SqliteStorage(workdir, source_db if variant != "bare" else None)
    url = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
    results: list[WrkRun] = []
    try:
        proc = start_server(variant, port, workdir, storage.url)
        try:
            first = 1

            def run(mode: str, seconds: float, lines: int, rate: float = 0.0) -> WrkRun:
                nonlocal first
                for attempt in range(1, RETRIES + 2):
                    before = storage.rows() if variant != "bare" else 0
                    log = logs / f"{state.split()[0]}-{variant}-{mode}-{attempt}.txt"
                    result = run_wrk(
                        url,
                        pool,
                        first,
                        lines,
                        seconds,
                        args.connections,
                        log,
                        rate,
                        proc.pid,
                        storage.postgres,
                    )
                    first += lines  # a retry sends new callbacks too
                    if variant != "bare":
                        result.rows_added = settled_rows(storage.rows) - before
                        result.wal_mib = storage.wal_mib()
                    ok, check = rows_check(result)
                    flags = ", ".join(result.problems() + ([] if ok else ["row count mismatch"]))
                    console.print(
                        f"  {state:>12} {variant:>12} {mode:>6}: "
                        f"{result.ok_per_s:8,.0f} callbacks/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  {check}  "
                        f"others {result.other_cores:.0%} of a core"
                        + (f"  WAL {result.wal_mib:,.0f} MiB" if result.wal_mib is not None else "")
                        + (f"  [bold red]FLAGGED: {flags}[/]" if flags else "")
                    )
                    if mode == "warmup" or result.other_cores <= BUSY_CORES or attempt > RETRIES:
                        break
                    console.print("  machine was busy during the run: running it again")
                return result

            run("warmup", args.warmup, int(CEILING_PER_S * args.warmup * 1.5))
            for mode, rate in plan:
                if mode == "full":
                    lines = int(CEILING_PER_S * args.duration * 1.5)
                    results.append(run("full", args.duration, lines))
                    continue
                target = rate if rate is not None else results[-1].ok_per_s / 2
                lines = int(target * args.duration * 1.5) + args.connections
                paced = run("paced", args.duration, lines, target)
                paced.target_per_s = target
                results.append(paced)
        finally:
            stop_server(proc)
    finally:
        storage.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def machine(database: str | None) -> str:
    memory = next(
        line.split()[1]
        for line in subprocess.check_output(["free", "-g"], text=True).splitlines()
        if line.startswith("Mem:")
    )
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split()[1]
    store = f"SQLite {sqlite3.sqlite_version}"
    if database:
        store = postgres_about(database)
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {store}, wrk {wrk}, "
        f"fdatasync of 4 KiB in {OUT.name}/: p50 {fsync_ms(50):.2f} ms, p99 {fsync_ms(99):.2f} ms"
    )


def postgres_about(database: str) -> str:
    """The PostgreSQL server's version and the settings that decide what a commit costs."""
    shown: dict[str, str] = {}
    with psycopg.connect(database, autocommit=True) as conn:
        for name in ("server_version", "synchronous_commit", "fsync", "wal_sync_method"):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            shown[name] = str(row[0]) if row else "?"
    version = shown.pop("server_version").split()[0]
    settings = ", ".join(f"{name} {value}" for name, value in shown.items())
    return f"PostgreSQL {version} at {urlsplit(database).hostname} ({settings})"


def fsync_ms(percentile: int) -> float:
    """What one commit's flush costs on the disk under bench/out (200 appends + fdatasync)."""
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
    return sorted(samples)[len(samples) * percentile // 100 - 1]


def source_version() -> str:
    """The commit the servers ran, and whether src/ differed from it."""
    repo = BENCH.parent
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    return f"{head or 'unknown'}{' + uncommitted src changes' if dirty else ''}"


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    if met:
        return "[green]met[/]"
    return f"[red]missed[/] ({value / target:.0%} of target)"


def report(results: list[Measured], args: argparse.Namespace) -> None:
    table = Table(title=f"ingest: wrk -t1 -c{args.connections} -d{args.duration:g}s, 200s only")
    for column in ("state", "server", "callbacks/s", "p50 ms", "p99 ms", "rows check"):
        table.add_column(column, justify="right")
    for column in ("paced target/s", "achieved/s", "p50 ms", "p99 ms", "WAL MiB", "flags"):
        table.add_column(column, justify="right")
    for m in results:
        flags = m.full.problems() + m.paced.problems()
        checks_ok = rows_check(m.full)[0] and rows_check(m.paced)[0]
        table.add_row(
            m.state,
            m.variant,
            f"{m.full.ok_per_s:,.0f}",
            f"{m.full.p50_ms:.2f}",
            f"{m.full.p99_ms:.2f}",
            "ok" if checks_ok else "[red]MISMATCH[/]",
            f"{m.paced.target_per_s:,.0f}",
            f"{m.paced.ok_per_s:,.0f}",
            f"{m.paced.p50_ms:.2f}",
            f"{m.paced.p99_ms:.2f}",
            "-" if m.paced.wal_mib is None else f"{m.paced.wal_mib:,.0f}",
            "; ".join(flags) or "-",
        )
    console.print(table)
    if args.database:
        report_postgres(results)
        return
    for state in dict.fromkeys(m.state for m in results):
        by = {m.variant: m for m in results if m.state == state}
        cp, bare, naive = by["callpulse"], by["bare"], by["naive"]
        vs_bare = cp.full.ok_per_s / bare.full.ok_per_s
        vs_naive = cp.full.ok_per_s / naive.full.ok_per_s
        console.print(
            f"{state}: callpulse/bare {vs_bare:.2f} (target >= 0.5: {verdict(vs_bare, 0.5)}); "
            f"callpulse/naive {vs_naive:.2f} (target >= 3: {verdict(vs_naive, 3)}); "
            f"callpulse p99 at {cp.paced.ok_per_s:,.0f}/s {cp.paced.p99_ms:.2f} ms "
            f"(target <= 10 ms: {verdict(cp.paced.p99_ms, 10, higher_is_better=False)})"
        )


def report_postgres(results: list[Measured]) -> None:
    """The PostgreSQL targets: the best worker count against naive, and its p99 at half rate."""
    by = {m.variant: m for m in results}
    best = max((by["callpulse-w1"], by["callpulse-w2"]), key=lambda m: m.full.ok_per_s)
    vs_naive = best.full.ok_per_s / by["naive"].full.ok_per_s
    console.print(
        f"best callpulse: {best.variant}, {best.full.ok_per_s:,.0f} callbacks/s "
        f"(target >= 15,000: {verdict(best.full.ok_per_s, 15_000)}); "
        f"{best.variant}/naive {vs_naive:.2f} (target >= 2: {verdict(vs_naive, 2)})"
    )
    for variant in ("callpulse-w1", "callpulse-w2"):
        paced = by[variant].paced
        console.print(
            f"{variant} p99 at {paced.ok_per_s:,.0f}/s (half of the best rate) "
            f"{paced.p99_ms:.2f} ms "
            f"(target <= 15 ms: {verdict(paced.p99_ms, 15, higher_is_better=False)})"
        )


def run_postgres(port: int, pool: Pool, args: argparse.Namespace, logs: Path) -> list[Measured]:
    """Every server at full speed, then every server again paced at half of the best callpulse
    rate; each server run on a fresh schema."""
    full = {
        variant: serve_and_run(variant, "empty", None, port, pool, args, logs, [("full", None)])[0]
        for variant in PG_VARIANTS
    }
    half_rate = max(full["callpulse-w1"].ok_per_s, full["callpulse-w2"].ok_per_s) / 2
    plan: list[tuple[str, float | None]] = [("paced", half_rate)]
    return [
        Measured(
            "empty",
            variant,
            full[variant],
            serve_and_run(variant, "empty", None, port, pool, args, logs, plan)[0],
        )
        for variant in PG_VARIANTS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/ingest", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--rows", type=int, default=10_000_000, help="calls in the full state")
    parser.add_argument("--skip-10m", action="store_true", help="only the empty database")
    parser.add_argument(
        "--shape",
        choices=("random", "call-center"),
        default="random",
        help="traffic: every call from and to numbers of its own, or a call center's\n"
        "(4 called numbers, 10,000 callers, calls starting 10 a second)",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="measure on PostgreSQL instead (postgresql://...): 1 and 2 workers and naive,\n"
        "a fresh schema per server run, empty state only",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest: wrk is not installed; install it with: apt-get install -y wrk")
    if args.database and not args.database.startswith(("postgresql://", "postgres://")):
        sys.exit("bench/ingest: --database takes a postgresql:// URL")

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = OUT / "logs" / stamp
    logs.mkdir(parents=True)
    about, version = machine(args.database), source_version()
    console.print(f"machine: {about}\ncallpulse: commit {version}")
    states: list[tuple[str, Path | None]] = [("empty", None)]
    build_s = None
    if not args.skip_10m and not args.database:
        big, build_s = build_database(args.rows)
        states.append((f"{args.rows / 1e6:g}M rows", big))
    port = free_port()
    pool = Pool(OUT / "requests.tsv", f"http://127.0.0.1:{port}{CALLBACK_PATH}", args.shape)
    console.print(
        f"wrk -t1 -c{args.connections}, {args.warmup:g} s warm-up + {args.duration:g} s full speed "
        f"+ {args.duration:g} s paced per server; port {port}; wrk output in {logs}"
    )
    results: list[Measured] = []
    try:
        if args.database:
            results = run_postgres(port, pool, args, logs)
        else:
            for state, source in states:
                half_rate = None
                for variant in VARIANTS:
                    measured = measure(variant, state, source, port, pool, args, half_rate, logs)
                    if variant == "callpulse":
                        half_rate = measured.full.ok_per_s / 2
                    results.append(measured)
    finally:
        pool.path.unlink(missing_ok=True)  # signed for this run's port only
    report(results, args)
    saved = OUT / f"results-{stamp}.json"
    saved.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": about,
                "commit": version,
                "build_seconds": build_s,
                "results": [
                    {
                        "state": m.state,
                        "variant": m.variant,
                        "full": asdict(m.full) | {"ok_per_s": m.full.ok_per_s},
                        "paced": asdict(m.paced) | {"ok_per_s": m.paced.ok_per_s},
                    }
                    for m in results
                ],
            },
            indent=2,
        )
    )
    console.print(f"saved {saved}")


if __name__ == "__main__":
    main()
