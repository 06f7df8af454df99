"""`serve` on a database at the first schema: it answers at once, spools every callback while
the migrations wait (the test holds SQLite's write lock) and run, then drains the spool."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from callpulse.callback import CallRecord
from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.migrations import SQLITE_MIGRATIONS
from tests.e2e.test_outage import BUSY, call_counts, result, spool_files, wait_until, write_lock
from tests.store.test_upgrade import first_schema
from tests.support import ServerProcess, callback_fields

TOKEN = "api-token-for-the-upgrade-test"


@pytest.mark.slow
def test_serve_takes_callbacks_while_migrating_and_stores_each_once(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={**BUSY, "CALLPULSE_API_TOKEN": TOKEN})
    old = CallRecord("AC1", "CA-old", "+14155550100", "+18005550001",
                     datetime(2026, 5, 1, tzinfo=UTC), "completed", 60, 4.1)  # fmt: skip
    store = open_store(Settings(database_url=server.database_url))
    first_schema(store, [old])
    store.close()

    calls = [callback_fields(CallDuration=str(n)) for n in range(30)]
    with write_lock(server.db_path):  # the migration cannot begin until this is released
        server.start()
        try:
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda f: result(server.post(f)), calls))
            assert answers == ["spooled"] * len(calls)
            assert result(server.post(calls[0])) == "spooled"  # a retry: stored once all the same
            ready = httpx.get(f"{server.base_url}/readyz", timeout=5)
            assert ready.status_code == 503
            assert ready.json()["status"] == "migrating"
            assert ready.json()["spool_depth"] >= len(calls)
            api = httpx.get(
                f"{server.base_url}/api/v1/summary",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=5,
            )
            assert api.status_code == 503
            assert "being migrated" in api.json()["error"]
            assert spool_files(server)
        except BaseException:
            server.stop()
            raise
    try:
        wait_until(
            lambda: httpx.get(f"{server.base_url}/readyz", timeout=5).status_code == 200,
            timeout=60,
            what="/readyz 200 once the migrations are done and the spool drained",
        )
        wait_until(lambda: not spool_files(server), timeout=10, what="spool drained")
        assert call_counts(server.db_path) == {"CA-old": 1, **{f["CallSid"]: 1 for f in calls}}
        with closing(sqlite3.connect(server.db_path)) as conn:
            applied = [name for (name,) in conn.execute("SELECT name FROM migrations")]
            (rolled_up,) = conn.execute("SELECT sum(calls) FROM rollup_day_total").fetchone()
        assert sorted(applied) == [m.name for m in SQLITE_MIGRATIONS]
        assert rolled_up == len(calls) + 1
        assert result(server.post(callback_fields())) == "inserted"  # straight in again
        log = server.log_path.read_text()
        assert f"schema: migrating, {len(SQLITE_MIGRATIONS) - 1} pending" in log
        assert "schema: done in" in log
    finally:
        server.stop()
