from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from callpulse.callback import parse_callback
from callpulse.store import writer as writer_module
from callpulse.store.base import CallWrite, SaveResult, StoreUnavailable, WriteOp
from callpulse.store.spool import Spool
from callpulse.store.sqlite import SQLiteStore
from callpulse.store.writer import BatchWriter
from tests.store.test_store import NOW
from tests.support import callback_fields


def make_writer(tmp_path: Path, busy_timeout_ms: int = 1000) -> BatchWriter:
    store = SQLiteStore(tmp_path / "calls.db", busy_timeout_ms=busy_timeout_ms)
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"), max_batch=512)
    writer.start()
    return writer


def new_write() -> CallWrite:
    return CallWrite(parse_callback(callback_fields()), NOW)


def test_concurrent_requests_share_transactions(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)

    async def flood() -> list[SaveResult]:
        return await asyncio.gather(*(writer.submit(new_write()) for _ in range(2000)))

    results = asyncio.run(flood())
    writer.stop()
    assert results == [SaveResult.INSERTED] * 2000
    assert writer.store.count_calls() == 2000
    assert writer.batches < 200  # many callbacks per commit, not one commit each


def test_max_batch_one_commits_per_request(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    writer.max_batch = 1

    async def flood() -> list[SaveResult]:
        return await asyncio.gather(*(writer.submit(new_write()) for _ in range(50)))

    asyncio.run(flood())
    writer.stop()
    assert writer.batches == 50


def test_database_outage_spools_then_drains_in_order(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, busy_timeout_ms=50)
    first = new_write()
    assert writer.submit_sync(first) == SaveResult.INSERTED
    blocker = sqlite3.connect(tmp_path / "calls.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    update = CallWrite(
        parse_callback(callback_fields(CallSid=first.record.call_sid, CallDuration="99")), NOW
    )
    during = [new_write() for _ in range(5)]
    assert writer.submit_sync(update) == SaveResult.SPOOLED
    assert [writer.submit_sync(w) for w in during] == [SaveResult.SPOOLED] * 5
    assert not writer.database_ok and writer.spool.depth() == 6
    blocker.execute("ROLLBACK")
    blocker.close()

    def drained() -> bool:
        # A batch commits its new calls, then its updates: wait for the whole drain.
        current = writer.store.get_call(first.record.account_sid, first.record.call_sid)
        return (
            writer.store.count_calls() == 6
            and current is not None
            and (current.record.duration_s == 99)
        )

    deadline = time.monotonic() + 10
    while not drained() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert drained()
    assert writer.submit_sync(new_write()) == SaveResult.INSERTED
    assert writer.database_ok and not writer.spool.has_pending()
    writer.stop()


def test_neither_database_nor_spool_raises(tmp_path: Path) -> None:
    writer = make_writer(tmp_path, busy_timeout_ms=50)
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    blocker = sqlite3.connect(tmp_path / "calls.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="database and spool both failed"):
            writer.submit_sync(new_write())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        writer.stop()


def test_stop_flushes_queued_writes(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    loop_results: list[SaveResult] = []

    async def submit_and_stop() -> None:
        tasks = [asyncio.ensure_future(writer.submit(new_write())) for _ in range(100)]
        await asyncio.sleep(0)  # every task has queued its write
        writer.stop()  # returns only after the queue before the stop marker is written
        loop_results.extend(await asyncio.gather(*tasks))

    asyncio.run(submit_and_stop())
    assert loop_results == [SaveResult.INSERTED] * 100
    assert writer.store.count_calls() == 100


def test_a_bug_fails_its_batch_but_not_the_writer(tmp_path: Path) -> None:
    class BuggyOnce(SQLiteStore):
        failed = False

        def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
            if not self.failed:
                self.failed = True
                raise RuntimeError("boom")
            return super().write_batch(ops)

    store = BuggyOnce(tmp_path / "calls.db")
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    writer.start()
    with pytest.raises(StoreUnavailable, match="internal error: boom"):
        writer.submit_sync(new_write())
    assert writer.submit_sync(new_write()) == SaveResult.INSERTED  # still alive
    writer.stop()


def test_outage_keeps_one_spool_file_and_stores_each_call_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "DRAIN_RETRY_S", 0.0)  # a drain attempt on every batch

    class Down(SQLiteStore):
        down = True

        def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
            if self.down:
                raise StoreUnavailable("database down")
            return super().write_batch(ops)

    store = Down(tmp_path / "calls.db")
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    writer.start()
    sent = [new_write() for _ in range(200)]
    assert [writer.submit_sync(w) for w in sent] == [SaveResult.SPOOLED] * 200
    assert len(writer.spool.files()) == 1
    store.down = False
    assert writer.submit_sync(new_write()) == SaveResult.INSERTED  # drains first, in order
    assert writer.spool.files() == [] and writer.database_ok
    writer.stop()
    assert store.count_calls() == 201
