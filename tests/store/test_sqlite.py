from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from callpulse.store import checkpoint
from callpulse.store.base import SaveResult
from callpulse.store.errors import StoreUnavailable
from callpulse.store.sqlite import SQLiteStore
from tests.store.test_store import call


def test_write_lock_held_elsewhere_raises_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "locked.db", busy_timeout_ms=50)
    store.upgrade()
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write_batch([call()])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.write_batch([call()]) == [SaveResult.INSERTED]  # recovers by itself
    store.close()


def test_durability_settings_are_applied(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.db", synchronous="FULL")
    store.upgrade()
    store.write_batch([call()])
    conn = store._writer
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_checkpoints_run_off_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    store.upgrade()
    before = path.stat().st_size
    store.write_batch([call() for _ in range(2000)])
    conn = store._writer
    assert conn is not None and conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    deadline = time.monotonic() + 5
    while path.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before  # the background checkpoint moved pages into the file
    store.close()


def test_a_long_wal_starts_over_between_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "WAL_RESTART_FRAMES", 1000)  # 4 MiB instead of 1 GiB
    path = tmp_path / "w.db"
    wal = tmp_path / "w.db-wal"
    store = SQLiteStore(path)
    store.upgrade()
    limit = 1000 * 4096  # bytes: the file is cut back to this (journal_size_limit)
    sizes = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        store.write_batch([call() for _ in range(20)])
        sizes.append(wal.stat().st_size)
        if max(sizes) > limit and sizes[-1] <= limit:
            break  # it grew past the limit, then was cut back (how far past depends on speed)
    store.close()
    assert max(sizes) > limit and sizes[-1] <= limit, (max(sizes), sizes[-20:])


def test_close_closes_the_readers_of_every_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "r.db")
    store.upgrade()
    readers: list[sqlite3.Connection] = []
    done = threading.Event()

    def read_and_stay() -> None:
        readers.append(store._reader)
        done.wait(10)  # alive until the store is closed

    threads = [threading.Thread(target=read_and_stay) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(readers) < 4:
        time.sleep(0.01)
    store.close()
    done.set()
    for thread in threads:
        thread.join()
    for conn in readers:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")


def test_readers_of_ended_threads_are_closed_not_kept(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "r.db")
    store.upgrade()
    for _ in range(20):  # a thread pool retiring idle threads, one new thread per request
        thread = threading.Thread(target=store.count_calls)
        thread.start()
        thread.join()
    store.count_calls()  # a new reader here closes those of the ended threads
    assert len(store._readers) <= 2
    store.close()
