"""PostgreSQL-specific behaviour: refused values, partitions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from callpulse.config import Settings
from callpulse.ingest.spool import Spool
from callpulse.ingest.writer import BatchWriter
from callpulse.store import open_store
from callpulse.store.base import CallWrite, SaveResult
from callpulse.store.partitions import month_start, next_month, partition_name
from callpulse.store.postgres import PostgresStore
from tests.store.test_store import call
from tests.support import postgres_schema, sql_rows


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


def _partitions(store: PostgresStore) -> set[str]:
    rows = sql_rows(
        store,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'calls'::regclass",
    )
    return {name for (name,) in rows}


def _partition_of(store: PostgresStore, call_sid: str) -> str:
    ((name,),) = sql_rows(
        store, "SELECT tableoid::regclass::text FROM calls WHERE call_sid = %s", (call_sid,)
    )
    return str(name)


def test_partitions_follow_the_calls_in_use(tmp_path: Path) -> None:
    with postgres_schema() as url:
        store = open_store(Settings(database_url=url))
        assert isinstance(store, PostgresStore)
        store.upgrade()
        this_month = month_start(datetime.now(UTC))
        ahead = {partition_name(this_month), partition_name(next_month(this_month))}
        assert ahead <= store._partitions
        recent = month_start(this_month - timedelta(days=100))
        write = call(Timestamp=format_datetime(recent + timedelta(days=3)))
        store.write_batch([write])
        assert partition_name(recent) in store._partitions
        assert _partition_of(store, write.record.call_sid) == partition_name(recent)
        store.close()


def test_stray_times_go_to_the_default_partition_and_move_out_when_their_month_comes(
    tmp_path: Path,
) -> None:
    """Signed callbacks dated in 1970-1999 (or years ahead) once made a partition each: 200
    months of stray dates made 200 partitions. They now share the default partition."""
    with postgres_schema() as url:
        store = open_store(Settings(database_url=url))
        assert isinstance(store, PostgresStore)
        store.upgrade()
        before = _partitions(store)
        strays = [
            call(Timestamp=f"Sun, 01 Mar {year} 10:00:00 +0000") for year in range(1970, 2000)
        ]
        later = month_start(datetime.now(UTC) + timedelta(days=200))
        future = call(Timestamp=format_datetime(later + timedelta(days=1)))
        assert store.write_batch([*strays, future]) == [SaveResult.INSERTED] * 31
        assert _partitions(store) == before
        assert {_partition_of(store, w.record.call_sid) for w in [*strays, future]} == {
            "calls_default"
        }
        totals_before = sql_rows(store, "SELECT sum(calls), sum(completed) FROM rollup_day_total")
        # The month comes: its partition takes over its calls from the default partition.
        store.ensure_partitions({later})
        assert _partition_of(store, future.record.call_sid) == partition_name(later)
        assert sql_rows(store, "SELECT sum(calls), sum(completed) FROM rollup_day_total") == (
            totals_before
        )
        assert store.get_call(future.record.account_sid, future.record.call_sid) is not None
        assert store.prune(datetime(2000, 1, 1, tzinfo=UTC)) == 30
        assert store.count_calls() == 1
        store.close()
