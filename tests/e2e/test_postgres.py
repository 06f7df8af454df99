"""Many receiver processes on one PostgreSQL: exactly once across processes, and outages."""

from __future__ import annotations

import email.utils
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from callpulse.config import Settings
from callpulse.store import Store, open_store
from tests.store.test_rollups import assert_rollups_match
from tests.support import ServerProcess, callback_fields, postgres_schema, sign, sql_rows

pytestmark = pytest.mark.slow  # several `serve` processes and an outage: needs real processes

PG_VERSION = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = open_store(Settings(database_url=pg_url))
    yield store
    store.close()


def start(tmp_path: Path, name: str, url: str, *args: str) -> ServerProcess:
    workdir = tmp_path / name
    workdir.mkdir()
    return ServerProcess(workdir, env={"CALLPULSE_DATABASE_URL": url}, args=args).start()


def post(client: httpx.Client, server: ServerProcess, fields: dict[str, str]) -> int:
    signature = sign(server.callback_url, fields)
    response = client.post(
        server.callback_url, data=fields, headers={"X-SignalWire-Signature": signature}
    )
    return response.status_code


def drained(servers: list[ServerProcess]) -> None:
    """Wait until no server holds a spooled callback: a 200 may come from the spool (while the
    database is briefly unreachable), and the drainer stores it soon after."""
    deadline = time.monotonic() + 30
    while any(any((s.workdir / "spool").glob("*.jsonl")) for s in servers):
        assert time.monotonic() < deadline, "spooled callbacks were not drained"
        time.sleep(0.2)


def test_racing_retries_and_updates_across_processes_store_each_call_once(
    tmp_path: Path, pg_url: str, pg_store: Store
) -> None:
    servers = [start(tmp_path, "a", pg_url, "--workers", "2"), start(tmp_path, "b", pg_url)]
    try:
        retried = [callback_fields() for _ in range(150)]
        updated = [
            (first, dict(first, CallDuration="999", AudioInMos="3.1"))
            for first in (callback_fields(CallDuration="5") for _ in range(50))
        ]
        # every callback goes to every process at once; each update races its first version
        jobs = [(server, fields) for fields in retried for server in servers for _ in range(2)]
        jobs += [(servers[i % 2], v) for pair in updated for i, v in enumerate(pair)]
        with ThreadPoolExecutor(16) as pool, httpx.Client(timeout=10) as client:
            codes = list(pool.map(lambda job: post(client, *job), jobs))
        assert set(codes) == {200}
        drained(servers)
        assert pg_store.count_calls() == 200
        for fields in retried:
            stored = pg_store.get_call(fields["AccountSid"], fields["CallSid"])
            assert stored is not None and stored.version == 1
            assert pg_store.call_history(fields["AccountSid"], fields["CallSid"]) == []
        for first, _ in updated:
            stored = pg_store.get_call(first["AccountSid"], first["CallSid"])
            history = pg_store.call_history(first["AccountSid"], first["CallSid"])
            assert stored is not None and stored.version == 2 and len(history) == 1
            durations = {stored.record.duration_s, history[0].record.duration_s}
            assert durations == {5, 999}  # whichever won, the other is kept as history
    finally:
        for server in servers:
            server.stop()


def pg_ctl(action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", action, "-m", "fast"]
        if action == "stop"
        else ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_for_postgres(deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode != 0:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.2)


@pytest.mark.alone
def test_postgres_outage_spools_and_every_acknowledged_callback_arrives_once(
    tmp_path: Path, pg_url: str, pg_store: Store
) -> None:
    server = start(tmp_path, "outage", pg_url)
    acknowledged: list[str] = []
    answers: dict[int, int] = {}
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set() and len(answers) < 100_000:
                fields = callback_fields()
                code = post(client, server, fields)
                answers[code] = answers.get(code, 0) + 1
                if code == 200:
                    acknowledged.append(fields["CallSid"])
                    if len(acknowledged) % 7 == 0:  # some retries during the outage too
                        post(client, server, fields)

    sender = threading.Thread(target=load)
    sender.start()
    try:
        time.sleep(1)
        before_outage = len(acknowledged)
        pg_ctl("stop")
        try:
            deadline = time.monotonic() + 20
            while httpx.get(f"{server.base_url}/readyz", timeout=5).status_code != 503:
                assert time.monotonic() < deadline, "/readyz never reported the outage"
                time.sleep(0.1)
            during = len(acknowledged)
            time.sleep(2)
            assert len(acknowledged) > during, "callbacks were not acknowledged during the outage"
            assert any((server.workdir / "spool").glob("*.jsonl"))
        finally:
            pg_ctl("start")
            wait_for_postgres()
        time.sleep(1)
    finally:
        stop.set()
        sender.join()
    try:
        assert before_outage > 0
        assert set(answers) == {200}, answers
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.base_url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "/readyz did not recover"
            time.sleep(0.2)
        while pg_store.count_calls() < len(acknowledged):
            assert time.monotonic() < deadline, "spooled callbacks were not drained"
            time.sleep(0.2)
        assert pg_store.count_calls() == len(acknowledged)
        stored = {c.record.call_sid for c in pg_store.iter_calls()}
        assert stored == set(acknowledged)
        assert not any((server.workdir / "spool").glob("*.jsonl"))
    finally:
        server.stop()


def test_repeat_callers_are_counted_right_when_processes_race(
    tmp_path: Path, pg_url: str, pg_store: Store
) -> None:
    """One caller's calls, a minute apart, arrive at once at three processes: every call after
    the first is a repeat, whichever transaction commits first."""
    servers = [start(tmp_path, "a", pg_url, "--workers", "2"), start(tmp_path, "b", pg_url)]
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    try:
        for round_ in range(3):
            calls = [
                callback_fields(
                    From=f"+1415555{round_:04d}",
                    Timestamp=email.utils.format_datetime(base + timedelta(minutes=n)),
                )
                for n in range(40)
            ]
            random.Random(round_).shuffle(calls)
            jobs = [(servers[n % 2], fields) for n, fields in enumerate(calls)]
            with ThreadPoolExecutor(16) as pool, httpx.Client(timeout=10) as client:
                assert set(pool.map(lambda job: post(client, *job), jobs)) == {200}
        drained(servers)
        assert pg_store.count_calls() == 120
        (repeats,) = sql_rows(pg_store, "SELECT sum(repeats) FROM rollup_day_total")[0]
        assert repeats == 3 * 39
        assert_rollups_match(pg_store)
    finally:
        for server in servers:
            server.stop()
