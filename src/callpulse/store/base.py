"""The Store interface the ingest pipeline, CLI and web layer talk to, and its value types."""

from __future__ import annotations

import abc
import contextlib
import enum
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from callpulse.callback import CallRecord, Problem
from callpulse.errors import CallpulseError
from callpulse.store.rollups import Dialect

if TYPE_CHECKING:
    from callpulse.store.alerts import AlertBook


class StoreUnavailable(CallpulseError):
    """The database cannot take writes or answer reads right now (down, locked, disk full)."""


class StoreRefused(CallpulseError):
    """The database refuses this data (a value it cannot hold); retrying will not help."""


class SaveResult(enum.StrEnum):
    INSERTED = "inserted"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    SPOOLED = "spooled"
    QUARANTINED = "quarantined"
    REFUSED = "refused"  # valid, but the database cannot hold it: kept in quarantine instead


RECONCILED = "reconciled"  # a CallWrite source: recovered from the Calls API


@dataclass(frozen=True, slots=True)
class CallWrite:
    record: CallRecord
    received_at: datetime
    source: str = "callback"  # or RECONCILED: inserted when missing, never changes a stored call

    def fingerprint(self) -> int:
        """Identifies the callback's content, so a retry is told from a real update."""
        r = self.record
        timestamp = r.problem("Timestamp")
        content: list[Any] = [
            r.from_number,
            r.to_number,
            # A time of receipt differs on every retry: what identifies it is what was sent.
            r.started_at.isoformat() if timestamp is None else ["raw", timestamp.value],
            r.status,
            r.duration_s,
            r.mos,
            r.extra,
        ]
        if r.problems:  # (calls without problems keep the fingerprints they always had)
            content.append([[p.field, p.value] for p in r.problems])
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return int.from_bytes(
            hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "big", signed=True
        )


@dataclass(frozen=True, slots=True)
class QuarantineWrite:
    received_at: datetime
    reason: str  # "invalid", "signature", "too_large", "unsupported"
    errors: dict[str, str]
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    body_size: int  # size before truncation


WriteOp = CallWrite | QuarantineWrite


@dataclass(frozen=True, slots=True)
class StoredCall:
    record: CallRecord
    received_at: datetime
    source: str
    version: int


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    received_at: datetime
    reason: str
    errors: dict[str, str]
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    body_size: int


@dataclass(frozen=True, slots=True)
class MigrationState:
    name: str
    applied_at: datetime | None


def call_key(account_sid: str, call_sid: str) -> int:
    """A compact signed 64-bit key for (AccountSid, CallSid); equal keys are compared in full."""
    digest = hashlib.blake2b(f"{account_sid}\x00{call_sid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def split_new_calls(ops: Sequence[WriteOp]) -> tuple[dict[tuple[str, str], int], list[int]]:
    """The first call write per (AccountSid, CallSid) of a batch, by identity, and the indexes
    of everything else (later writes of the same call, quarantine entries), in arrival order.

    The first ones take the bulk path that inserts every call not stored yet in one statement;
    the rest take the per-call path that tells retries from updates."""
    first: dict[tuple[str, str], int] = {}
    rest: list[int] = []
    for index, op in enumerate(ops):
        if not isinstance(op, CallWrite):
            rest.append(index)
            continue
        ident = (op.record.account_sid, op.record.call_sid)
        if ident in first:
            rest.append(index)
        else:
            first[ident] = index
    return first, rest


def prune_boundary(cutoff: datetime) -> datetime:
    """Pruning goes by whole UTC days, so no rollup bucket holds both kept and pruned calls."""
    return cutoff.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def problems_to_json(problems: Sequence[Problem]) -> str:
    return json.dumps([p.as_dict() for p in problems], ensure_ascii=False)


def problems_from_json(value: Any) -> tuple[Problem, ...]:
    items = json.loads(value) if isinstance(value, str) else value or []
    return tuple(Problem(p["field"], p["value"], p["why"]) for p in items)


def to_epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class CallSelection:
    """Which calls an export takes: a range of start times (until exclusive) and exact
    matches, each optional; the default is every call."""

    since: datetime | None = None
    until: datetime | None = None
    account_sid: str | None = None
    to: str | None = None
    region: str | None = None

    def where(self, dialect: Dialect) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or nothing) over the calls table's columns, and its parameters."""
        conditions: list[str] = []
        params: list[Any] = []
        for column, op, moment in (
            ("started_at", ">=", self.since),
            ("started_at", "<", self.until),
        ):
            if moment is not None:
                conditions.append(f"{column} {op} {dialect.ms_param}")
                params.append(to_epoch_ms(moment))
        for column, value in (
            ("account_sid", self.account_sid), ("to_number", self.to), ("region", self.region)
        ):  # fmt: skip
            if value is not None:
                conditions.append(f"{column} = {dialect.param}")
                params.append(value)
        return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


EVERY_CALL = CallSelection()


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _same(value: Any) -> Any:
    return value


