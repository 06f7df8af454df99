"""PostgreSQL store: many processes and hosts on one database, each call still stored once.

``call_keys`` (primary key AccountSid, CallSid) is where concurrent writers meet: a batch claims its
keys with one INSERT ... ON CONFLICT DO NOTHING, so a racing retry either wins or waits for the
winner's commit and then sees its row. ``calls`` is partitioned by month of start time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from callpulse.callback import WITHHELD
from callpulse.regions import region_of
from callpulse.store import quarantine, rollups
from callpulse.store.alerts import ALERT_ROUND_LOCK, AlertBook
from callpulse.store.base import (
    RECONCILED,
    CallWrite,
    MigrationState,
    QuarantineEntry,
    QuarantineWrite,
    SaveResult,
    Store,
    StoredCall,
    StoreRefused,
    StoreUnavailable,
    WriteOp,
    call_key,
    problems_to_json,
    quarantine_entry_from_row,
    split_new_calls,
    stored_call_from_row,
    to_epoch_ms,
)
from callpulse.store.migrations import POSTGRES_MIGRATIONS, run_step

MIGRATION_LOCK = 0x63616C6C70  # pg_advisory_xact_lock key: one upgrader at a time
PARTITIONS_AHEAD = 2  # months of partitions created before calls arrive for them
# Months before the current one that get a partition of their own when calls arrive for them;
# calls outside the window (reconciled long ago, stray clocks) go to the default partition.
PARTITIONS_BEHIND = 13
DEFAULT_PARTITION = "calls_default"
RETRIES = 3  # deadlocks between racing batches are retried before giving up

_CALL_COLUMNS = (
    "c.from_number, c.to_number, c.started_at, c.status, c.duration_s, c.mos, c.extra, "
    "c.received_at, c.source, c.version, c.problems"
)
_VERSION_COLUMNS = (
    "account_sid, from_number, to_number, started_at, status, duration_s, mos, extra, "
    "received_at, source, problems, fingerprint, version"
)
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
       {rollups.repeat_exists("b", rollups.POSTGRES)}, 1
FROM claimed c JOIN batch b USING (account_sid, call_sid)
RETURNING account_sid, call_sid
"""
_REFRESH_REPEATS = rollups.refresh_repeats(rollups.POSTGRES)
# Callers map onto a fixed set of advisory locks (two-key form: this class, a stripe), so a
# transaction never holds more than CALLER_STRIPES of PostgreSQL's shared lock slots.
CALLER_LOCK_CLASS = 0x63616C6C
CALLER_STRIPES = 64
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


# The newest entry that no longer fits in the quarantine's bytes with all newer ones (0: none).
_OVER_BYTES = (
    "SELECT coalesce(max(id), 0) FROM (SELECT id, sum(octet_length(body) "
    "+ octet_length(headers::text) + octet_length(url) + octet_length(errors::text)) "
    "OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS total FROM quarantine) AS sized "
    "WHERE total > %s"
)
_QUARANTINE_SELECT = (
    "SELECT id, received_at, reason, errors, method, url, headers, body, body_size FROM quarantine"
)


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def partition_name(start: datetime) -> str:
    return f"calls_p{start:%Y_%m}"


def _lock_order(op: WriteOp) -> tuple[bool, str, str]:
    """Calls by key (the order their key locks are taken in), quarantine entries last."""
    if isinstance(op, CallWrite):
        return (False, op.record.account_sid, op.record.call_sid)
    return (True, "", "")


