from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callpulse.callback import parse_callback
from callpulse.store.base import CallWrite, QuarantineWrite, SaveResult, StoreUnavailable
from callpulse.store.sqlite import SQLiteStore
from tests.support import callback_fields

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def call(**overrides: str) -> CallWrite:
    return CallWrite(parse_callback(callback_fields(**overrides)), NOW)


def junk(n: int, at: datetime = NOW) -> QuarantineWrite:
    return QuarantineWrite(
        at,
        "invalid",
        {"From": "bad"},
        "POST",
        "http://h/cb",
        {"content-type": "x"},
        f"body{n}".encode(),
        5,
    )


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fresh.db")
    assert [s.applied_at for s in store.migration_status()] == [None]
    assert store.upgrade() == ["0001_calls_history_quarantine"]
    assert store.upgrade() == []
    (state,) = store.migration_status()
    assert state.name == "0001_calls_history_quarantine" and state.applied_at is not None
    store.close()


def test_insert_then_retry_is_stored_once(store: SQLiteStore) -> None:
    write = call()
    assert store.write_batch([write, write]) == [SaveResult.INSERTED, SaveResult.DUPLICATE]
    assert store.write_batch([write]) == [SaveResult.DUPLICATE]
    assert store.count_calls() == 1
    stored = store.get_call(write.record.account_sid, write.record.call_sid)
    assert stored is not None
    assert stored.record == write.record
    assert (stored.received_at, stored.source, stored.version) == (NOW, "callback", 1)


def test_changed_content_updates_and_keeps_history(store: SQLiteStore) -> None:
    first = call(CallStatus="failed", CallDuration="0")
    sid = first.record.call_sid
    second = CallWrite(
        parse_callback(callback_fields(CallSid=sid, CallDuration="30")), NOW + timedelta(seconds=5)
    )
    assert store.write_batch([first]) == [SaveResult.INSERTED]
    assert store.write_batch([second]) == [SaveResult.UPDATED]
    # a late retry of the first version is a duplicate, not a flip back
    assert store.write_batch([first]) == [SaveResult.DUPLICATE]
    current = store.get_call(first.record.account_sid, sid)
    assert current is not None and current.record == second.record and current.version == 2
    (old,) = store.call_history(first.record.account_sid, sid)
    assert old.record == first.record and old.version == 1
    assert store.count_calls() == 1


def test_same_call_sid_in_other_account_is_another_call(store: SQLiteStore) -> None:
    write = call()
    other = CallWrite(
        parse_callback(callback_fields(CallSid=write.record.call_sid, AccountSid="other-account")),
        NOW,
    )
    assert store.write_batch([write, other]) == [SaveResult.INSERTED, SaveResult.INSERTED]
    assert store.count_calls() == 2


def test_iter_calls_orders_by_start_time(store: SQLiteStore) -> None:
    late = call(Timestamp="Thu, 04 Apr 2024 18:32:15 +0000")
    early = call(Timestamp="Wed, 03 Apr 2024 18:32:15 +0000")
    store.write_batch([late, early])
    assert [c.record.call_sid for c in store.iter_calls(batch_size=1)] == [
        early.record.call_sid,
        late.record.call_sid,
    ]


def test_quarantine_keeps_entries_and_bounds_them(store: SQLiteStore) -> None:
    assert store.write_batch([junk(n) for n in range(3)]) == [SaveResult.QUARANTINED] * 3
    entry = store.get_quarantine(1)
    assert entry is not None
    assert (entry.reason, entry.errors, entry.body) == ("invalid", {"From": "bad"}, b"body0")
    store.write_batch([junk(n) for n in range(3, 8)])  # cap is 5
    assert store.quarantine_counts() == (5, 3)
    assert [e.id for e in store.list_quarantine(limit=2)] == [8, 7]
    assert [e.id for e in store.list_quarantine(limit=10, before_id=6)] == [5, 4]
    assert store.get_quarantine(1) is None


def test_quarantine_retention_drops_old_entries(store: SQLiteStore) -> None:
    store.write_batch([junk(0, at=NOW - timedelta(days=400)), junk(1, at=datetime.now(UTC))])
    assert store.quarantine_counts() == (1, 1)


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
