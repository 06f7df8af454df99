"""The one SQL store: everything both backends do alike, written once over the ``Dialect``.

A backend (``sqlite.py``, ``postgres.py``) adds only how it connects and the strategies where
the databases really differ: the batch insert and key claiming, partitions, locks.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from callpulse.callback import CallRecord
from callpulse.regions import region_of
from callpulse.store import migrating, quarantine, repeats, rollups
from callpulse.store.alerts import AlertBook
from callpulse.store.base import RECONCILED, CallWrite, QuarantineWrite, SaveResult, Store, WriteOp
from callpulse.store.dialect import REPEAT_WINDOW_MS, to_epoch_ms
from callpulse.store.errors import StoreRefused, StoreUnavailable
from callpulse.store.migrating import Migration
from callpulse.store.problems import problems_to_json
from callpulse.store.protocols import Connection
from callpulse.store.records import (
    EVERY_CALL,
    CallSelection,
    MigrationState,
    QuarantineEntry,
    StoredCall,
    quarantine_entry_from_row,
    stored_call_from_row,
)

_HISTORY_COLUMNS = (
    "h.from_number, h.to_number, h.started_at, h.status, h.duration_s, h.mos, h.extra, "
    "h.received_at, h.source, h.version, h.problems"
)
_VERSION_COLUMNS = (
    "from_number, to_number, started_at, status, duration_s, mos, extra, received_at, source, "
    "problems, fingerprint, version"
)
_CALL_COLUMNS = _HISTORY_COLUMNS.replace("h.", "c.")
_QUARANTINE_SELECT = (
    "SELECT id, received_at, reason, errors, method, url, headers, body, body_size FROM quarantine"
)


@dataclass(frozen=True)
class QuarantineLimits:
    """The quarantine's bounds: entries, age, each entry's body, total bytes."""

    max_entries: int = 10000
    retention: timedelta = timedelta(days=30)
    max_body_bytes: int = quarantine.DEFAULT_MAX_BODY_BYTES
    max_bytes: int = quarantine.DEFAULT_MAX_BYTES


DEFAULT_LIMITS = QuarantineLimits()


class SqlStore(Store):
    migrations: Sequence[Migration]

    def __init__(self, limits: QuarantineLimits) -> None:
        self._quarantine = limits
        self.quarantine_max_body_bytes = limits.max_body_bytes

    # -- what a backend provides ------------------------------------------------------------

    @abc.abstractmethod
    def _connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for this thread, each statement its own transaction; driver errors
        come out as StoreUnavailable."""

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction beside the writer's, committed at the end."""

    @abc.abstractmethod
    def _stream(
        self, query: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[tuple[Any, ...]]:
        """The rows of a long read, ``batch_size`` at a time (exports)."""

    @abc.abstractmethod
    def _stored_version(
        self, conn: Connection, record: CallRecord
    ) -> tuple[Any, Any, str, list[Any]]:
        """The stored row of a call whose key is claimed, locked until the transaction ends:
        its row id, its fingerprint, and a condition on ``calls`` finding it with parameters."""

    def _moved(self, conn: Connection, record: CallRecord, fingerprint: int) -> None:
        """After an update: whatever else keeps the call's start and fingerprint."""

    @property
    @abc.abstractmethod
    def _label(self) -> str:
        """The database in messages (never with a password)."""

    def _failure(self, exc: BaseException) -> StoreRefused | StoreUnavailable:
        """A failed write as the error callers tell apart, in one line."""
        if self.dialect.refuses(exc):
            return StoreRefused(" ".join(f"{self._label} refused: {exc}".split()))
        return StoreUnavailable(" ".join(f"{self._label}: {exc}".split()))

    def _snapshot(self) -> contextlib.AbstractContextManager[Connection]:
        """A read-only transaction: one consistent view (a write transaction unless the
        backend has a cheaper one)."""
        return self._transaction()

    def _schema_ready(self) -> None:
        """After ``upgrade``, whatever the schema is: what the backend prepares ahead."""

    # -- reads ------------------------------------------------------------------------------

    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return list(conn.execute(query, params).fetchall())

    def _call(self, account_sid: str, call_sid: str, row: Sequence[Any]) -> StoredCall:
        return stored_call_from_row(account_sid, call_sid, row, self.dialect)

    def get_call(self, account_sid: str, call_sid: str) -> StoredCall | None:
        lookup, params = self._locate_call(account_sid, call_sid)
        rows = self._rows(f"SELECT {_CALL_COLUMNS} {lookup}", params)
        return self._call(account_sid, call_sid, rows[0]) if rows else None

    def call_history(self, account_sid: str, call_sid: str) -> list[StoredCall]:
        lookup, params = self._locate_call(account_sid, call_sid)
        rows = self._rows(
            f"SELECT {_HISTORY_COLUMNS} FROM call_history h "
            f"WHERE h.call_id = (SELECT c.{self.dialect.row_id} {lookup}) ORDER BY h.version",
            params,
        )
        return [self._call(account_sid, call_sid, row) for row in rows]

    def iter_calls(
        self, batch_size: int = 1000, selection: CallSelection = EVERY_CALL
    ) -> Iterator[StoredCall]:
        where, params = selection.where(self.dialect)
        query = (
            f"SELECT c.account_sid, c.call_sid, {_CALL_COLUMNS} "
            f"FROM calls c{where} ORDER BY c.started_at, c.{self.dialect.row_id}"
        )
        for row in self._stream(query, params, batch_size):
            yield self._call(row[0], row[1], row[2:])

    def count_calls(self, selection: CallSelection = EVERY_CALL) -> int:
        where, params = selection.where(self.dialect)
        return int(self._rows(f"SELECT count(*) FROM calls{where}", params)[0][0])

    def ping(self) -> None:
        self._rows("SELECT count(*) FROM migrations")

    def compact_rollups(self, until_ms: int) -> int:
        """Sum the minutes before ``until_ms`` (down to a whole minute) that are not yet in the
        coarser levels into them; return compacted_until as it then stands."""
        minute, p = rollups.LEVELS["minute"], self.dialect.param
        until = until_ms - until_ms % minute
        with self._transaction() as conn:
            if self.dialect.compaction_lock:  # (waits for the writers in progress, they for it)
                conn.execute(self.dialect.compaction_lock)
            (since,) = conn.execute("SELECT compacted_until FROM rollup_state").fetchone()
            if until <= since:
                return int(since)
            conn.execute(f"UPDATE rollup_state SET compacted_until = {p}", (until,))
            for statement, params in rollups.compact_statements(self.dialect, since, until):
                conn.execute(statement, params)
        return until

    def rebuild_rollups(self) -> None:
        with self._transaction() as conn:
            if self.dialect.calls_lock:
                conn.execute(self.dialect.calls_lock)
            if self.dialect.compaction_lock:  # (reads compacted_until, which then stays)
                conn.execute(self.dialect.compaction_lock)
            for statement in rollups.rebuild_statements(self.dialect):
                conn.execute(statement)

    # -- schema -----------------------------------------------------------------------------

    def _applied(self, conn: Connection) -> dict[str, datetime]:
        return migrating.applied(conn, self.dialect)

    def _migrating(self) -> contextlib.AbstractContextManager[Connection]:
        """The transaction migrations run in (a backend may tune a connection of its own)."""
        return self._transaction()

    def upgrade(self, progress: migrating.Progress | None = None) -> list[str]:
        """Apply pending migrations, one upgrader at a time; return the names applied."""
        applied_now: list[str] = []
        if self.pending_migrations():  # (else no write lock: `serve` starts while the DB is busy)
            with self._migrating() as conn:
                applied_now = migrating.apply_pending(conn, self.dialect, self.migrations, progress)
        self._schema_ready()
        return applied_now

    def pending_migrations(self) -> list[str]:
        with self._connection() as conn:
            return [m.name for m in migrating.pending(conn, self.dialect, self.migrations)]

    def migration_status(self) -> list[MigrationState]:
        with self._connection() as conn:
            applied = self._applied(conn)
        return [MigrationState(m.name, applied.get(m.name)) for m in self.migrations]

    # -- the per-call path's shared parts ----------------------------------------------------

    def _values(self, op: CallWrite) -> tuple[Any, ...]:
        r, encode = op.record, self.dialect.encode_time
        return (
            r.from_number,
            r.to_number,
            encode(r.started_at),
            r.status,
            r.duration_s,
            r.mos,
            json.dumps(r.extra, sort_keys=True),
            encode(op.received_at),
            op.source,
            problems_to_json(r.problems),
        )

    def _write_known(self, conn: Connection, op: CallWrite) -> SaveResult:
        """A call whose key is stored already: a retry, an update, or a recovered call."""
        r, d = op.record, self.dialect
        if op.source == RECONCILED:
            return SaveResult.DUPLICATE  # recovered calls never change what a callback stored
        fingerprint = op.fingerprint()
        call_id, current, where, located = self._stored_version(conn, r)
        p = d.param
        if (
            current == fingerprint
            or conn.execute(
                f"SELECT 1 FROM call_history WHERE call_id = {p} AND fingerprint = {p}",
                (call_id, fingerprint),
            ).fetchone()
        ):
            return SaveResult.DUPLICATE  # a retry, possibly late, of a version already seen
        columns = d.history_keys + _VERSION_COLUMNS
        # (fetchall: SQLite finishes a statement with RETURNING only once its rows are read)
        old = conn.execute(
            f"INSERT INTO call_history (call_id, {columns}, superseded_at) "
            f"SELECT {d.row_id}, {columns}, {p} FROM calls WHERE {where} "
            "RETURNING from_number, started_at",
            (d.encode_time(op.received_at), *located),
        ).fetchall()
        conn.execute(
            f"UPDATE calls SET from_number = {p}, to_number = {p}, started_at = {p}, "
            f"status = {p}, duration_s = {p}, mos = {p}, extra = {p}, received_at = {p}, "
            f"source = {p}, problems = {p}, region = {p}, fingerprint = {p}, "
            f"version = version + 1 WHERE {where}",
            (*self._values(op), region_of(r.from_number), fingerprint, *located),
        )
        self._moved(conn, r, fingerprint)
        old_from, old_ms = (old[0][0], d.stored_ms(old[0][1])) if old else (None, None)
        new_ms = to_epoch_ms(r.started_at)
        if (old_from, old_ms) != (r.from_number, new_ms):
            for caller, start in ((old_from, old_ms), (r.from_number, new_ms)):
                if start is not None:
                    conn.execute(
                        self._refresh_repeats,
                        (r.account_sid, caller, start, start + REPEAT_WINDOW_MS),
                    )
        return SaveResult.UPDATED

    @functools.cached_property
    def _refresh_repeats(self) -> str:
        return repeats.refresh_repeats(self.dialect)

    def _write_one_by_one(
        self,
        conn: Connection,
        ops: Sequence[WriteOp],
        indexes: Sequence[int],
        results: list[SaveResult],
    ) -> None:
        """Write ``ops[i]`` for each index in order, inside the caller's transaction."""
        for index in indexes:
            op = ops[index]
            results[index] = (
                self._write_known(conn, op)
                if isinstance(op, CallWrite)
                else self._write_quarantine(conn, op)
            )
        if any(isinstance(ops[index], QuarantineWrite) for index in indexes):
            self._enforce_quarantine_bounds(conn)

    def _write_quarantine(self, conn: Connection, op: QuarantineWrite) -> SaveResult:
        op = quarantine.bounded(op, self.quarantine_max_body_bytes)
        p = self.dialect.param
        conn.execute(
            "INSERT INTO quarantine (received_at, reason, errors, method, url, headers, body, "
            f"body_size) VALUES ({', '.join([p] * 8)})",
            (
                self.dialect.encode_time(op.received_at),
                op.reason,
                json.dumps(op.errors),
                op.method,
                op.url,
                json.dumps(op.headers),
                op.body,
                op.body_size,
            ),
        )
        return SaveResult.QUARANTINED

    def _enforce_quarantine_bounds(self, conn: Connection) -> None:
        d = self.dialect
        p = d.param
        size = " + ".join(
            [d.octets("body"), d.octets("headers", True), d.octets("url"), d.octets("errors", True)]
        )
        # The newest entry that no longer fits in the bytes with all newer ones (0: none).
        over_bytes = (
            f"SELECT coalesce(max(id), 0) FROM (SELECT id, sum({size}) "
            "OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS total FROM quarantine) AS sized "
            f"WHERE total > {p}"
        )
        cutoff = d.encode_time(datetime.now(UTC) - self._quarantine.retention)
        dropped = conn.execute(
            f"DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - {p} "
            f"OR received_at < {p} OR id <= ({over_bytes})",
            (self._quarantine.max_entries, cutoff, self._quarantine.max_bytes),
        ).rowcount
        if dropped:
            conn.execute(
                f"UPDATE counters SET value = value + {p} WHERE name = 'quarantine_dropped'",
                (dropped,),
            )

    # -- quarantine -------------------------------------------------------------------------

    def _entry(self, row: Sequence[Any]) -> QuarantineEntry:
        return quarantine_entry_from_row(row, self.dialect)

    def list_quarantine(
        self, limit: int = 50, before_id: int | None = None
    ) -> list[QuarantineEntry]:
        p = self.dialect.param
        rows = self._rows(
            f"{_QUARANTINE_SELECT} WHERE id < {p} ORDER BY id DESC LIMIT {p}",
            (before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [self._entry(row) for row in rows]

    def get_quarantine(self, entry_id: int) -> QuarantineEntry | None:
        rows = self._rows(f"{_QUARANTINE_SELECT} WHERE id = {self.dialect.param}", (entry_id,))
        return self._entry(rows[0]) if rows else None

    def delete_quarantine(self, entry_id: int) -> None:
        with self._transaction() as conn:
            conn.execute(f"DELETE FROM quarantine WHERE id = {self.dialect.param}", (entry_id,))

    def quarantine_counts(self) -> tuple[int, int]:
        ((kept, dropped),) = self._rows(
            "SELECT (SELECT count(*) FROM quarantine), "
            "(SELECT value FROM counters WHERE name = 'quarantine_dropped')"
        )
        return int(kept), int(dropped)

    # -- alerts -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def alert_book(
        self, *, evaluation_round: bool = False, read_only: bool = False
    ) -> Iterator[AlertBook | None]:
        # Kept short (the figures are read before), so the ingest writer waits at most a moment.
        with self._snapshot() if read_only else self._transaction() as conn:
            lock = self.dialect.round_lock
            if evaluation_round and lock is not None and not conn.execute(lock).fetchone()[0]:
                yield None  # another process or host is evaluating this round
                return
            yield AlertBook(conn, self.dialect)

    # -- sessions ---------------------------------------------------------------------------

    def revoke_session(self, nonce: str, expires_at: datetime) -> None:
        p, encode = self.dialect.param, self.dialect.encode_time
        with self._transaction() as conn:
            conn.execute(
                f"DELETE FROM revoked_sessions WHERE expires_at < {p}",
                (encode(datetime.now(UTC)),),
            )
            conn.execute(
                f"INSERT INTO revoked_sessions (nonce, expires_at) VALUES ({p}, {p}) "
                "ON CONFLICT (nonce) DO NOTHING",
                (nonce, encode(expires_at)),
            )

    def session_revoked(self, nonce: str) -> bool:
        p = self.dialect.param
        return bool(self._rows(f"SELECT 1 FROM revoked_sessions WHERE nonce = {p}", (nonce,)))