def _unavailable(url: str, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(" ".join(f"PostgreSQL {url}: {exc}".split()))  # one line


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresStore(Store):
    dialect = rollups.POSTGRES

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout_s: float = 2.0,
        quarantine_max_entries: int = 10000,
        quarantine_retention: timedelta = timedelta(days=30),
        quarantine_max_body_bytes: int = quarantine.DEFAULT_MAX_BODY_BYTES,
        quarantine_max_bytes: int = quarantine.DEFAULT_MAX_BYTES,
    ) -> None:
        self.url = url
        self._label = _safe_url(url)
        self._quarantine_max = quarantine_max_entries
        self._quarantine_retention = quarantine_retention
        self.quarantine_max_body_bytes = quarantine_max_body_bytes
        self._quarantine_max_bytes = quarantine_max_bytes
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

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            if not self._opened:
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

    def _why_no_connection(self) -> psycopg.Error | None:
        """The pool only says it timed out; one direct attempt tells why (refused, no such db)."""
        try:
            psycopg.connect(self.url, connect_timeout=max(1, round(self._timeout))).close()
        except psycopg.Error as exc:
            return exc
        return None

    # -- writes -----------------------------------------------------------------------------

    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]:
        window = self._partition_window()
        months = {month_start(op.record.started_at) for op in ops if isinstance(op, CallWrite)}
        months |= {next_month(month) for month in months}  # the next one ahead of time
        months = {month for month in months if window[0] <= month <= window[1]}
        for attempt in range(RETRIES):
            try:
                self.ensure_partitions(months)
                with self._conn() as conn:
                    return self._write(conn, ops)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
                if attempt == RETRIES - 1:
                    raise _unavailable(self._label, exc) from exc
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                raise StoreRefused(f"PostgreSQL {self._label} refused: {exc}") from exc
            except (ValueError, OverflowError) as exc:
                # A value psycopg cannot send (a lone surrogate: UnicodeEncodeError).
                raise StoreRefused(f"PostgreSQL {self._label} cannot hold a value: {exc}") from exc
            except psycopg.Error as exc:
                raise _unavailable(self._label, exc) from exc
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

    @staticmethod
    def _values(op: CallWrite) -> tuple[Any, ...]:
        r = op.record
        return (
            r.from_number,
            r.to_number,
            r.started_at,
            r.status,
            r.duration_s,
            r.mos,
            json.dumps(r.extra, sort_keys=True),
            op.received_at,
            op.source,
            problems_to_json(r.problems),
        )

    def _write_known(self, conn: psycopg.Connection[Any], op: CallWrite) -> SaveResult:
        r = op.record
        if op.source == RECONCILED:
            return SaveResult.DUPLICATE  # recovered calls never change what a callback stored
        fp = op.fingerprint()
        row = conn.execute(
            "SELECT call_id, started_at, fingerprint FROM call_keys "
            "WHERE account_sid = %s AND call_sid = %s FOR UPDATE",
            (r.account_sid, r.call_sid),
        ).fetchone()
        assert row is not None, "a claimed key exists until pruned"
        call_id, started_at, current = row
        if (
            current == fp
            or conn.execute(
                "SELECT 1 FROM call_history WHERE call_id = %s AND fingerprint = %s",
                (call_id, fp),
            ).fetchone()
        ):
            return SaveResult.DUPLICATE
        (old_from,) = conn.execute(
            f"INSERT INTO call_history (call_id, {_VERSION_COLUMNS}, superseded_at) "
            f"SELECT call_id, {_VERSION_COLUMNS}, %s FROM calls "
            "WHERE account_sid = %s AND started_at = %s AND call_id = %s RETURNING from_number",
            (op.received_at, r.account_sid, started_at, call_id),
        ).fetchone() or (None,)
        conn.execute(
            "UPDATE calls SET from_number = %s, to_number = %s, started_at = %s, status = %s, "
            "duration_s = %s, mos = %s, extra = %s, received_at = %s, source = %s, "
            "problems = %s, region = %s, fingerprint = %s, version = version + 1 "
            "WHERE account_sid = %s AND started_at = %s AND call_id = %s",
            (*self._values(op), region_of(r.from_number), fp, r.account_sid, started_at, call_id),
        )
        conn.execute(
            "UPDATE call_keys SET started_at = %s, fingerprint = %s "
            "WHERE account_sid = %s AND call_sid = %s",
            (r.started_at, fp, r.account_sid, r.call_sid),
        )
        if (old_from, started_at) != (r.from_number, r.started_at):
            for caller, start in ((old_from, started_at), (r.from_number, r.started_at)):
                ms = to_epoch_ms(start)
                conn.execute(
                    _REFRESH_REPEATS, (r.account_sid, caller, ms, ms + rollups.REPEAT_WINDOW_MS)
                )
        return SaveResult.UPDATED

    def _write_quarantine(self, conn: psycopg.Connection[Any], op: QuarantineWrite) -> SaveResult:
        op = quarantine.bounded(op, self.quarantine_max_body_bytes)
        conn.execute(
            "INSERT INTO quarantine (received_at, reason, errors, method, url, headers, body, "
            "body_size) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                op.received_at,
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

    def _enforce_quarantine_bounds(self, conn: psycopg.Connection[Any]) -> None:
        cutoff = datetime.now(UTC) - self._quarantine_retention
        dropped = conn.execute(
            "DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - %s "
            f"OR received_at < %s OR id <= ({_OVER_BYTES})",
            (self._quarantine_max, cutoff, self._quarantine_max_bytes),
        ).rowcount
        if dropped:
            conn.execute(
                "UPDATE counters SET value = value + %s WHERE name = 'quarantine_dropped'",
                (dropped,),
            )

    # -- partitions -------------------------------------------------------------------------

    def _existing_partitions(self, conn: psycopg.Connection[Any]) -> set[str]:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'calls'::regclass"
        ).fetchall()
        return {name for (name,) in rows}

    @staticmethod
    def _partition_window() -> tuple[datetime, datetime]:
        """The first and last month that get partitions of their own."""
        now = month_start(datetime.now(UTC))
        months = now.year * 12 + now.month - 1
        first = months - PARTITIONS_BEHIND
        last = months + PARTITIONS_AHEAD
        return (
            now.replace(year=first // 12, month=first % 12 + 1),
            now.replace(year=last // 12, month=last % 12 + 1),
        )

    def ensure_partitions(self, months: set[datetime]) -> None:
        """Create the monthly partitions of ``calls`` these months need (outside any batch)."""
        missing = {m for m in months if partition_name(m) not in self._partitions}
        if not missing:
            return
        with self._conn() as conn:
            self._partitions |= self._existing_partitions(conn)
            for start in sorted(missing):
                name = partition_name(start)
                if name in self._partitions:
                    continue
                # another process may create it at the same moment
                with contextlib.suppress(
                    psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation
                ):
                    self._create_partition(conn, name, start, DEFAULT_PARTITION in self._partitions)
                self._partitions.add(name)

    @staticmethod
    def _create_partition(
        conn: psycopg.Connection[Any], name: str, start: datetime, take_from_default: bool
    ) -> None:
        """A month's partition, taking over what the default partition holds of that month
        (attaching it would fail otherwise); the rows only move, so rollups stay as they are."""
        table = sql.Identifier(name)
        bounds = (sql.Literal(start), sql.Literal(next_month(start)))
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (LIKE calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                ).format(table)
            )
            if take_from_default:
                conn.execute(
                    sql.SQL(
                        "WITH moved AS (DELETE FROM {} WHERE started_at >= {} AND started_at < {} "
                        "RETURNING *) INSERT INTO {} SELECT * FROM moved"
                    ).format(sql.Identifier(DEFAULT_PARTITION), *bounds, table)
                )
            conn.execute(
                sql.SQL(
                    "ALTER TABLE calls ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
                ).format(table, *bounds)
            )

    def _months_ahead(self) -> set[datetime]:
        month = month_start(datetime.now(UTC))
        months = {month}
        for _ in range(PARTITIONS_AHEAD):
            month = next_month(month)
            months.add(month)
        return months

    def prune(self, cutoff: datetime) -> int:
        """Drop every monthly partition that ends at or before ``cutoff``; return calls removed."""
        removed = 0
        with self._conn() as conn:
            names = sorted(self._existing_partitions(conn) - {DEFAULT_PARTITION})
            removed += self._prune_default(conn, cutoff)
            for name in names:
                start = datetime.strptime(name, "calls_p%Y_%m").replace(tzinfo=UTC)
                end = next_month(start)
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

    @staticmethod
    def _prune_default(conn: psycopg.Connection[Any], cutoff: datetime) -> int:
        """Calls before ``cutoff`` in the default partition, removed row by row."""
        with conn.transaction():
            rows = conn.execute(
                "DELETE FROM calls_default WHERE started_at < %s RETURNING account_sid, call_id",
                (cutoff,),
            ).fetchall()
            if rows:
                ids = [call_id for _account, call_id in rows]
                conn.execute("DELETE FROM call_history WHERE call_id = ANY(%s)", (ids,))
                conn.execute("DELETE FROM call_keys WHERE call_id = ANY(%s)", (ids,))
        return len(rows)

    # -- schema -----------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        applied_now = []
        try:
            with self._conn() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                applied = self._applied(conn)
                for migration in POSTGRES_MIGRATIONS:
                    if migration.name in applied:
                        continue
                    for step in migration.statements:
                        run_step(conn, step)
                    conn.execute(
                        "INSERT INTO migrations (name, applied_at) VALUES (%s, now())",
                        (migration.name,),
                    )
                    applied_now.append(migration.name)
        except psycopg.Error as exc:
            raise _unavailable(self._label, exc) from exc
        self.ensure_partitions(self._months_ahead())
        return applied_now

    @staticmethod
    def _applied(conn: psycopg.Connection[Any]) -> dict[str, datetime]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        rows = conn.execute("SELECT name, applied_at FROM migrations").fetchall()
        return {name: applied_at for name, applied_at in rows}

    def migration_status(self) -> list[MigrationState]:
        with self._conn() as conn:
            applied = self._applied(conn)
        return [MigrationState(m.name, applied.get(m.name)) for m in POSTGRES_MIGRATIONS]

    def ping(self) -> None:
        with self._conn() as conn:
            try:
                conn.execute("SELECT count(*) FROM migrations").fetchone()
            except psycopg.Error as exc:
                raise _unavailable(self._label, exc) from exc

    # -- reads ------------------------------------------------------------------------------

    def read(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn() as conn:
            try:
                return conn.execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise _unavailable(self._label, exc) from exc

    def rebuild_rollups(self) -> None:
        try:
            with self._conn() as conn, conn.transaction():
                conn.execute("LOCK TABLE calls IN EXCLUSIVE MODE")  # reads go on, writes wait
                for statement in rollups.rebuild_statements(rollups.POSTGRES):
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise _unavailable(self._label, exc) from exc

    def iter_calls(self, batch_size: int = 1000) -> Iterator[StoredCall]:
        with self._conn() as conn, conn.transaction():
            cursor = conn.cursor(name="callpulse_export")
            cursor.itersize = batch_size
            cursor.execute(
                f"SELECT c.account_sid, c.call_sid, {_CALL_COLUMNS} FROM calls c "
                "ORDER BY c.started_at, c.call_id"
            )
            for row in cursor:
                yield stored_call_from_row(row[0], row[1], row[2:])

    def get_call(self, account_sid: str, call_sid: str) -> StoredCall | None:
        rows = self.read(
            f"SELECT {_CALL_COLUMNS} FROM calls c JOIN call_keys k USING (account_sid, call_id) "
            "WHERE k.account_sid = %s AND k.call_sid = %s AND c.started_at = k.started_at",
            (account_sid, call_sid),
        )
        return stored_call_from_row(account_sid, call_sid, rows[0]) if rows else None

    def call_history(self, account_sid: str, call_sid: str) -> list[StoredCall]:
        rows = self.read(
            "SELECT h.from_number, h.to_number, h.started_at, h.status, h.duration_s, h.mos, "
            "h.extra, h.received_at, h.source, h.version, h.problems FROM call_history h "
            "JOIN call_keys k USING (call_id) WHERE k.account_sid = %s AND k.call_sid = %s "
            "ORDER BY h.version",
            (account_sid, call_sid),
        )
        return [stored_call_from_row(account_sid, call_sid, row) for row in rows]

    def count_calls(self) -> int:
        return int(self.read("SELECT count(*) FROM calls")[0][0])

    def list_quarantine(
        self, limit: int = 50, before_id: int | None = None
    ) -> list[QuarantineEntry]:
        rows = self.read(
            f"{_QUARANTINE_SELECT} WHERE id < %s ORDER BY id DESC LIMIT %s",
            (before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [quarantine_entry_from_row(row) for row in rows]

    def get_quarantine(self, entry_id: int) -> QuarantineEntry | None:
        rows = self.read(f"{_QUARANTINE_SELECT} WHERE id = %s", (entry_id,))
        return quarantine_entry_from_row(rows[0]) if rows else None

    def delete_quarantine(self, entry_id: int) -> None:
        self.read("DELETE FROM quarantine WHERE id = %s RETURNING id", (entry_id,))

    def quarantine_counts(self) -> tuple[int, int]:
        ((kept, dropped),) = self.read(
            "SELECT (SELECT count(*) FROM quarantine), "
            "(SELECT value FROM counters WHERE name = 'quarantine_dropped')"
        )
        return int(kept), int(dropped)

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False

    def revoke_session(self, nonce: str, expires_at: datetime) -> None:
        try:
            with self._conn() as conn, conn.transaction():
                conn.execute("DELETE FROM revoked_sessions WHERE expires_at < now()")
                conn.execute(
                    "INSERT INTO revoked_sessions (nonce, expires_at) VALUES (%s, %s) "
                    "ON CONFLICT (nonce) DO NOTHING",
                    (nonce, expires_at),
                )
        except psycopg.Error as exc:
            raise _unavailable(self._label, exc) from exc

    def session_revoked(self, nonce: str) -> bool:
        return bool(self.read("SELECT 1 FROM revoked_sessions WHERE nonce = %s", (nonce,)))

    @contextlib.contextmanager
    def alert_book(
        self, *, evaluation_round: bool = False, read_only: bool = False
    ) -> Iterator[AlertBook | None]:
        # (read_only changes nothing here: readers never wait on writers in PostgreSQL)
        try:
            with self._conn() as conn, conn.transaction():
                if evaluation_round:
                    row = conn.execute(
                        "SELECT pg_try_advisory_xact_lock(%s)", (ALERT_ROUND_LOCK,)
                    ).fetchone()
                    if (
                        row is None or not row[0]
                    ):  # another process or host is evaluating this round
                        yield None
                        return
                yield AlertBook(conn, rollups.POSTGRES)
        except psycopg.Error as exc:
            raise _unavailable(self._label, exc) from exc
