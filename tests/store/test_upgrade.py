"""Upgrading a database that holds calls from the first schema: nothing lost, rollups built."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callpulse.callback import WITHHELD, CallRecord, parse_callback
from callpulse.config import Settings
from callpulse.regions import region_of
from callpulse.store import backfill, open_store, partitions, rollups
from callpulse.store.base import CallWrite, SaveResult
from callpulse.store.dialect import to_epoch_ms
from callpulse.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, run_step
from callpulse.store.postgres import PostgresStore
from callpulse.store.sqlite import SQLiteStore
from tests.store.test_rollups import assert_rollups_match, stored_rollups
from tests.support import BACKENDS, backend_database, sql_rows

OLD_CALLS = [  # (call_sid, from, started_at epoch s, status, duration, mos)
    ("CA1", "+14155550100", 1780000000, "completed", 120, 4.2),
    ("CA2", "+14155550100", 1780003600, "completed", 30, 3.1),  # the same caller an hour later
    ("CA3", "+442079460000", 1780007200, "failed", 0, 1.0),
]


def old_schema(store: Any, conn: Any, migrations: tuple[Any, ...], param: str, now: Any) -> None:
    store._applied(conn)  # creates the migrations table
    for step in migrations[0].statements:
        run_step(conn, step)
    conn.execute(
        f"INSERT INTO migrations (name, applied_at) VALUES ({param}, {param})",
        (migrations[0].name, now),
    )


def first_schema(store: Any, calls: list[CallRecord]) -> None:
    """The tables of schema 0001 holding ``calls``, as the first release wrote them."""
    ms = to_epoch_ms
    if isinstance(store, SQLiteStore):
        with store._transaction() as conn:
            old_schema(store, conn, SQLITE_MIGRATIONS, "?", datetime.now(UTC).isoformat())
            conn.executemany(
                "INSERT INTO calls (call_key, account_sid, call_sid, from_number, to_number, "
                "started_at, status, duration_s, mos, extra, received_at, source, fingerprint, "
                "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', 0, 'callback', ?, 1)",
                [(n, c.account_sid, c.call_sid, c.from_number, c.to_number, ms(c.started_at),
                  c.status, c.duration_s, c.mos, n) for n, c in enumerate(calls)],
            )  # fmt: skip
        return
    assert isinstance(store, PostgresStore)
    with store._conn() as conn, conn.transaction():
        old_schema(store, conn, POSTGRES_MIGRATIONS, "%s", datetime.now(UTC))
    store.ensure_partitions({partitions.month_start(c.started_at) for c in calls})
    with store._conn() as conn, conn.transaction():
        for c in calls:
            (call_id,) = conn.execute(
                "INSERT INTO call_keys (account_sid, call_sid, started_at, fingerprint) "
                "VALUES (%s, %s, %s, 0) RETURNING call_id",
                (c.account_sid, c.call_sid, c.started_at),
            ).fetchone()
            conn.execute(
                "INSERT INTO calls (call_id, account_sid, call_sid, from_number, to_number, "
                "started_at, status, duration_s, mos, extra, received_at, source, fingerprint, "
                "version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '{}', now(), "
                "'callback', 0, 1)",
                (call_id, c.account_sid, c.call_sid, c.from_number, c.to_number,
                 c.started_at, c.status, c.duration_s, c.mos),
            )  # fmt: skip


def old_calls() -> list[CallRecord]:
    return [
        CallRecord("AC1", sid, caller, "+18005550001", datetime.fromtimestamp(started, UTC),
                   status, duration, mos)
        for sid, caller, started, status, duration, mos in OLD_CALLS
    ]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_keeps_calls_and_builds_rollups(backend: str, tmp_path: Path) -> None:
    with backend_database(backend, tmp_path) as url:
        store = open_store(Settings(database_url=url))
        first_schema(store, old_calls())
        check_upgraded(store)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_starts_compaction_by_the_clock(backend: str, tmp_path: Path) -> None:
    """Before 0008 every level held every call: compaction starts by the clock, and the
    coarser levels give back the calls after that (one dated days ahead among them) until it
    sums them again."""
    now = datetime.now(UTC).replace(microsecond=0)
    recent, ahead = now - timedelta(minutes=3), now + timedelta(days=2, seconds=7)
    calls = [*old_calls(), *(replace(old_calls()[0], call_sid=sid, started_at=moment)
                             for sid, moment in (("CA8", recent), ("CA9", ahead)))]  # fmt: skip
    with backend_database(backend, tmp_path) as url:
        store = open_store(Settings(database_url=url))
        first_schema(store, calls)
        store.upgrade()
        lagging = to_epoch_ms(now) - rollups.COMPACT_LAG_MS
        assert 0 <= store.rollups_compacted_until() - (lagging - lagging % 60_000) <= 120_000
        assert_rollups_match(store)
        (day,) = sql_rows(store, "SELECT sum(calls) FROM rollup_day_total")[0]
        assert day == len(old_calls())
        store.compact_rollups(to_epoch_ms(ahead + timedelta(minutes=1)))
        (day,) = sql_rows(store, "SELECT sum(calls) FROM rollup_day_total")[0]
        assert day == len(calls)
        assert_rollups_match(store)
        store.close()


def many_calls(seed: int) -> list[CallRecord]:
    """Calls of a few callers close enough in time that many are repeats: some exactly 24 h
    apart or starting at the same moment, withheld and SIP callers among them."""
    rng = random.Random(seed)
    callers = ["+14155550100", "+442079460000", "+4915112345678", "+16135550123",
               "sip:a@example.com", WITHHELD]  # fmt: skip
    start = datetime(2026, 5, 28, tzinfo=UTC)
    calls = []
    for n in range(300):
        moment = start + timedelta(minutes=rng.choice([0, 90, 24 * 60]) * rng.randint(0, 3))
        moment += timedelta(seconds=rng.randint(0, 5) * rng.randint(0, 1), milliseconds=n % 2)
        completed = rng.random() < 0.8
        calls.append(
            CallRecord(
                account_sid=rng.choice(["AC1", "AC2"]),
                call_sid=f"CA{n:032x}",
                from_number=rng.choice(callers),
                to_number=rng.choice(["+18005550001", "+18005550002"]),
                started_at=moment,
                status="completed" if completed else rng.choice(["failed", "busy"]),
                duration_s=rng.randint(0, 4000) if completed else 0,
                mos=rng.randint(100, 500) / 100,
            )
        )
    return calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgraded_first_schema_equals_calls_written_now(backend: str, tmp_path: Path) -> None:
    """Regions, repeat flags and every rollup of an upgraded database are what the same calls
    written by this release give."""
    calls = many_calls(seed=11)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with (
        backend_database(backend, tmp_path / "old") as old_url,
        backend_database(backend, tmp_path / "new") as new_url,
    ):
        upgraded = open_store(Settings(database_url=old_url))
        first_schema(upgraded, calls)
        upgraded.upgrade()
        written = open_store(Settings(database_url=new_url))
        written.upgrade()
        assert written.write_batch([CallWrite(c, datetime.now(UTC)) for c in calls]) == [
            SaveResult.INSERTED
        ] * len(calls)
        flags = "SELECT call_sid, region, is_repeat FROM calls ORDER BY call_sid"
        got, want = sql_rows(upgraded, flags), sql_rows(written, flags)
        assert got == want
        assert sum(bool(repeat) for _, _, repeat in got) > 50  # (the case is a real one)
        got_metrics, got_hist = stored_rollups(upgraded)
        want_metrics, want_hist = stored_rollups(written)
        assert got_hist == want_hist
        assert got_metrics.keys() == want_metrics.keys()
        for key, values in want_metrics.items():
            assert got_metrics[key] == pytest.approx(values), key
        assert rollup_keys(upgraded) == rollup_keys(written) == spec_keys(upgraded)
        upgraded.close()
        written.close()


def rollup_keys(store: Any) -> list[tuple[str, str]]:
    """Every rollup table's primary key as stored: its columns in order (and, on PostgreSQL,
    the values its index includes)."""
    if isinstance(store, SQLiteStore):
        columns = sql_rows(
            store,
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
            "WHERE m.type = 'table' AND m.name LIKE 'rollup%' AND m.name <> 'rollup_state' "
            "AND p.pk > 0 ORDER BY m.name, p.pk",
        )
        keys: dict[str, list[str]] = {}
        for table, column in columns:
            keys.setdefault(table, []).append(column)
        return sorted((table, ", ".join(names)) for table, names in keys.items())
    return sql_rows(
        store,
        "SELECT tablename, substring(indexdef FROM 'btree \\((.*)$') FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename LIKE 'rollup%%' "
        "AND tablename <> 'rollup_state' ORDER BY 1",
    )


def spec_keys(store: Any) -> list[tuple[str, str]]:
    """The same as ``rollups.SPEC`` says it: what every migration together must reach."""
    dialect = store.dialect
    keys = []
    for level, family in rollups.SPEC.tables():
        key = ", ".join(family.primary_key(dialect))
        if dialect.covering_keys:
            key += f") INCLUDE ({', '.join(rollups.value_columns(family))})"
        keys.append((family.table(level), key))
    return sorted(keys)


def check_upgraded(store: Any) -> None:
    migrations = SQLITE_MIGRATIONS if isinstance(store, SQLiteStore) else POSTGRES_MIGRATIONS
    names = [m.name for m in migrations[1:]]  # all after the first schema
    assert names[:2] == ["0002_rollups_regions_repeats", "0003_data_problems"]
    assert store.upgrade() == names
    calls = {c.record.call_sid: c.record for c in store.iter_calls()}
    assert sorted(calls) == ["CA1", "CA2", "CA3"]
    assert [(c.from_number, c.status, c.duration_s, c.mos) for c in calls.values()] == [
        (caller, status, duration, mos) for _, caller, _, status, duration, mos in OLD_CALLS
    ]
    regions = dict(sql_rows(store, "SELECT call_sid, region FROM calls"))
    assert regions == {"CA1": "US", "CA2": "US", "CA3": "GB"}
    assert_rollups_match(store)
    (repeats,) = sql_rows(store, "SELECT sum(repeats) FROM rollup_day")[0]
    assert repeats == 1  # CA2: the same caller within 24 h
    # After 0003 a call may have no duration and carries its data problems.
    fields = {"CallSid": "CA4", "AccountSid": "AC1", "From": "sip:a@example.com",
              "To": "+18005550001", "Timestamp": "Thu, 28 May 2026 20:00:00 +0000",
              "CallStatus": "completed", "AudioInMos": "9"}  # fmt: skip
    record = parse_callback(fields)
    assert store.write_batch([CallWrite(record, datetime.now(UTC))]) == [SaveResult.INSERTED]
    stored = store.get_call("AC1", "CA4")
    assert stored is not None and stored.record == record
    assert (record.duration_s, record.mos, len(record.problems)) == (None, None, 2)
    assert_rollups_match(store)
    store.close()


def test_regions_of_many_callers_are_each_callers_region() -> None:
    """Past PARALLEL_FROM callers the regions are worked out in other processes, in order."""
    rng = random.Random(5)
    prefixes = ("+1415", "+1416", "+447", "+4915", "+336", "+5511", "+7", "sip:", "")
    numbers = [f"{rng.choice(prefixes)}{rng.randint(10**6, 10**8)}" for _ in range(25_000)]
    assert len(numbers) > backfill.PARALLEL_FROM
    assert backfill.regions_of(numbers) == [region_of(n) for n in numbers]
