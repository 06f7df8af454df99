"""What differs between the backends in SQL text and in how values travel: one `Dialect` each.

Everything else about the SQL is shared; code asks the dialect, never which backend it is on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REPEAT_WINDOW_MS = 86_400_000  # a caller calling again within 24 h is a repeat caller
MIGRATION_LOCK = 0x63616C6C70  # PostgreSQL advisory lock key: one upgrader at a time
ALERT_ROUND_LOCK = 0x616C657274  # and one alert evaluation round at a time
COMPACTION_LOCK = 0x636F6D7061  # rollup compaction against the writes of calls


def to_epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _same(value: Any) -> Any:
    return value


def _sqlite_refuses(exc: BaseException) -> bool:
    # Errors about the data itself; every other sqlite3.Error (locked, I/O, disk full) is an
    # outage. A value sqlite3 cannot bind (an int beyond 64 bits: OverflowError; a lone
    # surrogate: UnicodeEncodeError) fails before it reaches the database: refused the same.
    refusals = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError)
    return isinstance(exc, (*refusals, ValueError, OverflowError))


def _postgres_refuses(exc: BaseException) -> bool:
    import psycopg  # (imported where PostgreSQL is used only)

    # A value psycopg cannot send (a lone surrogate: UnicodeEncodeError) is refused the same.
    refusals = (psycopg.DataError, psycopg.IntegrityError)
    return isinstance(exc, (*refusals, ValueError, OverflowError))


@dataclass(frozen=True)
class Dialect:
    """SQL fragments and value codecs of one backend."""

    param: str  # placeholder
    int_type: str
    real_type: str
    serial_key: str  # an ``id`` column numbered by the database, the primary key
    table_suffix: str  # WITHOUT ROWID keeps SQLite rollups clustered by bucket
    # PostgreSQL: rollup values in the primary key's index too (INCLUDE), so reads of a range are
    # index-only scans instead of a heap page per row (SQLite's WITHOUT ROWID tables are so).
    covering_keys: bool
    ms_of: str  # epoch milliseconds of a call's started_at, "{c}" the column
    ms_param: str  # a call-time comparison value from an epoch-ms parameter
    mos_bin: str  # MOS to its 0.01 bin (floored: 3.497 is below 3.5), "{m}" the value
    slot: str | None  # PostgreSQL: one set of rows per backend, so writers never contend
    row_id: str  # a calls column that orders calls with equal start times
    mod: str  # the modulo operator in a query with parameters (psycopg wants %% there)
    true: str
    false: str
    flag_of: str  # a condition "{b}" as a value of is_repeat (0/1 on SQLite, boolean on PostgreSQL)
    repeat_window: str  # REPEAT_WINDOW_MS in the type of started_at
    # The window frame of the calls that started in the repeat window before a row's start: from
    # REPEAT_WINDOW_MS before it to the smallest step before it (ms, or PostgreSQL's microsecond).
    repeat_frame: str
    # How call times (and other timestamps) go in and come back, and JSON columns come back.
    encode_time: Callable[[datetime], Any]
    decode_time: Callable[[Any], datetime]
    decode_json: Callable[[Any], Any]
    # When a migration was applied (SQLite keeps ISO text, as it always has).
    stamp_type: str
    encode_stamp: Callable[[datetime], Any]
    decode_stamp: Callable[[Any], datetime]
    octets_of: str  # the stored size in bytes of a text or blob column "{v}"
    json_octets_of: str  # the same of a JSON column
    # Locks: the one migration run at a time, and writes to calls held off (a rebuild); None
    # where the transaction itself already holds the database's one write lock.
    migration_lock: str | None
    calls_lock: str | None
    round_lock: str | None  # taken if free (true) or not (false): one alert round at a time
    # Taken by compaction (and a rebuild), the shared form by every write of calls: each waits
    # for the other's commit, in arrival order. None where BEGIN IMMEDIATE is the one lock.
    compaction_lock: str | None
    history_keys: str  # call_history's columns before a version's own ones
    stored_ms: Callable[[Any], int]  # a stored call time as epoch ms
    # Whether a failed write means the database refuses the data (retrying will not help);
    # every other driver error is an outage.
    refuses: Callable[[BaseException], bool]

    def ms(self, column: str) -> str:
        return self.ms_of.format(c=column)

    def flag(self, condition: str) -> str:
        return self.flag_of.format(b=condition)

    def octets(self, column: str, json_column: bool = False) -> str:
        return (self.json_octets_of if json_column else self.octets_of).format(v=column)


SQLITE = Dialect(
    param="?",
    int_type="INTEGER",
    real_type="REAL",
    serial_key="id INTEGER PRIMARY KEY",
    table_suffix=" WITHOUT ROWID",
    covering_keys=False,
    ms_of="{c}",
    ms_param="?",
    mos_bin="CAST({m} * 100 + 1e-9 AS INTEGER)",  # floor for positive values
    slot=None,
    row_id="id",
    mod="%",
    true="1",
    false="0",
    flag_of="CASE WHEN {b} THEN 1 ELSE 0 END",
    repeat_window=str(REPEAT_WINDOW_MS),
    repeat_frame=f"RANGE BETWEEN {REPEAT_WINDOW_MS} PRECEDING AND 1 PRECEDING",
    encode_time=to_epoch_ms,
    decode_time=from_epoch_ms,
    decode_json=json.loads,
    stamp_type="TEXT",
    encode_stamp=datetime.isoformat,
    decode_stamp=datetime.fromisoformat,
    # length() of a BLOB reads no content; of TEXT it counts characters (mostly ASCII here)
    octets_of="length({v})",
    json_octets_of="length({v})",
    migration_lock=None,  # BEGIN IMMEDIATE
    calls_lock=None,
    round_lock=None,  # BEGIN IMMEDIATE: a racing round waits, then sees what the other stored
    compaction_lock=None,
    history_keys="",
    stored_ms=int,
    refuses=_sqlite_refuses,
)
POSTGRES = Dialect(
    param="%s",
    int_type="bigint",
    real_type="double precision",
    serial_key="id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    table_suffix="",
    covering_keys=True,
    ms_of="floor(extract(epoch FROM {c}) * 1000)::bigint",
    ms_param="to_timestamp(%s / 1000.0)",
    mos_bin="floor({m} * 100 + 1e-9)::integer",
    slot="pg_backend_pid()",
    row_id="call_id",
    mod="%%",
    true="true",
    false="false",
    flag_of="{b}",
    repeat_window="interval '24 hours'",
    repeat_frame=(
        "RANGE BETWEEN interval '24 hours' PRECEDING AND interval '1 microsecond' PRECEDING"
    ),
    encode_time=_same,
    decode_time=_same,
    decode_json=_same,
    stamp_type="timestamptz",
    encode_stamp=_same,
    decode_stamp=_same,
    octets_of="octet_length({v})",
    json_octets_of="octet_length({v}::text)",
    migration_lock=f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})",
    calls_lock="LOCK TABLE calls IN EXCLUSIVE MODE",  # reads go on, writes wait
    round_lock=f"SELECT pg_try_advisory_xact_lock({ALERT_ROUND_LOCK})",
    compaction_lock=f"SELECT pg_advisory_xact_lock({COMPACTION_LOCK})",
    history_keys="account_sid, ",  # (PostgreSQL's call_history holds the account too)
    stored_ms=to_epoch_ms,
    refuses=_postgres_refuses,
)
