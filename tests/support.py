"""Shared test helpers: valid callbacks, signing, and a real `callpulse serve` process."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from callpulse.config import Settings
from callpulse.signature import compatibility_signature
from callpulse.store import Store, open_store

T = TypeVar("T")
SIGNING_KEY = "PSKtest-signing-key-0123456789"
ACCOUNT_SID = "b3877c40-da60-4998-90ad-b792e98472af"
EXAMPLE_PAYLOAD = {
    "CallSid": "b3877c40-da60-4998-90ad-b792e98472ca",
    "AccountSid": "b3877c40-da60-4998-90ad-b792e98472af",
    "From": "+15551234567",
    "To": "+18005559876",
    "Timestamp": "Thu, 04 Apr 2024 18:32:15 +0000",
    "CallStatus": "completed",
    "CallDuration": "142",
    "AudioInMos": "4.5",
}


def callback_fields(**overrides: str) -> dict[str, str]:
    """A valid callback with a fresh CallSid; keyword arguments replace fields."""
    fields = dict(EXAMPLE_PAYLOAD, CallSid=str(uuid.uuid4()))
    fields.update(overrides)
    return fields


def sign(url: str, fields: Mapping[str, str], key: str = SIGNING_KEY) -> str:
    return compatibility_signature(key, url, fields.items())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`callpulse serve` as a child process on a free loopback port.

    It stores into ``database_url`` (any URL ``callpulse`` takes), by default the SQLite file
    ``callpulse.db`` in ``workdir``; the spool is always ``workdir/spool``.
    """

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        database_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = {
            **os.environ,
            "CALLPULSE_DATABASE_URL": database_url or f"sqlite:///{workdir / 'callpulse.db'}",
            "CALLPULSE_SPOOL_DIR": str(workdir / "spool"),
            "CALLPULSE_SIGNING_KEYS": SIGNING_KEY,
            **(env or {}),
        }
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"serve-{self.port}.log"

    @property
    def database_url(self) -> str:
        """The database the server stores into (``env`` may have overridden the default)."""
        return self.env["CALLPULSE_DATABASE_URL"]

    @property
    def db_path(self) -> Path:
        """The SQLite file, for tests about SQLite itself; an error on any other backend."""
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError(f"not an SQLite server: {self.database_url}")
        return Path(self.database_url.removeprefix("sqlite:///"))

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A `Store` on the server's database, for assertions; closed afterwards."""
        backend = open_store(Settings(database_url=self.database_url))
        try:
            yield backend
        finally:
            backend.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def callback_url(self) -> str:
        return f"{self.base_url}/callbacks/call-status"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callpulse", "serve", "--port", str(self.port), *self.args],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # a deadline, not a wait: generous, since two test workers may share a busy machine
        wait_until_healthy(self.proc, self.base_url, self.log_path, timeout)
        return self

    def stop(self) -> None:
        terminate(self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown code runs
        self.proc.wait()

    def post(
        self,
        fields: Mapping[str, str],
        *,
        key: str = SIGNING_KEY,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        all_headers = {"X-SignalWire-Signature": sign(self.callback_url, fields, key)}
        all_headers.update(headers or {})
        return (client or httpx).post(self.callback_url, data=fields, headers=all_headers)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command on the server's database (export, quarantine, report, alerts), run here."""
        return cli_here(*args, env=self.env, cwd=self.workdir, check=check)


def wait_until_healthy(
    proc: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float
) -> None:
    """Return once ``base_url/healthz`` answers 200; raise with the log if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"process did not start: {log_path.read_text()}")


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (a clean stop), then SIGKILL after 15 s."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


EMULATOR_API_TOKEN = "PTtest-api-token-0123456789"


class EmulatorProcess:
    """`callpulse emulate` as a child process on a free loopback port.

    Its default credentials are the test constants: project ``ACCOUNT_SID``, token
    ``EMULATOR_API_TOKEN``, and ``SIGNING_KEY``, which a default ``ServerProcess`` accepts.
    """

    def __init__(
        self,
        workdir: Path,
        project_id: str = ACCOUNT_SID,
        api_token: str = EMULATOR_API_TOKEN,
        signing_key: str = SIGNING_KEY,
        args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.project_id = project_id
        self.api_token = api_token
        self.signing_key = signing_key
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"emulate-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/laml/2010-04-01"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.project_id, self.api_token)

    def start(self, timeout: float = 60.0) -> EmulatorProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "callpulse",
                "emulate",
                "--port",
                str(self.port),
                "--project-id",
                self.project_id,
                "--api-token",
                self.api_token,
                "--signing-key",
                self.signing_key,
                *self.args,
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(self.proc, self.base_url, self.log_path, timeout)
        return self

    def stop(self) -> None:
        terminate(self.proc)


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "callpulse", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return checked(result, check)


def cli_here(
    *args: str, env: Mapping[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``callpulse ARGS`` through the command's own ``main`` in this process, in the environment
    and folder ``run_cli`` would give a child: the same standard output, standard error and exit
    status, without a second of interpreter start-up per call. For commands that read or change
    a database and end; what runs on (``serve``, ``demo``) or must be a process needs
    ``run_cli``."""
    from click.testing import CliRunner

    from callpulse.cli import main

    changes: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    changes.update(env)  # exactly ``env``, as a child would see it
    code = 0
    with contextlib.chdir(cwd), CliRunner().isolation(env=changes) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        result = subprocess.CompletedProcess(
            ["callpulse", *args], code, universal_newlines(out), universal_newlines(err)
        )
    return checked(result, check)


def universal_newlines(stream: io.BytesIO) -> str:
    """The text as ``subprocess.run(text=True)`` reads it: every line ends in \\n."""
    return stream.getvalue().decode().replace("\r\n", "\n").replace("\r", "\n")


def checked(
    result: subprocess.CompletedProcess[str], check: bool
) -> subprocess.CompletedProcess[str]:
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, result.args))} failed: {result.stderr}")
    return result


