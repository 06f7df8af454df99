"""SQLite store: WAL, one writer connection (used by the writer thread), per-thread readers."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from callpulse.callback import CallRecord
from callpulse.config import SYNCHRONOUS_MODES
from callpulse.regions import region_of
from callpulse.store import checkpoint, repeats
from callpulse.store.base import CallWrite, SaveResult, WriteOp, call_key, split_new_calls
from callpulse.store.checkpoint import Checkpointer
from callpulse.store.core import DEFAULT_LIMITS, QuarantineLimits, SqlStore
from callpulse.store.dialect import SQLITE, to_epoch_ms
from callpulse.store.errors import StoreUnavailable
from callpulse.store.migrations import SQLITE_MIGRATIONS
from callpulse.store.protocols import Connection
from callpulse.store.records import prune_boundary

_NEW_COLUMNS = (
    "call_key, account_sid, call_sid, from_number, to_number, started_at, status, duration_s, "
    "mos, extra, received_at, source, problems, region, fingerprint"
)
_INSERT_NEW = (
    f"INSERT INTO calls ({_NEW_COLUMNS}, is_repeat, version) "
    f"SELECT {_NEW_COLUMNS}, {repeats.repeat_exists('b', SQLITE)}, 1 FROM ("
    + "SELECT "
    + ", ".join(f"value ->> {i} AS {name}" for i, name in enumerate(_NEW_COLUMNS.split(", ")))
    + " FROM json_each(?)) AS b WHERE NOT EXISTS (SELECT 1 FROM calls c "
    "WHERE c.call_key = b.call_key AND c.account_sid = b.account_sid "
    "AND c.call_sid = b.call_sid) "
    # Latest first: SQLite reads the whole SELECT before inserting, so an earlier call of the same
    # caller in this batch is not seen by the repeat check; inserted after, its trigger marks it.
    "ORDER BY b.started_at DESC"
)
MIGRATION_CACHE_KIB = 1 << 20  # 1 GiB of page cache, for the migrating connection only


class SQLiteStore(SqlStore):
    dialect = SQLITE
    migrations = SQLITE_MIGRATIONS

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 1000,
        quarantine_limits: QuarantineLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(quarantine_limits)
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
        self._local = threading.local()
        # Every reader connection with its thread, so close() reaches them all and those of
        # threads that ended (thread pools retire idle threads) are closed, not leaked.
        self._readers: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._readers_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout_ms / 1000,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{self._label}: {exc}") from exc
        return conn

    @property
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._readers_lock:
                live = []
                for entry in self._readers:
                    thread = entry[0]()
                    if thread is None or not thread.is_alive():
                        entry[1].close()  # its thread ended
                    else:
                        live.append(entry)
                self._readers = live
                self._readers.append((weakref.ref(threading.current_thread()), conn))
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._reader
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self._label}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection, beside the writer thread's."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A deferred transaction: one snapshot, no lock the writer waits on."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def _migrating(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own with a large page cache: a migration's one transaction writes
        gigabytes to the WAL, and with the default 2 MB cache nearly every read of a page it
        wrote goes through the WAL's frame lookup, whose cost grows with the frames."""
        conn = self._connect()
        try:
            for schema in ("main", "temp"):  # (temp: the migration's own tables and sorts)
                conn.execute(f"PRAGMA {schema}.cache_size = -{MIGRATION_CACHE_KIB}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # (SQLite ends it itself after some errors)
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self._label}: {exc}") from exc
        finally:
            conn.close()

    # -- writes -----------------------------------------------------------------------------

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={checkpoint.WAL_RESTART_FRAMES * 4096}")
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self._connect)
            self._checkpointer.start()
        return conn

    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
        if self._writer is None:
            self._writer = self._open_writer()
        conn = self._writer
        results = [SaveResult.QUARANTINED] * len(ops)
        try:
            rest = self._insert_new_calls(conn, ops, results)
            if rest:
                conn.execute("BEGIN IMMEDIATE")
                self._write_one_by_one(conn, ops, rest, results)
                conn.execute("COMMIT")
            if self._checkpointer is not None:
                self._checkpointer.restart_if_wanted(conn, self._busy_timeout_ms)
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            self._roll_back(conn)
            raise self._failure(exc) from exc
        return results

    @property
    def _label(self) -> str:
        return f"SQLite database {self.path}"

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                self._writer = None  # reconnect on the next batch

    def _insert_new_calls(
        self, conn: sqlite3.Connection, ops: Sequence[WriteOp], results: list[SaveResult]
    ) -> list[int]:
        """Insert every call of the batch that is not stored yet, in one statement that is its own
        transaction; return the indexes left for the per-call path (retries, updates, quarantine).

        sqlite3 releases the GIL around each statement step and must then win it back from the
        busy event loop, which can take a whole switch interval: one step per batch, not several
        per call, keeps that wait off every callback's latency.
        """
        first, rest = split_new_calls(ops)
        if not first:
            return rest
        rows = []
        for ident, index in first.items():
            op = ops[index]
            assert isinstance(op, CallWrite)
            rows.append(
                [call_key(*ident), *ident, *self._values(op), region_of(op.record.from_number),
                 op.fingerprint()]
            )  # fmt: skip
        # Not ASCII-escaped: a lone surrogate fails to encode here (refused) instead of being
        # stored as bytes that are not UTF-8, which no later read could decode.
        cursor = conn.execute(_INSERT_NEW, (json.dumps(rows, ensure_ascii=False),))
        if cursor.rowcount == len(rows):
            for index in first.values():
                results[index] = SaveResult.INSERTED
            return rest
        # Some calls were stored already: the rows this statement added have consecutive ids.
        newest = cursor.lastrowid or 0
        added = range(newest - cursor.rowcount + 1, newest + 1)
        ids = self._ids(conn, [row[0] for row in rows])
        for ident, index in first.items():
            if ids.get(ident) in added:
                results[index] = SaveResult.INSERTED
            else:
                rest.append(index)
        return sorted(rest)

    @staticmethod
    def _ids(conn: sqlite3.Connection, keys: Sequence[int]) -> dict[tuple[str, str], int]:
        rows = conn.execute(
            "SELECT account_sid, call_sid, id FROM calls "
            "WHERE call_key IN (SELECT value FROM json_each(?))",
            (json.dumps(keys),),
        ).fetchall()
        return {(account, sid): call_id for account, sid, call_id in rows}

    def _stored_version(
        self, conn: Connection, record: CallRecord
    ) -> tuple[Any, Any, str, list[Any]]:
        # (the one writer connection: nothing to lock against)
        lookup, params = self._locate_call(record.account_sid, record.call_sid)
        call_id, current = conn.execute(f"SELECT c.id, c.fingerprint {lookup}", params).fetchone()
        return call_id, current, "id = ?", [call_id]

    def _locate_call(self, account_sid: str, call_sid: str) -> tuple[str, list[Any]]:
        return (
            "FROM calls c WHERE c.call_key = ? AND c.account_sid = ? AND c.call_sid = ?",
            [call_key(account_sid, call_sid), account_sid, call_sid],
        )

    def _stream(
        self, query: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[tuple[Any, ...]]:
        with self._connection() as conn:
            cursor = conn.execute(query, params)
            while rows := cursor.fetchmany(batch_size):
                yield from rows

    def prune(self, cutoff: datetime) -> int:
        cutoff = prune_boundary(cutoff)
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM call_history WHERE call_id IN "
                "(SELECT id FROM calls WHERE started_at < ?)",
                (to_epoch_ms(cutoff),),
            )
            removed = conn.execute(
                "DELETE FROM calls WHERE started_at < ?", (to_epoch_ms(cutoff),)
            ).rowcount
        return int(removed)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stopping.set()
            self._checkpointer.join()
            self._checkpointer = None
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._writer.close()
            self._writer = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
            self._local = threading.local()
        for _thread, conn in readers:
            conn.close()
