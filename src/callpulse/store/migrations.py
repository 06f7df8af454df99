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
