"""Database outage: the test holds SQLite's write lock; callbacks go to the spool, then drain.

The lock is taken the way any other writer would (WAL, ``BEGIN IMMEDIATE``) and held past
CALLPULSE_BUSY_TIMEOUT_MS, so the server's writes fail with "database is locked".
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ServerProcess, callback_fields, sign

pytestmark = pytest.mark.slow  # database outages under a `serve` process: needs real processes

BUSY = {"CALLPULSE_BUSY_TIMEOUT_MS": "200"}


@contextmanager
def write_lock(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=5)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def spool_files(server: ServerProcess) -> list[Path]:
    spool = server.workdir / "spool"
    return sorted(spool.glob("*.jsonl")) if spool.is_dir() else []


def call_counts(db_path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db_path, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT call_sid, count(*) FROM calls GROUP BY account_sid, call_sid"
        ).fetchall()
    return dict(rows)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def ready_status(server: ServerProcess) -> int:
    return httpx.get(f"{server.base_url}/readyz", timeout=5).status_code


def result(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return str(data["result"])


def export(server: ServerProcess) -> dict[str, dict[str, Any]]:
    lines = server.cli("export").stdout.splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    by_sid = {row["call_sid"]: row for row in rows}
    assert len(by_sid) == len(rows)
    return by_sid


def test_locked_database_spools_then_drains_exactly_once(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env=BUSY).start()
    try:
        known = callback_fields()
        assert result(server.post(known)) == "inserted"
        assert ready_status(server) == 200

        outage_calls = [callback_fields(CallDuration=str(n)) for n in range(24)]
        changed = dict(known, CallDuration="999", AudioInMos="3.2")
        with write_lock(server.db_path):
            started = time.monotonic()
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda f: result(server.post(f)), outage_calls))
            assert answers == ["spooled"] * len(outage_calls)
            # Retries during the outage are spooled too; the drain must still store them once.
            assert result(server.post(outage_calls[0])) == "spooled"
            assert result(server.post(known)) == "spooled"
            assert result(server.post(changed)) == "spooled"  # an update, applied on drain
            # A rejection is still answered at once; its quarantine entry waits in the spool.
            refused = server.post(callback_fields(), key="PSKnot-the-key")
            assert refused.status_code == 403
            assert time.monotonic() - started < 5, "spooling must not wait on the database"

            ready = httpx.get(f"{server.base_url}/readyz", timeout=5)
            assert ready.status_code == 503, ready.text
            assert spool_files(server), "no spool file while the database is locked"
            assert call_counts(server.db_path) == {known["CallSid"]: 1}
            metrics = httpx.get(f"{server.base_url}/metrics", timeout=5).text
            assert "callpulse_database_up 0.0" in metrics
            assert 'callpulse_callbacks_total{outcome="spooled"} 27.0' in metrics

        wait_until(
            lambda: not spool_files(server) and ready_status(server) == 200,
            timeout=10,
            what="spool drained and /readyz 200 after the lock is released",
        )
        expected = {f["CallSid"]: 1 for f in [known, *outage_calls]}
        assert call_counts(server.db_path) == expected

        rows = export(server)
        assert set(rows) == set(expected)
        for f in outage_calls:
            assert rows[f["CallSid"]]["duration_s"] == int(f["CallDuration"])
        assert rows[known["CallSid"]]["duration_s"] == 999
        assert rows[known["CallSid"]]["mos"] == 3.2
        with closing(sqlite3.connect(server.db_path)) as conn:
            history = conn.execute(
                "SELECT h.duration_s, h.mos FROM call_history h JOIN calls c ON c.id = h.call_id "
                "WHERE c.call_sid = ?",
                (known["CallSid"],),
            ).fetchall()
        assert history == [(142, 4.5)]
        entries = server.cli("quarantine", "list", "--json").stdout.splitlines()
        assert [json.loads(e)["reason"] for e in entries] == ["signature"]

        # Back to normal: written straight to the database again.
        assert result(server.post(callback_fields())) == "inserted"
        assert not spool_files(server)
    finally:
        server.stop()


def test_spool_of_a_killed_server_is_drained_by_the_next_one(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path, env=BUSY).start()
    calls = [callback_fields(CallDuration=str(n)) for n in range(10)]
    try:
        with write_lock(first.db_path):
            for f in calls:
                assert result(first.post(f)) == "spooled"
            first.kill()
    finally:
        first.stop()
    left = spool_files(first)
    assert left, "the killed server left no spool file"
    assert call_counts(first.db_path) == {}

    second = ServerProcess(tmp_path, env=BUSY).start()
    try:
        # Nothing is posted to the new server: it drains what it finds on its own.
        wait_until(lambda: not spool_files(second), timeout=10, what="the left spool file drained")
        assert call_counts(second.db_path) == {f["CallSid"]: 1 for f in calls}
        assert ready_status(second) == 200
        rows = export(second)
        assert sorted(r["duration_s"] for r in rows.values()) == list(range(10))
        for f in calls:  # the sender's retries are duplicates now
            assert result(second.post(f)) == "duplicate"
    finally:
        second.stop()


def test_server_restarted_during_the_outage_still_takes_callbacks(tmp_path: Path) -> None:
    """A receiver restarted (deploy, crash) while the database is locked must come up and spool.

    Otherwise the sender's callbacks meet a closed port, are retried three times and dropped.
    """
    ServerProcess(tmp_path, env=BUSY).start().stop()  # the schema exists and is up to date
    calls = [callback_fields() for _ in range(5)]
    with write_lock(tmp_path / "callpulse.db"):
        server = ServerProcess(tmp_path, env=BUSY)
        try:
            server.start()
            for f in calls:
                assert result(server.post(f)) == "spooled"
            assert ready_status(server) == 503
        except BaseException:
            server.stop()
            raise
    try:
        wait_until(
            lambda: not spool_files(server) and ready_status(server) == 200,
            timeout=10,
            what="spool drained after the lock is released",
        )
        assert call_counts(server.db_path) == {f["CallSid"]: 1 for f in calls}
    finally:
        server.stop()


def test_503_only_when_neither_database_nor_spool_can_store(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the spool cannot be created under a regular file\n")
    env = {**BUSY, "CALLPULSE_SPOOL_DIR": str(blocker / "spool")}
    server = ServerProcess(tmp_path, env=env).start()
    try:
        lost = callback_fields()
        with write_lock(server.db_path):
            response = server.post(lost)
            assert response.status_code == 503, response.text
            assert "error" in response.json()
            assert ready_status(server) == 503
        assert call_counts(server.db_path) == {}
        # The sender retries once the database is back.
        assert result(server.post(lost)) == "inserted"
        assert ready_status(server) == 200
        assert call_counts(server.db_path) == {lost["CallSid"]: 1}
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=5).text
        assert 'callpulse_callbacks_total{outcome="unavailable"} 1.0' in metrics
    finally:
        server.stop()


def test_lock_released_while_callbacks_keep_arriving(tmp_path: Path) -> None:
    """Callbacks posted continuously across the outage and the recovery: each stored once."""
    server = ServerProcess(tmp_path, env=BUSY).start()
    url = server.callback_url
    posted: dict[str, str] = {}
    stop = threading.Event()
    errors: list[str] = []

    def keep_posting() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set() and len(posted) < 400:
                f = callback_fields()
                headers = {"X-SignalWire-Signature": sign(url, f)}
                response = client.post(url, data=f, headers=headers)
                if response.status_code != 200:
                    errors.append(response.text)
                    return
                posted[f["CallSid"]] = response.json()["result"]
                time.sleep(0.005)

    try:
        with write_lock(server.db_path):
            thread = threading.Thread(target=keep_posting, daemon=True)
            thread.start()
            wait_until(lambda: len(posted) >= 20, timeout=10, what="20 callbacks spooled")
        wait_until(lambda: len(posted) >= 60, timeout=10, what="more callbacks after release")
        stop.set()
        thread.join(10)
        assert not errors, errors
        assert "spooled" in posted.values()
        wait_until(
            lambda: not spool_files(server) and ready_status(server) == 200,
            timeout=10,
            what="spool drained after the lock is released",
        )
        assert call_counts(server.db_path) == dict.fromkeys(posted, 1)
    finally:
        stop.set()
        server.stop()
