"""Upgrading a database that holds calls from the first schema: nothing lost, rollups built."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from callpulse.callback import parse_callback
from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.base import CallWrite, SaveResult
from callpulse.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, run_step
from callpulse.store.postgres import PostgresStore
from callpulse.store.sqlite import SQLiteStore
from tests.store.test_rollups import assert_rollups_match
from tests.support import sql_rows

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


def test_sqlite_upgrade_keeps_calls_and_builds_rollups(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(Settings(database_url=url))
    assert isinstance(store, SQLiteStore)
    with store._transaction() as conn:
        old_schema(store, conn, SQLITE_MIGRATIONS, "?", datetime.now(UTC).isoformat())
        for n, (sid, caller, started, status, duration, mos) in enumerate(OLD_CALLS):
            conn.execute(
                "INSERT INTO calls (call_key, account_sid, call_sid, from_number, to_number, "
                "started_at, status, duration_s, mos, extra, received_at, source, fingerprint, "
                "version) VALUES (?, 'AC1', ?, ?, '+18005550001', ?, ?, ?, ?, '{}', 0, "
                "'callback', ?, 1)",
                (n, sid, caller, started * 1000, status, duration, mos, n),
            )
    check_upgraded(store)


def test_postgres_upgrade_keeps_calls_and_builds_rollups(postgres_url: str) -> None:
    store = open_store(Settings(database_url=postgres_url))
    assert isinstance(store, PostgresStore)
    with store._conn() as conn, conn.transaction():
        old_schema(store, conn, POSTGRES_MIGRATIONS, "%s", datetime.now(UTC))
    store.ensure_partitions({datetime(2026, 5, 1, tzinfo=UTC)})
    with store._conn() as conn, conn.transaction():
        for sid, caller, started, status, duration, mos in OLD_CALLS:
            moment = datetime.fromtimestamp(started, UTC)
            (call_id,) = conn.execute(
                "INSERT INTO call_keys (account_sid, call_sid, started_at, fingerprint) "
                "VALUES ('AC1', %s, %s, 0) RETURNING call_id",
                (sid, moment),
            ).fetchone()
            conn.execute(
                "INSERT INTO calls (call_id, account_sid, call_sid, from_number, to_number, "
                "started_at, status, duration_s, mos, extra, received_at, source, fingerprint, "
                "version) VALUES (%s, 'AC1', %s, %s, '+18005550001', %s, %s, %s, %s, '{}', "
                "now(), 'callback', 0, 1)",
                (call_id, sid, caller, moment, status, duration, mos),
            )
    check_upgraded(store)


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