POSTGRES_URL = os.environ.get(
    "CALLPULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL; yields a database URL whose search_path is it."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


BACKENDS = ["sqlite", "postgres"]


@contextlib.contextmanager
def backend_database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh database on ``backend``: the file callpulse.db in ``workdir``, or a new schema on
    the test PostgreSQL (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'callpulse.db'}"
    elif backend == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


def until(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 20.0) -> T:
    """``read()`` once ``done`` holds for it: quarantine entries are written just after the
    answer to their request (rejections never wait on, nor hold up, the writer)."""
    deadline = time.monotonic() + timeout
    while not done(last := read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not there after {timeout} s: {last!r}"[:500])
        time.sleep(0.05)
    return last


def sql_rows(store: Store, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``query`` over the store's database on a connection of its own: tests look at
    tables directly, which the store itself never lets anyone do."""
    from callpulse.store.postgres import PostgresStore
    from callpulse.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        import sqlite3

        with contextlib.closing(sqlite3.connect(store.path)) as conn:
            return conn.execute(query, params).fetchall()
    assert isinstance(store, PostgresStore)
    import psycopg

    with psycopg.connect(store.url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(query, params).fetchall()


def sql_execute(store: Store, statement: str, params: Sequence[object] = ()) -> None:
    """Run and commit ``statement`` (the store's dialect) on a connection of its own."""
    from callpulse.store.postgres import PostgresStore
    from callpulse.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        import sqlite3

        with contextlib.closing(sqlite3.connect(store.path)) as conn, conn:
            conn.execute(statement, params)
        return
    assert isinstance(store, PostgresStore)
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(statement, params)


def compacted_from(store: Store, moment: datetime) -> None:
    """Put compacted_until of a store that holds no calls yet at ``moment`` (down to a whole
    minute), as if its database had been created then: calls that start after it reach the
    minute rollups only, until a compaction."""
    assert store.count_calls() == 0
    ms = int(moment.timestamp() * 1000)
    update = f"UPDATE rollup_state SET compacted_until = {store.dialect.param}"
    sql_execute(store, update, (ms - ms % 60_000,))
