"""PostgreSQL store: many processes and hosts on one database, each call still stored once.

``call_keys`` (primary key AccountSid, CallSid) is where concurrent writers meet: a batch claims its
keys with one INSERT ... ON CONFLICT DO NOTHING, so a racing retry either wins or waits for the
winner's commit and then sees its row. ``calls`` is partitioned by month of start time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from callpulse.callback import WITHHELD, CallRecord
from callpulse.regions import region_of
from callpulse.store import partitions, repeats
from callpulse.store.base import CallWrite, SaveResult, WriteOp, call_key, split_new_calls
from callpulse.store.core import DEFAULT_LIMITS, QuarantineLimits, SqlStore
from callpulse.store.dialect import POSTGRES
from callpulse.store.errors import StoreUnavailable
from callpulse.store.migrations import POSTGRES_MIGRATIONS
from callpulse.store.protocols import Connection

RETRIES = 3  # deadlocks between racing batches are retried before giving up

# Claiming the keys and inserting the calls in one statement makes the common case one round
# trip; a retry racing on another process waits on its key, then takes the per-call path.
_INSERT_NEW = f"""
WITH batch AS (
    SELECT * FROM unnest(
        %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[],
        %s::integer[], %s::float8[], %s::json[], %s::timestamptz[], %s::text[], %s::text[],
        %s::text[], %s::bigint[]
    ) AS b (account_sid, call_sid, from_number, to_number, started_at, status, duration_s, mos,
            extra, received_at, source, problems, region, fingerprint)
), claimed AS (
    INSERT INTO call_keys (account_sid, call_sid, started_at, fingerprint)
    SELECT account_sid, call_sid, started_at, fingerprint FROM batch
    ON CONFLICT DO NOTHING
    RETURNING account_sid, call_sid, call_id
)
INSERT INTO calls (call_id, account_sid, call_sid, from_number, to_number, started_at, status,
                   duration_s, mos, extra, received_at, source, problems, region, fingerprint,
                   is_repeat, version)
SELECT c.call_id, b.account_sid, b.call_sid, b.from_number, b.to_number, b.started_at, b.status,
       b.duration_s, b.mos, b.extra, b.received_at, b.source, b.problems, b.region, b.fingerprint,
       {repeats.repeat_exists("b", POSTGRES)}, 1
FROM claimed c JOIN batch b USING (account_sid, call_sid)
RETURNING account_sid, call_sid
"""
# Callers map onto advisory locks (two-key form: this class, a stripe). Stripes are many, so two
# concurrent batches rarely share one (with 64, every batch of a call center's traffic shared
# some, and a second process waited for the first's commit: 2 workers stored 1.3x one's rate);
# a transaction holds one lock per distinct caller, at most the writer's batch size
# (CALLPULSE_WRITER_MAX_BATCH), of max_locks_per_transaction x max_connections shared slots.
CALLER_LOCK_CLASS = 0x63616C6C
CALLER_STRIPES = 65536
_LOCK_CALLERS = (
    f"SELECT pg_advisory_xact_lock({CALLER_LOCK_CLASS}, k) "
    "FROM (SELECT k FROM unnest(%s::integer[]) AS k ORDER BY k) s"
)


def caller_stripes(calls: Iterable[CallWrite]) -> list[int]:
    """The advisory lock stripes of these calls' callers, sorted (withheld callers take none)."""
    return sorted(
        {
            call_key(c.record.account_sid, c.record.from_number) % CALLER_STRIPES
            for c in calls
            if c.record.from_number != WITHHELD
        }
    )


def _lock_order(op: WriteOp) -> tuple[bool, str, str]:
    """Calls by key (the order their key locks are taken in), quarantine entries last."""
    if isinstance(op, CallWrite):
        return (False, op.record.account_sid, op.record.call_sid)
    return (True, "", "")


