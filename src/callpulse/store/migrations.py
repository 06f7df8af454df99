"""Named, ordered schema migrations; each is applied once and recorded in ``migrations``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS = (
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


# call_keys is the one global uniqueness point across processes and hosts; calls is partitioned
# by month of start time. Every key includes account_sid so a distributed PostgreSQL (Citus) can
# shard all tables on it.
POSTGRES_MIGRATIONS = (
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
