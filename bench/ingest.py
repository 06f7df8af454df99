"""Ingest benchmark: wrk against a bare Starlette app, naive callpulse and callpulse.

Each server runs as its own process on the same port, one after another, first on an empty
database and then on a copy of a cached database holding --rows calls. Per server: a warm-up, a
run at full speed, and a run paced at half of callpulse's full-speed rate (in that state).

Usage: bench/ingest [--duration 10] [--connections 64] [--rows 10000000] [--skip-10m]
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
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

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
from callpulse.store.migrations import SQLITE_MIGRATIONS

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
LUA = BENCH / "callbacks.lua"
BARE_APP = BENCH / "bare_app.py"
CALLBACK_PATH = "/callbacks/call-status"
SIGNING_KEY = "PSKbench-signing-key-0123456789"
ACCOUNT_SID = "b3877c40-da60-4998-90ad-b792e98472af"
EXTRA = {"ApiVersion": "2010-04-01", "Direction": "inbound"}  # sent by real senders; kept as-is
# Sizes the request pool of a full-speed run (x1.5): above any one-process Python server here.
CEILING_PER_S = 12_000
VARIANTS = ("callpulse", "naive", "bare")  # callpulse first: its rate sets the paced runs' rate
console = Console()


# -- signed callbacks --------------------------------------------------------------------------


def e164(rng: random.Random) -> str:
    return f"+1{rng.randint(2, 9)}{rng.randint(0, 99):02d}{rng.randint(2, 9)}{rng.randint(0, 999999):06d}"


def fake_callback(rng: random.Random, now: datetime) -> dict[str, str]:
    completed = rng.random() < 0.9
    started = now - timedelta(seconds=rng.uniform(0, 300))
    return {
        "CallSid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "AccountSid": ACCOUNT_SID,
        "From": e164(rng),
        "To": e164(rng),
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

    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url, self.size = path, url, 0
        self.rng = random.Random()
        path.write_text("")

    def ensure(self, lines: int) -> None:
        if lines <= self.size:
            return
        now = datetime.now(UTC)
        with self.path.open("a") as out:
            for _ in range(lines - self.size):
                fields = fake_callback(self.rng, now)
                signature = compatibility_signature(SIGNING_KEY, self.url, fields.items())
                out.write(f"{signature}\t{urlencode(fields)}\n")
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
    target_per_s: float = 0.0  # paced runs only
    rows_added: int | None = None

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
        return found


def run_wrk(
    url: str,
    pool: Pool,
    first: int,
    count: int,
    seconds: float,
    connections: int,
    log: Path,
    mean_delay_ms: float = 0.0,
) -> WrkRun:
    pool.ensure(first + count - 1)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    argv += ["-s", str(LUA), url, "--", str(pool.path), str(first), str(count)]
    argv.append(f"{mean_delay_ms:.3f}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
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


def start_server(variant: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    settings = {
        "database_url": f"sqlite:///{workdir / 'callpulse.db'}",
        "signing_keys": SIGNING_KEY,
        "spool_dir": str(workdir / "spool"),
    }
    if variant == "naive":
        settings["writer_max_batch"] = "1"  # one commit (and fsync) per callback
    if variant == "bare":
        argv = [sys.executable, str(BARE_APP), "--port", str(port)]
    else:
        argv = [sys.executable, "-m", "callpulse", "serve", "--port", str(port)]
    log = (workdir / "server.log").open("ab")
    proc = subprocess.Popen(
        argv, env=clean_env(**settings), cwd=workdir, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{variant} server exited:\n{(workdir / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:  # noqa: S310
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


def settled_rows(db: Path) -> int:
    """The row count once requests still in flight when wrk stopped have been written."""
    rows = count_rows(db)
    for _ in range(20):
        time.sleep(0.25)
        again = count_rows(db)
        if again == rows:
            break
        rows = again
    return rows


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
    return hashlib.sha256(repr(SQLITE_MIGRATIONS).encode()).hexdigest()[:10]


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
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' "
            "AND sql IS NOT NULL"
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
        conn.execute("PRAGMA journal_mode=WAL")  # as `callpulse db upgrade` left it
    os.sync()
    seconds = time.monotonic() - began
    tmp.rename(path)
    meta.write_text(json.dumps({"rows": rows, "seconds": seconds, "insert_s": inserted_s}))
    size = path.stat().st_size / 2**30
    console.print(
        f"built {rows:,} calls in {seconds:.1f} s (rows {inserted_s:.1f} s, indexes "
        f"{seconds - inserted_s:.1f} s), {size:.2f} GiB: {path}"
    )
    return path, seconds