def stored_call_from_row(
    account_sid: str,
    call_sid: str,
    row: Sequence[Any],
    decode_time: Callable[[Any], datetime] = _same,
    decode_json: Callable[[Any], Any] = _same,
) -> StoredCall:
    """A row of (from, to, started_at, status, duration_s, mos, extra, received_at, source,
    version, problems) as a StoredCall; each backend says how its times and JSON come back."""
    (from_number, to_number, started_at, status, duration_s, mos, extra, received_at, source,
     version, problems) = row  # fmt: skip
    record = CallRecord(
        account_sid=account_sid,
        call_sid=call_sid,
        from_number=from_number,
        to_number=to_number,
        started_at=decode_time(started_at),
        status=status,
        duration_s=duration_s,
        mos=mos,
        extra=decode_json(extra),
        problems=problems_from_json(problems),
    )
    return StoredCall(record, decode_time(received_at), source, version)


def quarantine_entry_from_row(
    row: Sequence[Any],
    decode_time: Callable[[Any], datetime] = _same,
    decode_json: Callable[[Any], Any] = _same,
) -> QuarantineEntry:
    """A row of (id, received_at, reason, errors, method, url, headers, body, body_size)."""
    entry_id, received_at, reason, errors, method, url, headers, body, body_size = row
    return QuarantineEntry(
        id=entry_id,
        received_at=decode_time(received_at),
        reason=reason,
        errors=decode_json(errors),
        method=method,
        url=url,
        headers=decode_json(headers),
        body=bytes(body),
        body_size=body_size,
    )


class Store(abc.ABC):
    """Durable storage of calls, their history and quarantined requests.

    ``write_batch`` runs on the single writer thread and commits the whole batch in one
    transaction (group commit); everything else may run on any thread.
    """

    dialect: Dialect  # how ``read`` queries are written for this backend

    @abc.abstractmethod
    def read(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query written for ``dialect`` (analytics)."""

    @abc.abstractmethod
    def rebuild_rollups(self) -> None:
        """Recompute repeat flags and rollups from the stored calls (writes wait meanwhile)."""

    @abc.abstractmethod
    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]: ...

    # The per-call path of write_batch, the same on every backend; conn is the backend's.

    @abc.abstractmethod
    def _write_known(self, conn: Any, op: CallWrite) -> SaveResult:
        """A call whose key is stored already: a retry, an update, or a recovered call."""

    quarantine_max_body_bytes: int  # each entry's stored body is cut to this

    @abc.abstractmethod
    def _write_quarantine(self, conn: Any, op: QuarantineWrite) -> SaveResult:
        """Insert the entry cut to the quarantine's sizes (``store.quarantine.bounded``)."""

    @abc.abstractmethod
    def _enforce_quarantine_bounds(self, conn: Any) -> None: ...

    def _write_one_by_one(
        self, conn: Any, ops: Sequence[WriteOp], indexes: Sequence[int], results: list[SaveResult]
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

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

    @abc.abstractmethod
    def upgrade(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    @abc.abstractmethod
    def migration_status(self) -> list[MigrationState]: ...

    @abc.abstractmethod
    def iter_calls(
        self, batch_size: int = 1000, selection: CallSelection = EVERY_CALL
    ) -> Iterator[StoredCall]:
        """Every call (of ``selection``), oldest first by start time."""

    @abc.abstractmethod
    def get_call(self, account_sid: str, call_sid: str) -> StoredCall | None: ...

    @abc.abstractmethod
    def call_history(self, account_sid: str, call_sid: str) -> list[StoredCall]:
        """Earlier versions of a call, oldest first."""

    @abc.abstractmethod
    def count_calls(self, selection: CallSelection = EVERY_CALL) -> int: ...

    @abc.abstractmethod
    def list_quarantine(
        self, limit: int = 50, before_id: int | None = None
    ) -> list[QuarantineEntry]:
        """Newest first."""

    @abc.abstractmethod
    def get_quarantine(self, entry_id: int) -> QuarantineEntry | None: ...

    @abc.abstractmethod
    def delete_quarantine(self, entry_id: int) -> None:
        """Remove an entry that was replayed successfully (not counted as dropped)."""

    @abc.abstractmethod
    def quarantine_counts(self) -> tuple[int, int]:
        """(entries kept, entries dropped by the size cap or retention)."""

    @abc.abstractmethod
    def prune(self, cutoff: datetime) -> int:
        """Remove calls that started before ``prune_boundary(cutoff)`` (whole partitions where
        there are any); their rollups stay. Return how many calls went."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def revoke_session(self, nonce: str, expires_at: datetime) -> None:
        """Record a logged-out session until it would have expired; drop expired records."""

    @abc.abstractmethod
    def session_revoked(self, nonce: str) -> bool: ...

    @abc.abstractmethod
    def alert_book(
        self, *, evaluation_round: bool = False, read_only: bool = False
    ) -> contextlib.AbstractContextManager[AlertBook | None]:
        """The alert tables in one short transaction. With ``evaluation_round`` it is the one
        round running across processes and hosts: None when another holds it (PostgreSQL);
        SQLite's BEGIN IMMEDIATE waits for the other instead, then sees what it stored.
        ``read_only`` (reads for the API, CLI and metrics) takes no write lock on SQLite."""
