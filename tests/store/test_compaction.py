"""Compaction: the finished minutes go into the coarser levels once, by ``serve``'s thread or
any number of racing ones, while writers go on."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from callpulse import metrics
from callpulse.callback import CallRecord
from callpulse.compaction import PeriodicCompaction
from callpulse.config import Settings
from callpulse.store import Store, open_store
from callpulse.store.base import CallWrite
from callpulse.store.dialect import to_epoch_ms
from callpulse.store.errors import StoreUnavailable
from callpulse.store.rollups import COMPACT_LAG_MS
from tests.store.test_rollups import assert_rollups_match
from tests.support import compacted_from, sql_rows, until


def call(n: int, started_at: datetime) -> CallWrite:
    record = CallRecord(
        account_sid="AC1",
        call_sid=f"CA{n:032x}",
        from_number=f"+1415555{n % 7000:04d}",
        to_number=f"+1800555000{n % 3}",
        started_at=started_at,
        status="completed" if n % 5 else "failed",
        duration_s=n % 300,
        mos=4.0 + (n % 10) / 10,
    )
    return CallWrite(record, started_at)


def hour_calls(store: Store) -> int:
    return int(sql_rows(store, "SELECT coalesce(sum(calls), 0) FROM rollup_hour_total")[0][0])


def test_finished_minutes_are_summed_once(store: Store) -> None:
    now = datetime.now(UTC)
    store.write_batch([call(n, now - timedelta(seconds=n)) for n in range(30)])
    assert hour_calls(store) == 0  # after compacted_until: minutes only
    later = PeriodicCompaction(store, clock=lambda: (now + timedelta(hours=2)).timestamp())
    compacted = later.compact()
    assert compacted == store.rollups_compacted_until() > to_epoch_ms(now)
    assert (
        metrics.REGISTRY.get_sample_value("callpulse_rollups_compacted_until_seconds")
        == compacted / 1000
    )
    assert hour_calls(store) == 30
    assert later.compact() == compacted and hour_calls(store) == 30  # nothing twice
    # A call that starts before compacted_until arrives late: every level takes it at once.
    store.write_batch([call(99, now - timedelta(minutes=3))])
    assert hour_calls(store) == 31
    assert_rollups_match(store)


def test_a_call_not_compacted_yet_is_found_without_its_account(store: Store) -> None:
    now = datetime.now(UTC)
    store.write_batch([call(1, now)])
    found = store.find_call(f"CA{1:032x}")
    assert found is not None and found.account_sid == "AC1"


def test_compaction_stays_its_lag_behind_the_clock(store: Store) -> None:
    now = time.time()
    compacted_from(store, datetime.fromtimestamp(now, UTC) - timedelta(days=1))
    compacted = PeriodicCompaction(store, clock=lambda: now).compact()
    assert compacted == (int(now * 1000) - COMPACT_LAG_MS) // 60_000 * 60_000


def test_the_thread_compacts_at_start_and_stops(store: Store) -> None:
    future = time.time() + 86_400
    compaction = PeriodicCompaction(store, interval_s=3600, clock=lambda: future)
    before = store.rollups_compacted_until()
    compaction.start()
    until(store.rollups_compacted_until, lambda at: at > before)
    started = time.monotonic()
    compaction.stop()
    assert time.monotonic() - started < 1  # not an interval's wait
    assert not compaction.running


class Flaky:
    """A store whose first compaction finds the database down."""

    def __init__(self) -> None:
        self.calls = 0

    def compact_rollups(self, until_ms: int) -> int:
        self.calls += 1
        if self.calls == 1:
            raise StoreUnavailable("database is down")
        return until_ms


def test_a_failed_round_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky()
    compaction = PeriodicCompaction(flaky, interval_s=0.01)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="callpulse.rollups"):
        compaction.start()
        until(lambda: flaky.calls, lambda n: n >= 2)
        compaction.stop()
    assert [r.getMessage() for r in caplog.records] == [
        "rollup compaction failed, next try in 0.01 s: database is down"
    ]


def test_compaction_racing_writers_counts_every_call_once(database_url: str) -> None:
    """Two writer processes' stores and a compaction moving through their minutes meanwhile:
    each call is summed into the coarser levels exactly once, live or late."""
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    stores = [open_store(Settings(database_url=database_url)) for _ in range(3)]
    stores[0].upgrade()
    compacted_from(stores[0], start)
    done = threading.Event()

    def write(store: Store, first: int) -> None:
        for batch in range(40):  # minutes from the start on, some behind compaction by then
            n = first + batch * 10
            store.write_batch(
                [call(n + i, start + timedelta(minutes=batch + i, seconds=i)) for i in range(10)]
            )

    def compact(store: Store) -> None:
        minute = 0
        while not done.is_set() and minute < 50:  # about as fast as the writers go
            minute += 1
            store.compact_rollups(to_epoch_ms(start + timedelta(minutes=minute)))
            time.sleep(0.01)

    writers = [threading.Thread(target=write, args=(s, k * 1000)) for k, s in enumerate(stores[:2])]
    compactor = threading.Thread(target=compact, args=(stores[2],))
    try:
        compactor.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        compactor.join()
        assert stores[0].count_calls() == 800
        assert_rollups_match(stores[0])
        stores[0].compact_rollups(to_epoch_ms(start + timedelta(hours=2)))
        assert hour_calls(stores[0]) == 800
        assert_rollups_match(stores[0])
    finally:
        done.set()
        for store in stores:
            store.close()
