"""PostgreSQL-specific behaviour: refused values, partitions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.base import CallWrite, SaveResult
from callpulse.store.postgres import PostgresStore, month_start, next_month, partition_name
from callpulse.store.spool import Spool
from callpulse.store.writer import BatchWriter
from tests.store.test_store import call
from tests.support import postgres_schema


@pytest.fixture
def pg_writer(tmp_path: Path) -> Iterator[BatchWriter]:
    with postgres_schema() as url:
        store = open_store(Settings(database_url=url))
        store.upgrade()
        writer = BatchWriter(store, Spool(tmp_path / "spool"))
        writer.start()
        yield writer
        writer.stop()
        store.close()


def unstorable() -> CallWrite:
    """Valid for callpulse, too large for PostgreSQL's integer column."""
    write = call()
    return dataclasses.replace(write, record=dataclasses.replace(write.record, duration_s=2**40))


def test_a_refused_value_is_quarantined_and_its_batch_neighbours_stored(
    pg_writer: BatchWriter,
) -> None:
    good, bad, other = call(), unstorable(), call()
    results = [pg_writer.submit_sync(op) for op in (good, bad, other)]
    assert results == [SaveResult.INSERTED, SaveResult.REFUSED, SaveResult.INSERTED]
    assert pg_writer.store.count_calls() == 2 and pg_writer.database_ok
    (entry,) = pg_writer.store.list_quarantine()
    assert entry.reason == "refused" and "out of range" in entry.errors["database"]
    assert bad.record.call_sid in entry.body.decode()


def test_a_refused_value_in_the_spool_does_not_block_draining(pg_writer: BatchWriter) -> None:
    good, bad, other = call(), unstorable(), call()
    pg_writer.spool.append([good, bad, other])
    pg_writer.spool.append([call()])
    assert pg_writer.submit_sync(call()) == SaveResult.INSERTED  # drains first, in order
    assert not pg_writer.spool.has_pending()
    assert pg_writer.store.count_calls() == 4
    assert [e.reason for e in pg_writer.store.list_quarantine()] == ["refused"]


def test_partitions_follow_the_calls(tmp_path: Path) -> None:
    with postgres_schema() as url:
        store = open_store(Settings(database_url=url))
        assert isinstance(store, PostgresStore)
        store.upgrade()
        this_month = month_start(datetime.now(UTC))
        ahead = {partition_name(this_month), partition_name(next_month(this_month))}
        assert ahead <= store._partitions
        store.write_batch([call(Timestamp="Sun, 31 Mar 2024 23:59:59 +0000")])
        assert {"calls_p2024_03", "calls_p2024_04"} <= store._partitions
        store.close()
