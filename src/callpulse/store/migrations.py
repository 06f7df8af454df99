"""Named, ordered schema migrations; each is applied once and recorded in ``migrations``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callpulse.store import alerts, backfill, rollup_migrations, rollup_triggers, rollups
from callpulse.store.dialect import POSTGRES, SQLITE
from callpulse.store.migrating import Migration, Step, run_step

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "Migration", "Step", "run_step"]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_calls_history_quarantine",
        (
            # Rows are appended in arrival order (rowid); the only random-key index is the compact
            # 8-byte call_key, so the hot part of every B-tree stays small at millions of rows.
            """CREATE TABLE calls (
                id INTEGER PRIMARY KEY,
                call_key INTEGER NOT NULL,
                account_sid TEXT NOT NULL,
                call_sid TEXT NOT NULL,
                from_number TEXT NOT NULL,
                to_number TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                status TEXT NOT NULL,
                duration_s INTEGER NOT NULL,
                mos REAL NOT NULL,
                extra TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                source TEXT NOT NULL,
                fingerprint INTEGER NOT NULL,
                version INTEGER NOT NULL
            )""",
            "CREATE INDEX calls_by_key ON calls (call_key)",
            "CREATE INDEX calls_by_start ON calls (started_at)",
            """CREATE TABLE call_history (
                id INTEGER PRIMARY KEY,
                call_id INTEGER NOT NULL,
                from_number TEXT NOT NULL,
                to_number TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                status TEXT NOT NULL,
                duration_s INTEGER NOT NULL,
                mos REAL NOT NULL,
                extra TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                source TEXT NOT NULL,
                fingerprint INTEGER NOT NULL,
                version INTEGER NOT NULL,
                superseded_at INTEGER NOT NULL
            )""",
            "CREATE INDEX call_history_by_call ON call_history (call_id)",
            """CREATE TABLE quarantine (
                id INTEGER PRIMARY KEY,
                received_at INTEGER NOT NULL,
                reason TEXT NOT NULL,
                errors TEXT NOT NULL,
                method TEXT NOT NULL,
                url TEXT NOT NULL,
                headers TEXT NOT NULL,
                body BLOB NOT NULL,
                body_size INTEGER NOT NULL
            )""",
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO counters (name, value) VALUES ('quarantine_dropped', 0)",
        ),
    ),
)


_SQLITE_CALLS_V2 = """CREATE TABLE calls_v2 (
    id INTEGER PRIMARY KEY,
    call_key INTEGER NOT NULL,
    account_sid TEXT NOT NULL,
    call_sid TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    duration_s INTEGER NOT NULL,
    mos REAL,
    extra TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    version INTEGER NOT NULL,
    region TEXT NOT NULL DEFAULT 'unknown',
    is_repeat INTEGER NOT NULL DEFAULT 0
)"""
_SQLITE_HISTORY_V2 = """CREATE TABLE call_history_v2 (
    id INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    duration_s INTEGER NOT NULL,
    mos REAL,
    extra TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    version INTEGER NOT NULL,
    superseded_at INTEGER NOT NULL
)"""
_V1_CALL_COLUMNS = (
    "id, call_key, account_sid, call_sid, from_number, to_number, started_at, status, "
    "duration_s, mos, extra, received_at, source, fingerprint, version"
)
_V1_HISTORY_COLUMNS = (
    "id, call_id, from_number, to_number, started_at, status, duration_s, mos, extra, "
    "received_at, source, fingerprint, version, superseded_at"
)

# Calls recovered from the Calls API may have no MOS; SQLite changes a column's NOT NULL only by
# copying the table. Region and repeat flags are stored per call so rollups can count them; they
# and the rollups are computed before the triggers exist, so that no trigger fires for old calls.
SQLITE_MIGRATIONS = (
    *SQLITE_MIGRATIONS,
    Migration(
        "0002_rollups_regions_repeats",
        (
            _SQLITE_CALLS_V2,
            *backfill.sqlite_copy(_V1_CALL_COLUMNS),
            "DROP TABLE calls",
            "ALTER TABLE calls_v2 RENAME TO calls",
            "CREATE INDEX calls_by_key ON calls (call_key)",
            "CREATE INDEX calls_by_start ON calls (started_at)",
            "CREATE INDEX calls_by_caller ON calls (from_number, started_at)",
            _SQLITE_HISTORY_V2,
            f"INSERT INTO call_history_v2 ({_V1_HISTORY_COLUMNS}) "
            f"SELECT {_V1_HISTORY_COLUMNS} FROM call_history",
            "DROP TABLE call_history",
            "ALTER TABLE call_history_v2 RENAME TO call_history",
            "CREATE INDEX call_history_by_call ON call_history (call_id)",
            *rollups.tables(SQLITE, rollups.SPEC_0002),
            *rollups.build_statements(SQLITE, rollups.SPEC_0002),
            *rollup_triggers.sqlite_triggers(rollups.SPEC_0002),
        ),
    ),
)


# call_keys is the one global uniqueness point across processes and hosts; calls is partitioned
# by month of start time. Every key includes account_sid so a distributed PostgreSQL (Citus) can
# shard all tables on it.
POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_calls_history_quarantine",
        (
            """CREATE TABLE call_keys (
                account_sid text NOT NULL,
                call_sid text NOT NULL,
                call_id bigint GENERATED ALWAYS AS IDENTITY,
                started_at timestamptz NOT NULL,
                fingerprint bigint NOT NULL,
                PRIMARY KEY (account_sid, call_sid)
            )""",
            "CREATE INDEX call_keys_by_start ON call_keys (started_at)",
            """CREATE TABLE calls (
                call_id bigint NOT NULL,
                account_sid text NOT NULL,
                call_sid text NOT NULL,
                from_number text NOT NULL,
                to_number text NOT NULL,
                started_at timestamptz NOT NULL,
                status text NOT NULL,
                duration_s integer NOT NULL,
                mos double precision NOT NULL,
                extra json NOT NULL,  -- json, not jsonb: keeps NUL characters, text as sent
                received_at timestamptz NOT NULL,
                source text NOT NULL,
                fingerprint bigint NOT NULL,
                version integer NOT NULL,
                PRIMARY KEY (account_sid, started_at, call_id)
            ) PARTITION BY RANGE (started_at)""",
            "CREATE INDEX calls_by_start ON calls (started_at)",
            """CREATE TABLE call_history (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                call_id bigint NOT NULL,
                account_sid text NOT NULL,
                from_number text NOT NULL,
                to_number text NOT NULL,
                started_at timestamptz NOT NULL,
                status text NOT NULL,
                duration_s integer NOT NULL,
                mos double precision NOT NULL,
                extra json NOT NULL,  -- json, not jsonb: keeps NUL characters, text as sent
                received_at timestamptz NOT NULL,
                source text NOT NULL,
                fingerprint bigint NOT NULL,
                version integer NOT NULL,
                superseded_at timestamptz NOT NULL
            )""",
            "CREATE INDEX call_history_by_call ON call_history (call_id)",
            """CREATE TABLE quarantine (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                received_at timestamptz NOT NULL,
                reason text NOT NULL,
                errors json NOT NULL,  -- json, not jsonb: keeps NUL characters, text as sent
                method text NOT NULL,
                url text NOT NULL,
                headers json NOT NULL,  -- json, not jsonb: keeps NUL characters, text as sent
                body bytea NOT NULL,
                body_size integer NOT NULL
            )""",
            "CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL)",
            "INSERT INTO counters (name, value) VALUES ('quarantine_dropped', 0)",
        ),
    ),
)
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration(
        "0002_rollups_regions_repeats",
        (
            "ALTER TABLE calls ALTER COLUMN mos DROP NOT NULL",
            "ALTER TABLE call_history ALTER COLUMN mos DROP NOT NULL",
            "ALTER TABLE calls ADD COLUMN region text NOT NULL DEFAULT 'unknown'",
            "ALTER TABLE calls ADD COLUMN is_repeat boolean NOT NULL DEFAULT false",
            "SET LOCAL work_mem = '256MB'",  # the window's sort and the rollups' groups in memory
            *backfill.postgres_update(),
            "CREATE INDEX calls_by_caller ON calls (from_number, started_at)",
            *rollups.tables(POSTGRES, rollups.SPEC_0002),
            *rollups.build_statements(POSTGRES, rollups.SPEC_0002),
            *rollup_triggers.postgres_triggers(rollups.SPEC_0002),
        ),
    ),
)


def _sqlite_drop_not_null(table: str, column_definition: str) -> Callable[[Any], None]:
    """Drop a NOT NULL constraint in place, as SQLite documents for constraint-only changes
    (https://www.sqlite.org/lang_altertable.html#otheralter): the rows on disk do not change,
    so a table of millions of calls is not copied."""

    def edit(conn: Any) -> None:
        (version,) = conn.execute("PRAGMA schema_version").fetchone()
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        new_sql = sql.replace(f"{column_definition} NOT NULL", column_definition, 1)
        if new_sql == sql:
            raise RuntimeError(f"{table}: no '{column_definition} NOT NULL' in {sql!r}")
        conn.execute("PRAGMA writable_schema = ON")
        try:
            conn.execute(
                "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?",
                (new_sql, table),
            )
            conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
        finally:
            conn.execute("PRAGMA writable_schema = OFF")
        (check,) = conn.execute(f"PRAGMA quick_check({table})").fetchone()
        if check != "ok":
            raise RuntimeError(f"{table}: quick_check after the schema edit: {check}")

    return edit


# Data problems: a signed callback is stored whatever its measurement fields hold, so a call may
# have no duration, and carries the problems of its fields (JSON text, '[]' when none).
# PostgreSQL gets a default partition, so a stray start time cannot create partitions at will.
SQLITE_MIGRATIONS = (
    *SQLITE_MIGRATIONS,
    Migration(
        "0003_data_problems",
        (
            _sqlite_drop_not_null("calls", "duration_s INTEGER"),
            _sqlite_drop_not_null("call_history", "duration_s INTEGER"),
            "ALTER TABLE calls ADD COLUMN problems TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE call_history ADD COLUMN problems TEXT NOT NULL DEFAULT '[]'",
            *rollup_migrations.metric_columns_0003(SQLITE),
            "DROP TRIGGER calls_rollup_insert",
            "DROP TRIGGER calls_rollup_update",
            *rollup_triggers.sqlite_triggers(rollups.SPEC_0003),
        ),
    ),
)
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration(
        "0003_data_problems",
        (
            "ALTER TABLE calls ALTER COLUMN duration_s DROP NOT NULL",
            "ALTER TABLE call_history ALTER COLUMN duration_s DROP NOT NULL",
            "ALTER TABLE calls ADD COLUMN problems text NOT NULL DEFAULT '[]'",
            "ALTER TABLE call_history ADD COLUMN problems text NOT NULL DEFAULT '[]'",
            *rollup_migrations.metric_columns_0003(POSTGRES),
            "DROP TRIGGER calls_rollup_insert ON calls",
            "DROP TRIGGER calls_rollup_update ON calls",
            "DROP FUNCTION calls_rollup_insert()",
            "DROP FUNCTION calls_rollup_update()",
            *rollup_triggers.postgres_triggers(rollups.SPEC_0003),
            "CREATE TABLE calls_default PARTITION OF calls DEFAULT",
        ),
    ),
)

# Sessions ended by log-out before they expire; the nonce is the session cookie's middle part.
SQLITE_MIGRATIONS = (
    *SQLITE_MIGRATIONS,
    Migration(
        "0004_session_revocations",
        (
            """CREATE TABLE revoked_sessions (
                nonce TEXT PRIMARY KEY,
                expires_at INTEGER NOT NULL  -- epoch ms
            )""",
        ),
    ),
)
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration(
        "0004_session_revocations",
        (
            """CREATE TABLE revoked_sessions (
                nonce text PRIMARY KEY,
                expires_at timestamptz NOT NULL
            )""",
        ),
    ),
)

# Alerts: current state per (rule, scope), the transitions, silences and the notification outbox.
SQLITE_MIGRATIONS = (
    *SQLITE_MIGRATIONS,
    Migration("0005_alerts", tuple(alerts.tables(SQLITE))),
)
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration("0005_alerts", tuple(alerts.tables(POSTGRES))),
)

# A week level, so a 30-day range reads about a dozen buckets; per-number histograms keyed by
# number first, so one number's histogram over a range is one contiguous read.
_TRIGGERS = rollup_triggers.TRIGGERS
SQLITE_MIGRATIONS = (
    *SQLITE_MIGRATIONS,
    Migration(
        "0006_rollup_weeks_numbers_first",
        (
            *(f"DROP TRIGGER {name}" for name in _TRIGGERS),
            *rollup_migrations.week_and_number_first(SQLITE),
            *rollup_triggers.sqlite_triggers(rollups.SPEC_0006),
        ),
    ),
)
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration(
        "0006_rollup_weeks_numbers_first",
        (
            *(f"DROP TRIGGER {name} ON calls" for name in _TRIGGERS),
            *(f"DROP FUNCTION {name}()" for name in _TRIGGERS),
            *rollup_migrations.week_and_number_first(POSTGRES),
            *rollup_triggers.postgres_triggers(rollups.SPEC_0006),
        ),
    ),
)

# PostgreSQL only: rollup primary keys that include the values, so a range of rollups is read
# from the index alone (SQLite's rollup tables are their keys' B-trees already).
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration("0007_covering_rollup_keys", tuple(rollup_migrations.covering_keys(POSTGRES))),
)

# The writer upserts minutes only; the coarser levels take the finished minutes from a
# compaction, and calls that started before it directly (rollup_state.compacted_until).
SQLITE_MIGRATIONS = (
    *SQLITE_MIGRATIONS,
    Migration(
        "0008_compacted_rollups",
        (
            *(f"DROP TRIGGER {name}" for name in _TRIGGERS),
            *rollup_migrations.compaction_state(SQLITE),
            *rollup_triggers.sqlite_triggers(),
        ),
    ),
)
POSTGRES_MIGRATIONS = (
    *POSTGRES_MIGRATIONS,
    Migration(
        "0008_compacted_rollups",
        (
            *(f"DROP TRIGGER {name} ON calls" for name in _TRIGGERS),
            *(f"DROP FUNCTION {name}()" for name in _TRIGGERS),
            *rollup_migrations.compaction_state(POSTGRES),
            *rollup_triggers.postgres_triggers(),
        ),
    ),
)
