"""Rejected requests never queue behind or ahead of calls on the writer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from callpulse.config import Settings
from callpulse.ingest import writer as writer_module
from callpulse.ingest.gate import RawCallback, gate_for
from callpulse.ingest.pipeline import Ingestor
from callpulse.ingest.spool import Spool
from callpulse.ingest.writer import BatchWriter
from callpulse.store import Store, open_store
from callpulse.store.base import QuarantineWrite, SaveResult, WriteOp
from callpulse.store.errors import StoreUnavailable
from callpulse.store.sqlite import SQLiteStore
from tests.ingest.test_writer import new_write
from tests.store.test_store import NOW, junk


class Recording(SQLiteStore):
    """Records each write_batch; the first waits for ``release`` (a slow commit)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[WriteOp]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
        if not self.batches:
            self.entered.set()
            assert self.release.wait(10)
        self.batches.append(list(ops))
        return super().write_batch(ops)


def wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    assert condition()  # type: ignore[operator]


def test_a_queued_call_is_committed_before_buffered_rejects(tmp_path: Path) -> None:
    store = Recording(tmp_path / "calls.db")
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    writer.start()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(writer.submit_sync, new_write())
        assert store.entered.wait(10)  # the writer is busy with the first call
        assert all(writer.quarantine(junk(n)) for n in range(3))  # answered at once
        second = pool.submit(writer.submit_sync, new_write())
        wait_for(lambda: writer._queue.qsize() >= 2)  # the wake-up, then the call
        store.release.set()
        assert first.result(10) == second.result(10) == SaveResult.INSERTED
    wait_for(lambda: writer.quarantine_pending() == 0 and len(store.batches) == 3)
    writer.stop()
    kinds = [{type(op).__name__ for op in batch} for batch in store.batches]
    assert kinds == [{"CallWrite"}, {"CallWrite"}, {"QuarantineWrite"}]
    assert len(store.batches[2]) == 3 and store.quarantine_counts() == (3, 0)


def test_rejects_are_written_in_small_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "QUARANTINE_TURN_BYTES", 1000)
    store = Recording(tmp_path / "calls.db")
    store.upgrade()
    store.release.set()
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    big = [
        QuarantineWrite(NOW, "signature", {}, "POST", "http://h/cb", {}, b"x" * 400, 400)
        for _ in range(6)
    ]
    for entry in big:
        assert writer.quarantine(entry)
    writer.start()
    writer.stop()  # flushes the buffer
    assert [len(batch) for batch in store.batches] == [2, 2, 2]  # about 470 bytes an entry


def test_a_full_buffer_drops_new_rejects_and_counts_them(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "calls.db")
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"), quarantine_buffer_bytes=2000)
    entry = QuarantineWrite(NOW, "signature", {}, "POST", "http://h/cb", {}, b"x" * 400, 400)
    kept = [writer.quarantine(entry) for _ in range(10)]  # the writer is not even running
    assert kept == [True] * 4 + [False] * 6
    assert writer.quarantine_shed == 6 and writer.quarantine_pending() == 4
    writer.start()
    writer.stop()
    assert store.quarantine_counts() == (4, 0) and writer.quarantine_pending() == 0
    assert writer.quarantine(entry)  # room again once written


def test_the_buffer_bounds_a_flood_of_huge_requests_by_their_cut_size(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "calls.db")
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    huge = QuarantineWrite(
        NOW, "signature", {}, "POST", "http://h/cb", {"x-big": "h" * 8_000_000}, b"b" * 60_000,
        60_000,
    )  # fmt: skip
    kept = sum(writer.quarantine(huge) for _ in range(300))
    assert 100 < kept < 300  # about 25 KB each once cut, in a 4 MiB buffer
    assert writer._rejects_bytes <= writer_module.QUARANTINE_BUFFER_BYTES


@pytest.fixture
def roomy_store(database_url: str) -> Iterator[Store]:
    backend = open_store(Settings(database_url=database_url))
    backend.upgrade()
    yield backend
    backend.close()


def test_rejects_in_a_burst_among_calls_all_land_and_are_listed(
    tmp_path: Path, roomy_store: Store
) -> None:
    writer = BatchWriter(roomy_store, Spool(tmp_path / "spool"))
    writer.start()

    async def burst() -> list[SaveResult]:
        calls = [asyncio.ensure_future(writer.submit(new_write())) for _ in range(300)]
        for n in range(500):
            assert writer.quarantine(junk(n))
            if n % 50 == 0:
                await asyncio.sleep(0)
        return await asyncio.gather(*calls)

    assert asyncio.run(burst()) == [SaveResult.INSERTED] * 300
    wait_for(lambda: writer.quarantine_pending() == 0)
    writer.stop()
    assert roomy_store.count_calls() == 300
    assert roomy_store.quarantine_counts() == (500, 0)
    listed = roomy_store.list_quarantine(limit=1000)
    assert sorted(e.body for e in listed) == sorted(f"body{n}".encode() for n in range(500))


def test_rejects_wait_in_the_buffer_while_the_database_is_down(
    tmp_path: Path, roomy_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = BatchWriter(roomy_store, Spool(tmp_path / "spool"))
    writer.spool.append([new_write()])  # an outage left a call spooled
    assert writer.quarantine(junk(0))
    real = roomy_store.write_batch
    down = True

    def write_batch(ops: Sequence[WriteOp]) -> list[SaveResult]:
        if down:
            raise StoreUnavailable("down")
        return real(ops)

    monkeypatch.setattr(roomy_store, "write_batch", write_batch)
    monkeypatch.setattr(writer_module, "DRAIN_RETRY_S", 0.05)
    writer.start()
    time.sleep(0.3)
    assert writer.quarantine_pending() == 1  # not written before the spooled call, not lost
    down = False
    wait_for(lambda: writer.quarantine_pending() == 0 and not writer.spool.has_pending())
    writer.stop()
    assert roomy_store.count_calls() == 1 and roomy_store.quarantine_counts() == (1, 0)


def test_rejects_buffered_at_stop_go_to_the_spool_when_the_database_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down(SQLiteStore):
        def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
            raise StoreUnavailable("down")

    store = Down(tmp_path / "calls.db")
    writer = BatchWriter(store, Spool(tmp_path / "spool"))
    assert writer.quarantine(junk(0)) and writer.quarantine(junk(1))
    writer.start()
    writer.stop()
    (path,) = writer.spool.files()
    assert len(path.read_text().splitlines()) == 2


def test_a_rejection_is_answered_without_waiting_for_the_writer(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "calls.db")
    store.upgrade()
    writer = BatchWriter(store, Spool(tmp_path / "spool"))  # not started: nothing is written
    ingestor = Ingestor(gate_for(Settings()), writer)
    raw = RawCallback(
        "POST",
        "http://h/cb",
        {"content-type": "application/x-www-form-urlencoded", "x-big": "h" * 100_000},
        b"CallSid=x",
        9,
    )
    answer = asyncio.run(asyncio.wait_for(ingestor.handle(raw), 5))
    assert answer.status in (400, 403)
    assert writer.quarantine_pending() == 1
    writer.start()
    writer.stop()
    (entry,) = store.list_quarantine()
    assert entry.body == b"CallSid=x" and len(entry.headers["x-big"].encode()) <= 1024