def _unavailable(label: str, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(" ".join(f"{label}: {exc}".split()))  # one line


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresStore(SqlStore):
    dialect = POSTGRES
    migrations = POSTGRES_MIGRATIONS

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout_s: float = 2.0,
        quarantine_limits: QuarantineLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(quarantine_limits)
        self.url = url
        self._address = _safe_url(url)
        self._timeout = connect_timeout_s
        self._partitions: set[str] = set()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": max(1, round(connect_timeout_s)), "autocommit": True},
            configure=self._configure,
            timeout=connect_timeout_s,
            open=False,
            name="callpulse",
        )
        self._opened = False

    @property
    def _label(self) -> str:
        return f"PostgreSQL {self._address}"

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            if not self._opened:
                # One direct attempt first: a refused connection or a missing database is
                # said at once, not after the pool's timeout.
                if (problem := self._why_no_connection()) is not None:
                    raise _unavailable(self._label, problem)
                self._pool.open(wait=False)
                self._opened = True
            with self._pool.connection(timeout=self._timeout) as conn:
                yield conn
        except psycopg.errors.TransactionRollback:
            raise  # deadlock or serialization failure: the caller retries the batch
        except PoolTimeout as exc:
            raise _unavailable(self._label, self._why_no_connection() or exc) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(self._label, exc) from exc

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._conn() as conn:
            try:
                yield conn
            except psycopg.Error as exc:
                raise _unavailable(self._label, exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._connection() as conn, conn.transaction():
            yield conn

    def _schema_ready(self) -> None:
        self.ensure_partitions(partitions.months_ahead())

    def _why_no_connection(self) -> psycopg.Error | None:
        """The pool only says it timed out; one direct attempt tells why (refused, no such db)."""
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(self._timeout))).close()
        except psycopg.Error as exc:
            return exc
        return None

    # -- writes -----------------------------------------------------------------------------

    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
        window = partitions.window()
        months = {
            partitions.month_start(op.record.started_at) for op in ops if isinstance(op, CallWrite)
        }
        months |= {partitions.next_month(month) for month in months}  # the next one ahead of time
        months = {month for month in months if window[0] <= month <= window[1]}
        for attempt in range(RETRIES):
            try:
                self.ensure_partitions(months)
                with self._conn() as conn:
                    return self._write(conn, ops)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                if attempt == RETRIES - 1:
                    raise _unavailable(self._label, exc) from exc
            except (psycopg.Error, ValueError, OverflowError) as exc:
                raise self._failure(exc) from exc
        raise AssertionError("unreachable")

    def _write(self, conn: psycopg.Connection[Any], ops: Sequence[WriteOp]) -> list[SaveResult]:
        results = [SaveResult.QUARANTINED] * len(ops)
        rest = self._insert_new_calls(conn, ops, results)
        # Key locks in one global order (then arrival order per call): no deadlocks between
        # racing batches; quarantine entries take no key lock.
        rest.sort(key=lambda i: (*_lock_order(ops[i]), i))
        if rest:
            with conn.transaction():
                # Corrections may move a call to another caller or time: same locks as inserts.
                calls = [op for op in (ops[i] for i in rest) if isinstance(op, CallWrite)]
                conn.execute(_LOCK_CALLERS, (caller_stripes(calls),))
                self._write_one_by_one(conn, ops, rest, results)
        return results

    def _insert_new_calls(
        self, conn: psycopg.Connection[Any], ops: Sequence[WriteOp], results: list[SaveResult]
    ) -> list[int]:
        """Claim the keys of every call not stored yet and insert those calls, in one statement
        and its own transaction; return the indexes left for the per-call path.

        The transaction first locks its callers (advisory locks, in one order): a batch with an
        earlier or later call of the same caller in another process commits before this one
        reads, so each sees the other's calls when it decides who called again."""
        first, rest = split_new_calls(ops)
        if not first:
            return rest
        # Sorted claims take key locks in one global order: racing batches cannot deadlock.
        columns: list[list[Any]] = [[] for _ in range(14)]
        for (account_sid, call_sid), index in sorted(first.items()):
            op = ops[index]
            assert isinstance(op, CallWrite)
            row = (
                account_sid, call_sid, *self._values(op), region_of(op.record.from_number),
                op.fingerprint(),
            )  # fmt: skip
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        with conn.transaction():
            firsts = [op for op in (ops[i] for i in first.values()) if isinstance(op, CallWrite)]
            conn.execute(_LOCK_CALLERS, (caller_stripes(firsts),))
            inserted = conn.execute(_INSERT_NEW, columns).fetchall()
        stored = {(account_sid, call_sid) for account_sid, call_sid in inserted}
        for ident, index in first.items():
            if ident in stored:
                results[index] = SaveResult.INSERTED
            else:
                rest.append(index)
        return sorted(rest)

    def _stored_version(
        self, conn: Connection, record: CallRecord
    ) -> tuple[Any, Any, str, list[Any]]:
        # The key's row lock: a racing process's update of this call waits for our commit.
        row = conn.execute(
            "SELECT call_id, started_at, fingerprint FROM call_keys "
            "WHERE account_sid = %s AND call_sid = %s FOR UPDATE",
            (record.account_sid, record.call_sid),
        ).fetchone()
        assert row is not None, "a claimed key exists until pruned"
        call_id, started_at, current = row
        where = "account_sid = %s AND started_at = %s AND call_id = %s"  # (its partition)
        return call_id, current, where, [record.account_sid, started_at, call_id]

    def _moved(self, conn: Connection, record: CallRecord, fingerprint: int) -> None:
        conn.execute(
            "UPDATE call_keys SET started_at = %s, fingerprint = %s "
            "WHERE account_sid = %s AND call_sid = %s",
            (record.started_at, fingerprint, record.account_sid, record.call_sid),
        )

    # -- partitions -------------------------------------------------------------------------

    def ensure_partitions(self, months: set[datetime]) -> None:
        """Create the monthly partitions of ``calls`` these months need (outside any batch)."""
        missing = {m for m in months if partitions.partition_name(m) not in self._partitions}
        if not missing:
            return
        with self._conn() as conn:
            self._partitions |= partitions.existing(conn)
            for start in sorted(missing):
                name = partitions.partition_name(start)
                if name in self._partitions:
                    continue
                # another process may create it at the same moment
                with contextlib.suppress(
                    psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation
                ):
                    partitions.create(
                        conn, name, start, partitions.DEFAULT_PARTITION in self._partitions
                    )
                self._partitions.add(name)

    def prune(self, cutoff: datetime) -> int:
        """Drop every monthly partition that ends at or before ``cutoff``; return calls removed."""
        removed = 0
        with self._conn() as conn:
            names = sorted(partitions.existing(conn) - {partitions.DEFAULT_PARTITION})
            removed += partitions.prune_default(conn, cutoff)
            for name in names:
                start = datetime.strptime(name, "calls_p%Y_%m").replace(tzinfo=UTC)
                end = partitions.next_month(start)
                if end > cutoff:
                    continue
                with conn.transaction():
                    count = conn.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
                    ).fetchone()
                    removed += count[0] if count else 0
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    conn.execute(
                        "DELETE FROM call_history WHERE call_id IN "
                        "(SELECT call_id FROM call_keys WHERE started_at < %s)",
                        (end,),
                    )
                    conn.execute("DELETE FROM call_keys WHERE started_at < %s", (end,))
                self._partitions.discard(name)
        return removed

    # -- reads ------------------------------------------------------------------------------

    def _locate_call(self, account_sid: str, call_sid: str) -> tuple[str, list[Any]]:
        # call_keys knows where (which partition, start) a call lives
        return (
            "FROM calls c JOIN call_keys k USING (account_sid, call_id) "
            "WHERE k.account_sid = %s AND k.call_sid = %s AND c.started_at = k.started_at",
            [account_sid, call_sid],
        )

    def _stream(
        self, query: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[tuple[Any, ...]]:
        with self._transaction() as conn:
            cursor = conn.cursor(name="callpulse_export")  # server-side: rows as they are read
            cursor.itersize = batch_size
            cursor.execute(query, params)
            yield from cursor

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
