from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from callpulse.callback import parse_callback
from callpulse.ingest import writer as writer_module
from callpulse.ingest.spool import Spool
from callpulse.ingest.writer import BatchWriter
from callpulse.store import Store
from callpulse.store.base import CallWrite, SaveResult, WriteOp
from callpulse.store.errors import StoreUnavailable
from callpulse.store.sqlite import SQLiteStore
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


def poisoned(store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception) -> CallWrite:
    """A call whose presence makes the store's write_batch raise ``error``, as a driver does
    for a value it cannot convert; everything else is written as usual."""
    poison = new_write()
    real = store.write_batch

    def write_batch(ops: Sequence[WriteOp]) -> list[SaveResult]:
        if any(op is poison for op in ops):
            raise error
        return real(ops)

    monkeypatch.setattr(store, "write_batch", write_batch)
    return poison


def test_a_value_the_store_cannot_convert_fails_only_its_own_request(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = poisoned(store, monkeypatch, OverflowError("Python int too large"))
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    ops: list[WriteOp] = [new_write() for _ in range(5)]
    ops.insert(3, poison)
    outcomes = writer._write(ops)  # one batch, as group commit makes it
    assert outcomes == [SaveResult.INSERTED] * 3 + [SaveResult.REFUSED] + [SaveResult.INSERTED] * 2
    assert store.count_calls() == 5 and writer.database_ok
    (entry,) = store.list_quarantine()
    assert entry.reason == "refused" and "int too large" in entry.errors["database"]
    assert f"CallSid={poison.record.call_sid}" in entry.body.decode()


def test_a_real_value_no_backend_can_hold_is_refused_alone(tmp_path: Path, store: Store) -> None:
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    good = new_write()
    bad = CallWrite(dataclasses.replace(new_write().record, to_number="+1555\ud800"), NOW)
    other = new_write()
    assert writer._write([good, bad, other]) == [
        SaveResult.INSERTED,
        SaveResult.REFUSED,
        SaveResult.INSERTED,
    ]
    (entry,) = store.list_quarantine()
    assert entry.reason == "refused" and b"%5Cud800" in entry.body  # kept, escaped


def test_a_bug_on_one_write_fails_only_that_request(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = poisoned(store, monkeypatch, RuntimeError("boom"))
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    first, last = new_write(), new_write()
    outcomes = writer._write([first, poison, last])
    assert outcomes[0] == outcomes[2] == SaveResult.INSERTED
    assert isinstance(outcomes[1], StoreUnavailable) and "internal error: boom" in str(outcomes[1])
    assert store.count_calls() == 2 and store.quarantine_counts() == (0, 0)  # the sender retries


def test_a_spooled_write_that_always_fails_is_kept_and_does_not_block_the_spool(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    poison = new_write()
    writer.spool.append([new_write(), poison, new_write()])
    real = store.write_batch

    def write_batch(ops: Sequence[WriteOp]) -> list[SaveResult]:
        if any(isinstance(op, CallWrite) and op.record == poison.record for op in ops):
            raise RuntimeError("boom")
        return real(ops)

    monkeypatch.setattr(store, "write_batch", write_batch)
    writer._try_drain(force=True)
    assert not writer.spool.has_pending() and writer.spool.files() == []
    assert store.count_calls() == 2
    (entry,) = store.list_quarantine()  # the writer's own failure, not the database's words
    assert (entry.reason, entry.errors) == ("refused", {"writer": "internal error: boom"})
    assert f"CallSid={poison.record.call_sid}" in entry.body.decode()
